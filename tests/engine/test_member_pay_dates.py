"""`on day N of month after EXPR`: every cleared award is paid on its date, however late
EXPR falls (issue 13 item 4: it used to be checked only up to the month after the
window, so a later date was never paid), and the dates the run checks stop where EXPR
is bounded."""

from __future__ import annotations

import datetime as dt

from points.dsl.loader import load_rules
from points.dsl.plan import Period
from tests.support import new_world

HEAD = '''campaign late-pay "late pay"
  window 2026-01-01 .. 2026-01-31
'''


def rules(tmp_path, body: str):
    folder = tmp_path / "rules"
    folder.mkdir(parents=True)
    (folder / "c.rules").write_text(HEAD + body, encoding="utf-8")
    return load_rules(folder)


def apply(id_, member, at):
    return {"id": id_, "type": "mynapoint_application", "member": member, "at": at}


def charge(id_, member, amount, at):
    return {"id": id_, "type": "icoca_charge", "member": member, "at": at, "amount": amount, "source": "cash"}


UNBOUNDED = '''
  stream application = mynapoint_application
  stream charge = icoca_charge where date in window
  award bonus = 100 basic
    when exists(charge) and exists(application)
    on day 10 of month after max(first(application.date), first(charge.date))
'''


def test_a_pay_date_months_after_the_window_is_paid_on_that_date(tmp_path):
    rs = rules(tmp_path, UNBOUNDED)
    w = new_world(tmp_path)
    w.add(charge("c1", "m1", 500, "2026-01-05T10:00:00"), apply("a1", "m1", "2026-03-20T10:00:00"),
          charge("c2", "m2", 500, "2026-01-06T10:00:00"), apply("a2", "m2", "2026-01-07T10:00:00"))
    w.run("2026-04-09", rs)
    assert w.awards("late-pay", "m1") == []  # not due yet
    assert w.awards("late-pay", "m2") == [("2026-02-10", "award", "m2", 100)]
    w.run("2026-06-30", rs)
    assert w.awards("late-pay", "m1") == [("2026-04-10", "award", "m1", 100)]
    assert w.paid("late-pay", "m2") == 100


def test_a_literal_date_past_the_window_is_paid(tmp_path):
    rs = rules(tmp_path, '''
  stream charge = icoca_charge where date in window
  award bonus = 100 basic
    when exists(charge)
    on day 10 of month after 2026-05-01
''')
    w = new_world(tmp_path)
    w.add(charge("c1", "m1", 500, "2026-01-05T10:00:00"))
    w.run("2026-12-31", rs)
    assert w.awards("late-pay", "m1") == [("2026-06-10", "award", "m1", 100)]


def grid_end(tmp_path, stream_where: str, after: str = "first(charge.date)"):
    rs = rules(tmp_path, f'''
  stream charge = icoca_charge where {stream_where}
  award bonus = 100 basic
    when exists(charge)
    on day 18 of month after {after}
''')
    from points.engine.calendar import last_pay_check

    a = rs.campaigns[0].plan.awards["bonus"]
    return last_pay_check(a, Period("main", dt.date(2026, 1, 1), dt.date(2026, 1, 31)))


def test_the_checks_stop_the_month_after_the_last_date_expr_can_have(tmp_path):
    assert grid_end(tmp_path / "a", "date in window") == dt.date(2026, 2, 18)
    assert grid_end(tmp_path / "b", "date in period") == dt.date(2026, 2, 18)
    # both ends of a literal range, included or not
    assert grid_end(tmp_path / "c", "date in 2026-01-01 .. 2026-03-31") == dt.date(2026, 4, 18)
    assert grid_end(tmp_path / "d", "date in 2026-01-01 ..< 2026-04-01") == dt.date(2026, 4, 18)
    assert grid_end(tmp_path / "e", "date < 2026-04-01") == dt.date(2026, 4, 18)
    assert grid_end(tmp_path / "f", "date <= 2026-04-01") == dt.date(2026, 5, 18)
    # the smallest bound of a conjunction wins
    assert grid_end(tmp_path / "g", "date in window and date <= 2026-01-15") == dt.date(2026, 2, 18)


def test_nothing_bounds_an_event_date_field_or_an_open_stream(tmp_path):
    assert grid_end(tmp_path / "a", "amount > 0") is None
    assert grid_end(tmp_path / "b", "date >= 2026-01-01") is None
    # max() of a bounded and an unbounded date is unbounded
    assert grid_end(tmp_path / "c", "date in window", "max(first(charge.date), 2026-09-01)") == dt.date(2026, 10, 18)


NO_DATE = '''
  stream application = mynapoint_application where date in window
  stream charge = icoca_charge where date in window
  award bonus = 100 basic
    when exists(charge)
    on day 10 of month after first(application.date)
'''


def test_a_cleared_award_without_a_pay_date_says_why_once(tmp_path):
    from points.dsl import checker
    from points.dsl.parser import parse
    from tests.support import RULES

    found, _ = checker.check(parse(HEAD + NO_DATE, "x.rules"), RULES)
    assert [(d.severity, d.message.split(":")[0]) for d in found] == [
        ("warning", "`first(application.date)` may be none (no event) while award bonus is cleared")]
    rs = rules(tmp_path, NO_DATE)
    w = new_world(tmp_path)
    w.add(charge("c1", "m1", 500, "2026-01-05T10:00:00"), charge("c2", "m1", 500, "2026-01-20T10:00:00"),
          charge("c3", "m2", 500, "2026-01-06T10:00:00"), apply("a2", "m2", "2026-01-07T10:00:00"))
    w.run("2026-06-30", rs)
    assert w.paid("late-pay", "m1") == 0 and w.paid("late-pay", "m2") == 100
    refused = [e.memo for e in w.journal.entries(campaign="late-pay") if "refused" in e.memo]
    assert [(m["member"], m["points"]) for m in refused] == [("m1", 100)]  # once, though checked monthly
    assert "has no value for this member" in refused[0]["refused"]
    # the warning goes once the condition needs the date
    found, _ = checker.check(parse(HEAD + NO_DATE.replace("when exists(charge)",
                                                          "when exists(charge) and exists(application)"),
                                   "x.rules"), RULES)
    assert found == []
