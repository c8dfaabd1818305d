"""The engine on small inline programs: each language construct, run through the real workflow."""

import datetime as dt
import json
import textwrap

import pytest

from points.dsl.loader import load_rules
from points.engine.workflow import RunError, Runner
from points.ledger.verify import verify


def rules_dir(tmp_path, text, name="t.rules", tables=None):
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    for rel, content in (tables or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(content).lstrip(), encoding="utf-8")
    return load_rules(folder)


def pay(id, member, at, amount, **kw):
    return {"id": id, "type": "wesmo_payment", "member": member, "at": at, "amount": amount, **kw}


def charge(id, member, at, amount, **kw):
    return {"id": id, "type": "wesmo_charge", "member": member, "at": at, "amount": amount, **kw}


def run(world, rules, until):
    return Runner(world.conn, rules, dt.date.fromisoformat(until)).run()


BASIC = """
campaign t "test"
  window 2026-03-01 .. 2026-03-31
  stream pay = wesmo_payment where date in window undone by cancel
  value spend = sum(pay.amount)
  award a = {amount} limited
    when {when}
    on 2026-04-10
    expires 2026-06-30
"""


def test_threshold_inclusive_and_one_yen_under(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="100", when="spend >= 5_000"))
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 5000), pay("p2", "B", "2026-03-05T10:00:00", 4999))
    run(world, rules, "2026-04-30")
    assert world.balance("A")["limited"] == 100
    assert world.balance("B")["limited"] == 0


def test_window_days_are_inclusive_in_tokyo_time(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="spend", when="spend > 0"))
    world.add(
        pay("first", "A", "2026-03-01T00:00:00", 1),
        pay("last", "A", "2026-03-31T23:59:59", 10),
        pay("before", "A", "2026-02-28T23:59:59", 100),
        pay("after", "A", "2026-04-01T00:00:00", 1000),
        # 2026-02-28T15:00Z is 2026-03-01T00:00 in Tokyo: inside.
        pay("utc", "A", "2026-02-28T15:00:00Z", 10000),
    )
    run(world, rules, "2026-04-30")
    assert world.balance("A")["limited"] == 10011


def test_payment_date_and_expiry_of_the_lot(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="100", when="spend > 0"))
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 1))
    run(world, rules, "2026-04-09")
    assert world.balance("A")["limited"] == 0
    run(world, rules, "2026-04-10")
    (lot,) = world.journal.lots("A")
    assert (lot.amount, lot.expires) == (100, dt.date(2026, 6, 30))
    assert world.balance("A", "2026-04-09")["limited"] == 0
    run(world, rules, "2026-07-01")
    assert world.balance("A", "2026-06-29")["limited"] == 100
    assert world.balance("A")["limited"] == 0
    assert world.journal.account_balance("system:expired", "limited") == 100


def test_rerun_is_a_no_op(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="spend", when="spend > 0"))
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 700))
    run(world, rules, "2026-05-01")
    before = list(world.conn.execute("SELECT seq, key, hash FROM entries"))
    report = run(world, rules, "2026-05-01")
    assert report.entries == 0
    assert list(world.conn.execute("SELECT seq, key, hash FROM entries")) == before


def test_cancel_before_payment_drops_out_and_after_payment_is_reversed(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="spend", when="spend > 0"))
    world.add(
        pay("p1", "A", "2026-03-05T10:00:00", 700),
        pay("p2", "A", "2026-03-06T10:00:00", 300),
        pay("p3", "B", "2026-03-06T10:00:00", 300),
        {"id": "c1", "type": "cancel", "member": "B", "at": "2026-04-01T10:00:00", "ref": "p3"},
        {"id": "c2", "type": "cancel", "member": "A", "at": "2026-04-20T10:00:00", "ref": "p2"},
    )
    run(world, rules, "2026-05-31")
    assert world.balance("B")["limited"] == 0
    assert world.awards("t", "B") == []
    assert world.awards("t", "A") == [("2026-04-10", "award", "A", 1000), ("2026-04-20", "reverse", "A", -300)]
    grant, reversal = [e for e in world.journal.entries(member="A") if e.campaign == "t"]
    assert reversal.reverses == grant.seq
    # Each entry records the events it was derived from (the stream events then).
    assert grant.events == ("p1", "p2") and reversal.events == ("p1",)
    assert grant.rule == "t.rules" and len(grant.rules_hash) == 64 and grant.step == "main:a"


