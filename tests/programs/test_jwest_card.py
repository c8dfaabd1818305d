"""Acceptance tests of 003 (J-WEST card monthly points), through rules/jwest-card.rules.

Expected numbers are written by hand from the seed (/work/shared/seeds/003_7105f2e083b682a5.txt):
- a cycle runs from the 16th of the previous month to the 15th, points are granted on the 26th;
- base (通常分): 5 basic points per full 1,000 yen of the cycle total (0.5%, remainder dropped);
- bonus (ボーナス分): per multiplier tier m, the tier total floored to 1,000 yen x (m-1) x 0.5%;
- mobile ICOCA / Wesmo! charges by card are 3x; the OSC card has 6x where the standard card has
  4x (LUCUA osaka except food, KITTE Osaka, Eki Marche Osaka...); a point-up period doubles the
  multiplier at its facility (4x -> 8x, 6x -> 12x);
- returns are negative in their tier; a cash-back lowers the cycle total but not the tiers.
Basic points with no stated expiry: the end of the 12th month after payment (rules file choice).
The point-up periods of a test live in a COPY of the rules folder: the shipped
rules/data/point_up_periods.csv has a header only.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from points.dsl.loader import load_rules
from tests.support import RULES

C = "jwest-card"

# Point-up periods used by the tests (rows added to a copy of rules/data/point_up_periods.csv).
POINT_UP_ROWS = [
    ("tennoji_mio", "2025-08-01", "2025-08-10", 2),
    ("lucua_osaka", "2025-08-01", "2025-08-10", 2),
]


@pytest.fixture(scope="module")
def point_up_rules(tmp_path_factory):
    """The jwest-card rules with two point-up periods (2025-08-01 .. 08-10, inclusive) at
    Tennoji MIO and LUCUA osaka. Only jwest-card.rules is kept, so that edits of other
    campaigns cannot break this test."""
    tmp = tmp_path_factory.mktemp("rules") / "rules"
    shutil.copytree(RULES, tmp)
    for p in tmp.glob("*.rules"):
        if p.name != "jwest-card.rules":
            p.unlink()
    with open(tmp / "data" / "point_up_periods.csv", "a", encoding="utf-8") as f:
        for row in POINT_UP_ROWS:
            f.write(",".join(map(str, row)) + "\n")
    return load_rules(tmp)


def test_shipped_point_up_table_is_header_only():
    text = (RULES / "data" / "point_up_periods.csv").read_text(encoding="utf-8")
    assert text.strip().splitlines() == ["facility,start,end,factor"]


# ---------------------------------------------------------------- helpers

_n = iter(())


@pytest.fixture(autouse=True)
def _fresh_ids():
    """Event ids numbered from 1 in every test (stable keys for the snapshot)."""
    global _n
    _n = iter(range(1, 10**6))


def buy(member: str, amount: int, at: str, merchant: str = "other", card: str = "standard") -> dict:
    return {"id": f"{member}-{next(_n)}", "type": "card_payment", "member": member, "at": at,
            "amount": amount, "merchant": merchant, "card": card}


def cashback(member: str, amount: int, at: str) -> dict:
    return {"id": f"{member}-{next(_n)}", "type": "card_cashback", "member": member, "at": at,
            "amount": amount}


def cycle_awards(world, member: str) -> dict[str, tuple[str, int]]:
    """cycle id -> (payment date, net points) of the member's monthly awards."""
    out: dict[str, list] = {}
    for e in world.journal.entries(campaign=C):
        memo = e.memo if isinstance(e.memo, dict) else {}
        if memo.get("member") != member or not e.postings:
            continue
        pts = sum(p.amount for p in e.postings if p.account.split(":")[0] in ("member", "receivable"))
        assert all(p.kind == "basic" for p in e.postings)
        slot = out.setdefault(memo["period"], [e.effective.isoformat(), 0])
        slot[1] += pts
    return {k: (d, p) for k, (d, p) in out.items() if p}


