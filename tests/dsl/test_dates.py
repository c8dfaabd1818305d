"""Date arithmetic and parts, per event (SQL) and per member (Python), with the same
answers: `DATE + N days`, `DATE - N days`, days_between, year, month, day, weekday,
week_start."""

from __future__ import annotations

import datetime as dt

import pytest

from points.dsl import checker
from points.dsl.loader import load_rules
from points.dsl.parser import parse
from points.dsl.runtime import SCALARS
from tests.support import RULES, new_world

HEAD = 'campaign d "dates"\n  window 2026-01-01 .. 2026-03-31\n'


def rules(tmp_path, body: str):
    folder = tmp_path / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.rules").write_text(HEAD + body, encoding="utf-8")
    return load_rules(folder)


def charge(id_, member, amount, at):
    return {"id": id_, "type": "icoca_charge", "member": member, "at": at, "amount": amount, "source": "cash"}


def apply(id_, member, at):
    return {"id": id_, "type": "mynapoint_application", "member": member, "at": at}


def test_within_30_days_of_the_application_per_event(tmp_path):
    body = '''
  stream application = mynapoint_application where date in window
  stream charge = icoca_charge
    where date in window
      and date >= first(application.date)
      and date <= first(application.date) + 30 days
  award a = sum(charge.amount) basic on 2026-04-30
'''
    w = new_world(tmp_path)
    w.add(apply("a1", "m1", "2026-01-10T09:00:00"),
          charge("c0", "m1", 1, "2026-01-09T09:00:00"),     # before: out
          charge("c1", "m1", 10, "2026-01-10T10:00:00"),    # day 0: in
          charge("c2", "m1", 100, "2026-02-09T23:00:00"),   # day 30: in (boundary)
          charge("c3", "m1", 1_000, "2026-02-10T00:00:00"))  # day 31: out
    w.run("2026-05-01", rules(tmp_path, body))
    assert w.paid("d", "m1") == 110


def test_date_parts_per_event(tmp_path):
    body = '''
  stream charge = icoca_charge where date in window
    field mo = month(date)
    field yr = year(date)
    field dd = day(date)
  award a = count(charge where mo == 2 and yr == 2026) basic on 2026-04-30
  award b = count(charge where weekday(date) in [sat, sun] and week_start(date) == 2026-01-12) limited on 2026-04-30
  award c = count(charge where days_between(2026-01-01, date) == 31 and dd == 1) charge_only on 2026-04-30
'''
    w = new_world(tmp_path)
    w.add(charge("c1", "m1", 1, "2026-01-17T10:00:00"),   # sat, week of mon 12th
          charge("c2", "m1", 1, "2026-01-18T10:00:00"),   # sun, same week
          charge("c3", "m1", 1, "2026-01-19T10:00:00"),   # mon, next week
          charge("c4", "m1", 1, "2026-02-01T10:00:00"),   # feb, 31 days after jan 1
          charge("c5", "m1", 1, "2026-02-28T10:00:00"))   # feb
    w.run("2026-05-01", rules(tmp_path, body))
    assert w.balance("m1") == {"basic": 2, "limited": 2, "charge_only": 1}


def test_date_arithmetic_per_member(tmp_path):
    body = '''
  stream charge = icoca_charge where date in window
  value span = days_between(first(charge.date), last(charge.date))
  value deadline = first(charge.date) + 7 days
  value early = first(charge.date) - 1 days
  award a = span basic when deadline == 2026-01-17 and early == 2026-01-09 and month(deadline) == 1
    and year(early) == 2026 and weekday(deadline) == sat and day(early) == 9 on 2026-04-30
  award b = 1 limited when week_start(deadline) == 2026-01-12 on 2026-04-30
'''
    w = new_world(tmp_path)
    w.add(charge("c1", "m1", 1, "2026-01-10T10:00:00"), charge("c2", "m1", 1, "2026-03-02T10:00:00"))
    w.run("2026-05-01", rules(tmp_path, body))
    assert w.balance("m1") == {"basic": 51, "limited": 1, "charge_only": 0}


@pytest.mark.parametrize("day", [dt.date(2024, 2, 29), dt.date(2026, 1, 4), dt.date(2026, 1, 5), dt.date(2025, 12, 31)])
def test_member_date_functions_at_boundaries(day):
    assert SCALARS["week_start"](day).weekday() == 0 and 0 <= (day - SCALARS["week_start"](day)).days <= 6
    assert SCALARS["days_between"](day, day + SCALARS["days"](366)) == 366
    assert SCALARS["year"](None) is None and SCALARS["days"](None) is None


def messages(body: str) -> list[str]:
    found, _ = checker.check(parse(HEAD + body, "x.rules"), RULES)
    return [d.message for d in found if d.is_error]


def test_date_type_errors():
    base = "  stream c = icoca_charge where date in window\n"
    assert messages(base + "  value v = first(c.date) - last(c.date)\n  award a = 1 basic when v > 0\n") == [
        "the days between two dates are `days_between(EARLIER, LATER)`"]
    assert messages(base + "  value v = first(c.date) + 3\n  award a = 1 basic\n")[0].startswith(
        "type mismatch: `+` of date and int")
    assert messages(base + "  value v = month(sum(c.amount))\n  award a = 1 basic\n") == [
        "type mismatch: month() needs a date, not int"]
    assert messages(base + "  value v = days_between(first(c.date))\n  award a = 1 basic\n") == [
        "days_between() takes 2 dates, not 1 arguments"]
