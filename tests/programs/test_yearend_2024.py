"""Acceptance tests of seed 001 (001_0edcb8a1dac3c31b.txt): campaign `yearend-2024`.

年末年始!1億ポイントどどんとバックキャンペーン (2024/25), driven through the real
rules/ folder, the real event import and the real engine. Expected numbers are
written by hand from the seed text:

- entry required, entry period 2024-12-10 .. 2025-01-13; entering after booking or
  riding still counts (retroactive);
- riding period 2024-12-26 .. 2025-01-06; bookings through e5489 or the EX service
  that include some JR West section;
- excluded: e5489 not paid with the registered credit card (station, convenience
  store, bank), station / travel-agent purchases, cancellations, refunds, journey
  breaks (also after payment), e5489 changed by phone, railway-point products;
- total >= 5,000 yen qualifies; award = total, at most 20,000; budget 100,000,000;
- paid 2025-02-15 (mid-February), expires 2026-03-31; withdrawn members get nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import journal_projection

CAMPAIGN = "yearend-2024"
BUDGET = "campaign:yearend-2024:budget"
PAY = "2025-02-15"
PAY_DATE = dt.date(2025, 2, 15)
EXPIRES = dt.date(2026, 3, 31)


def booking(id_, member, amount, ride, *, service="e5489", segments=("sanyo",),
            at="2024-12-15T10:00:00", **fields):
    event = {"id": id_, "type": "ex_booking", "member": member, "at": at, "amount": amount,
             "service": service, "ride_date": ride, "segments": list(segments)}
    event.update(fields)
    return event


def entry(id_, member, at, campaign=CAMPAIGN):
    return {"id": id_, "type": "campaign_entry", "member": member, "at": at, "campaign": campaign}


def undo(id_, type_, member, ref, at):
    return {"id": id_, "type": type_, "member": member, "at": at, "ref": ref}


def entered_with(world, *events, member="W1", entry_at="2024-12-20T12:00:00"):
    world.add(entry(f"entry-{member}", member, entry_at), *events)


# ------------------------------------------------------------------ entry


@pytest.mark.parametrize("at, counts", [
    ("2024-12-09T23:59:59", False),  # the day before the entry period
    ("2024-12-10T09:00:00", True),   # first day (the rules accept the whole day)
    ("2025-01-13T23:59:59", True),   # last day
    ("2025-01-14T00:00:00", False),  # the day after
    ("2025-01-13T15:30:00Z", False),  # = 2025-01-14T00:30 in Tokyo
    ("2025-01-13T14:59:59Z", True),   # = 2025-01-13T23:59:59 in Tokyo
])
def test_entry_within_the_entry_period(world, at, counts):
    world.add(booking("b1", "W1", 8000, "2024-12-28"), entry("e1", "W1", at))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == (8000 if counts else 0)


def test_no_entry_no_points(world):
    world.add(booking("b1", "W1", 8000, "2024-12-28"))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 0
    assert world.balance("W1")["basic"] == 0


def test_entry_for_another_campaign_does_not_count(world):
    world.add(booking("b1", "W1", 8000, "2024-12-28"),
              entry("e1", "W1", "2024-12-20T10:00:00", campaign="wesmo-stamp-rally-2026"))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 0


def test_entry_is_retroactive_to_earlier_bookings_and_rides(world):
    world.add(
        booking("b1", "W1", 6000, "2024-12-26", at="2024-11-30T10:00:00"),
        booking("b2", "W1", 7000, "2025-01-06", at="2025-01-02T10:00:00"),
        entry("e1", "W1", "2025-01-13T20:00:00"),  # after both rides
    )
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 13000


def test_entering_twice_pays_once(world):
    world.add(booking("b1", "W1", 8000, "2024-12-28"),
              entry("e1", "W1", "2024-12-10T12:00:00"), entry("e2", "W1", "2025-01-10T12:00:00"))
    world.run(PAY)
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 8000)]


# ------------------------------------------------------------------ riding period


@pytest.mark.parametrize("ride, counts", [
    ("2024-12-25", False),
    ("2024-12-26", True),
    ("2025-01-06", True),
    ("2025-01-07", False),
])
def test_riding_period_is_inclusive(world, ride, counts):
    entered_with(world, booking("b1", "W1", 9000, ride))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == (9000 if counts else 0)


# ------------------------------------------------------------------ which bookings


@pytest.mark.parametrize("service", ["e5489", "ex"])
def test_e5489_and_ex_both_count(world, service):
    entered_with(world, booking("b1", "W1", 9000, "2024-12-30", service=service))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 9000


@pytest.mark.parametrize("segments, counts", [
    (["sanyo"], True),
    (["hokuriku"], True),
    (["jrwest_local"], True),             # a JR West limited express
    (["tokaido", "sanyo"], True),         # partly JR West
    (["kyushu", "jrwest_local"], True),
    (["tokaido"], False),                 # entirely JR Central
    (["kyushu"], False),                  # entirely JR Kyushu
    (["other"], False),
    (["tokaido", "kyushu", "other"], False),
])
def test_some_jr_west_section_required(world, segments, counts):
    entered_with(world, booking("b1", "W1", 9000, "2024-12-30", segments=segments))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == (9000 if counts else 0)


@pytest.mark.parametrize("service, payment, counts", [
    ("e5489", "credit_card", True),        # the registered card at booking time
    ("e5489", "convenience_store", False),
    ("e5489", "bank", False),
    ("e5489", "station", False),
    ("ex", "credit_card", True),
    ("ex", "station", False),              # bought at a station counter / travel agent
])
def test_payment_method(world, service, payment, counts):
    entered_with(world, booking("b1", "W1", 9000, "2024-12-30", service=service, payment=payment))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == (9000 if counts else 0)


@pytest.mark.parametrize("service, counts", [("e5489", False), ("ex", True)])
def test_e5489_changed_by_phone_excluded(world, service, counts):
    # the seed excludes e5489 bookings changed by phone; it says nothing about EX
    entered_with(world, booking("b1", "W1", 9000, "2024-12-30", service=service, phone_change=True))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == (9000 if counts else 0)


@pytest.mark.parametrize("service", ["e5489", "ex"])
def test_railway_point_products_excluded(world, service):
    entered_with(world,
                 booking("b1", "W1", 9000, "2024-12-30", service=service, railway_points=True),
                 booking("b2", "W1", 6000, "2024-12-31", service=service))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 6000


def test_all_products_count_including_ex_tabi_pack(world):
    # 「e5489」または「EXサービス」の全商品: unlike the 2025 campaign, packs count
    entered_with(world, booking("b1", "W1", 9000, "2024-12-30", service="ex", product="EX旅パック"))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 9000


@pytest.mark.parametrize("kind", ["cancel", "refund", "stopover"])
def test_undone_before_payment_drops_out(world, kind):
    entered_with(world,
                 booking("b1", "W1", 6000, "2024-12-27"),
                 booking("b2", "W1", 4000, "2024-12-28"),
                 undo("u1", kind, "W1", "b2", "2024-12-28T20:00:00"))
    world.run(PAY)
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 6000)]


# ------------------------------------------------------------------ threshold and cap


@pytest.mark.parametrize("amounts, paid", [
    ([5000], 5000),
    ([4999], 0),
    ([3000, 2000], 5000),
    ([3000, 1999], 0),
    ([19999], 19999),
    ([20000], 20000),
    ([20001], 20000),
    ([15000, 15000], 20000),
])
def test_threshold_5000_and_cap_20000(world, amounts, paid):
    entered_with(world, *[booking(f"b{i}", "W1", a, "2024-12-29") for i, a in enumerate(amounts)])
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == paid


def test_ticketless_does_not_raise_the_cap(world):
    entered_with(world, booking("b1", "W1", 40000, "2024-12-29", service="ex", ticketless=True))
    world.run(PAY)
    assert world.paid(CAMPAIGN, "W1") == 20000


# ------------------------------------------------------------------ payment, lots, budget


def test_paid_on_2025_02_15_expiring_2026_03_31_from_the_budget(world):
    world.add(
        entry("e1", "W1", "2024-12-10T12:00:00"), booking("b1", "W1", 14000, "2025-01-03"),
        entry("e2", "W2", "2025-01-05T12:00:00"), booking("b2", "W2", 33000, "2024-12-31", service="ex"),
    )
    world.run("2025-02-14")
    assert world.paid(CAMPAIGN, "W1") == 0
    world.run(PAY)
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 14000)]
    assert world.awards(CAMPAIGN, "W2") == [(PAY, "award", "W2", 20000)]
    lots = world.journal.lots("W1")
    assert [(lot.kind, lot.amount, lot.remaining, lot.expires) for lot in lots] == [
        ("basic", 14000, 14000, EXPIRES)]
    assert world.journal.entry(lots[0].entry).effective == PAY_DATE
    assert world.balance("W1", "2025-02-14")["basic"] == 0
    assert world.balance("W1", PAY)["basic"] == 14000
    assert world.journal.account_balance(BUDGET, "basic") == 100_000_000 - 34000
    for e in world.journal.entries(campaign=CAMPAIGN):
        if e.key.startswith("award:") and e.memo.get("member") == "W2":
            assert {p.account: p.amount for p in e.postings} == {BUDGET: -20000, "member:W2:basic": 20000}


def test_points_expire_at_the_end_of_march_2026(world):
    entered_with(world, booking("b1", "W1", 9000, "2024-12-29"))
    world.run("2026-03-30")
    assert world.balance("W1")["basic"] == 9000
    world.run("2026-04-01")
    assert world.balance("W1")["basic"] == 0
    assert world.balance("W1", "2026-03-30")["basic"] == 9000
    expiries = [e for e in world.journal.entries(member="W1") if e.key.startswith("expire:")]
    assert [(e.effective, sorted((p.account, p.amount) for p in e.postings)) for e in expiries] == [
        (EXPIRES, [("member:W1:basic", -9000), ("system:expired", 9000)])]
    assert world.journal.account_balance("system:expired", "basic") == 9000


@pytest.mark.parametrize("at, paid", [
    ("2025-01-20T10:00:00", 0),
    ("2025-02-15T10:00:00", 0),      # withdrawn at payment time
    ("2025-02-16T10:00:00", 9000),   # after payment: keeps it
])
def test_withdrawn_member_gets_nothing(world, at, paid):
    entered_with(world, booking("b1", "W1", 9000, "2024-12-29"),
                 {"id": "x1", "type": "member_withdrawn", "member": "W1", "at": at})
    world.run("2025-03-01")
    assert world.paid(CAMPAIGN, "W1") == paid
    assert world.balance("W1")["basic"] == paid


# ------------------------------------------------------------------ reversal after payment


@pytest.mark.parametrize("kind", ["cancel", "refund", "stopover"])
def test_undone_after_payment_reverses_only_the_difference(world, kind):
    entered_with(world,
                 booking("b1", "W1", 18000, "2024-12-27"),
                 booking("b2", "W1", 7000, "2024-12-28"),
                 undo("u1", kind, "W1", "b2", "2025-03-03T10:00:00"))
    world.run("2025-04-01")
    # paid min(25,000, 20,000) = 20,000; without b2: 18,000; reversed 2,000
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 20000),
                                             ("2025-03-03", "reverse", "W1", -2000)]
    entries = [e for e in world.journal.entries(campaign=CAMPAIGN)
               if isinstance(e.memo, dict) and e.memo.get("member") == "W1"]
    grant, rev = entries
    assert rev.reverses == grant.seq
    assert {p.account: p.amount for p in rev.postings} == {"member:W1:basic": -2000, BUDGET: 2000}
    assert world.balance("W1")["basic"] == 18000
    assert world.journal.account_balance(BUDGET, "basic") == 100_000_000 - 18000


def test_cancel_within_the_cap_surplus_reverses_nothing(world):
    entered_with(world,
                 booking("b1", "W1", 21000, "2024-12-27"),
                 booking("b2", "W1", 4000, "2024-12-28"),
                 undo("u1", "cancel", "W1", "b2", "2025-03-03T10:00:00"))
    world.run("2025-04-01")
    # 25,000 -> 21,000: the award stays at the 20,000 cap
    assert world.awards(CAMPAIGN, "W1") == [(PAY, "award", "W1", 20000)]


# ------------------------------------------------------------------ idempotence


def test_rerunning_the_same_date_is_a_no_op(world):
    entered_with(world,
                 booking("b1", "W1", 18000, "2024-12-27"),
                 booking("b2", "W1", 7000, "2024-12-28"),
                 undo("u1", "refund", "W1", "b2", "2025-03-03T10:00:00"))
    world.run("2026-04-01")
    before = [(e.seq, e.hash) for e in world.journal.entries()]
    report = world.run("2026-04-01")
    assert report.entries == 0
    assert [(e.seq, e.hash) for e in world.journal.entries()] == before


# ------------------------------------------------------------------ snapshot



def test_snapshot_small_season(tmp_path, snapshot):
    from tests.support import new_world

    world = new_world(tmp_path)
    world.add(
        # Yamada: entered early; Osaka-Kanazawa and back by e5489, then Shin-Osaka-Hakata by EX
        entry("y0", "yamada", "2024-12-11T08:00:00"),
        booking("y1", "yamada", 7790, "2024-12-28", segments=["jrwest_local", "hokuriku"]),
        booking("y2", "yamada", 7790, "2025-01-03", segments=["hokuriku", "jrwest_local"]),
        booking("y3", "yamada", 15600, "2025-01-05", service="ex", segments=["sanyo"]),
        # Nakamura: entered after riding; one booking paid at a convenience store
        booking("n1", "nakamura", 6500, "2024-12-27", segments=["sanyo"]),
        booking("n2", "nakamura", 9000, "2024-12-30", segments=["sanyo"], payment="convenience_store"),
        entry("n0", "nakamura", "2025-01-12T21:00:00"),
        # Kobayashi: entered, but the only eligible trip was broken after payment
        entry("k0", "kobayashi", "2024-12-20T08:00:00"),
        booking("k1", "kobayashi", 11000, "2024-12-29", segments=["tokaido", "sanyo"]),
        booking("k2", "kobayashi", 3000, "2024-12-29", segments=["tokaido"]),
        undo("k3", "stopover", "kobayashi", "k1", "2025-02-25T13:00:00"),
        # Watanabe: 12,000 but never entered
        booking("w1", "watanabe", 12000, "2024-12-30", segments=["sanyo"]),
    )
    world.run("2026-04-01")
    assert world.paid(CAMPAIGN, "yamada") == 20000
    assert world.paid(CAMPAIGN, "nakamura") == 6500
    assert world.paid(CAMPAIGN, "kobayashi") == 0
    assert world.paid(CAMPAIGN, "watanabe") == 0
    assert journal_projection(world, CAMPAIGN, {"yamada", "nakamura", "kobayashi", "watanabe"}) == snapshot
