"""Acceptance tests of seed 004 (004_e7c7afb1334a8c6a.txt): campaign `mynapoint-icoca`.

ICOCAにおけるマイナポイント事業（第２弾）, driven through the real rules/ folder, the real
event import and the real engine. Expected numbers are written by hand from the seed:

- period 2022-01-01 .. 2023-05-31; charges on or after the application day count;
  point charges and petrol-station charges do not;
- cumulative charge reaches 20,000 yen: 5,000 charge-only points on the 18th of the
  following month; never reached: 25% of the total, fraction dropped, after the period
  (no date given: 2023-06-30, the DESIGN.md default);
- health-insurance registration: 7,500 on the 18th of the following month; public-funds
  account registration: 7,500 likewise;
- charge-only points with no stated expiry: end of the 12th month after payment;
- the kind is shown as "ICOCAポイント" up to 2023-03-06 and as "WESTERポイント（チャージ専用）"
  from 2023-03-07, one balance throughout.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import journal_projection

from points.ledger import kinds

CAMPAIGN = "mynapoint-icoca"
ZERO = {"basic": 0, "limited": 0, "charge_only": 0}


def apply(id_, member, at):
    return {"id": id_, "type": "mynapoint_application", "member": member, "at": at}


def charge(id_, member, amount, at, source="cash"):
    return {"id": id_, "type": "icoca_charge", "member": member, "at": at, "amount": amount, "source": source}


def health(id_, member, at):
    return {"id": id_, "type": "health_insurance_registration", "member": member, "at": at}


def public_account(id_, member, at):
    return {"id": id_, "type": "public_account_registration", "member": member, "at": at}


def award_entries(world, member):
    return [e for e in world.journal.entries(campaign=CAMPAIGN)
            if isinstance(e.memo, dict) and e.memo.get("member") == member and e.postings]


def lot_view(world, member):
    return [(lot.kind, lot.amount, lot.remaining, lot.expires.isoformat(),
             world.journal.entry(lot.entry).effective.isoformat())
            for lot in world.journal.lots(member)]


# ------------------------------------------------------------------ reaching 20,000 yen


def test_reaching_20000_pays_5000_on_the_18th_of_the_next_month(world):
    world.add(
        apply("a1", "W1", "2022-03-01T10:00:00"),
        charge("c1", "W1", 10000, "2022-03-05T08:00:00"),
        charge("c2", "W1", 10000, "2022-03-31T22:00:00"),  # reached on 2022-03-31
    )
    world.run("2022-04-17")
    assert world.balance("W1") == ZERO
    world.run("2022-04-18")
    assert world.awards(CAMPAIGN, "W1") == [("2022-04-18", "award", "W1", 5000)]
    # no expiry in the seed: end of the 12th month after payment
    assert lot_view(world, "W1") == [("charge_only", 5000, 5000, "2023-04-30", "2022-04-18")]
    [e] = award_entries(world, "W1")
    assert {p.account: p.amount for p in e.postings} == {"system:funding": -5000, "member:W1:charge_only": 5000}


def test_reached_on_the_first_of_a_month_pays_the_month_after(world):
    world.add(
        apply("a1", "W1", "2022-03-01T10:00:00"),
        charge("c1", "W1", 10000, "2022-03-31T08:00:00"),
        charge("c2", "W1", 10000, "2022-04-01T00:05:00"),  # reached on 2022-04-01
    )
    world.run("2022-06-01")
    assert world.awards(CAMPAIGN, "W1") == [("2022-05-18", "award", "W1", 5000)]


def test_reached_in_december_pays_in_january(world):
    world.add(
        apply("a1", "W1", "2022-12-01T10:00:00"),
        charge("c1", "W1", 20000, "2022-12-31T23:59:59"),
    )
    world.run("2023-02-01")
    assert world.awards(CAMPAIGN, "W1") == [("2023-01-18", "award", "W1", 5000)]


@pytest.mark.parametrize("amounts, awards", [
    ([20000], [("2022-06-18", "award", "W1", 5000)]),                  # exactly 20,000
    ([19999], [("2023-06-30", "award", "W1", 4999)]),                  # one yen under: 25%
    ([15000, 4999, 1], [("2022-06-18", "award", "W1", 5000)]),
    ([60000, 40000], [("2022-06-18", "award", "W1", 5000)]),           # 25% but at most 5,000
])
def test_threshold_20000_inclusive(world, amounts, awards):
    world.add(apply("a1", "W1", "2022-05-01T10:00:00"),
              *[charge(f"c{i}", "W1", a, f"2022-05-{10 + i:02d}T10:00:00") for i, a in enumerate(amounts)])
    world.run("2023-07-31")
    assert world.awards(CAMPAIGN, "W1") == awards


# ------------------------------------------------------------------ which charges count


@pytest.mark.parametrize("at, counts", [
    ("2022-02-28T23:59:59", False),  # the day before the application day
    ("2022-03-01T08:00:00", True),   # the application day, before the application's hour
    ("2022-03-01T12:00:00", True),
])
def test_charges_from_the_application_day(world, at, counts):
    world.add(
        apply("a1", "W1", "2022-03-01T10:00:00"),
        charge("c1", "W1", 8000, at),
        charge("c2", "W1", 12000, "2022-03-10T10:00:00"),
    )
    world.run("2023-07-31")
    expected = [("2022-04-18", "award", "W1", 5000)] if counts else [("2023-06-30", "award", "W1", 3000)]
    assert world.awards(CAMPAIGN, "W1") == expected


@pytest.mark.parametrize("source, counts", [
    ("cash", True), ("atm", True), ("credit_card", True), ("jwest_card", True), ("bank", True),
    ("point_charge", False),
    ("gas_station", False),
])
def test_point_and_petrol_station_charges_excluded(world, source, counts):
    world.add(
        apply("a1", "W1", "2022-03-01T10:00:00"),
        charge("c1", "W1", 10000, "2022-03-02T10:00:00", source="cash"),
        charge("c2", "W1", 10000, "2022-03-03T10:00:00", source=source),
    )
    world.run("2023-07-31")
    expected = [("2022-04-18", "award", "W1", 5000)] if counts else [("2023-06-30", "award", "W1", 2500)]
    assert world.awards(CAMPAIGN, "W1") == expected


def test_without_application_nothing(world):
    world.add(charge("c1", "W1", 30000, "2022-03-03T10:00:00"),
              health("h1", "W1", "2022-03-03T11:00:00"),
              public_account("p1", "W1", "2022-03-04T11:00:00"))
    world.run("2023-07-31")
    assert world.awards(CAMPAIGN, "W1") == []
    assert world.balance("W1") == ZERO


def test_phase_1_application_is_not_part_of_this_campaign(world):
    # An application before 2022-01-01 belongs to phase 1 (not in this seed): the rules
    # count applications made in the phase-2 period only.
    world.add(apply("a0", "W1", "2021-12-31T23:59:59"),
              charge("c1", "W1", 20000, "2022-01-05T10:00:00"),
              health("h1", "W1", "2022-01-05T11:00:00"))
    world.run("2023-07-31")
    assert world.awards(CAMPAIGN, "W1") == []


@pytest.mark.parametrize("at, counts", [
    ("2023-05-31T23:59:59", True),   # last day of the period
    ("2023-06-01T00:00:00", False),  # the day after
])
def test_charges_up_to_the_last_day_of_the_period(world, at, counts):
    world.add(
        apply("a1", "W1", "2023-05-01T10:00:00"),
        charge("c1", "W1", 12000, "2023-05-10T10:00:00"),
        charge("c2", "W1", 8000, at),
    )
    world.run("2023-07-31")
    expected = [("2023-06-18", "award", "W1", 5000)] if counts else [("2023-06-30", "award", "W1", 3000)]
    assert world.awards(CAMPAIGN, "W1") == expected


def test_charges_before_the_period_do_not_count(world):
    world.add(
        apply("a1", "W1", "2022-01-01T00:00:00"),
        charge("c0", "W1", 10000, "2021-12-31T23:59:59"),
        charge("c1", "W1", 10000, "2022-01-01T00:00:00"),
    )
    world.run("2023-07-31")
    assert world.awards(CAMPAIGN, "W1") == [("2023-06-30", "award", "W1", 2500)]


# ------------------------------------------------------------------ 25% after the period


@pytest.mark.parametrize("total, points", [
    (10000, 2500),
    (10001, 2500),   # 2,500.25 -> 2,500
    (10003, 2500),   # 2,500.75 -> 2,500: dropped, not rounded
    (4, 1),
    (3, 0),          # 0.75 -> 0: nothing to pay
])
def test_partial_is_25_percent_fraction_dropped_after_the_period(world, total, points):
    world.add(apply("a1", "W1", "2022-08-01T10:00:00"), charge("c1", "W1", total, "2022-08-02T10:00:00"))
    world.run("2023-06-29")
    assert world.awards(CAMPAIGN, "W1") == []
    world.run("2023-07-31")
    assert world.awards(CAMPAIGN, "W1") == ([("2023-06-30", "award", "W1", points)] if points else [])
    if points:
        assert lot_view(world, "W1") == [("charge_only", points, points, "2024-06-30", "2023-06-30")]


# ------------------------------------------------------------------ registrations


@pytest.mark.parametrize("at, paid_on", [
    ("2022-01-01T00:00:00", "2022-02-18"),   # first day of the period
    ("2022-06-30T23:00:00", "2022-07-18"),
    ("2022-12-20T10:00:00", "2023-01-18"),
    ("2023-05-31T23:59:59", "2023-06-18"),   # last day of the period
    ("2023-06-01T00:00:00", None),           # the day after
    ("2021-12-31T23:59:59", None),           # the day before
])
@pytest.mark.parametrize("register", [health, public_account])
def test_registration_pays_7500_on_the_18th_of_the_next_month(world, register, at, paid_on):
    world.add(apply("a1", "W1", "2022-01-01T00:00:00"), register("r1", "W1", at))
    world.run("2023-12-31")
    if paid_on is None:
        assert world.awards(CAMPAIGN, "W1") == []
    else:
        assert world.awards(CAMPAIGN, "W1") == [(paid_on, "award", "W1", 7500)]


@pytest.mark.parametrize("applied, paid_on", [
    ("2022-03-20T10:00:00", "2022-04-18"),  # applied later in the registration's month
    ("2022-05-01T10:00:00", "2022-06-18"),  # applied after the 18th: the month after applying
])
@pytest.mark.parametrize("register", [health, public_account])
def test_registration_before_the_application(world, register, applied, paid_on):
    # The seed is silent; the rules pay on the 18th of the month after the later of
    # the registration and the Mynapoint application.
    world.add(register("r1", "W1", "2022-03-01T10:00:00"), apply("a1", "W1", applied))
    world.run("2022-12-31")
    assert world.awards(CAMPAIGN, "W1") == [(paid_on, "award", "W1", 7500)]
    assert lot_view(world, "W1")[0][3:] == (
        {"2022-04-18": "2023-04-30", "2022-06-18": "2023-06-30"}[paid_on], paid_on)


def test_registrations_and_charges_add_up_to_20000(world):
    world.add(
        apply("a1", "W1", "2022-06-25T10:00:00"),
        health("h1", "W1", "2022-06-30T10:00:00"),
        public_account("p1", "W1", "2022-07-01T10:00:00"),
        public_account("p2", "W1", "2022-07-05T10:00:00"),  # registering twice pays once
        charge("c1", "W1", 25000, "2022-07-02T10:00:00"),
    )
    world.run("2023-12-31")
    assert sorted(world.awards(CAMPAIGN, "W1")) == [
        ("2022-07-18", "award", "W1", 7500),
        ("2022-08-18", "award", "W1", 5000),
        ("2022-08-18", "award", "W1", 7500),
    ]
    assert world.paid(CAMPAIGN, "W1") == 20000
    assert world.balance("W1", "2022-08-18") == {"basic": 0, "limited": 0, "charge_only": 20000}


# ------------------------------------------------------------------ the kind and its rename


def test_kind_is_called_icoca_point_until_2023_03_06():
    assert kinds.display_name("charge_only", dt.date(2022, 4, 18)) == "ICOCAポイント"
    assert kinds.display_name("charge_only", dt.date(2023, 3, 6)) == "ICOCAポイント"
    assert kinds.display_name("charge_only", dt.date(2023, 3, 7)) == "WESTERポイント（チャージ専用）"
    assert kinds.display_name("charge_only", dt.date(2023, 6, 18)) == "WESTERポイント（チャージ専用）"


def test_rules_file_declares_the_rename():
    from tests.support import real_rules

    [decl] = [k for k in real_rules().kinds if k.name == "charge_only"]
    assert decl.display == "WESTERポイント（チャージ専用）"
    assert [(a.name, a.until) for a in decl.aliases] == [("ICOCAポイント", dt.date(2023, 3, 6))]


def test_one_balance_across_the_rename(world):
    world.add(
        apply("a1", "W1", "2023-01-10T10:00:00"),
        health("h1", "W1", "2023-01-20T10:00:00"),            # paid 2023-02-18, as "ICOCAポイント"
        public_account("p1", "W1", "2023-03-10T10:00:00"),    # paid 2023-04-18, as the new name
        {"id": "r1", "type": "redemption", "member": "W1", "at": "2023-05-01T10:00:00",
         "points": 9000, "use": "charge"},
    )
    world.run("2023-05-31")
    assert world.balance("W1", "2023-03-06") == {"basic": 0, "limited": 0, "charge_only": 7500}
    assert world.balance("W1", "2023-04-18") == {"basic": 0, "limited": 0, "charge_only": 15000}
    # one charge redemption spends the old-name lot first (earlier expiry), then the new one
    assert world.balance("W1") == {"basic": 0, "limited": 0, "charge_only": 6000}
    assert lot_view(world, "W1") == [("charge_only", 7500, 6000, "2024-04-30", "2023-04-18")]


def test_charge_only_points_do_not_pay_fares(world):
    world.add(
        apply("a1", "W1", "2022-05-01T10:00:00"),
        health("h1", "W1", "2022-05-20T10:00:00"),
        {"id": "r1", "type": "redemption", "member": "W1", "at": "2022-07-01T10:00:00",
         "points": 1000, "use": "fare"},
    )
    report = world.run("2022-07-31")
    assert [r[0] for r in report.refused_redemptions] == ["r1"]
    assert world.balance("W1")["charge_only"] == 7500


# ------------------------------------------------------------------ expiry, reversal, idempotence


def test_points_expire_at_the_end_of_the_12th_month_after_payment(world):
    world.add(apply("a1", "W1", "2022-03-01T10:00:00"), charge("c1", "W1", 20000, "2022-03-05T10:00:00"))
    world.run("2023-04-29")
    assert world.balance("W1")["charge_only"] == 5000
    world.run("2023-05-01")
    assert world.balance("W1")["charge_only"] == 0
    assert world.balance("W1", "2023-04-29")["charge_only"] == 5000
    expiries = [e for e in world.journal.entries(member="W1") if e.key.startswith("expire:")]
    assert [(e.effective.isoformat(), sorted((p.account, p.amount) for p in e.postings)) for e in expiries] == [
        ("2023-04-30", [("member:W1:charge_only", -5000), ("system:expired", 5000)])]
    assert world.journal.account_balance("system:expired", "charge_only") == 5000


REFUND_EVENTS = [
    apply("a1", "W1", "2022-03-01T10:00:00"),
    charge("c1", "W1", 15000, "2022-03-05T10:00:00"),
    charge("c2", "W1", 5000, "2022-03-06T10:00:00"),
    {"id": "u1", "type": "refund", "member": "W1", "at": "2022-05-10T10:00:00", "ref": "c2"},
]
# Reached 20,000 on 2022-03-06 -> 5,000 due on 2022-04-18 (the refund is not known then).
# The refund on 2022-05-10 leaves 15,000, never 20,000: the 5,000 is reversed on the
# refund day, linked to the grant, and 25% of 15,000 = 3,750 is paid after the period.
REFUND_AWARDS = [
    ("2022-04-18", "award", "W1", 5000),
    ("2022-05-10", "reverse", "W1", -5000),
    ("2023-06-30", "award", "W1", 3750),
]


def test_refunded_charge_before_payment_drops_out(world):
    world.add(
        apply("a1", "W1", "2022-03-01T10:00:00"),
        charge("c1", "W1", 15000, "2022-03-05T10:00:00"),
        charge("c2", "W1", 5000, "2022-03-06T10:00:00"),
        {"id": "u1", "type": "refund", "member": "W1", "at": "2022-04-17T10:00:00", "ref": "c2"},
    )
    world.run("2023-07-31")
    assert world.awards(CAMPAIGN, "W1") == [("2023-06-30", "award", "W1", 3750)]


def _check_refund_after_payment(world):
    assert world.awards(CAMPAIGN, "W1") == REFUND_AWARDS
    entries = award_entries(world, "W1")
    assert entries[1].reverses == entries[0].seq
    assert world.balance("W1", "2022-05-09")["charge_only"] == 5000
    assert world.balance("W1")["charge_only"] == 3750


def test_refunded_charge_after_payment_is_reversed_run_at_once(world):
    world.add(*REFUND_EVENTS)
    world.run("2023-07-31")
    _check_refund_after_payment(world)


def test_refunded_charge_after_payment_is_reversed_run_day_by_day(world):
    world.add(*REFUND_EVENTS)
    world.run("2022-04-18")
    assert world.awards(CAMPAIGN, "W1") == REFUND_AWARDS[:1]
    world.run("2023-07-31")
    _check_refund_after_payment(world)


def test_rerunning_the_same_date_is_a_no_op(world):
    world.add(
        apply("a1", "W1", "2022-03-01T10:00:00"),
        charge("c1", "W1", 20000, "2022-03-05T10:00:00"),
        health("h1", "W1", "2022-03-20T10:00:00"),
        apply("a2", "W2", "2022-03-01T10:00:00"),
        charge("c2", "W2", 9999, "2022-03-05T10:00:00"),
    )
    world.run("2023-07-31")
    before = [(e.seq, e.hash) for e in world.journal.entries()]
    report = world.run("2023-07-31")
    assert report.entries == 0
    assert [(e.seq, e.hash) for e in world.journal.entries()] == before


def test_day_by_day_equals_at_once(world, tmp_path):
    from tests.support import new_world

    events = [
        apply("a1", "W1", "2022-03-01T10:00:00"),
        charge("c1", "W1", 12000, "2022-03-05T10:00:00"),
        charge("c2", "W1", 9000, "2022-04-02T10:00:00"),
        public_account("p1", "W1", "2022-04-02T11:00:00"),
    ]
    world.add(*events)
    for until in ("2022-03-31", "2022-04-18", "2022-05-17", "2022-05-18", "2023-07-31"):
        world.run(until)
    other = new_world(tmp_path / "other")
    other.add(*events)
    other.run("2023-07-31")
    assert world.awards(CAMPAIGN, "W1") == other.awards(CAMPAIGN, "W1") == [
        ("2022-05-18", "award", "W1", 5000), ("2022-05-18", "award", "W1", 7500)]


# ------------------------------------------------------------------ snapshot



def test_snapshot_small_scenario(tmp_path, snapshot):
    from tests.support import new_world

    world = new_world(tmp_path)
    world.add(
        # Hayashi: applies in February 2022, charges 5,000 a month, a petrol-station change
        # charge that does not count; reaches 20,000 in May; registers health insurance in March.
        apply("h0", "hayashi", "2022-02-01T09:00:00"),
        charge("h1", "hayashi", 5000, "2022-02-01T08:00:00", source="jwest_card"),
        charge("h2", "hayashi", 5000, "2022-03-01T08:00:00", source="jwest_card"),
        charge("h3", "hayashi", 3000, "2022-03-15T18:00:00", source="gas_station"),
        charge("h4", "hayashi", 5000, "2022-04-01T08:00:00", source="jwest_card"),
        charge("h5", "hayashi", 5000, "2022-05-01T08:00:00", source="jwest_card"),
        health("h6", "hayashi", "2022-03-10T20:00:00"),
        # Mori: applies in January 2023, charges 13,002 yen in all (one point charge that
        # does not count), registers a public-funds account after the rename.
        apply("m0", "mori", "2023-01-05T12:00:00"),
        charge("m1", "mori", 10000, "2023-01-06T12:00:00", source="atm"),
        charge("m2", "mori", 3002, "2023-04-06T12:00:00", source="cash"),
        charge("m3", "mori", 2000, "2023-04-07T12:00:00", source="point_charge"),
        public_account("m4", "mori", "2023-03-07T09:00:00"),
    )
    world.run("2024-07-01")
    assert world.paid(CAMPAIGN, "hayashi") == 12500
    assert world.paid(CAMPAIGN, "mori") == 7500 + 3250  # floor(13,002 * 25%) = 3,250
    assert journal_projection(world, CAMPAIGN, {"hayashi", "mori"}) == snapshot
