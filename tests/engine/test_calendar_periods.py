"""Calendar periods: `every month` (the 1st to the last day), `every week` (monday to
sunday) and `every year`; an award is paid at most once per member and period, so
`every year` is "once per year"."""

from __future__ import annotations

import datetime as dt

import pytest

from points.dsl import ast
from points.engine.calendar import period_of_day
from tests.support import new_world, rules_from_text as rules, card_payment as pay

SPAN = ast.Span("x", 1, 1, 1, 1)


@pytest.mark.parametrize("unit, day, expected", [
    ("month", dt.date(2024, 2, 29), ("2024-02", dt.date(2024, 2, 1), dt.date(2024, 2, 29))),
    ("month", dt.date(2026, 12, 31), ("2026-12", dt.date(2026, 12, 1), dt.date(2026, 12, 31))),
    ("month", dt.date(2026, 1, 1), ("2026-01", dt.date(2026, 1, 1), dt.date(2026, 1, 31))),
    ("week", dt.date(2026, 1, 4), ("2026-W01", dt.date(2025, 12, 29), dt.date(2026, 1, 4))),  # a sunday
    ("week", dt.date(2026, 1, 5), ("2026-W02", dt.date(2026, 1, 5), dt.date(2026, 1, 11))),  # a monday
    ("year", dt.date(2026, 12, 31), ("2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31))),
    ("year", dt.date(2027, 1, 1), ("2027", dt.date(2027, 1, 1), dt.date(2027, 12, 31))),
])
def test_the_period_holding_a_day(unit, day, expected):
    p = period_of_day(ast.Cycle(0, 0, SPAN, unit), day)
    assert (p.id, p.start, p.end) == expected


def test_a_day_cycle_keeps_its_periods():
    cycle = ast.Cycle(16, 15, SPAN)
    assert period_of_day(cycle, dt.date(2026, 1, 15)).id == "2026-01"
    assert (period_of_day(cycle, dt.date(2026, 1, 16)).start, period_of_day(cycle, dt.date(2026, 1, 16)).end) == (
        dt.date(2026, 1, 16), dt.date(2026, 2, 15))


def test_calendar_month_pays_each_month_on_its_own(tmp_path):
    rs = rules(tmp_path, '''campaign monthly "1% a calendar month"
  every month
  pay on day 10 after period end
  stream purchase = card_payment where date in period
  award back = floor(sum(purchase.amount) * 1%) basic when sum(purchase.amount) > 0
''')
    w = new_world(tmp_path)
    w.add(pay("p1", "m1", 1_000, "2026-01-01T00:00:00"), pay("p2", "m1", 2_000, "2026-01-31T23:59:00"),
          pay("p3", "m1", 5_000, "2026-02-01T00:00:00"))
    w.run("2026-03-31", rs)
    assert w.awards("monthly", "m1") == [("2026-02-10", "award", "m1", 30), ("2026-03-10", "award", "m1", 50)]


def test_once_per_year_and_per_week(tmp_path):
    rs = rules(tmp_path, '''campaign yearly "once a year"
  every year
  pay on 2027-01-20
  stream purchase = card_payment where date in period
  award once = 500 basic when exists(purchase)
''')
    w = new_world(tmp_path)
    w.add(*[pay(f"p{i}", "m1", 100, f"2026-{m:02d}-03T10:00:00") for i, m in enumerate((1, 5, 12))])
    w.run("2027-02-01", rs)
    assert w.paid("yearly", "m1") == 500  # three purchases in 2026: once


def test_weekly_periods_split_at_monday(tmp_path):
    rs = rules(tmp_path, '''campaign weekly "a stamp a week"
  every week
  stream purchase = card_payment where date in period
  award stamp = 10 basic when count(purchase) >= 2
''')
    w = new_world(tmp_path)
    # sunday 2026-01-11 and monday 2026-01-12 are in two weeks: neither has 2 purchases
    w.add(pay("a", "m1", 1, "2026-01-11T10:00:00"), pay("b", "m1", 1, "2026-01-12T10:00:00"),
          pay("c", "m2", 1, "2026-01-12T10:00:00"), pay("d", "m2", 1, "2026-01-18T10:00:00"))
    w.run("2026-03-31", rs)
    assert w.paid("weekly", "m1") == 0
    # week of the 12th paid at the default date: the last day of the month after the week ends
    assert w.awards("weekly", "m2") == [("2026-02-28", "award", "m2", 10)]
