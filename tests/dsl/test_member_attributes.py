"""Member data in rules (`member.tier`, `member.birthday`): per event on the event's
date, per member on the last day of the period; the `member_profile` event with the
latest `valid_from` on or before that day wins, a cancelled one sets nothing."""

from __future__ import annotations

from points.dsl import checker
from points.dsl.parser import parse
from tests.support import RULES, new_world, rules_from_text as rules, card_payment as pay


def profile(id_, member, at, **attrs):
    return {"id": id_, "type": "member_profile", "member": member, "at": at, **attrs}


GOLD = '''campaign gold-july "500 points for gold members with a July payment; 3% if gold when paying"
  window 2026-07-01 .. 2026-07-31
  stream purchase = card_payment where date in window
    field pts = floor(amount * 3%) if member.tier == "gold" else floor(amount * 1%)
  award gold "gold in July" = 500 basic when exists(purchase) and member.tier == "gold" on 2026-08-10
  award rate "rate" = sum(purchase.pts) limited when exists(purchase) on 2026-08-10
'''


def test_status_as_of_the_period_end_and_of_each_payment(tmp_path):
    w = new_world(tmp_path)
    w.add(
        # m1: gold from 20 July (valid_from), so gold at the period's end; its 10 July
        # payment was before: 1%; its 25 July payment: 3%
        profile("p1", "m1", "2026-07-01T09:00:00", tier="gold", valid_from="2026-07-20"),
        pay("a", "m1", 1_000, "2026-07-10T10:00:00"), pay("b", "m1", 1_000, "2026-07-25T10:00:00"),
        # m2: gold only from 1 August: not gold on 31 July
        profile("p2", "m2", "2026-07-01T09:00:00", tier="gold", valid_from="2026-08-01"),
        pay("c", "m2", 1_000, "2026-07-10T10:00:00"),
        # m3: gold, then silver from 25 July (the later valid_from wins)
        profile("p3", "m3", "2026-06-01T09:00:00", tier="gold"),
        profile("p4", "m3", "2026-07-02T09:00:00", tier="silver", valid_from="2026-07-25"),
        pay("d", "m3", 1_000, "2026-07-10T10:00:00"),
        # m4: gold, but that profile was cancelled
        profile("p5", "m4", "2026-06-01T09:00:00", tier="gold"),
        {"id": "x5", "type": "cancel", "member": "m4", "at": "2026-06-02T09:00:00", "ref": "p5"},
        pay("e", "m4", 1_000, "2026-07-10T10:00:00"),
    )
    w.run("2026-08-31", rules(tmp_path, GOLD))
    assert w.balance("m1") == {"basic": 500, "limited": 40, "charge_only": 0}
    assert w.balance("m2") == {"basic": 0, "limited": 10, "charge_only": 0}
    assert w.balance("m3") == {"basic": 0, "limited": 30, "charge_only": 0}  # gold on the 10th
    assert w.balance("m4") == {"basic": 0, "limited": 10, "charge_only": 0}


BIRTHDAY = '''campaign birthday "double points in your birthday month"
  every month
  stream purchase = card_payment where date in period
    field pts = floor(amount * 1%) * (2 if month(member.birthday) == month(date) else 1)
  award monthly = sum(purchase.pts) basic when sum(purchase.pts) > 0
'''


def test_birthday_month_per_event(tmp_path):
    w = new_world(tmp_path)
    w.add(profile("p1", "m1", "2026-01-01T09:00:00", birthday="1990-07-31"),
          pay("a", "m1", 1_000, "2026-06-30T10:00:00"), pay("b", "m1", 1_000, "2026-07-31T10:00:00"),
          pay("c", "m2", 1_000, "2026-07-15T10:00:00"))  # no birthday known: x1
    w.run("2026-09-30", rules(tmp_path, BIRTHDAY))
    assert w.awards("birthday", "m1") == [("2026-07-31", "award", "m1", 10), ("2026-08-31", "award", "m1", 20)]
    assert w.paid("birthday", "m2") == 10


def test_member_attribute_errors():
    head = 'campaign c "t"\n  window 2026-01-01 .. 2026-01-31\n  stream p = card_payment\n'
    found, _ = checker.check(parse(head + "  award a = 1 basic when member.tire == \"gold\"\n", "x.rules"), RULES)
    assert [(d.message, d.hint.split("?")[0]) for d in found] == [("members have no attribute tire",
                                                                   "did you mean tier")]
    found, _ = checker.check(parse(head + "  value v = sum over p by date: (1 if member.tier == \"gold\" else 0)\n"
                                   "  award a = v basic\n", "x.rules"), RULES)
    assert [d.message for d in found] == ["`member.tier` cannot be used inside `sum over`"]
    found, _ = checker.check(parse(head + "  award a = 1 basic when month(member.birthday) == 7 "
                                   "and member.tier != none\n", "x.rules"), RULES)
    assert found == []