def test_late_event_after_payment_becomes_an_adjustment(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="spend", when="spend > 0"))
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 700))
    run(world, rules, "2026-04-30")
    # A payment of the period that reaches us late (imported after the run).
    world.add(pay("p2", "A", "2026-03-31T22:00:00", 50))
    run(world, rules, "2026-05-31")
    assert world.balance("A")["limited"] == 750
    kinds = [k for _, k, _, _ in world.awards("t", "A")]
    assert kinds == ["award", "award"]


def test_reversal_of_spent_points_becomes_a_receivable_paid_by_the_next_grant(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="spend", when="spend > 0"))
    world.add(
        pay("p1", "A", "2026-03-05T10:00:00", 1000),
        {"id": "r1", "type": "redemption", "member": "A", "at": "2026-04-15T10:00:00", "points": 800, "use": "wesmo"},
        {"id": "c1", "type": "cancel", "member": "A", "at": "2026-04-20T10:00:00", "ref": "p1"},
    )
    run(world, rules, "2026-04-30")
    assert world.balance("A")["limited"] == 0
    assert world.journal.receivable("A")["limited"] == 800
    # A late payment of the period earns 500: it pays the receivable first.
    world.add(pay("p2", "A", "2026-03-20T10:00:00", 500))
    run(world, rules, "2026-05-31")
    assert world.journal.receivable("A")["limited"] == 300
    assert world.balance("A")["limited"] == 0


def test_refused_redemption_is_recorded_with_its_reason(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="100", when="spend > 0"))
    world.add(
        pay("p1", "A", "2026-03-05T10:00:00", 1),
        {"id": "r1", "type": "redemption", "member": "A", "at": "2026-04-15T10:00:00", "points": 101, "use": "fare"},
        {"id": "r2", "type": "redemption", "member": "A", "at": "2026-04-16T10:00:00", "points": 100, "use": "charge"},
        {"id": "r3", "type": "redemption", "member": "A", "at": "2026-04-17T10:00:00", "points": 60, "use": "fare"},
    )
    report = run(world, rules, "2026-04-30")
    refused = {event_id for event_id, _, _ in report.refused_redemptions}
    assert refused == {"r1", "r2"}  # r2: limited points cannot pay a charge
    assert world.balance("A")["limited"] == 40
    memo = world.journal.entry_by_key("redeem:r1").memo
    assert "101 requested" in memo["refused"]


def test_one_days_redemptions_see_each_other_in_event_order(world, tmp_path):
    # A day's redemptions are written together: a member's later redemption that day must
    # see what the earlier ones spent, whoever redeemed in between.
    rules = rules_dir(tmp_path, BASIC.format(amount="100", when="spend > 0"))
    world.add(pay("pa", "A", "2026-03-05T10:00:00", 1), pay("pb", "B", "2026-03-05T10:00:00", 1))
    day = "2026-04-15T"
    world.add(*({"id": i, "type": "redemption", "member": m, "at": day + t, "points": n, "use": "fare"}
                for i, m, t, n in (("r1", "A", "09:00:00", 60), ("r2", "B", "10:00:00", 30),
                                   ("r3", "A", "11:00:00", 60), ("r4", "A", "12:00:00", 40))))
    report = run(world, rules, "2026-04-30")
    assert [e for e, _, _ in report.refused_redemptions] == ["r3"]
    assert "40 points spendable" in world.journal.entry_by_key("redeem:r3").memo["refused"]
    assert (report.redemptions, report.redeemed_points) == (3, 130)
    assert world.balance("A")["limited"] == 0 and world.balance("B")["limited"] == 70
    seqs = [world.journal.entry_by_key(f"redeem:r{i}").seq for i in (1, 2, 3, 4)]
    assert seqs == sorted(seqs)  # written in event order
    assert run(world, rules, "2026-04-30").redemptions == 0  # a re-run writes nothing
    assert verify(world.conn).ok