def one_cycle(world, events, member="W1", until="2025-08-26", rules=None) -> int:
    """Points of the member's only paid cycle (0 if none)."""
    world.add(*events)
    world.run(until, rules=rules)
    got = cycle_awards(world, member)
    assert len(got) <= 1, got
    return next(iter(got.values()))[1] if got else 0


# ---------------------------------------------------------------- the five worked examples (OSC card)

# Each example as events of one member in the cycle 2025-07-16 .. 2025-08-15 (granted 2025-08-26),
# built from the example's own breakdown; purchases "during a point-up period" are on 2025-08-05.
EXAMPLES = {
    # ① 7420 mobile ICOCA [3x], 5600 tabiwa [3x], 7980 other: 105 + 130 = 235
    1: ([("mobile_icoca", 7420, "2025-07-20"), ("tabiwa", 5600, "2025-07-25"),
         ("other", 7980, "2025-08-12")], [], 235),
    # ② 5006 Tennoji MIO [4x, point-up -> 8x], 10000 mobile ICOCA [3x], "-1430 other" =
    #    a 1,500 cash-back (Visa touch campaign) + 70 other: 65 + 175 + 100 = 340
    2: ([("tennoji_mio", 5006, "2025-08-05"), ("mobile_icoca", 10000, "2025-07-18"),
         ("other", 70, "2025-07-30")], [(-1500, "2025-08-07")], 340),
    # ③ 1373 LUCUA food [OSC 4x, point-up -> 8x], 2241 KITTE [6x], 19068 mobile ICOCA [3x],
    #    3318 other: 130 + 35 + 50 + 190 = 405
    3: ([("lucua_osaka_food", 1373, "2025-08-05"), ("kitte_osaka", 2241, "2025-07-22"),
         ("mobile_icoca", 19068, "2025-07-17"), ("other", 3318, "2025-08-14")], [], 405),
    # ④ 247 KITTE [6x], 2906 Daimaru food [3x], 23000 mobile ICOCA / Wesmo! charges [3x],
    #    1570 other: 135 + 0 + 250 = 385
    4: ([("kitte_osaka", 247, "2025-07-19"), ("daimaru_umeda_food", 2906, "2025-07-26"),
         ("mobile_icoca", 13000, "2025-07-16"), ("wesmo_charge", 10000, "2025-08-01"),
         ("other", 1570, "2025-08-15")], [], 385),
    # ⑤ 4953 LUCUA [OSC 6x], 980 Eki Marche Osaka [6x], 3047 ekie [4x], 593 Eki Marche
    #    Shin-Osaka [3x], 5807 mobile ICOCA [3x], 3600 tabiwa [3x], 1500 other:
    #    100 + 125 + 45 + 100 = 370 (no point-up: bought outside 08-01..08-10)
    5: ([("lucua_osaka", 4953, "2025-07-28"), ("eki_marche_osaka", 980, "2025-07-29"),
         ("ekie", 3047, "2025-08-11"), ("eki_marche_shin_osaka", 593, "2025-07-16"),
         ("mobile_icoca", 5807, "2025-08-13"), ("tabiwa", 3600, "2025-07-31"),
         ("other", 1500, "2025-08-15")], [], 370),
}


def example_events(n: int, member: str) -> list[dict]:
    buys, cashbacks, _ = EXAMPLES[n]
    out = [buy(member, amount, f"{day}T12:00:00", merchant, "osc") for merchant, amount, day in buys]
    out += [cashback(member, amount, f"{day}T12:00:00") for amount, day in cashbacks]
    return out


def test_examples_add_up_to_the_seed_totals():
    # The totals (総計) printed in the seed, from our events: a check of the transcription.
    totals = {1: 21000, 2: 13576, 3: 26000, 4: 27723, 5: 20480}
    for n, (buys, cashbacks, _) in EXAMPLES.items():
        assert sum(a for _, a, _ in buys) + sum(a for a, _ in cashbacks) == totals[n]


