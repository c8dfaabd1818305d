"""The library's domain reads the CLI calls: the latest run (engine.runs), a campaign's
next payment date (engine.calendar) and the points left in expiring lots (ledger.lots)."""

import datetime as dt

from points.engine.calendar import next_pay_date
from points.engine.runs import completed_until, latest_run, run_markers
from points.ledger.lots import expiring_points
from tests.engine.test_workflow import pay, rules_dir, run

D = dt.date

RULES = """
campaign t "test"
  window 2026-03-01 .. 2026-03-31
  stream pay = wesmo_payment where date in window undone by cancel
  value spend = sum(pay.amount)
  award a = spend limited when spend > 0 on 2026-04-10 expires 2026-06-30
  value first_paid = first(pay.date)
  award b = 10 basic when spend > 0 on day 18 of month after first_paid
"""


def test_the_latest_run_is_the_last_one_finished_with_its_date_and_watermark(world, tmp_path):
    rules = rules_dir(tmp_path, RULES)
    assert latest_run(world.conn) is None
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 100))
    run(world, rules, "2026-04-30")
    world.add(pay("p2", "B", "2026-03-06T10:00:00", 50))
    run(world, rules, "2026-05-31")
    last = latest_run(world.conn)
    assert (last.until, last.watermark) == (D(2026, 5, 31), 2)
    assert [(m.until, m.watermark) for m in run_markers(world.conn)] == [
        (D(2026, 4, 30), 1), (D(2026, 5, 31), 2)]
    assert last.rules == rules.hashes
    # Only a run over the same events and rules counts as done.
    assert completed_until(world.conn, 2, rules.hashes) == D(2026, 5, 31)
    assert completed_until(world.conn, 1, rules.hashes) == D(2026, 4, 30)
    assert completed_until(world.conn, 2, {"t.rules": "0" * 64}) is None


def test_next_pay_date_is_the_first_fixed_or_monthly_date_after_the_run(tmp_path):
    plan = rules_dir(tmp_path, RULES).campaigns[0].plan
    today = D(2026, 1, 1)
    assert next_pay_date(plan, None, today) == D(2026, 4, 10)
    assert next_pay_date(plan, D(2026, 4, 10), today) == D(2026, 4, 18)  # b, per member
    assert next_pay_date(plan, D(2026, 4, 18), today) is None  # the window's last month is March


def test_expiring_points_counts_what_is_left_of_the_campaigns_lots(world, tmp_path):
    rules = rules_dir(tmp_path, RULES)
    world.add(pay("p1", "A", "2026-03-05T10:00:00", 100),
              {"id": "r1", "type": "redemption", "member": "A", "at": "2026-04-20T10:00:00",
               "points": 30, "use": "wesmo"})
    run(world, rules, "2026-04-30")
    assert expiring_points(world.conn, "t", D(2026, 4, 30), D(2026, 6, 29)) == 0
    # 100 limited expiring 2026-06-30, 30 of it spent; b's 10 basic expire a year later.
    assert expiring_points(world.conn, "t", D(2026, 4, 30), D(2026, 6, 30)) == 70
    assert expiring_points(world.conn, "t", D(2026, 6, 30), D(2028, 1, 1)) == 10
