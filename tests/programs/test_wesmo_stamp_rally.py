"""Acceptance tests of 002 (Wesmo!スタンプラリーミッション), through rules/wesmo-stamp-rally-2026.rules.

Every expected number below is written by hand from the seed text
(/work/shared/seeds/002_6462c19dcb32d5b9.txt):
  casual  ① charge once 200, ② three payments >= 500 yen 300, ①+② 500 more;
  mania   ① 100 per video, max 2; ② >= 300 yen 5:00-10:00 200; ③ >= 800 yen 11:00-14:00 200;
          ④ >= 1,000 yen on Fri/Sat/Sun 200; ⑤ >= 3,000 yen 200; ⑥ >= 300 yen on 10 days 1,000;
          ⑦ charge >= 10,000 200; ⑧ five payments >= 5,000 300; ⑨ charge >= 50,000 500;
          ⑩ charge >= 100,000 1,000; all ten: lottery of 77 winners, 5,000 basic;
  bonus   one payment at a BLUE-tag store (appendix 1), any amount: 1,000.
All mission points are limited (期間・用途限定); the lottery prize is basic.
Dates chosen by the rules file where the seed is silent: paid 2026-04-30, limited points
expire 2026-10-31, basic 2027-04-30.

Calendar of March 2026: Mon 2, Thu 5, Fri 6, Sat 7, Sun 8, Mon 9, ... Tue 31.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

from tests.support import journal_projection, new_world

C = "wesmo-stamp-rally-2026"
PAY = "2026-04-30"
PAY_DATE = dt.date(2026, 4, 30)
LIMITED_EXPIRES = dt.date(2026, 10, 31)
BASIC_EXPIRES = dt.date(2027, 4, 30)
DRAW_KEY = f"draw:{C}:main:mania_lottery"

# ---------------------------------------------------------------- event builders


class Events:
    """Builds events for one member with stable ids (m-1, m-2, ...)."""

    def __init__(self, member: str):
        self.member = member
        self.n = 0
        self.items: list[dict] = []

    def _add(self, type_: str, at: str, **fields) -> dict:
        self.n += 1
        ev = {"id": f"{self.member}-{self.n}", "type": type_, "member": self.member, "at": at, **fields}
        self.items.append(ev)
        return ev

    def entry(self, at: str = "2026-03-02T08:00:00", campaign: str = C) -> dict:
        return self._add("campaign_entry", at, campaign=campaign)

    def charge(self, amount: int, at: str = "2026-03-03T15:00:00", source: str = "jwest_card") -> dict:
        return self._add("wesmo_charge", at, amount=amount, source=source)

    def pay(self, amount: int, at: str = "2026-03-03T15:00:00", merchant: str = "other",
            paid_with_points: bool = False) -> dict:
        return self._add("wesmo_payment", at, amount=amount, merchant=merchant,
                         paid_with_points=paid_with_points)

    def video(self, video: str, at: str = "2026-03-03T20:00:00") -> dict:
        return self._add("video_view", at, video=video)

    def undo(self, type_: str, ref: dict, at: str) -> dict:
        return self._add(type_, at, ref=ref["id"])

    def all_ten(self) -> "Events":
        """Events that clear every casual and every mania mission (no bonus):
        ten 5,000-yen payments at 12:00 on ten days (2026-03-02 .. 03-11, so Fri 03-06
        is among them), one 300-yen payment at 06:00, one 100,000-yen charge and two
        different videos."""
        self.entry()
        for day in range(2, 12):
            self.pay(5_000, f"2026-03-{day:02d}T12:00:00")
        self.pay(300, "2026-03-12T06:00:00")
        self.charge(100_000, "2026-03-12T18:00:00")
        self.video("v1")
        self.video("v2")
        return self


def by_award(world, member: str) -> dict[str, int]:
    """Net points per award (mission) of this campaign for one member, zeros dropped."""
    out: dict[str, int] = defaultdict(int)
    for e in world.journal.entries(campaign=C):
        memo = e.memo if isinstance(e.memo, dict) else {}
        if memo.get("member") != member or "award" not in memo or not e.postings:
            continue
        out[memo["award"]] += sum(p.amount for p in e.postings
                                  if p.account.split(":")[0] in ("member", "receivable"))
    return {k: v for k, v in out.items() if v}


def run_member(world, ev: Events, until: str = PAY) -> dict[str, int]:
    world.add(*ev.items)
    world.run(until)
    return by_award(world, ev.member)


# ---------------------------------------------------------------- one transaction, several missions


def test_first_100k_charge_clears_mania_7_9_10_and_casual_1(world):
    ev = Events("W1")
    ev.entry()
    ev.charge(100_000)
    assert run_member(world, ev) == {"casual_1": 200, "mania_7": 200, "mania_9": 500, "mania_10": 1_000}
    # Paid on 2026-04-30, not before; limited points.
    assert world.balance("W1", "2026-04-29") == {"basic": 0, "limited": 0, "charge_only": 0}
    assert world.balance("W1", "2026-04-30")["limited"] == 1_900
    # Every lot: paid on 2026-04-30, limited, expiring at the end of 2026-10-31.
    lots = world.journal.lots("W1")
    assert sorted(lot.amount for lot in lots) == [200, 200, 500, 1_000]
    for lot in lots:
        assert (lot.kind, lot.expires) == ("limited", LIMITED_EXPIRES)
    for e in world.journal.entries(member="W1", campaign=C):
        assert e.effective == PAY_DATE
        assert e.key.startswith(f"award:{C}:main:")
    # Held through 2026-10-30, expired at the end of 2026-10-31 (an entry effective that day).
    world.run("2026-11-01")
    assert world.balance("W1", "2026-10-30")["limited"] == 1_900
    assert world.balance("W1", "2026-10-31")["limited"] == 0
    expired = [e for e in world.journal.entries(member="W1") if e.key.startswith("expire:")]
    assert [(e.effective, sum(p.amount for p in e.postings if p.account == "system:expired"))
            for e in expired] == [(LIMITED_EXPIRES, 1_900)]


@pytest.mark.parametrize(
    "amount, expected",
    [
        (500, {"casual_1": 200}),
        (9_999, {"casual_1": 200}),
        (10_000, {"casual_1": 200, "mania_7": 200}),
        (49_999, {"casual_1": 200, "mania_7": 200}),
        (50_000, {"casual_1": 200, "mania_7": 200, "mania_9": 500}),
        (99_999, {"casual_1": 200, "mania_7": 200, "mania_9": 500}),
        (100_000, {"casual_1": 200, "mania_7": 200, "mania_9": 500, "mania_10": 1_000}),
    ],
)
def test_charge_size_thresholds(world, amount, expected):
    ev = Events("W1")
    ev.entry()
    ev.charge(amount)
    assert run_member(world, ev) == expected


def test_charge_missions_need_one_charge_of_the_size_not_a_total(world):
    # Two charges of 60,000 (120,000 in total) clear ⑦ and ⑨ but not ⑩ (1回10万円以上).
    ev = Events("W1")
    ev.entry()
    ev.charge(60_000, "2026-03-03T10:00:00")
    ev.charge(60_000, "2026-03-04T10:00:00")
    assert run_member(world, ev) == {"casual_1": 200, "mania_7": 200, "mania_9": 500}


def test_missions_pay_once_however_often_cleared(world):
    ev = Events("W1")
    ev.entry()
    for day in (3, 4, 5):
        ev.charge(100_000, f"2026-03-{day:02d}T10:00:00")
    assert run_member(world, ev) == {"casual_1": 200, "mania_7": 200, "mania_9": 500, "mania_10": 1_000}


# ---------------------------------------------------------------- casual course


@pytest.mark.parametrize(
    "amounts, expected",
    [
        ([500, 500, 500], {"casual_2": 300}),
        ([500, 500, 499], {}),
        ([500, 500], {}),
        ([499, 499, 499, 499], {}),
    ],
)
def test_casual_2_three_payments_of_500(world, amounts, expected):
    ev = Events("W1")
    ev.entry()
    # Mon-Thu 15:00: no time window, no weekend, fewer than 10 days.
    for i, amount in enumerate(amounts):
        ev.pay(amount, f"2026-03-{3 + i:02d}T15:00:00")
    assert run_member(world, ev) == expected


def test_casual_combo_needs_both_missions(world):
    both, charge_only, pay_only = Events("B"), Events("C"), Events("P")
    for ev in (both, charge_only, pay_only):
        ev.entry()
    both.charge(1_000)
    charge_only.charge(1_000)
    for ev in (both, pay_only):
        for day in (3, 4, 5):
            ev.pay(500, f"2026-03-{day:02d}T15:00:00")
    world.add(*both.items, *charge_only.items, *pay_only.items)
    world.run(PAY)
    assert by_award(world, "B") == {"casual_1": 200, "casual_2": 300, "casual_combo": 500}
    assert world.balance("B")["limited"] == 1_000  # カジュアルコースは合計最大1,000pt
    assert by_award(world, "C") == {"casual_1": 200}
    assert by_award(world, "P") == {"casual_2": 300}


# ---------------------------------------------------------------- mania course


@pytest.mark.parametrize(
    "videos, expected",
    [
        (["v1"], {"mania_1": 100}),
        (["v1", "v2"], {"mania_1": 200}),
        (["v1", "v2", "v3"], {"mania_1": 200}),  # 最大200pt
        (["v1", "v1"], {"mania_1": 100}),  # rules' choice: the same video twice is one video
    ],
)
def test_mania_1_videos(world, videos, expected):
    ev = Events("W1")
    ev.entry()
    for v in videos:
        ev.video(v)
    assert run_member(world, ev) == expected


@pytest.mark.parametrize(
    "time, amount, cleared",
    [
        ("04:59:59", 300, False),
        ("05:00:00", 300, True),
        ("09:59:59", 300, True),
        ("10:00:00", 300, False),  # rules' choice: 10:00:00 is after the window
        ("07:00:00", 299, False),
    ],
)
def test_mania_2_morning_window(world, time, amount, cleared):
    ev = Events("W1")
    ev.entry()
    ev.pay(amount, f"2026-03-03T{time}")  # a Tuesday
    assert run_member(world, ev) == ({"mania_2": 200} if cleared else {})


@pytest.mark.parametrize(
    "time, amount, cleared",
    [
        ("10:59:59", 800, False),
        ("11:00:00", 800, True),
        ("13:59:59", 800, True),
        ("14:00:00", 800, False),
        ("12:00:00", 799, False),
    ],
)
def test_mania_3_lunch_window(world, time, amount, cleared):
    ev = Events("W1")
    ev.entry()
    ev.pay(amount, f"2026-03-03T{time}")  # a Tuesday
    assert run_member(world, ev) == ({"mania_3": 200} if cleared else {})


@pytest.mark.parametrize(
    "at, amount, cleared",
    [
        ("2026-03-05T23:59:59", 1_000, False),  # Thursday
        ("2026-03-06T00:00:00", 1_000, True),  # Friday
        ("2026-03-07T15:00:00", 1_000, True),  # Saturday
        ("2026-03-08T23:59:59", 1_000, True),  # Sunday
        ("2026-03-09T00:00:00", 1_000, False),  # Monday
        ("2026-03-06T15:00:00", 999, False),  # Friday, one yen under
    ],
)
def test_mania_4_weekend_payment(world, at, amount, cleared):
    ev = Events("W1")
    ev.entry()
    ev.pay(amount, at)
    assert run_member(world, ev) == ({"mania_4": 200} if cleared else {})


@pytest.mark.parametrize("amount, expected", [(2_999, {}), (3_000, {"mania_5": 200})])
def test_mania_5_one_payment_of_3000(world, amount, expected):
    ev = Events("W1")
    ev.entry()
    ev.pay(amount, "2026-03-03T15:00:00")
    assert run_member(world, ev) == expected


def _days_of_payments(world, pays: list[tuple[str, int]]) -> dict[str, int]:
    ev = Events("W1")
    ev.entry()
    for at, amount in pays:
        ev.pay(amount, at)
    return run_member(world, ev)


def test_mania_6_ten_distinct_days(world):
    pays = [(f"2026-03-{d:02d}T15:00:00", 300) for d in range(2, 12)]
    assert _days_of_payments(world, pays) == {"mania_6": 1_000}


def test_mania_6_nine_days_is_not_enough_even_with_ten_payments(world):
    pays = [(f"2026-03-{d:02d}T15:00:00", 300) for d in range(2, 11)] + [("2026-03-10T16:00:00", 300)]
    assert _days_of_payments(world, pays) == {}


def test_mania_6_a_day_with_only_299_yen_does_not_count(world):
    pays = [(f"2026-03-{d:02d}T15:00:00", 300) for d in range(2, 11)] + [("2026-03-11T15:00:00", 299)]
    assert _days_of_payments(world, pays) == {}


def test_mania_6_days_are_tokyo_calendar_days(world):
    # 23:59:59 and 00:00:00 the next day are two days: 03-02..03-09 (8 days) +
    # 03-10 23:59:59 + 03-11 00:00:00 = 10 distinct days.
    pays = [(f"2026-03-{d:02d}T15:00:00", 300) for d in range(2, 10)]
    pays += [("2026-03-10T23:59:59", 300), ("2026-03-11T00:00:00", 300)]
    assert _days_of_payments(world, pays) == {"mania_6": 1_000}


@pytest.mark.parametrize(
    "amounts, expected",
    [
        # 5,000 yen payments also clear casual ② (>= 500, 3 times) and mania ⑤ (>= 3,000).
        ([5_000] * 5, {"casual_2": 300, "mania_5": 200, "mania_8": 300}),
        ([5_000] * 4 + [4_999], {"casual_2": 300, "mania_5": 200}),
    ],
)
def test_mania_8_five_payments_of_5000(world, amounts, expected):
    ev = Events("W1")
    ev.entry()
    # Mon 03-02 .. Thu 03-05 and Mon 03-09, 15:00: no weekend, no time window.
    days = [2, 3, 4, 5, 9]
    for day, amount in zip(days, amounts):
        ev.pay(amount, f"2026-03-{day:02d}T15:00:00")
    assert run_member(world, ev) == expected


# ---------------------------------------------------------------- bonus challenge


@pytest.mark.parametrize(
    "merchant, amount, cleared",
    [
        ("kobe-motomachi-01", 1, True),  # first store of the Kobe list, 金額下限なし
        ("kobe-motomachi-13", 100, True),  # last store of the Kobe list
        ("okayama-hokancho-01", 100, True),
        ("okayama-hokancho-12", 100, True),  # last store of the Okayama list
        ("other", 100, False),
        ("kobe-motomachi-14", 100, False),  # not on the list
    ],
)
def test_bonus_blue_tag_store(world, merchant, amount, cleared):
    ev = Events("W1")
    ev.entry()
    ev.pay(amount, "2026-03-03T15:00:00", merchant=merchant)
    assert run_member(world, ev) == ({"bonus": 1_000} if cleared else {})


def test_blue_tag_store_list_has_the_25_stores_of_appendix_1():
    import csv
    from tests.support import RULES

    with open(RULES / "data" / "blue_tag_stores.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    names = {r["name"] for r in rows}
    assert len(rows) == 25
    assert sum(r["area"] == "kobe_motomachi_nankinmachi" for r in rows) == 13
    assert sum(r["area"] == "okayama_hokancho" for r in rows) == 12
    assert {"LES HIRONDELLES", "jewelcandy あ華眞", "ほうかん町みつの", "ETERNITY", "KAKKY'S BAR"} <= names


# ---------------------------------------------------------------- exclusions


def test_payments_made_with_points_do_not_count(world):
    ev = Events("W1")
    ev.entry()
    # Would clear mania ②, ④, ⑤ and the bonus if paid with Wesmo! money.
    ev.pay(3_000, "2026-03-06T06:00:00", paid_with_points=True)
    ev.pay(3_000, "2026-03-06T06:30:00", merchant="kobe-motomachi-02", paid_with_points=True)
    assert run_member(world, ev) == {}


def test_same_payments_without_points_do_count(world):
    ev = Events("W1")
    ev.entry()
    ev.pay(3_000, "2026-03-06T06:00:00")
    ev.pay(3_000, "2026-03-06T06:30:00", merchant="kobe-motomachi-02")
    assert run_member(world, ev) == {"mania_2": 200, "mania_4": 200, "mania_5": 200, "bonus": 1_000}


def test_point_charge_is_not_a_charge(world):
    # Rules' choice: a charge paid with points is a use of points, excluded like payments.
    ev = Events("W1")
    ev.entry()
    ev.charge(100_000, source="point_charge")
    assert run_member(world, ev) == {}


def test_cancelled_and_refunded_activity_does_not_count(world):
    ev = Events("W1")
    ev.entry()
    c = ev.charge(100_000, "2026-03-03T10:00:00")
    ev.undo("cancel", c, "2026-03-03T10:05:00")
    p = ev.pay(3_000, "2026-03-04T15:00:00")
    ev.undo("refund", p, "2026-03-10T15:00:00")
    ev.charge(10_000, "2026-03-05T10:00:00")
    assert run_member(world, ev) == {"casual_1": 200, "mania_7": 200}


def test_refund_after_payment_is_reversed(world):
    ev = Events("W1")
    ev.entry()
    c = ev.charge(100_000, "2026-03-03T10:00:00")
    ev.charge(1_000, "2026-03-04T10:00:00")
    world.add(*ev.items)
    world.run(PAY)
    assert by_award(world, "W1") == {"casual_1": 200, "mania_7": 200, "mania_9": 500, "mania_10": 1_000}
    # The 100,000-yen charge is refunded in May: ⑦ ⑨ ⑩ are taken back, ① stays (1,000-yen charge).
    world.add({"id": "W1-r", "type": "refund", "member": "W1", "at": "2026-05-10T10:00:00", "ref": c["id"]})
    world.run("2026-05-31")
    assert by_award(world, "W1") == {"casual_1": 200}
    assert world.balance("W1", "2026-05-09")["limited"] == 1_900
    assert world.balance("W1", "2026-05-10")["limited"] == 200
    reversals = [e for e in world.journal.entries(member="W1", campaign=C) if e.reverses is not None]
    assert sorted(sum(p.amount for p in e.postings if p.account.startswith("member:")) for e in reversals) \
        == [-1_000, -500, -200]
    assert all(e.effective == dt.date(2026, 5, 10) for e in reversals)


# ---------------------------------------------------------------- campaign window


@pytest.mark.parametrize(
    "at, cleared",
    [
        ("2026-03-01T23:59:59", False),  # the day before the period
        ("2026-03-02T00:00:00", True),  # first day
        ("2026-03-31T23:59:59", True),  # last day
        ("2026-04-01T00:00:00", False),  # the day after
    ],
)
def test_campaign_window(world, at, cleared):
    ev = Events("W1")
    ev.entry("2026-03-02T00:00:00")
    ev.charge(1_000, at)
    assert run_member(world, ev) == ({"casual_1": 200} if cleared else {})


# ---------------------------------------------------------------- entry


@pytest.mark.parametrize(
    "entry_at, paid",
    [
        (None, False),  # 要エントリー
        ("2026-03-01T23:59:59", False),  # before the period: not an entry of this campaign
        ("2026-03-02T00:00:00", True),
        ("2026-03-31T23:59:59", True),  # last day, weeks after the charge: retroactive
        ("2026-04-01T00:00:00", False),  # after the period
    ],
)
def test_entry_within_the_period_is_retroactive(world, entry_at, paid):
    ev = Events("W1")
    ev.charge(100_000, "2026-03-02T09:00:00")
    if entry_at:
        ev.entry(entry_at)
    assert run_member(world, ev) == (
        {"casual_1": 200, "mania_7": 200, "mania_9": 500, "mania_10": 1_000} if paid else {})


def test_entry_of_another_campaign_does_not_count(world):
    ev = Events("W1")
    ev.entry("2026-03-05T10:00:00", campaign="yearend-2024")
    ev.charge(1_000)
    assert run_member(world, ev) == {}


# ---------------------------------------------------------------- the whole course and the lottery


def test_all_ten_mania_missions_and_the_maximum_of_11000(world):
    ev = Events("W1").all_ten()
    ev.pay(1, "2026-03-20T15:00:00", merchant="okayama-hokancho-03")  # the bonus challenge
    got = run_member(world, ev)
    assert got == {
        "casual_1": 200, "casual_2": 300, "casual_combo": 500,
        "mania_1": 200, "mania_2": 200, "mania_3": 200, "mania_4": 200, "mania_5": 200,
        "mania_6": 1_000, "mania_7": 200, "mania_8": 300, "mania_9": 500, "mania_10": 1_000,
        "bonus": 1_000,
        "mania_lottery": 5_000,  # the only candidate: fewer than 77, everyone wins
    }
    # 最大6,000pt limited + 5,000pt basic = 最大11,000pt.
    assert world.balance("W1") == {"basic": 5_000, "limited": 6_000, "charge_only": 0}
    basic = [lot for lot in world.journal.lots("W1") if lot.kind == "basic"]
    assert [(lot.amount, lot.expires) for lot in basic] == [(5_000, BASIC_EXPIRES)]
    prize = [e for e in world.journal.entries(member="W1", campaign=C) if e.memo.get("award") == "mania_lottery"]
    assert [e.effective for e in prize] == [PAY_DATE]


def test_one_video_misses_the_lottery(world):
    # Rules' choice: mission ① (動画2本視聴) is complete only with two videos.
    ev = Events("W1").all_ten()
    ev.items = [e for e in ev.items if not (e["type"] == "video_view" and e["video"] == "v2")]
    got = run_member(world, ev)
    assert got["mania_1"] == 100
    assert "mania_lottery" not in got
    draw = [e for e in world.journal.entries(campaign=C) if e.key == DRAW_KEY]
    assert [d.memo["winners"] for d in draw] in ([], [[]])


def test_missing_one_mission_misses_the_lottery(world):
    # All ten but mission ② (the 6:00 payment of 300 yen is at 10:00 instead).
    ev = Events("W1").all_ten()
    for e in ev.items:
        if e["type"] == "wesmo_payment" and e["amount"] == 300:
            e["at"] = "2026-03-12T10:00:00"
    got = run_member(world, ev)
    assert "mania_2" not in got and "mania_lottery" not in got
    assert got["mania_10"] == 1_000


def test_refund_of_a_winners_charge_takes_back_the_missions_and_the_prize(world):
    ev = Events("W1").all_ten()
    big = next(e for e in ev.items if e["type"] == "wesmo_charge")
    world.add(*ev.items)
    world.run(PAY)
    assert world.balance("W1") == {"basic": 5_000, "limited": 5_000, "charge_only": 0}
    # The only charge (100,000 yen) is refunded on 2026-05-15: casual ① and the combo, mania
    # ⑦ ⑨ ⑩ are no longer cleared, nor "all ten", so the 5,000 basic prize goes back too.
    world.add({"id": "W1-r", "type": "refund", "member": "W1", "at": "2026-05-15T10:00:00", "ref": big["id"]})
    world.run("2026-05-31")
    assert by_award(world, "W1") == {
        "casual_2": 300, "mania_1": 200, "mania_2": 200, "mania_3": 200, "mania_4": 200,
        "mania_5": 200, "mania_6": 1_000, "mania_8": 300,
    }
    assert world.balance("W1", "2026-05-14") == {"basic": 5_000, "limited": 5_000, "charge_only": 0}
    assert world.balance("W1", "2026-05-15") == {"basic": 0, "limited": 2_600, "charge_only": 0}


def _lottery_events(n: int) -> list[dict]:
    out = []
    for i in range(n):
        out += Events(f"M{i:03d}").all_ten().items
    return out


def _draw(world):
    draws = [e for e in world.journal.entries(campaign=C) if e.key == DRAW_KEY]
    assert len(draws) == 1
    return draws[0]


def test_lottery_77_winners_deterministic(tmp_path):
    events = _lottery_events(80)
    members = {f"M{i:03d}" for i in range(80)}
    results = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        w = new_world(tmp_path / name)
        w.add(*events)
        w.run("2026-05-31")
        draw = _draw(w)
        winners = draw.memo["winners"]
        assert len(winners) == 77 and len(set(winners)) == 77
        assert set(winners) <= members
        assert sorted(draw.memo["order"]) == sorted(members)  # every candidate is drawn
        assert draw.effective == PAY_DATE
        net: dict[str, int] = defaultdict(int)
        for _, _, who, pts in w.awards(C):
            net[who] += pts
        assert {m for m in members if net[m] == 4_000 + 1_000 + 5_000} == set(winners)
        assert {m for m in members if net[m] == 4_000 + 1_000} == members - set(winners)
        losers = members - set(winners)
        assert len(losers) == 3
        for m in losers:
            assert w.balance(m) == {"basic": 0, "limited": 5_000, "charge_only": 0}
        for m in winners:
            assert w.balance(m) == {"basic": 5_000, "limited": 5_000, "charge_only": 0}
        results.append((winners, draw.memo["seed"], draw.memo["candidates_digest"]))
    # A fresh database with the same events draws the same winners with the same seed.
    assert results[0] == results[1]


def test_lottery_with_fewer_than_77_candidates_everyone_wins(world):
    world.add(*_lottery_events(3))
    world.run(PAY)
    draw = _draw(world)
    assert sorted(draw.memo["winners"]) == ["M000", "M001", "M002"]
    for m in ("M000", "M001", "M002"):
        assert by_award(world, m)["mania_lottery"] == 5_000
        assert world.balance(m)["basic"] == 5_000


# ---------------------------------------------------------------- snapshot



def test_snapshot_small_scenario(world, snapshot):
    """Three members: a casual user, a mania user who clears everything, and one who
    enters late and has a refunded payment."""
    casual = Events("CASUAL")
    casual.entry("2026-03-10T08:00:00")
    casual.charge(3_000, "2026-03-02T07:00:00")
    for day in (3, 4, 5):
        casual.pay(600, f"2026-03-{day:02d}T18:00:00")
    mania = Events("MANIA").all_ten()
    mania.pay(450, "2026-03-21T14:00:00", merchant="kobe-motomachi-10")
    late = Events("LATE")
    p = late.pay(1_200, "2026-03-07T12:30:00")  # Saturday lunch: ③ and ④, then refunded
    late.undo("refund", p, "2026-03-08T10:00:00")
    late.pay(850, "2026-03-14T11:15:00")  # Saturday lunch, 850: ③ only
    late.video("v9", "2026-03-20T21:00:00")
    late.entry("2026-03-31T22:00:00")
    world.add(*casual.items, *mania.items, *late.items)
    world.run("2026-11-01")
    assert by_award(world, "LATE") == {"mania_1": 100, "mania_3": 200}
    assert journal_projection(world, C, expiries=True) == snapshot