@pytest.mark.parametrize("n", sorted(EXAMPLES))
def test_worked_example(world, point_up_rules, n):
    expected = EXAMPLES[n][2]
    world.add(*example_events(n, "W1"))
    world.run("2025-08-26", rules=point_up_rules)
    assert cycle_awards(world, "W1") == {"2025-08": ("2025-08-26", expected)}
    assert world.balance("W1", "2025-08-25") == {"basic": 0, "limited": 0, "charge_only": 0}
    assert world.balance("W1", "2025-08-26") == {"basic": expected, "limited": 0, "charge_only": 0}
    lots = world.journal.lots("W1")
    assert [(lot.kind, lot.amount, lot.expires) for lot in lots] == [("basic", expected, dt.date(2026, 8, 31))]


@pytest.mark.parametrize("n, without_point_up", [(1, 235), (2, 340 - 100), (3, 405 - 20), (4, 385), (5, 370)])
def test_worked_examples_with_the_shipped_rules(world, n, without_point_up):
    # Without a point-up period, example ② has Tennoji MIO at 4x (5000 x 1.5% = 75 instead of
    # 175) and example ③ has LUCUA food at 4x (1000 x 1.5% = 15 instead of 35).
    assert one_cycle(world, example_events(n, "W1")) == without_point_up


def test_all_five_examples_in_one_cycle_as_five_members(world, point_up_rules):
    events = []
    for n in EXAMPLES:
        events += example_events(n, f"EX{n}")
    world.add(*events)
    world.run("2025-08-26", rules=point_up_rules)
    assert {f"EX{n}": cycle_awards(world, f"EX{n}") for n in EXAMPLES} == {
        "EX1": {"2025-08": ("2025-08-26", 235)},
        "EX2": {"2025-08": ("2025-08-26", 340)},
        "EX3": {"2025-08": ("2025-08-26", 405)},
        "EX4": {"2025-08": ("2025-08-26", 385)},
        "EX5": {"2025-08": ("2025-08-26", 370)},
    }


# ---------------------------------------------------------------- base 0.5% per full 1,000 yen


@pytest.mark.parametrize(
    "amounts, expected",
    [
        ([999], 0),
        ([1000], 5),
        ([1999], 5),
        ([2000], 10),
        ([400] * 12, 20),  # the seed's example: 12 x 400 = 4800 -> 4000 -> 20
        ([600, 400], 5),  # purchases under 1,000 add up over the cycle
    ],
)
def test_base_per_full_1000_of_the_cycle_total(world, amounts, expected):
    events = [buy("W1", a, f"2025-07-{17 + i:02d}T10:00:00") for i, a in enumerate(amounts)]
    assert one_cycle(world, events) == expected


def test_nothing_to_pay_writes_no_award(world):
    world.add(buy("W1", 999, "2025-07-20T10:00:00"))
    world.run("2025-08-26")
    assert cycle_awards(world, "W1") == {}
    assert world.balance("W1") == {"basic": 0, "limited": 0, "charge_only": 0}


# ---------------------------------------------------------------- the cycle: 16th .. 15th, paid on the 26th


def test_cycle_turns_between_the_15th_and_the_16th(world):
    world.add(
        buy("W1", 1000, "2025-05-15T23:59:59"),  # cycle 04-16 .. 05-15 -> 05-26
        buy("W1", 2000, "2025-05-16T00:00:00"),  # cycle 05-16 .. 06-15 -> 06-26
        buy("W1", 1000, "2025-06-15T23:59:59"),  # same cycle
        buy("W1", 4000, "2025-06-16T00:00:00"),  # cycle 06-16 .. 07-15 -> 07-26
    )
    world.run("2025-07-26")
    assert cycle_awards(world, "W1") == {
        "2025-05": ("2025-05-26", 5),
        "2025-06": ("2025-06-26", 15),
        "2025-07": ("2025-07-26", 20),
    }
    assert world.balance("W1", "2025-05-25")["basic"] == 0
    assert world.balance("W1", "2025-05-26")["basic"] == 5
    assert world.balance("W1", "2025-06-25")["basic"] == 5
    assert world.balance("W1", "2025-06-26")["basic"] == 20
    assert world.balance("W1", "2025-07-26")["basic"] == 40
    # One lot per cycle, each expiring at the end of the 12th month after its payment.
    assert sorted((lot.amount, lot.expires) for lot in world.journal.lots("W1")) == [
        (5, dt.date(2026, 5, 31)), (15, dt.date(2026, 6, 30)), (20, dt.date(2026, 7, 31))]