def test_time_of_day_window_edges_and_weekdays(world, tmp_path):
    rules = rules_dir(tmp_path, """
        campaign t "test"
          window 2026-03-01 .. 2026-03-31
          stream pay = wesmo_payment where date in window
          award morning = 1 limited when count(pay where time in 05:00 ..< 10:00) >= 1 on 2026-04-10
          award weekend = 1 limited when count(pay where weekday in [fri, sat, sun]) >= 1 on 2026-04-10
          award noon = 1 limited when count(pay where time in 11:00 .. 14:00) >= 1 on 2026-04-10
    """)
    world.add(
        pay("a", "EARLY", "2026-03-05T04:59:59", 1),     # Thursday
        pay("b", "START", "2026-03-05T05:00:00", 1),
        pay("c", "LATE", "2026-03-05T10:00:00", 1),
        pay("d", "FRI", "2026-03-06T12:00:00", 1),       # Friday, noon
        pay("e", "NOON_END", "2026-03-05T14:00:00", 1),  # inclusive end
    )
    run(world, rules, "2026-04-30")
    got = {m: world.paid("t", m) for m in ("EARLY", "START", "LATE", "FRI", "NOON_END")}
    assert got == {"EARLY": 0, "START": 1, "LATE": 0, "FRI": 2, "NOON_END": 1}


def test_distinct_days_count_distinct_and_membership(world, tmp_path):
    rules = rules_dir(tmp_path, """
        campaign t "test"
          window 2026-03-01 .. 2026-03-31
          table stores from "data/stores.csv"
          stream pay = wesmo_payment where date in window and not paid_with_points
          stream video = video_view where date in window
          value days = distinct_days(pay where amount >= 300)
          award ten_days = 1000 limited when days >= 3 on 2026-04-10
          award videos = 100 * min(count_distinct(video.video), 2) limited
            when count_distinct(video.video) >= 1 on 2026-04-10
          award store = 7 limited when exists(pay where merchant in stores.merchant) on 2026-04-10
    """, tables={"data/stores.csv": "merchant,name\nshop-1,One\nshop-2,Two\n"})
    world.add(
        pay("a1", "A", "2026-03-02T10:00:00", 300), pay("a2", "A", "2026-03-02T11:00:00", 300),
        pay("a3", "A", "2026-03-03T10:00:00", 300), pay("a4", "A", "2026-03-04T10:00:00", 299),
        pay("b1", "B", "2026-03-02T10:00:00", 300), pay("b2", "B", "2026-03-03T10:00:00", 300),
        pay("b3", "B", "2026-03-04T10:00:00", 300, paid_with_points=True, merchant="shop-1"),
        pay("b4", "B", "2026-03-05T10:00:00", 1, merchant="shop-2"),
        {"id": "v1", "type": "video_view", "member": "A", "at": "2026-03-02T10:00:00", "video": "x"},
        {"id": "v2", "type": "video_view", "member": "A", "at": "2026-03-02T11:00:00", "video": "x"},
        {"id": "v3", "type": "video_view", "member": "B", "at": "2026-03-02T10:00:00", "video": "x"},
        {"id": "v4", "type": "video_view", "member": "B", "at": "2026-03-02T10:00:00", "video": "y"},
        {"id": "v5", "type": "video_view", "member": "B", "at": "2026-03-02T10:00:00", "video": "z"},
    )
    run(world, rules, "2026-04-30")
    assert world.paid("t", "A") == 100  # 2 distinct days only; one distinct video
    assert world.paid("t", "B") == 200 + 7  # the point payment does not count for days nor store


