"""Per-event arithmetic with explicit rounding, and `sum over` with several keys or
nested, computed in SQL: the same numbers as the exact per-member arithmetic, checked
against hand-computed points through the real engine, and refused where a fraction
would be compared or kept unrounded."""

from __future__ import annotations

from fractions import Fraction

import apsw
import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.dsl import checker
from points.dsl.compile_numbers import Frac, combine, rounded
from points.dsl.loader import load_rules
from points.dsl.parser import parse
from points.dsl.runtime import round_to
from tests.support import RULES, new_world

MODES = ["floor", "ceil", "trunc", "round"]
_conn = apsw.Connection(":memory:")


def sql_value(sql: str):
    return _conn.execute(f"SELECT {sql}").fetchone()[0]


@given(st.integers(-10**9, 10**9), st.integers(-1000, 1000).filter(bool), st.sampled_from(MODES),
       st.sampled_from([1, 10, 1_000]), st.booleans())
def test_sql_rounding_of_a_quotient_is_the_exact_rounding(n, d, mode, step, known_positive):
    positive = known_positive and d > 0
    frac = Frac(str(n), f"({d})", positive)
    got = sql_value(rounded(mode, frac, str(step)))
    assert got == round_to(Fraction(n, d), step, mode)


@given(st.integers(-10**6, 10**6), st.integers(1, 999), st.sampled_from(MODES))
def test_sql_percent_of_an_amount_is_the_exact_rounding(amount, percent, mode):
    pct = Frac(str(percent), "100", True, Fraction(percent, 100))
    got = sql_value(rounded(mode, combine("*", Frac(str(amount)), pct)))
    assert got == round_to(Fraction(amount * percent, 100), 1, mode)


def test_halves_round_away_from_zero_in_sql():
    assert [sql_value(rounded("round", Frac(str(n), "2", True))) for n in (5, -5, 3, -3, 1, -1)] == \
        [3, -3, 2, -2, 1, -1]


def test_a_division_by_zero_per_event_is_none():
    assert sql_value(rounded("floor", combine("/", Frac("7"), Frac("0")))) is None


# ---------------------------------------------------------------- through the engine

HEAD = 'campaign pct "2% back"\n  window 2026-01-01 .. 2026-01-31\n'


def rules(tmp_path, body: str):
    folder = tmp_path / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.rules").write_text(HEAD + body, encoding="utf-8")
    return load_rules(folder)


def pay(id_, member, amount, at, merchant="shop"):
    return {"id": id_, "type": "card_payment", "member": member, "at": at, "amount": amount,
            "merchant": merchant}


CAPS = '''
  stream purchase = card_payment where date in window
    field points = min(floor(amount * 2%), 100)
  value daily = sum over purchase by date: (min(sum(points), 150))
  award back = min(daily, 200) basic when daily > 0 on 2026-02-10
'''


def test_per_payment_per_day_per_campaign_caps(tmp_path):
    w = new_world(tmp_path)
    w.add(
        # day 1: 2% of 1,999 = 39.98 -> 39; 2% of 10,000 = 200 -> capped at 100 per payment;
        # 139 that day (under the daily 150)
        pay("p1", "m1", 1_999, "2026-01-05T10:00:00"), pay("p2", "m1", 10_000, "2026-01-05T12:00:00"),
        # day 2: 100 + 100 = 200 -> 150 for the day; the campaign: 139 + 150 = 289 -> 200
        pay("p3", "m1", 9_000, "2026-01-06T10:00:00"), pay("p4", "m1", 5_000, "2026-01-06T11:00:00"),
        # m2: 2% of 49 = 0.98 -> 0 (floor per payment, not of the total); 2% of 51 = 1.02 -> 1
        pay("p5", "m2", 49, "2026-01-07T10:00:00"), pay("p6", "m2", 51, "2026-01-07T10:00:00"),
        # m3: a negative (a return) floors away from zero: -0.5 -> -1; 2% of 100 = 2; total 1
        pay("p7", "m3", 100, "2026-01-08T10:00:00"), pay("p8", "m3", -25, "2026-01-08T11:00:00"),
    )
    w.run("2026-02-28", rules(tmp_path, CAPS))
    assert w.paid("pct", "m1") == 200
    assert w.paid("pct", "m2") == 1
    assert w.paid("pct", "m3") == 1