def test_cycle_spanning_the_year_end(world):
    world.add(buy("W1", 3000, "2025-12-16T00:00:00"), buy("W1", 3000, "2026-01-15T23:59:59"))
    world.run("2026-01-26")
    assert cycle_awards(world, "W1") == {"2026-01": ("2026-01-26", 30)}


def test_not_paid_before_the_26th_and_expiry_of_the_lot(world):
    world.add(buy("W1", 10000, "2025-06-01T10:00:00"))
    world.run("2025-06-25")
    assert world.balance("W1")["basic"] == 0
    world.run("2026-07-01")
    assert world.balance("W1", "2025-06-26")["basic"] == 50
    assert world.balance("W1", "2026-06-29")["basic"] == 50
    assert world.balance("W1", "2026-06-30")["basic"] == 0  # expired at the end of 2026-06-30


# ---------------------------------------------------------------- bonus per multiplier tier


@pytest.mark.parametrize(
    "merchant, card, expected",
    [
        ("other", "standard", 5),
        ("not_in_the_table", "standard", 5),  # unknown merchant: 1x
        ("mobile_icoca", "standard", 15),  # charges are 3x: 5 + 10
        ("wesmo_charge", "osc", 15),
        ("tabiwa", "standard", 15),
        ("tennoji_mio", "standard", 20),  # 4x: "1000円ごとに20ポイント"
        ("lucua_osaka", "standard", 20),  # 4x on the standard card
        ("lucua_osaka", "osc", 30),  # 6x on the OSC card
        ("lucua_osaka", "gold", 20),  # rules' choice: gold = standard
        ("lucua_osaka_food", "osc", 20),  # food at LUCUA stays 4x on OSC
        ("kitte_osaka", "osc", 30),
        ("daimaru_umeda", "osc", 30),
        ("daimaru_umeda_food", "osc", 15),  # food at Daimaru is 3x
        ("ekie", "osc", 20),
        ("baltica03", "osc", 20),  # 6倍ではない優待店: 4x
        ("osaka_bus_ticket_center", "osc", 15),
        ("e5489", "osc", 5),  # e5489 is not a preferred merchant
    ],
)
def test_multiplier_by_merchant_and_card(world, merchant, card, expected):
    assert one_cycle(world, [buy("W1", 1000, "2025-07-20T10:00:00", merchant, card)]) == expected


def test_bonus_floors_each_tier_separately(world):
    # 999 at 3x + 999 at 4x + 2 other = 2000: base 10, every tier under 1,000 -> no bonus.
    events = [buy("W1", 999, "2025-07-20T10:00:00", "tabiwa"),
              buy("W1", 999, "2025-07-21T10:00:00", "tennoji_mio"),
              buy("W1", 2, "2025-07-22T10:00:00")]
    assert one_cycle(world, events) == 10


def test_merchants_of_the_same_multiplier_share_a_tier(world):
    # 600 tabiwa + 400 mobile ICOCA = 1000 in the 3x tier: base 5 + bonus 10.
    events = [buy("W1", 600, "2025-07-20T10:00:00", "tabiwa"),
              buy("W1", 400, "2025-07-21T10:00:00", "mobile_icoca")]
    assert one_cycle(world, events) == 15


# ---------------------------------------------------------------- point-up periods