def test_entry_requirement_retroactive_and_window(world, tmp_path):
    text = """
        campaign t "test"
          window 2026-03-01 .. 2026-03-31
          entry required within 2026-03-01 .. 2026-03-31 {retro}
          stream pay = wesmo_payment where date in window
          award a = sum(pay.amount) limited when sum(pay.amount) > 0 on 2026-04-10
    """
    world.add(
        pay("a1", "A", "2026-03-02T10:00:00", 100), pay("a2", "A", "2026-03-20T10:00:00", 10),
        {"id": "ea", "type": "campaign_entry", "member": "A", "at": "2026-03-10T10:00:00", "campaign": "t"},
        pay("b1", "B", "2026-03-02T10:00:00", 100),
        {"id": "eb", "type": "campaign_entry", "member": "B", "at": "2026-04-01T00:00:00", "campaign": "t"},
        pay("c1", "C", "2026-03-02T10:00:00", 100),
        {"id": "ec", "type": "campaign_entry", "member": "C", "at": "2026-03-31T23:59:59", "campaign": "other"},
    )
    retro = rules_dir(tmp_path, text.format(retro="retroactive"))
    run(world, retro, "2026-04-30")
    assert (world.paid("t", "A"), world.paid("t", "B"), world.paid("t", "C")) == (110, 0, 0)


def test_entry_not_retroactive_counts_only_later_events(world, tmp_path):
    rules = rules_dir(tmp_path, """
        campaign t "test"
          window 2026-03-01 .. 2026-03-31
          entry required within 2026-03-01 .. 2026-03-31
          stream pay = wesmo_payment where date in window
          award a = sum(pay.amount) limited when sum(pay.amount) > 0 on 2026-04-10
    """)
    world.add(
        pay("a1", "A", "2026-03-02T10:00:00", 100), pay("a2", "A", "2026-03-20T10:00:00", 10),
        {"id": "ea", "type": "campaign_entry", "member": "A", "at": "2026-03-10T10:00:00", "campaign": "t"},
    )
    run(world, rules, "2026-04-30")
    assert world.paid("t", "A") == 10


def test_budget_refuses_what_does_not_fit_and_never_goes_negative(world, tmp_path):
    rules = rules_dir(tmp_path, """
        campaign t "test"
          window 2026-03-01 .. 2026-03-31
          budget 1_000 limited
          stream pay = wesmo_payment where date in window
          award a = sum(pay.amount) limited when sum(pay.amount) > 0 on 2026-04-10
    """)
    world.add(pay("a", "A", "2026-03-02T10:00:00", 600), pay("b", "B", "2026-03-02T10:00:00", 500),
              pay("c", "C", "2026-03-02T10:00:00", 400))
    report = run(world, rules, "2026-04-30")
    assert [world.paid("t", m) for m in "ABC"] == [600, 0, 400]
    assert world.journal.account_balance("campaign:t:budget", "limited") == 0
    assert [(m, a) for m, a, _, _ in report.campaigns["t"].refused] == [("B", "a")]


def test_lottery_with_a_winner_count_is_deterministic_and_recorded(world, tmp_path, tmp_path_factory):
    text = """
        campaign t "test"
          window 2026-03-01 .. 2026-03-31
          stream pay = wesmo_payment where date in window
          award prize = 50 basic when count(pay) >= 1 on 2026-04-10 by lottery 3 winners
    """
    rules = rules_dir(tmp_path, text)
    evs = [pay(f"p{i}", f"M{i:02d}", "2026-03-02T10:00:00", 1) for i in range(10)]
    world.add(*evs)
    run(world, rules, "2026-04-30")
    winners = sorted(m for m in (f"M{i:02d}" for i in range(10)) if world.paid("t", m) == 50)
    assert len(winners) == 3
    draw = world.journal.entry_by_key("draw:t:main:prize")
    assert sorted(draw.memo["winners"]) == winners and draw.memo["candidates"] == 10
    # An auditor re-draws the same winners on a fresh database.
    from tests.support import new_world
    other = new_world(tmp_path_factory.mktemp("again"))
    other.add(*evs)
    run(other, rules, "2026-04-30")
    assert sorted(other.journal.entry_by_key("draw:t:main:prize").memo["winners"]) == winners


