"""Every recipe of the cookbook (docs/cookbook/NAME/: campaign.rules, events.jsonl and its
tables) checks clean and, run by the real engine over its events, pays the points
computed by hand below (the reasoning for each number is in the comments)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from points.dsl.loader import check_files, load_rules
from tests.support import new_world

COOKBOOK = Path(__file__).resolve().parents[2] / "docs" / "cookbook"
ZERO = {"basic": 0, "limited": 0, "charge_only": 0}

# recipe -> (run until, {member: {kind: points}})
EXPECTED = {
    # M1: day 1 floor(69.12) + 40 = 109; day 2 min(199, 100) + 80 = 180 -> 150 a day; the
    # refunded payment counts nothing: 259. M2: 10 days of 2 x 100 -> 150 a day = 1,500 ->
    # 1,000 in all. M3: 2% of 49 rounds down to 0: no award. M4: August is outside.
    "percent-back": ("2026-08-31", {"M1": {"basic": 259}, "M2": {"basic": 1_000}, "M3": {}, "M4": {}}),
    # M1: 12 cafe visits: two 5th visits (200) and the 10th, 11th, 12th (60). M2: 4 cafe
    # visits (the bakery is not the cafe). M3: 10 visits, one cancelled: 9 -> one 5th.
    "nth-visit": ("2026-10-31", {"M1": {"limited": 260}, "M2": {}, "M3": {"limited": 100}}),
    # M1: weeks of 1, 8 (sun 14th), 15 and 22 (sun 28th) June. M2: the 29th is after the
    # window (3 weeks). M3: one of its 4 payments was paid with points.
    "weekly-streak": ("2026-07-31", {"M1": {"limited": 500}, "M2": {}, "M3": {}}),
    # 2% of 12,345 = 246.9 -> 246; 1% = 123.45 -> 123. M1 spent exactly 300,000 in 2025;
    # M2 299,999; M3's 400,000 was refunded.
    "tier-from-last-year": ("2027-02-28", {"M1": {"basic": 246}, "M2": {"basic": 123}, "M3": {"basic": 123}}),
    # M1 first shopped there in May (before July): never new. M2: July, once. M3: its first
    # purchase there is in August (the July one was elsewhere).
    "first-partner-purchase": ("2026-10-31", {"M1": {}, "M2": {"basic": 300}, "M3": {"basic": 300}}),
    # 10 a payment of 1,050 yen: the 5th (also a sunday) x3 = 30, sunday 12th x2 = 20, the
    # 15th x3 = 30, thursday 16th 10; 99 yen on the 25th is 0 (x3 is still 0).
    "multiplier-days": ("2026-08-31", {"M1": {"basic": 90}}),
    # food 3% of 1,000 = 30, fashion 2% = 20, transport 5% = 50, elsewhere 1% of 1,099 = 10;
    # 3% of 30 yen rounds down to 0.
    "category-bonus": ("2026-10-31", {"M1": {"basic": 110}}),
    # thresholds included: 9,999 nothing; 10,000 -> 100; 19,999 + 1 -> 300; 49,999 -> 300;
    # M5's 60,000 was cancelled, 50,000 -> 1,000; M6's payment is in December.
    "spend-ladder": ("2026-12-31", {"M1": {}, "M2": {"basic": 100}, "M3": {"basic": 300},
                                    "M4": {"basic": 300}, "M5": {"basic": 1_000}, "M6": {}}),
    # 10 + 20 (8 Aug 00:00) + 20 (9 Aug 23:59:59) + 10 (10 Aug 00:00).
    "double-weekend": ("2026-09-30", {"M1": {"basic": 60}}),
    # M1: 24 payments in 2026: once. M2: 11 in 2026 and 1 in 2027.
    "once-a-year": ("2027-02-28", {"M1": {"basic": 1_000}, "M2": {}}),
    # A new event type declared in hotel.events. M1: 3 nights (300) + 7 nights capped at 5
    # (500). M2: a package rate earns nothing, its other stay was cancelled. M3: the June
    # stay is outside, the last second of August is inside (1 night).
    "hotel-stay": ("2026-09-30", {"M1": {"basic": 800}, "M2": {}, "M3": {"basic": 100}}),
    # 1 point per 100 yen: 20 in July (M1's birthday is in August), 40 on 1 August; M2 has
    # no birthday on file: 20.
    "birthday-month": ("2026-10-31", {"M1": {"basic": 60}, "M2": {"basic": 20}}),
    # M1 invited four friends: 3,000 (at most 3); each friend 1,000. F5's referral of M2 was
    # cancelled: nothing to either. F6 joined in October, after the window.
    "referral": ("2026-10-31", {"M1": {"basic": 3_000}, "M2": {}, "M3": {}, "F1": {"basic": 1_000},
                                "F2": {"basic": 1_000}, "F3": {"basic": 1_000}, "F4": {"basic": 1_000},
                                "F5": {}, "F6": {}}),
    # M1: 3..9 October, 7 days in a row. M2: 6 days, a gap on the 7th, then 7 days (8..14).
    # M3: 10..23 October, 14 days.
    "daily-streak": ("2026-11-30", {"M1": {"limited": 700}, "M2": {"limited": 700}, "M3": {"limited": 1_500}}),
    # M1: 10 days at shop a (two payments on the 1st: one stamp) -> 500. M2: 2 shops x 10
    # days = 20 -> 1,500. M3: its 499-yen payment is under 500: 9 stamps.
    "stamps-per-shop-day": ("2026-11-30", {"M1": {"limited": 500}, "M2": {"limited": 1_500}, "M3": {}}),
}


def test_every_recipe_has_its_expected_points():
    assert sorted(EXPECTED) == sorted(p.name for p in COOKBOOK.iterdir() if p.is_dir())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe(tmp_path, name):
    folder = tmp_path / "rules"
    shutil.copytree(COOKBOOK / name, folder, ignore=shutil.ignore_patterns("events.jsonl"))
    _, diagnostics, _ = check_files([folder / "campaign.rules"], folder)
    assert diagnostics == []  # no error and no warning
    rules = load_rules(folder)
    w = new_world(tmp_path)
    records = [json.loads(line) for line in (COOKBOOK / name / "events.jsonl").read_text().splitlines()]
    w.add(*records, catalogue=rules.catalogue)  # the recipe's own *.events, if any
    until, expected = EXPECTED[name]
    w.run(until, rules)
    members = sorted({r["member"] for r in records} | {r["referrer"] for r in records if "referrer" in r})
    assert sorted(expected) == members
    for member in members:
        assert w.balance(member) == {**ZERO, **expected[member]}, member
