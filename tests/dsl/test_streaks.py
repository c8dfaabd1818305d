"""Streaks: `longest_streak(s)` (consecutive days with an event of the stream) and
`weekly_streak(s)` (consecutive weeks, monday to sunday), per member, in SQL."""

from __future__ import annotations

from points.dsl import checker
from points.dsl.loader import load_rules
from points.dsl.parser import parse
from tests.support import RULES, new_world

TEXT = '''campaign streaks "streaks"
  window 2026-06-01 .. 2026-07-31
  stream pay = wesmo_payment where date in window undone by cancel
  award days "longest run of days" = longest_streak(pay) basic when exists(pay) on 2026-08-10
  award big "run of days with 500 yen or more" = longest_streak(pay where amount >= 500) limited
    when exists(pay) on 2026-08-10
  award weeks "longest run of weeks" = weekly_streak(pay) charge_only when exists(pay) on 2026-08-10
'''


def pay(id_, member, amount, at):
    return {"id": id_, "type": "wesmo_payment", "member": member, "at": at, "amount": amount, "merchant": "x"}


def test_runs_of_days_and_weeks(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "c.rules").write_text(TEXT, encoding="utf-8")
    w = new_world(tmp_path)
    w.add(
        # m1: 1, 2 (twice), 3 June: 3 days; 5, 6 June: 2; 2 June's 100-yen payments break
        # the 500-yen run (1 and 3 June); weeks: 1-7 June only (1)
        pay("a", "m1", 500, "2026-06-01T10:00:00"), pay("b", "m1", 100, "2026-06-02T10:00:00"),
        pay("c", "m1", 100, "2026-06-02T23:00:00"), pay("d", "m1", 500, "2026-06-03T10:00:00"),
        pay("e", "m1", 500, "2026-06-05T10:00:00"), pay("f", "m1", 500, "2026-06-06T10:00:00"),
        # m2: 30 June, 1 July (across the month); sunday 7 June and monday 8 June are two weeks
        # in a row, then 29 June is another week: weeks 2
        pay("g", "m2", 500, "2026-06-30T10:00:00"), pay("h", "m2", 500, "2026-07-01T10:00:00"),
        pay("i", "m2", 500, "2026-06-07T10:00:00"), pay("j", "m2", 500, "2026-06-08T10:00:00"),
        # m3: 10, 11, 12 June but the 11th was cancelled: runs of 1
        pay("k", "m3", 500, "2026-06-10T10:00:00"), pay("l", "m3", 500, "2026-06-11T10:00:00"),
        pay("m", "m3", 500, "2026-06-12T10:00:00"),
        {"id": "x", "type": "cancel", "member": "m3", "at": "2026-06-13T10:00:00", "ref": "l"},
    )
    w.run("2026-08-31", load_rules(folder))
    assert w.balance("m1") == {"basic": 3, "limited": 2, "charge_only": 1}
    assert w.balance("m2") == {"basic": 2, "limited": 2, "charge_only": 2}
    assert w.balance("m3") == {"basic": 1, "limited": 1, "charge_only": 1}


def test_a_streak_is_per_member_only():
    head = 'campaign c "t"\n  window 2026-06-01 .. 2026-06-30\n  stream a = wesmo_payment\n'
    found, _ = checker.check(parse(head + "  stream b = wesmo_payment where longest_streak(a) > 3\n"
                                   "  award x = count(b) basic\n", "x.rules"), RULES)
    assert [d.message for d in found] == ["longest_streak() is computed per member: use it in a value or a condition"]