def test_month_cycle_with_dynamic_payment_date_and_tiers(world, tmp_path):
    rules = rules_dir(tmp_path, """
        campaign t "test"
          every month from day 16 to day 15
          pay on day 26 after period end
          stream buy = card_payment where date in period
          value bonus = sum over buy by merchant: (trunc(sum(amount), 1_000) / 1_000)
          award a = bonus basic when bonus > 0 expires 12 months after payment
    """)
    world.add(
        {"id": "1", "type": "card_payment", "member": "A", "at": "2026-01-15T23:59:59", "amount": 1999, "merchant": "x"},
        {"id": "2", "type": "card_payment", "member": "A", "at": "2026-01-10T10:00:00", "amount": 1000, "merchant": "y"},
        {"id": "3", "type": "card_payment", "member": "A", "at": "2026-01-16T00:00:00", "amount": 5000, "merchant": "x"},
    )
    run(world, rules, "2026-03-31")
    assert world.awards("t", "A") == [("2026-01-26", "award", "A", 2), ("2026-02-26", "award", "A", 5)]
    expiries = sorted(l.expires for l in world.journal.lots("A"))
    assert expiries == [dt.date(2027, 1, 31), dt.date(2027, 2, 28)]


def test_payment_on_day_of_month_after_a_reached_threshold(world, tmp_path):
    rules = rules_dir(tmp_path, """
        campaign t "test"
          window 2026-01-01 .. 2026-12-31
          stream c = icoca_charge where date in window
          value reached = date_reaching(c.amount, 20_000)
          award a = 5_000 charge_only when reached != none on day 18 of month after reached
    """)
    world.add(
        {"id": "1", "type": "icoca_charge", "member": "A", "at": "2026-01-31T10:00:00", "amount": 19999},
        {"id": "2", "type": "icoca_charge", "member": "A", "at": "2026-02-01T10:00:00", "amount": 1},
        {"id": "3", "type": "icoca_charge", "member": "B", "at": "2026-01-31T10:00:00", "amount": 20000},
    )
    run(world, rules, "2026-04-30")
    assert world.awards("t", "A") == [("2026-03-18", "award", "A", 5000)]
    assert world.awards("t", "B") == [("2026-02-18", "award", "B", 5000)]


def test_fractional_award_is_refused_with_a_clear_error(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="spend * 25%", when="spend > 0"))
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 3))
    with pytest.raises(RunError, match="not a whole number"):
        run(world, rules, "2026-04-30")
    assert world.journal.balance("A")["limited"] == 0


def test_rounding_functions(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(
        amount="floor(spend * 25%) + ceil(spend * 25%) * 10 + round(spend * 25%) * 100 + trunc(spend, 10) * 1000",
        when="spend > 0"))
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 18))  # 4.5 -> floor 4, ceil 5, round 5 (half up); trunc 10
    run(world, rules, "2026-04-30")
    assert world.paid("t", "A") == 4 + 50 + 500 + 10_000


def test_journal_verifies_after_a_run(world, tmp_path):
    rules = rules_dir(tmp_path, BASIC.format(amount="spend", when="spend > 0"))
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 700),
              {"id": "c", "type": "cancel", "member": "A", "at": "2026-05-01T10:00:00", "ref": "p1"})
    run(world, rules, "2026-07-31")
    report = verify(world.conn)
    assert report.ok, report.problems
    marker = [json.loads(m) for (m,) in world.conn.execute("SELECT memo FROM entries WHERE step = 'run'")]
    assert marker[0]["until"] == "2026-07-31" and marker[0]["rules"] == {"t.rules": rules.hashes["t.rules"]}