def test_round_ceil_and_trunc_per_event(tmp_path):
    body = '''
  stream purchase = card_payment where date in window
    field r = round(amount * 2%)
    field c = ceil(amount / 3)
    field t = trunc(amount * 15%, 10)
  award a = sum(purchase.r) basic on 2026-02-10
  award b = sum(purchase.c) limited on 2026-02-10
  award t = sum(purchase.t) charge_only on 2026-02-10
'''
    w = new_world(tmp_path)
    # 2% of 125 = 2.5 -> 3 (half away from zero); 125 / 3 = 41.67 -> 42; 15% of 125 = 18.75 -> 10
    w.add(pay("p1", "m1", 125, "2026-01-05T10:00:00"))
    w.run("2026-02-28", rules(tmp_path, body))
    assert w.balance("m1") == {"basic": 3, "limited": 42, "charge_only": 10}


MULTI = '''
  stream purchase = card_payment where date in window
    field week = week_start(date)
    field points = floor(amount * 1%)
  value per_shop_day = sum over purchase by date, merchant: (min(sum(points), 30))
  value per_week = sum over purchase by week: (min(sum over purchase by date: (min(sum(points), 25)), 40))
  award shop "by day and shop" = per_shop_day basic when per_shop_day > 0 on 2026-02-10
  award week "by week, then day" = per_week limited when per_week > 0 on 2026-02-10
'''


def test_multi_key_and_nested_groups_cap_at_each_level(tmp_path):
    w = new_world(tmp_path)
    w.add(
        # Monday 2026-01-05: shop a 20 + 20 = 40 -> 30; shop b 15 -> 15  => per shop/day 45
        pay("p1", "m1", 2_000, "2026-01-05T10:00:00", "a"), pay("p2", "m1", 2_000, "2026-01-05T11:00:00", "a"),
        pay("p3", "m1", 1_500, "2026-01-05T12:00:00", "b"),
        # Tuesday: shop a 30 -> 30 per shop/day
        pay("p4", "m1", 3_000, "2026-01-06T10:00:00", "a"),
        # next Monday 2026-01-12: shop a 10
        pay("p5", "m1", 1_000, "2026-01-12T10:00:00", "a"),
    )
    w.run("2026-02-28", rules(tmp_path, MULTI))
    # per shop and day: 30 + 15 + 30 + 10 = 85
    # per day capped at 25: mon 55 -> 25, tue 30 -> 25; week 1: 50 -> 40; week 2: 10 -> 10 => 50
    assert w.balance("m1") == {"basic": 85, "limited": 50, "charge_only": 0}


def errors(body: str) -> list[str]:
    found, _ = checker.check(parse(HEAD + body, "x.rules"), RULES)
    return [d.message for d in found if d.is_error]


@pytest.mark.parametrize("clause", [
    "field p = amount * 2%",
    "where amount * 2% > 10",
    "where amount / 3 in 1 .. 5",
    "field p = min(amount * 2%, 5)",
])
def test_a_fraction_per_event_must_be_rounded(clause):
    (message,) = errors(f"  stream purchase = card_payment {clause}\n  award a = count(purchase) basic\n")
    assert "is a fraction here: round it" in message or "is a fraction: round it per event" in message


def test_rounded_per_event_checks_clean_and_a_fractional_step_is_refused():
    assert errors("  stream p = card_payment where floor(amount * 2%) > 10\n"
                  "    field q = round(amount / 3, 10)\n  award a = sum(p.q) basic\n") == []
    (message,) = errors("  stream p = card_payment field q = floor(amount, 50%)\n  award a = sum(p.q) basic\n")
    assert "per event, the step of floor() is a whole number" in message


def test_a_multi_key_group_body_must_be_whole_and_groups_split_the_same_stream():
    base = "  stream p = card_payment\n  stream q = card_payment\n"
    (message,) = errors(base + "  value v = sum over p by date, merchant: (sum(amount) * 2%)\n"
                        "  award a = floor(v) basic\n")
    assert "adds whole numbers: round the body" in message
    (message,) = errors(base + "  value v = sum over p by date: (sum over q by merchant: (sum(amount)))\n"
                        "  award a = v basic\n")
    assert "splits the same stream's groups further" in message
    (message,) = errors(base + "  value v = sum over p by date: (sum over p by date: (sum(amount)))\n"
                        "  award a = v basic\n")
    assert "already split by date" in message