@pytest.mark.parametrize(
    "at, merchant, card, expected",
    [
        ("2025-07-31T23:59:59", "tennoji_mio", "standard", 20),  # the day before: 4x
        ("2025-08-01T00:00:00", "tennoji_mio", "standard", 40),  # first day: 8x, "40ポイント"
        ("2025-08-10T23:59:59", "tennoji_mio", "standard", 40),  # last day: 8x
        ("2025-08-11T00:00:00", "tennoji_mio", "standard", 20),  # the day after: 4x
        ("2025-08-05T12:00:00", "lucua_osaka", "osc", 60),  # 6x -> 12x: 5 + 55
        ("2025-08-05T12:00:00", "lucua_osaka", "standard", 40),  # 4x -> 8x
        ("2025-08-05T12:00:00", "lucua_osaka_food", "osc", 40),  # food 4x -> 8x
        ("2025-08-05T12:00:00", "kitte_osaka", "osc", 30),  # another facility: unchanged
        ("2025-08-05T12:00:00", "other", "osc", 5),  # the base is unchanged
    ],
)
def test_point_up_period_doubles_the_multiplier_at_its_facility(world, point_up_rules, at, merchant, card,
                                                                 expected):
    assert one_cycle(world, [buy("W1", 1000, at, merchant, card)], rules=point_up_rules) == expected


def test_point_up_and_normal_purchases_at_one_facility_are_two_tiers(world, point_up_rules):
    # 1000 at Tennoji MIO on 07-31 (4x) and 1000 on 08-01 (8x): base 10 + 15 + 35 = 60.
    events = [buy("W1", 1000, "2025-07-31T12:00:00", "tennoji_mio"),
              buy("W1", 1000, "2025-08-01T12:00:00", "tennoji_mio")]
    assert one_cycle(world, events, rules=point_up_rules) == 60


# ---------------------------------------------------------------- returns and cash-back


def test_return_is_negative_in_its_tier(world):
    # Tennoji MIO 5000 - 2000 returned = 3000 at 4x: base 15 + bonus 45 = 60.
    events = [buy("W1", 5000, "2025-07-20T10:00:00", "tennoji_mio"),
              buy("W1", -2000, "2025-07-25T10:00:00", "tennoji_mio")]
    assert one_cycle(world, events) == 60


def test_cashback_lowers_the_base_only(world):
    # Tennoji MIO 5000, cash-back 1500: total 3500 -> base 15; tier 5000 -> 75. 90 in all.
    events = [buy("W1", 5000, "2025-07-20T10:00:00", "tennoji_mio"),
              cashback("W1", -1500, "2025-07-25T10:00:00")]
    assert one_cycle(world, events) == 90


def test_return_from_an_earlier_cycle_lowers_its_tier_in_this_cycle(world):
    world.add(
        buy("W1", 5000, "2025-06-20T10:00:00", "tennoji_mio"),  # cycle 2025-07: 25 + 75 = 100
        buy("W1", 10000, "2025-07-20T10:00:00"),  # cycle 2025-08: other 10000 ...
        buy("W1", -1500, "2025-07-21T10:00:00", "tennoji_mio"),  # ... and a return of 1500
    )
    world.run("2025-08-26")
    # Cycle 2025-08: total 8500 -> base 40; 4x tier -1500 -> -1000 (rules' choice: toward
    # zero) -> -15. 25 in all. The earlier cycle keeps its 100.
    assert cycle_awards(world, "W1") == {"2025-07": ("2025-07-26", 100), "2025-08": ("2025-08-26", 25)}


def test_a_cycle_of_returns_only_pays_nothing_and_takes_nothing(world):
    world.add(
        buy("W1", 5000, "2025-06-20T10:00:00", "tennoji_mio"),  # cycle 2025-07: 100
        buy("W1", -5000, "2025-07-20T10:00:00", "tennoji_mio"),  # cycle 2025-08: -25 - 75 -> 0
    )
    world.run("2025-08-26")
    assert cycle_awards(world, "W1") == {"2025-07": ("2025-07-26", 100)}
    assert world.balance("W1")["basic"] == 100


