"""Acceptance tests of seed 000 (000_c518e4f38ecdfe62.txt): campaign `yearend-2025`.

年末年始!総額1億ポイントどどんとバックキャンペーン (2025/26), driven through the real
rules/ folder, the real event import and the real engine. Every expected number is
written by hand from the seed text:

- riding period 2025-12-26 .. 2026-01-04, both days included; EX service only;
- the trip includes some of the Sanyo Shinkansen (Tokaido-only / Kyushu-only do not count);
- EX旅パック and station / travel-agent purchases excluded; cancelled, refunded and
  broken (途中下車) journeys excluded, also after payment (difference reversed);
- total >= 5,000 yen qualifies; award = total, capped at 30,000 with at least one
  ticketless ride, else 10,000; budget 100,000,000 basic points;
- paid 2026-02-05 (early February), expires 2027-03-31; withdrawn members get nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import journal_projection

CAMPAIGN = "yearend-2025"
BUDGET = "campaign:yearend-2025:budget"
PAY = "2026-02-05"
PAY_DATE = dt.date(2026, 2, 5)
EXPIRES = dt.date(2027, 3, 31)


def booking(id_, member, amount, ride, *, segments=("sanyo",), at="2025-12-01T10:00:00", **fields):
    event = {"id": id_, "type": "ex_booking", "member": member, "at": at, "amount": amount,
             "service": "ex", "ride_date": ride, "segments": list(segments)}
    event.update(fields)
    return event


def undo(id_, type_, member, ref, at):
    return {"id": id_, "type": type_, "member": member, "at": at, "ref": ref}


def withdrawn(id_, member, at):
    return {"id": id_, "type": "member_withdrawn", "member": member, "at": at}


def grants(world, member):
    return [e for e in world.journal.entries(campaign=CAMPAIGN)
            if isinstance(e.memo, dict) and e.memo.get("member") == member and e.key.startswith("award:")]


# ------------------------------------------------------------------ riding period


@pytest.mark.parametrize("ride, counts", [
    ("2025-12-25", False),  # the day before the riding period
    ("2025-12-26", True),   # first day
    ("2026-01-04", True),   # last day
    ("2026-01-05", False),  # the day after
])
def test_riding_period_is_inclusive(world, ride, counts):
    world.add(booking("b1", "W1", 8000, ride))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == (8000 if counts else 0)


def test_ride_date_decides_not_booking_date(world):
    # Booked in November for a ride in the period: counts. Booked inside the period
    # for a ride after it: does not.
    world.add(
        booking("early", "W1", 6000, "2025-12-30", at="2025-11-20T09:00:00"),
        booking("late", "W2", 6000, "2026-01-05", at="2025-12-28T09:00:00"),
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 6000
    assert world.paid(CAMPAIGN, "W2") == 0


# ------------------------------------------------------------------ which bookings


@pytest.mark.parametrize("segments, counts", [
    (["sanyo"], True),
    (["tokaido", "sanyo"], True),           # Tokyo - Hiroshima
    (["sanyo", "kyushu"], True),            # Okayama - Kagoshima-Chuo
    (["tokaido", "sanyo", "kyushu"], True),
    (["tokaido"], False),                   # completed on the Tokaido Shinkansen
    (["kyushu"], False),                    # completed on the Kyushu Shinkansen
    (["hokuriku"], False),
    (["jrwest_local"], False),
])
def test_sanyo_section_required(world, segments, counts):
    world.add(booking("b1", "W1", 9000, "2025-12-29", segments=segments))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == (9000 if counts else 0)


def test_ex_service_only(world):
    world.add(
        booking("ex", "W1", 7000, "2025-12-29"),
        booking("e5489", "W2", 7000, "2025-12-29", service="e5489"),
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 7000
    assert world.paid(CAMPAIGN, "W2") == 0


def test_ex_tabi_pack_excluded_other_products_count(world):
    world.add(
        booking("pack", "W1", 40000, "2025-12-29", product="EX旅パック", ticketless=True),
        booking("hayatoku", "W2", 7000, "2025-12-29", product="EX早特21"),
        # W3: a pack plus an ordinary booking: only the ordinary one is summed
        booking("pack3", "W3", 40000, "2025-12-29", product="EX旅パック"),
        booking("plain3", "W3", 6000, "2025-12-30"),
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 0
    assert world.paid(CAMPAIGN, "W2") == 7000
    assert world.paid(CAMPAIGN, "W3") == 6000


def test_station_or_travel_agent_purchase_excluded(world):
    world.add(
        booking("st", "W1", 20000, "2025-12-29", payment="station"),
        booking("cc", "W2", 20000, "2025-12-29", payment="credit_card"),
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 0
    assert world.paid(CAMPAIGN, "W2") == 10000


@pytest.mark.parametrize("kind", ["cancel", "refund", "stopover"])
def test_undone_before_payment_drops_out(world, kind):
    world.add(
        booking("b1", "W1", 6000, "2025-12-27"),
        booking("b2", "W1", 3000, "2025-12-28"),
        undo("u1", kind, "W1", "b2", "2025-12-28T18:00:00"),
    )
    world.run(PAY)
    # 9,000 - 3,000 undone = 6,000 >= 5,000
    assert world.paid(CAMPAIGN, "W1") == 6000
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 6000)]


def test_undone_before_payment_can_drop_below_threshold(world):
    world.add(
        booking("b1", "W1", 4000, "2025-12-27"),
        booking("b2", "W1", 2000, "2025-12-28"),
        undo("u1", "refund", "W1", "b2", "2026-01-10T10:00:00"),
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 0
    assert world.balance("W1")["basic"] == 0


# ------------------------------------------------------------------ threshold and caps


@pytest.mark.parametrize("amounts, paid", [
    ([5000], 5000),          # exactly the threshold
    ([4999], 0),             # one yen under
    ([2500, 2500], 5000),    # the total counts, not one booking
    ([2500, 2499], 0),
])
def test_threshold_5000_inclusive_on_the_total(world, amounts, paid):
    world.add(*[booking(f"b{i}", "W1", a, "2025-12-27") for i, a in enumerate(amounts)])
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == paid


@pytest.mark.parametrize("amount, ticketless, paid", [
    (10000, False, 10000),
    (10001, False, 10000),
    (29999, True, 29999),
    (30000, True, 30000),
    (30001, True, 30000),
    (80000, True, 30000),
    (80000, False, 10000),
])
def test_cap_30000_with_a_ticketless_ride_else_10000(world, amount, ticketless, paid):
    world.add(booking("b1", "W1", amount, "2025-12-27", ticketless=ticketless))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == paid


def test_one_ticketless_ride_raises_the_cap_for_the_whole_total(world):
    world.add(
        booking("b1", "W1", 20000, "2025-12-27"),
        booking("b2", "W1", 6000, "2026-01-03", ticketless=True),
        booking("b3", "W1", 9000, "2026-01-04"),
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 30000  # 35,000 total, ticketless once -> cap 30,000


def test_ticketless_ride_outside_the_period_does_not_raise_the_cap(world):
    world.add(
        booking("b1", "W1", 20000, "2025-12-27"),
        booking("b2", "W1", 6000, "2026-01-05", ticketless=True),  # the day after the period
        booking("b3", "W1", 6000, "2025-12-28", ticketless=True, segments=["tokaido"]),  # not eligible
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 10000


# ------------------------------------------------------------------ payment, lots, budget


def test_paid_on_2026_02_05_expiring_2027_03_31_from_the_budget(world):
    world.add(
        booking("b1", "W1", 12000, "2025-12-27", ticketless=True),
        booking("b2", "W2", 50000, "2025-12-27"),
    )
    world.run("2026-02-04")
    assert world.paid(CAMPAIGN, "W1") == 0
    assert world.balance("W1")["basic"] == 0
    world.run(PAY)
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 12000)]
    assert world.awards(CAMPAIGN, "W2") == [(PAY, "award", "W2", 10000)]
    lots = world.journal.lots("W1")
    assert [(lot.kind, lot.amount, lot.remaining, lot.expires) for lot in lots] == [
        ("basic", 12000, 12000, EXPIRES)]
    assert world.journal.entry(lots[0].entry).effective == PAY_DATE
    assert world.balance("W1", "2026-02-04")["basic"] == 0
    assert world.balance("W1", PAY) == {"basic": 12000, "limited": 0, "charge_only": 0}
    # the budget was funded with 100,000,000 and paid the 22,000 out
    assert world.journal.account_balance(BUDGET, "basic") == 100_000_000 - 22000
    for e in grants(world, "W1"):
        accounts = {p.account: p.amount for p in e.postings}
        assert accounts == {BUDGET: -12000, "member:W1:basic": 12000}


def test_points_expire_at_the_end_of_march_2027(world):
    world.add(booking("b1", "W1", 7000, "2025-12-27"))
    world.run("2027-03-30")
    assert world.balance("W1")["basic"] == 7000
    assert world.journal.account_balance("system:expired", "basic") == 0
    world.run("2027-03-31")
    # gone at the end of 2027-03-31 (the state "as of" that day is the end of the day)
    assert world.balance("W1")["basic"] == 0
    assert world.balance("W1", "2027-03-30")["basic"] == 7000
    assert world.journal.lots("W1") == []
    expiries = [e for e in world.journal.entries(member="W1") if e.key.startswith("expire:")]
    assert len(expiries) == 1
    assert expiries[0].effective == EXPIRES
    assert {(p.account, p.amount) for p in expiries[0].postings} == {
        ("member:W1:basic", -7000), ("system:expired", 7000)}
    assert world.journal.account_balance("system:expired", "basic") == 7000


def test_points_can_still_be_spent_on_2027_03_31(world):
    world.add(
        booking("b1", "W1", 7000, "2025-12-27"),
        {"id": "r1", "type": "redemption", "member": "W1", "at": "2027-03-31T23:00:00",
         "points": 3000, "use": "fare"},
    )
    world.run("2027-04-01")
    assert world.journal.account_balance("system:redeemed", "basic") == 3000
    assert world.journal.account_balance("system:expired", "basic") == 4000
    assert world.balance("W1")["basic"] == 0


def test_spent_points_do_not_expire(world):
    world.add(
        booking("b1", "W1", 7000, "2025-12-27"),
        {"id": "r1", "type": "redemption", "member": "W1", "at": "2026-06-01T12:00:00",
         "points": 2000, "use": "fare"},
    )
    world.run("2027-04-30")
    assert world.balance("W1")["basic"] == 0
    assert world.journal.account_balance("system:expired", "basic") == 5000
    assert world.journal.account_balance("system:redeemed", "basic") == 2000


def test_budget_of_100_million_is_never_exceeded(world):
    # 3,334 qualifying members of 30,000 each ask for 100,020,000: only 3,333 fit.
    n = 3334
    world.add(*[booking(f"b{i}", f"M{i:04d}", 30000, "2025-12-27", ticketless=True) for i in range(n)])
    report = world.run(PAY)
    paid = [e for e in world.journal.entries(campaign=CAMPAIGN) if e.key.startswith("award:")]
    assert len(paid) == 3333
    assert all(sum(p.amount for p in e.postings if p.account.startswith("member:")) == 30000 for e in paid)
    assert world.journal.account_balance(BUDGET, "basic") == 10000
    assert report.campaigns[CAMPAIGN].points == 99_990_000
    # the budget stays funded exactly once
    assert len([e for e in world.journal.entries(campaign=CAMPAIGN) if e.key.startswith("fund:")]) == 1


# ------------------------------------------------------------------ withdrawal


@pytest.mark.parametrize("at, paid", [
    ("2025-12-30T10:00:00", 0),      # withdrew during the period
    ("2026-02-05T09:00:00", 0),      # withdrew on the payment day: gone at payment time
    ("2026-02-06T09:00:00", 8000),   # withdrew after payment: keeps what was paid
])
def test_withdrawn_member_gets_nothing(world, at, paid):
    world.add(booking("b1", "W1", 8000, "2025-12-27"), withdrawn("x1", "W1", at))
    world.run("2026-03-01")
    assert world.paid(CAMPAIGN, "W1") == paid
    assert world.balance("W1")["basic"] == paid


# ------------------------------------------------------------------ reversal after payment


def _reversals(world, member):
    return [e for e in world.journal.entries(campaign=CAMPAIGN)
            if isinstance(e.memo, dict) and e.memo.get("member") == member and e.reverses is not None]


@pytest.mark.parametrize("kind", ["cancel", "refund", "stopover"])
def test_undone_after_payment_reverses_only_the_difference(world, kind):
    world.add(
        booking("b1", "W1", 20000, "2025-12-27", ticketless=True),
        booking("b2", "W1", 15000, "2025-12-28"),
        undo("u1", kind, "W1", "b2", "2026-03-10T10:00:00"),
    )
    world.run("2026-04-01")
    # paid min(35,000, 30,000) = 30,000; recomputed without b2: 20,000; reversed 10,000
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 30000),
                                             ("2026-03-10", "reverse", "W1", -10000)]
    [grant] = grants(world, "W1")
    [rev] = _reversals(world, "W1")
    assert rev.reverses == grant.seq
    assert {p.account: p.amount for p in rev.postings} == {"member:W1:basic": -10000, BUDGET: 10000}
    assert world.balance("W1", "2026-03-09")["basic"] == 30000
    assert world.balance("W1")["basic"] == 20000
    assert world.journal.account_balance(BUDGET, "basic") == 100_000_000 - 20000
    # nothing is deleted: the original grant is still in the journal, unchanged
    assert sum(p.amount for p in grant.postings if p.account == "member:W1:basic") == 30000


@pytest.mark.parametrize("at, awards", [
    # cancelled on the payment day (Tokyo time): dropped before payment, no reversal
    ("2026-02-05T09:00:00", [(PAY, "award", "W1", 6000)]),
    # 2026-02-04T16:00Z is 2026-02-05T01:00 in Tokyo: the same
    ("2026-02-04T16:00:00Z", [(PAY, "award", "W1", 6000)]),
    # the day after payment: paid in full, then the difference reversed
    ("2026-02-06T00:00:00", [(PAY, "award", "W1", 9000), ("2026-02-06", "reverse", "W1", -3000)]),
])
def test_cancel_around_the_payment_day(world, at, awards):
    world.add(
        booking("b1", "W1", 6000, "2025-12-27"),
        booking("b2", "W1", 3000, "2025-12-28"),
        undo("u1", "cancel", "W1", "b2", at),
    )
    world.run("2026-03-01")
    assert world.awards(CAMPAIGN, "W1") == awards
    assert world.balance("W1")["basic"] == 6000


def test_refund_of_the_only_ticketless_ride_lowers_the_cap(world):
    world.add(
        booking("b1", "W1", 20000, "2025-12-27"),
        booking("b2", "W1", 5000, "2025-12-28", ticketless=True),
        undo("u1", "refund", "W1", "b2", "2026-02-20T10:00:00"),
    )
    world.run("2026-03-01")
    # paid 25,000 (cap 30,000); without the ticketless ride: min(20,000, 10,000) = 10,000
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 25000),
                                             ("2026-02-20", "reverse", "W1", -15000)]
    assert world.balance("W1")["basic"] == 10000


def test_cancel_after_payment_below_threshold_reverses_everything(world):
    world.add(
        booking("b1", "W1", 4000, "2025-12-27"),
        booking("b2", "W1", 2000, "2025-12-28"),
        undo("u1", "cancel", "W1", "b2", "2026-02-06T10:00:00"),  # the day after payment
    )
    world.run("2026-03-01")
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 6000),
                                             ("2026-02-06", "reverse", "W1", -6000)]
    assert world.paid(CAMPAIGN, "W1") == 0
    assert world.balance("W1")["basic"] == 0
    assert world.journal.account_balance(BUDGET, "basic") == 100_000_000


def test_reversal_of_spent_points_becomes_a_receivable(world):
    world.add(
        booking("b1", "W1", 4000, "2025-12-27"),
        booking("b2", "W1", 4000, "2025-12-28"),
        {"id": "r1", "type": "redemption", "member": "W1", "at": "2026-02-10T12:00:00",
         "points": 7000, "use": "fare"},
        undo("u1", "refund", "W1", "b2", "2026-03-10T10:00:00"),
    )
    world.run("2026-04-01")
    # paid 8,000, spent 7,000, then recomputed to 0 (4,000 < 5,000): 1,000 left to take,
    # 7,000 owed back.
    assert world.paid(CAMPAIGN, "W1") == 0
    assert world.balance("W1")["basic"] == 0
    assert world.journal.receivable("W1")["basic"] == 7000
    assert world.journal.account_balance(BUDGET, "basic") == 100_000_000


def test_undo_of_an_ineligible_booking_changes_nothing(world):
    world.add(
        booking("b1", "W1", 9000, "2025-12-27"),
        booking("b2", "W1", 9000, "2025-12-27", segments=["tokaido"]),
        undo("u1", "cancel", "W1", "b2", "2026-03-10T10:00:00"),
    )
    world.run("2026-04-01")
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 9000)]


# ------------------------------------------------------------------ idempotence


def test_rerunning_the_same_date_is_a_no_op(world):
    world.add(
        booking("b1", "W1", 20000, "2025-12-27", ticketless=True),
        booking("b2", "W1", 15000, "2025-12-28"),
        undo("u1", "cancel", "W1", "b2", "2026-03-10T10:00:00"),
        booking("b3", "W2", 7000, "2025-12-29"),
    )
    world.run("2026-04-01")
    before = [(e.seq, e.hash) for e in world.journal.entries()]
    report = world.run("2026-04-01")
    assert report.entries == 0
    assert [(e.seq, e.hash) for e in world.journal.entries()] == before
    # an earlier date after a later one posts nothing either (at most a run marker)
    world.run(PAY)
    assert [(e.seq, e.hash) for e in world.journal.entries() if e.postings] == \
        [(seq, h) for (seq, h), e in zip(before, world.journal.entries()) if e.postings]


def test_running_day_by_day_equals_running_at_once(world, tmp_path):
    from tests.support import new_world

    events = [
        booking("b1", "W1", 20000, "2025-12-27", ticketless=True),
        booking("b2", "W1", 15000, "2025-12-28"),
        undo("u1", "stopover", "W1", "b2", "2026-03-10T10:00:00"),
    ]
    world.add(*events)
    for until in ("2026-01-01", "2026-02-04", PAY, "2026-03-09", "2026-03-10", "2026-04-01"):
        world.run(until)
    other = new_world(tmp_path / "other")
    other.add(*events)
    other.run("2026-04-01")
    assert world.awards(CAMPAIGN) == other.awards(CAMPAIGN)
    assert world.balance("W1") == other.balance("W1") == {"basic": 20000, "limited": 0, "charge_only": 0}


# ------------------------------------------------------------------ snapshot



def test_snapshot_small_season(tmp_path, snapshot):
    from tests.support import new_world

    world = new_world(tmp_path)
    world.add(
        # Sato: Tokyo-Hiroshima and back, one leg ticketless -> 30,000 cap, total 38,640
        booking("s1", "sato", 19320, "2025-12-27", segments=["tokaido", "sanyo"], ticketless=True),
        booking("s2", "sato", 19320, "2026-01-03", segments=["sanyo", "tokaido"]),
        # Tanaka: Shin-Osaka-Hakata 15,600 paper ticket; a Kyushu-only trip; cap 10,000
        booking("t1", "tanaka", 15600, "2025-12-30", segments=["sanyo"]),
        booking("t2", "tanaka", 5000, "2025-12-31", segments=["kyushu"]),
        # Suzuki: 4,800 only -> under the threshold
        booking("z1", "suzuki", 4800, "2025-12-29", segments=["sanyo"], ticketless=True),
        # Ito: 14,000 ticketless + 9,000, the 9,000 refunded after payment -> 23,000 -> 14,000
        booking("i1", "ito", 14000, "2026-01-02", segments=["sanyo"], ticketless=True),
        booking("i2", "ito", 9000, "2026-01-04", segments=["sanyo", "kyushu"]),
        undo("i3", "refund", "ito", "i2", "2026-02-20T11:00:00"),
        # Kato: qualifies but withdrew before payment
        booking("k1", "kato", 12000, "2025-12-28", segments=["sanyo"]),
        withdrawn("k2", "kato", "2026-01-20T08:00:00"),
    )
    world.run("2027-04-01")
    assert world.paid(CAMPAIGN, "sato") == 30000
    assert world.paid(CAMPAIGN, "tanaka") == 10000
    assert world.paid(CAMPAIGN, "suzuki") == 0
    assert world.paid(CAMPAIGN, "ito") == 14000
    assert world.paid(CAMPAIGN, "kato") == 0
    assert journal_projection(world, CAMPAIGN, {"sato", "tanaka", "suzuki", "ito", "kato"}) == snapshot
