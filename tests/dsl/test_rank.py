"""`nth`, the rank of an event in its stream (1 = the member's first, by time then import
order), in an aggregate's filter: "the 11th and later purchase of the month", "the first
purchase ever"."""

from __future__ import annotations

from points.dsl import checker
from points.dsl.parser import parse
from tests.support import RULES, new_world, rules_from_text as rules, card_payment as pay


def cancel(id_, member, ref, at):
    return {"id": id_, "type": "cancel", "member": member, "at": at, "ref": ref}


ELEVENTH = '''campaign frequent "11th and later purchase of the month"
  every month
  stream purchase = card_payment where date in period undone by cancel
  award bonus = 10 * count(purchase where nth >= 11) basic when count(purchase where nth >= 11) > 0
'''


def test_the_11th_and_later_purchases_of_each_month(tmp_path):
    w = new_world(tmp_path)
    w.add(*[pay(f"j{i}", "m1", 100, f"2026-01-{i + 1:02d}T10:00:00") for i in range(12)])  # 12 in january
    w.add(*[pay(f"f{i}", "m1", 100, f"2026-02-{i + 1:02d}T10:00:00") for i in range(10)])  # 10 in february
    w.add(*[pay(f"o{i}", "m2", 100, f"2026-01-{i + 1:02d}T10:00:00") for i in range(11)])  # exactly 11
    w.run("2026-04-30", rules(tmp_path, ELEVENTH))
    assert w.awards("frequent", "m1") == [("2026-02-28", "award", "m1", 20)]  # 11th, 12th; february: none
    assert w.paid("frequent", "m2") == 10


def test_a_cancelled_purchase_does_not_count_for_the_rank(tmp_path):
    w = new_world(tmp_path)
    w.add(*[pay(f"j{i}", "m1", 100, f"2026-01-{i + 1:02d}T10:00:00") for i in range(11)])
    w.add(cancel("c1", "m1", "j3", "2026-01-20T10:00:00"))  # 10 left: no 11th
    w.run("2026-04-30", rules(tmp_path, ELEVENTH))
    assert w.paid("frequent", "m1") == 0


FIRST = '''campaign first-ever "first purchase ever at a partner"
  every month
  stream partner = card_payment where merchant == "partner"
  award welcome = 300 basic when exists(partner where nth == 1 and date in period)
'''


def test_only_the_first_purchase_ever_earns_and_in_its_own_month(tmp_path):
    w = new_world(tmp_path)
    w.add(pay("a", "m1", 100, "2026-01-20T10:00:00", "partner"), pay("b", "m1", 100, "2026-02-03T10:00:00", "partner"),
          pay("c", "m2", 100, "2026-02-05T10:00:00", "other"), pay("d", "m2", 100, "2026-02-06T10:00:00", "partner"),
          # the same instant: the earlier import is first
          pay("e", "m3", 100, "2026-02-07T10:00:00", "partner"), pay("f", "m3", 100, "2026-02-07T10:00:00", "partner"))
    w.run("2026-04-30", rules(tmp_path, FIRST))
    assert w.awards("first-ever", "m1") == [("2026-02-28", "award", "m1", 300)]  # january only
    assert w.awards("first-ever", "m2") == [("2026-03-31", "award", "m2", 300)]
    assert w.paid("first-ever", "m3") == 300


def test_nth_only_in_an_aggregate_filter():
    head = 'campaign c "t"\n  window 2026-01-01 .. 2026-01-31\n'
    found, _ = checker.check(parse(head + "  stream p = card_payment where nth > 1\n  award a = count(p) basic\n",
                                   "x.rules"), RULES)
    assert [d.message for d in found] == ["`nth` (the event's rank in its stream) is known only in an aggregate's filter"]
    found, _ = checker.check(parse(head + "  stream p = card_payment\n  award a = count(p where nth > 1) basic\n",
                                   "x.rules"), RULES)
    assert found == []
