"""What happens when a budget runs out, as the rules state it: `all or nothing` (the
default: member-id order, each grant whole or refused, a smaller later one may fit),
`first come first served` (by the member's first event; nothing after the first grant
that does not fit) and `pro rata` (every grant due scaled down, rounded down)."""

from __future__ import annotations

import pytest

from points.dsl.loader import load_rules
from tests.support import new_world, card_payment as pay


def rules(tmp_path, policy: str):
    folder = tmp_path / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.rules").write_text(f'''campaign limited "1,000 points in all"
  window 2026-07-01 .. 2026-07-31
  budget 1_000 basic {policy}
  stream purchase = card_payment where date in window
  award back = sum(purchase.amount) basic when sum(purchase.amount) > 0 on 2026-08-10
''', encoding="utf-8")
    return load_rules(folder)


def paid(tmp_path, policy: str, events) -> dict[str, int]:
    w = new_world(tmp_path)
    w.add(*events)
    w.run("2026-08-31", rules(tmp_path, policy))
    return {m: w.paid("limited", m) for m in sorted({e["member"] for e in events})}


# m1 wants 500, m2 600, m3 100; m3 came first, then m1, then m2
EVENTS = [pay("a", "m3", 100, "2026-07-01T09:00:00"), pay("b", "m1", 500, "2026-07-02T09:00:00"),
          pay("c", "m2", 600, "2026-07-03T09:00:00")]


@pytest.mark.parametrize("policy", ["", "all or nothing"])
def test_all_or_nothing_in_member_order_lets_a_smaller_later_grant_fit(tmp_path, policy):
    # m1 500 (500 left), m2 600 refused, m3 100 fits
    assert paid(tmp_path, policy, EVENTS) == {"m1": 500, "m2": 0, "m3": 100}


def test_first_come_first_served_by_the_first_event(tmp_path):
    # m3 100 (900 left), m1 500 (400 left), m2 600 refused
    assert paid(tmp_path, "first come first served", EVENTS) == {"m1": 500, "m2": 0, "m3": 100}


def test_first_come_first_served_lets_no_one_jump_the_queue(tmp_path):
    events = [pay("a", "m1", 500, "2026-07-01T09:00:00"), pay("b", "m2", 600, "2026-07-02T09:00:00"),
              pay("c", "m3", 100, "2026-07-03T09:00:00")]
    # m1 500; m2's 600 does not fit; m3 came after m2: nothing, though 100 would fit
    assert paid(tmp_path, "first come first served", events) == {"m1": 500, "m2": 0, "m3": 0}
    assert paid(tmp_path / "b", "", events) == {"m1": 500, "m2": 0, "m3": 100}


def test_pro_rata_scales_every_grant_down(tmp_path):
    # 1,200 due for 1,000: 500 -> 416, 600 -> 500, 100 -> 83 (999 paid, rounded down)
    assert paid(tmp_path, "pro rata", EVENTS) == {"m1": 416, "m2": 500, "m3": 83}


def test_pro_rata_pays_whole_when_it_fits(tmp_path):
    events = EVENTS[:2]
    assert paid(tmp_path, "pro rata", events) == {"m1": 500, "m3": 100}
    events = [pay("a", "m1", 400, "2026-07-01T09:00:00"), pay("b", "m2", 600, "2026-07-02T09:00:00")]
    assert paid(tmp_path / "b", "pro rata", events) == {"m1": 400, "m2": 600}  # exactly the budget