def test_cancelled_payment_drops_out(world):
    p = buy("W1", 5000, "2025-07-20T10:00:00", "tennoji_mio")
    events = [p, buy("W1", 1000, "2025-07-21T10:00:00"),
              {"id": "W1-c", "type": "cancel", "member": "W1", "at": "2025-07-22T10:00:00", "ref": p["id"]}]
    assert one_cycle(world, events) == 5


def test_cancel_after_the_grant_is_reversed(world):
    p = buy("W1", 10000, "2025-07-20T10:00:00", "tennoji_mio")  # 50 + 150 = 200, paid 2025-08-26
    world.add(p, buy("W1", 2000, "2025-07-21T10:00:00"))  # + 10
    world.run("2025-08-26")
    assert cycle_awards(world, "W1") == {"2025-08": ("2025-08-26", 210)}
    world.add({"id": "W1-c", "type": "cancel", "member": "W1", "at": "2025-09-01T10:00:00", "ref": p["id"]})
    world.run("2025-09-30")
    # Recomputed without the cancelled purchase: 2000 -> 10; 200 taken back on 2025-09-01.
    assert cycle_awards(world, "W1") == {"2025-08": ("2025-08-26", 10)}
    assert world.balance("W1", "2025-08-31")["basic"] == 210
    assert world.balance("W1", "2025-09-01")["basic"] == 10


# ---------------------------------------------------------------- snapshot


def test_snapshot_small_scenario(world, point_up_rules, snapshot):
    """Two cardholders over three cycles (2025-07 .. 2025-09) with a point-up period, a return,
    a cash-back and a redemption."""
    world.add(
        buy("OSC1", 7420, "2025-06-20T09:30:00", "mobile_icoca", "osc"),
        buy("OSC1", 4953, "2025-07-01T18:00:00", "lucua_osaka", "osc"),
        buy("OSC1", 2500, "2025-08-03T13:00:00", "lucua_osaka", "osc"),  # point-up: 12x
        buy("OSC1", -1000, "2025-08-20T13:00:00", "lucua_osaka", "osc"),  # a return next cycle
        buy("OSC1", 3200, "2025-09-01T08:00:00", "other", "osc"),
        buy("STD1", 12000, "2025-07-10T19:00:00", "tennoji_mio"),
        cashback("STD1", -3000, "2025-07-12T12:00:00"),
        buy("STD1", 20000, "2025-08-15T23:59:59", "wesmo_charge"),
        {"id": "STD1-redeem", "type": "redemption", "member": "STD1", "at": "2025-09-01T10:00:00",
         "points": 100, "use": "fare"},
    )
    world.run("2025-09-30", rules=point_up_rules)
    # By hand: OSC1 2025-07: 7420 + 4953 = 12373 -> 60; 3x 7000 -> 70; 6x 4000 -> 100: 230.
    #          OSC1 2025-08: 2500 -> 10; 12x 2000 -> 110: 120.
    #          OSC1 2025-09: 3200 - 1000 = 2200 -> 10; 6x -1000 -> -25: 0 -> nothing paid.
    #          STD1 2025-07: 12000 - 3000 = 9000 -> 45; 4x 12000 -> 180: 225.
    #          STD1 2025-08: 20000 -> 100; 3x 20000 -> 200: 300.
    assert cycle_awards(world, "OSC1") == {"2025-07": ("2025-07-26", 230), "2025-08": ("2025-08-26", 120)}
    assert cycle_awards(world, "STD1") == {"2025-07": ("2025-07-26", 225), "2025-08": ("2025-08-26", 300)}
    assert world.balance("STD1")["basic"] == 425
    out = []
    for e in world.journal.entries():
        if e.campaign != C and not e.key.startswith(("redeem:", "expire:")):
            continue
        out.append({"effective": e.effective.isoformat(), "key": e.key,
                    "postings": [(p.account, p.kind, p.amount, p.expires.isoformat() if p.expires else None)
                                 for p in e.postings]})
    assert out == snapshot
