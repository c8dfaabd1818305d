"""Semantic checks: the seed rules check clean; every check has a broken example;
a catalogue of broken files is snapshot-tested; mutated files never crash the checker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from points.dsl import checker
from points.dsl.compiler import compile_campaign
from points.dsl.errors import RulesError
from points.dsl.parser import parse

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
RULE_FILES = sorted(RULES.glob("*.rules"))
BROKEN_DIR = Path(__file__).with_name("broken")
BROKEN = sorted(BROKEN_DIR.glob("*.rules"))

HEAD = 'campaign c "t"\n  window 2026-03-02 .. 2026-03-31\n'


def diags(text: str, rules_dir: Path = RULES):
    found, _ = checker.check(parse(text, "x.rules"), rules_dir)
    return [(d.line, d.column, d.message) for d in found]


def messages(text: str, rules_dir: Path = RULES):
    return [m for _, _, m in diags(text, rules_dir)]


def one(text: str, rules_dir: Path = RULES):
    found = diags(text, rules_dir)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- the real programs

@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_seed_rules_check_clean(path):
    rules = parse(path.read_text(encoding="utf-8"), path.name)
    found, tables = checker.check(rules, RULES)
    assert found == []
    for c in rules.campaigns:
        assert {t.name for t in c.tables} <= set(tables)
        compile_campaign(c, tables)


def test_seed_rules_check_many_clean():
    files = [parse(p.read_text(encoding="utf-8"), p.name) for p in RULE_FILES]
    assert checker.check_many(files, RULES) == []


# ---------------------------------------------------------------- header

def test_duplicate_clause():
    assert one(HEAD + "  window 2026-03-02 .. 2026-03-31\n") == (
        3, 3, "duplicate `window` clause: a campaign has at most one")


def test_needs_window_or_cycle():
    assert one('campaign c "t"\n  document "x"\n') == (1, 1, "campaign c has neither a window nor a cycle")


def test_cycle_only_is_fine():
    text = 'campaign c "t"\n  every month from day 16 to day 15\n  stream p = card_payment where date in period\n' \
           '  award a = sum(p.amount) basic\n'
    assert diags(text) == []


def test_cycle_days():
    found = messages('campaign c "t"\n  every month from day 30 to day 29\n')
    assert "day 30 of a monthly cycle must be between 1 and 28" in found
    assert "day 29 of a monthly cycle must be between 1 and 28" in found


def test_cycle_gaps():
    line, col, msg = one('campaign c "t"\n  every month from day 1 to day 20\n')
    assert (line, col) == (2, 3) and "would leave gaps" in msg


def test_window_backwards_and_not_dates():
    assert one('campaign c "t"\n  window 2026-03-31 .. 2026-03-02\n') == (
        2, 10, "the window is empty: 2026-03-31 is after 2026-03-02")
    assert one('campaign c "t"\n  window 2026-03-02 .. 10:00\n') == (
        2, 24, "the window is bounded by dates like 2025-12-26, not `10:00`")


def test_window_end_exclusive_refused():
    line, col, msg = one('campaign c "t"\n  window 2026-03-02 ..< 2026-03-31\n')
    assert (line, col) == (2, 10) and "`..`" in msg


def test_entry_bounds():
    assert one(HEAD + "  entry required within 2026-03-10 .. 2026-03-01\n") == (
        3, 25, "the entry period is empty: 2026-03-10 is after 2026-03-01")


def test_budget():
    assert one(HEAD + "  budget 0 basic\n") == (3, 3, "a budget must be more than 0 points")
    assert one(HEAD + "  budget 10 basik\n") == (3, 3, "unknown point kind basik")


# ---------------------------------------------------------------- kinds

def test_kind_declaration_must_name_a_ledger_kind():
    line, col, msg = one('kind premium "P"\n' + HEAD)
    assert (line, col) == (1, 1) and msg.startswith("unknown point kind premium")


def test_award_kind_unknown_with_hint():
    found, _ = checker.check(parse(HEAD + "  award a = 1 limitd\n", "x.rules"), RULES)
    assert [(d.line, d.column, d.message) for d in found] == [(3, 15, "unknown point kind limitd")]
    assert found[0].hint.startswith("did you mean limited?")


def test_kind_declared_twice_differently_in_one_file():
    text = 'kind basic "A"\nkind basic "B"\n' + HEAD
    assert one(text) == (2, 1, "kind basic is declared differently at line 1")


# ---------------------------------------------------------------- tables

def test_table_outside_rules_folder():
    line, col, msg = one(HEAD + '  table t from "../../etc/passwd.csv"\n')
    assert (line, col) == (3, 3) and msg == "table path leaves the rules folder: '../../etc/passwd.csv'"


def test_table_missing_and_absolute():
    assert one(HEAD + '  table t from "data/nope.csv"\n') == (3, 3, "no such table file: data/nope.csv")
    assert "relative to the rules folder" in one(HEAD + '  table t from "/etc/x.csv"\n')[2]


def test_table_duplicate():
    text = HEAD + '  table t from "data/blue_tag_stores.csv"\n  table t from "data/jwest_merchants.csv"\n'
    assert one(text) == (4, 3, "table t is already declared at line 3")


def test_table_returned_and_columns_checked():
    text = HEAD + '  table t from "data/blue_tag_stores.csv"\n' \
                  "  stream p = wesmo_payment where merchant in t.code\n"
    found, tables = checker.check(parse(text, "x.rules"), RULES)
    assert list(tables) == ["t"]
    assert [(d.line, d.column, d.message) for d in found] == [(4, 46, "table t has no column code")]


def test_lookup_checks():
    text = HEAD + '  table m from "data/jwest_merchants.csv"\n' \
                  "  stream p = card_payment field r = lookup rate in m where merchant == merchant else 1\n"
    assert one(text) == (4, 37, "table m has no column rate")
    text = HEAD + "  stream p = card_payment field r = lookup standard in nope where merchant == merchant else 1\n"
    assert one(text) == (3, 37, "unknown table nope")
    text = HEAD + '  table m from "data/jwest_merchants.csv"\n' \
                  "  stream p = card_payment field r = lookup standard in m where shop == merchant else 1\n"
    assert one(text) == (4, 64, "table m has no column shop")


# ---------------------------------------------------------------- streams

def test_unknown_event_type_hint():
    found, _ = checker.check(parse(HEAD + "  stream s = ex_bookin\n", "x.rules"), RULES)
    assert [(d.line, d.column, d.message) for d in found] == [(3, 14, "unknown event type ex_bookin")]
    assert found[0].hint.startswith("did you mean ex_booking? event types: member_withdrawn")


def test_undone_by_only_undo_events():
    assert one(HEAD + "  stream s = ex_booking undone by cancel, redemption\n")[2].startswith(
        "`undone by redemption`: only cancel, refund, stopover")


def test_fields_unique_and_not_shadowing():
    assert one(HEAD + "  stream s = ex_booking field amount = 1\n") == (
        3, 25, "field amount would hide the event field amount of ex_booking")
    assert one(HEAD + "  stream s = ex_booking field a = 1 field a = 2\n") == (
        3, 37, "field a is already defined in stream s")


def test_where_must_be_boolean():
    assert one(HEAD + "  stream s = wesmo_charge where source\n") == (
        3, 33, "a stream's `where` must be a condition (true or false), not text")


def test_unknown_field_with_hint():
    found, _ = checker.check(parse(HEAD + "  stream s = ex_booking where ride_day >= 2026-03-02\n", "x.rules"), RULES)
    assert [(d.line, d.column, d.message) for d in found] == [(3, 31, "unknown name ride_day: not a field of ex_booking")]
    assert found[0].hint.startswith("did you mean ride_date?")


def test_earlier_fields_and_weekdays_resolve():
    text = HEAD + "  stream s = wesmo_payment where weekday in [sat, sun] and double > 10\n" \
                  "    field base = amount * 2\n    field double = base * 2\n"
    assert diags(text) == []
    text = HEAD + "  stream s = wesmo_payment field a = b field b = amount\n"
    assert one(text) == (3, 38, "field b is defined later in stream s")


def test_window_only_after_in():
    assert one(HEAD + "  stream s = wesmo_payment where window\n")[2].startswith("`window` is a date range")
    assert one(HEAD + "  stream s = wesmo_payment where amount in window\n") == (
        3, 34, "type mismatch: `in window` needs a date, not int")


def test_type_mismatches():
    assert one(HEAD + '  stream s = wesmo_payment where amount == "abc"\n') == (
        3, 34, "type mismatch: cannot compare int with text")
    assert one(HEAD + "  stream s = wesmo_payment where date >= 05:00\n") == (
        3, 34, "type mismatch: cannot compare date with time")
    assert diags(HEAD + "  stream s = ex_booking where ride_date in 2025-12-26 .. 2026-01-04\n"
                        "  stream t = wesmo_payment where time in 05:00 ..< 10:00\n") == []
    assert one(HEAD + "  stream s = ex_booking where ride_date in 05:00 .. 06:00\n") == (
        3, 44, "type mismatch: the range bound is time, the value is date")


def test_in_table_and_has():
    text = HEAD + '  table b from "data/blue_tag_stores.csv"\n' \
                  '  stream s = wesmo_payment where merchant in b.merchant\n' \
                  '  stream e = ex_booking where segments has "sanyo" and segments has one of ["kyushu", "other"]\n'
    assert diags(text) == []
    assert one(HEAD + '  stream e = ex_booking where service has "ex"\n') == (
        3, 31, "`has` needs a list field of the event on its left")
    assert one(HEAD + '  stream e = ex_booking where segments has one of "ex"\n') == (
        3, 51, '`has one of` needs a list: `segments has one of ["sanyo", "kyushu"]`')


def test_division_and_percent_per_event_must_be_rounded():
    assert one(HEAD + "  stream s = wesmo_payment where amount / 2 > 1\n") == (
        3, 34, "`amount / 2` is a fraction here: round it (per event, only whole numbers are compared, "
        "kept in a field or added up)")
    assert one(HEAD + "  stream s = wesmo_payment where amount * 5% > 1\n") == (
        3, 34, "`amount * 5%` is a fraction here: round it (per event, only whole numbers are compared, "
        "kept in a field or added up)")
    assert diags(HEAD + "  stream s = wesmo_payment where floor(amount * 5%) > 1\n") == []


def test_aggregates_of_other_streams_in_a_filter():
    ok = HEAD + "  stream a = mynapoint_application\n" \
                "  stream c = icoca_charge where date >= first(a.date) and count(a) > 0\n"
    assert diags(ok) == []
    assert one(HEAD + "  stream c = icoca_charge where count(c) > 0\n") == (
        3, 33, "stream c cannot use an aggregate of itself in its own filter")
    loop = HEAD + "  stream a = icoca_charge where count(b) > 0\n  stream b = icoca_charge where count(a) > 0\n"
    assert one(loop)[2] == "streams depend on each other through their filters: a -> b -> a"


def test_values_in_a_filter():
    ok = HEAD + "  stream a = mynapoint_application\n  value start = first(a.date)\n" \
                "  stream c = icoca_charge where date >= start\n"
    assert diags(ok) == []
    bad = HEAD + "  stream a = icoca_charge\n  value lim = floor(sum(a.amount) * 10%)\n" \
                 "  stream c = wesmo_payment where amount > lim\n"
    assert one(bad) == (5, 43, "value lim cannot be used in a stream: it uses `floor(sum(a.amount) * 10%)`")
    self_ref = HEAD + "  value n = count(c)\n  stream c = icoca_charge where n > 1\n"
    assert one(self_ref) == (4, 33, "stream c cannot use an aggregate of itself in its own filter (through a value)")


def test_scalar_function_per_event():
    assert diags(HEAD + "  stream s = wesmo_payment where abs(amount) > 0 and min(amount, 5) < 3\n") == []


# ---------------------------------------------------------------- values and awards

STREAM = HEAD + "  stream pay = wesmo_payment where date in window\n"


def test_member_scope_names():
    assert one(STREAM + "  value v = amount\n") == (4, 13, "amount is a field of each event, not a value of the member")
    assert one(STREAM + "  value v = pay + 1\n") == (4, 13, "pay is a stream of events, not a value")
    assert one(STREAM + "  value v = nothing\n") == (4, 13, "unknown name nothing")
    assert one(STREAM + "  value v = pay.amount\n")[2] == "`pay.amount` is one value per event: use an aggregate"


def test_aggregate_forms_are_accepted():
    text = STREAM + """\
  value a = sum(pay.amount) + count(pay) + count(pay where amount > 5) + distinct_days(pay where amount > 1)
  value b = any(pay.paid_with_points) and all(pay where amount > 0) and exists(pay)
  value c = count_distinct(pay.merchant) + min(pay.amount) + max(pay.amount) + min(a, 3) + max(a, 1, 2)
  value d = first(pay.date) < last(pay.date) and date_reaching(pay.amount, 1_000) != none
  value e = abs(a) + floor(a * 5%) + ceil(a, 10) + trunc(a, 1_000) + round(a / 3)
  award x = a + c + e limited when b and d
"""
    assert diags(text) == []


def test_unknown_function_and_arity():
    found, _ = checker.check(parse(STREAM + "  value v = summ(pay.amount)\n", "x.rules"), RULES)
    assert (found[0].line, found[0].column, found[0].message) == (4, 13, "unknown function summ")
    assert "did you mean sum?" in found[0].hint and "date_reaching" in found[0].hint
    assert one(STREAM + "  value v = count(pay, pay)\n") == (4, 13, "count() takes 1 argument, not 2")
    assert one(STREAM + "  value v = round(1, 2, 3)\n")[2].startswith("round() takes 1 or 2 arguments")
    assert one(STREAM + "  value v = abs(1, 2)\n") == (4, 13, "abs() takes 1 argument, not 2")


def test_aggregate_of_unknown_stream_or_field():
    assert one(STREAM + "  value v = count(pays)\n") == (4, 19, "unknown stream pays")
    assert one(STREAM + "  value v = sum(pay.amout)\n") == (4, 17, "stream pay (wesmo_payment) has no field amout")


def test_aggregate_field_types():
    assert one(STREAM + "  value v = sum(pay.merchant)\n") == (4, 17, "sum() needs a number field; pay.merchant is text")
    assert one(STREAM + "  value v = any(pay.amount)\n") == (4, 17, "any() needs a yes/no field; pay.amount is int")
    assert one(STREAM + "  value v = first(pay.amount)\n")[2].startswith("first() takes the date")
    assert one(STREAM + "  value v = sum(pay)\n")[2].startswith("sum() needs a field of the stream")
    assert one(STREAM + "  value v = count(pay.amount)\n")[2].startswith("count() counts events")
    assert one(STREAM + "  value v = date_reaching(pay.amount, total)\n")[2].startswith(
        "the threshold of date_reaching()")


def test_group_sum():
    ok = 'campaign c "t"\n  every month from day 16 to day 15\n  stream p = card_payment where date in period\n' \
         '    field m = 2\n  value b = sum over p by m: (trunc(sum(amount), 1_000) / 1_000 * (m - 1))\n' \
         '  award x = max(b, 0) basic\n'
    assert diags(ok) == []
    assert one(STREAM + "  value b = sum over pays by merchant: (sum(amount))\n")[2] == \
        "unknown stream pays in `sum over`"
    assert one(STREAM + "  value b = sum over pay by tier: (sum(amount))\n")[2] == \
        "stream pay has no field tier to group by"
    assert one(STREAM + "  value k = 2\n  value b = sum over pay by merchant: (sum(amount) * k)\n")[2].startswith(
        "inside `sum over pay by merchant` only the key")


def test_value_cycle_and_duplicates():
    found = diags(STREAM + "  value a = b + 1\n  value b = a * 2\n  value a = 3\n")
    assert (4, 3, "a depends on itself: a -> b -> a") in found
    assert (6, 3, "a is already declared (as a value)") in found


def test_award_amount_and_when():
    assert one(STREAM + '  award x = "lots" limited\n') == (4, 13, "the amount of award x must be a number of points, not text")
    assert one(STREAM + "  award x = 1 limited when count(pay)\n") == (
        4, 28, "the `when` of award x must be a condition (true or false), not int")


def test_rounding_step():
    assert one(STREAM + "  value v = floor(sum(pay.amount), 0)\n")[2].startswith("the step of floor() must be")


# ---------------------------------------------------------------- dates of awards

def test_pay_date_outside_campaign():
    assert one(STREAM + "  award x = 1 basic on 2025-03-01\n") == (
        4, 21, "a step dated outside its campaign: payment on 2025-03-01 is before the campaign starts (2026-03-02)")
    assert one(STREAM + "  award x = 1 basic on 2030-03-01\n")[2].endswith(
        "more than 2 years after the campaign ends (2026-03-31)")
    assert one(STREAM + "  pay on 2020-01-01\n")[2].startswith("a step dated outside its campaign")


def test_pay_date_forms():
    assert one(STREAM + "  award x = 1 basic on day 26 after period end\n")[2].startswith(
        "`on day N after period end` needs a monthly cycle")
    assert one(STREAM + "  award x = 1 basic when exists(pay) on day 40 of month after first(pay.date)\n") == (
        4, 38, "day 40 is not a day of a month (1 to 31)")
    assert one(STREAM + "  award x = 1 basic when exists(pay) on day 18 of month after count(pay)\n") == (
        4, 63, "`on day N of month after ...` needs a date, not int")
    # No pay date at all: the default applies, no error.
    assert diags(STREAM + "  award x = 1 basic\n") == []


def test_expiry_before_payment():
    assert one(STREAM + "  award x = 1 basic on 2026-04-30 expires 2026-04-01\n") == (
        4, 35, "award x would expire on 2026-04-01, before it is paid on 2026-04-30")


def test_lotteries():
    assert one(STREAM + "  award x = 1 basic on 2026-04-30 by lottery 0 winners\n") == (
        4, 35, "a lottery needs at least 1 winner")
    assert one(STREAM + "  award x = 1 basic by lottery 3 winners\n") == (
        4, 21, "the lottery of award x needs a fixed payment date, the day of the draw")
    assert diags(STREAM + "  pay on 2026-04-30\n  award x = 1 basic by lottery 3 winners\n") == []
    assert one(STREAM + "  award x = 1 basic on 2026-04-30 by lottery within budget\n") == (
        4, 35, "`by lottery within budget` needs a `budget` clause")
    assert one(STREAM + "  budget 10 limited\n  award x = 1 basic on 2026-04-30 by lottery within budget\n")[2] == \
        "`by lottery within budget`: the budget is in limited points, the award pays basic"


# ---------------------------------------------------------------- unreachable missions

def test_contradicting_thresholds():
    assert one(STREAM + "  mission mania_2 = 200 limited when count(pay) >= 5 and count(pay) < 3\n") == (
        4, 38, "mission mania_2 can never be cleared: `count(pay) >= 5` and `count(pay) < 3` contradict")
    text = STREAM + "  value spend = sum(pay.amount)\n  award big = 1 basic when spend >= 5000 and spend < 1000\n"
    assert one(text) == (5, 28, "award big can never be cleared: `spend >= 5000` and `spend < 1000` contradict")


def test_false_and_chained_unreachable():
    found = diags(STREAM + "  mission a = 1 limited when false\n  mission b = 1 limited when a and exists(pay)\n"
                           "  mission c = 1 limited when not a\n")
    assert found == [(4, 30, "mission a can never be cleared: its condition is false"),
                     (5, 30, "mission b can never be cleared: it needs mission a, which can never be cleared")]


def test_stream_outside_window():
    text = HEAD + "  stream s = ex_booking where date in 2025-03-02 .. 2025-03-31\n" \
                  "  award a = 1 basic when exists(s)\n"
    found = diags(text)
    assert found[0] == (3, 31, "stream s never matches an event of the campaign: "
                                "`date in 2025-03-02 .. 2025-03-31` is outside the campaign window 2026-03-02 .. 2026-03-31")
    assert found[1] == (4, 26, "award a can never be cleared: it needs events of stream s, which never matches")
    # After the window but before the payment day is fine (e.g. withdrawals before payment).
    assert diags(HEAD + "  stream w = member_withdrawn where date <= 2026-04-30 and date > 2026-03-31\n"
                        "  award a = 1 basic when not exists(w) on 2026-04-30\n") == []


# ---------------------------------------------------------------- all errors, sorted; several files

def test_all_errors_sorted():
    text = HEAD + "  stream s = ex_bookin\n  value v = nothing\n  award a = 1 basik\n"
    found = diags(text)
    assert [(line, col) for line, col, _ in found] == [(3, 14), (4, 13), (5, 15)]


def test_check_many():
    a = parse('kind basic "A"\n' + HEAD, "a.rules")
    b = parse('kind basic "B"\n' + HEAD, "b.rules")
    found = checker.check_many([a, b], RULES)
    assert [(d.path, d.line, d.message) for d in found] == [
        ("b.rules", 1, "kind basic is declared differently in a.rules:1:1"),
        ("b.rules", 2, "campaign c is already declared in a.rules:2:1"),
    ]


# ---------------------------------------------------------------- the catalogue of broken files

def render(path: Path) -> str:
    label = f"broken/{path.name}"
    source = path.read_text(encoding="utf-8")
    try:
        rules = parse(source, label)
    except RulesError as exc:
        return exc.render()
    found, _ = checker.check(rules, BROKEN_DIR)
    others = []
    for p in BROKEN:
        try:
            others.append(parse(p.read_text(encoding="utf-8"), f"broken/{p.name}"))
        except RulesError:
            pass
    found += [d for d in checker.check_many(others, BROKEN_DIR) if d.path == label]
    return "\n".join(d.format(source) for d in found) or "(no diagnostics)"


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_catalogue(path, snapshot):
    out = render(path)
    assert out == snapshot
    if path.name != "27_cross_file_a.rules":
        assert out != "(no diagnostics)"
    for line in out.splitlines():
        if not line.startswith("    ") and line != "(no diagnostics)":
            assert re.match(r"broken/[\w.]+:\d+:\d+: \S", line), line


# ---------------------------------------------------------------- mutations never crash

DIAG = re.compile(r"^m\.rules:(\d+):(\d+): .+")
TOKENS = ["(", ")", "[", "]", "..", "..<", "==", ">=", "and", "or", "not", "in", "where", "when", "on",
          "sum", "count", "window", "period", "value", "award", "mission", "stream", "0", "-1",
          "2026-02-30", "25:00", "%", "/", "\"x\"", "lookup", "over", "by", "field", "none", "true"]


def mutate(text: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        if not text:
            break
        i = data.draw(st.integers(0, len(text) - 1))
        op = data.draw(st.sampled_from(["delete", "insert", "duplicate", "token", "number", "swap"]))
        if op == "delete":
            j = data.draw(st.integers(i, min(len(text), i + 12)))
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + data.draw(st.sampled_from(list("()[].,=<>\"%_-: \n#ax1"))) + text[i:]
        elif op == "duplicate":
            j = data.draw(st.integers(i, min(len(text), i + 40)))
            text = text[:j] + text[i:j] + text[j:]
        elif op == "token":
            text = text[:i] + " " + data.draw(st.sampled_from(TOKENS)) + " " + text[i:]
        elif op == "number":
            nums = list(re.finditer(r"\d+", text))
            if nums:
                m = data.draw(st.sampled_from(nums))
                text = text[:m.start()] + str(data.draw(st.integers(0, 10**6))) + text[m.end():]
        else:
            words = list(re.finditer(r"[a-z_]+", text))
            if len(words) > 1:
                m1, m2 = data.draw(st.sampled_from(words)), data.draw(st.sampled_from(words))
                if m1.start() > m2.start():
                    m1, m2 = m2, m1
                if m1.end() <= m2.start():
                    text = text[:m1.start()] + m2.group() + text[m1.end():m2.start()] + m1.group() + text[m2.end():]
    return text


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_rules_never_crash(path, data):
    text = mutate(path.read_text(encoding="utf-8"), data)
    n_lines = len(text.split("\n"))
    try:
        rules = parse(text, "m.rules")
    except RulesError as exc:
        assert exc.diagnostics
        lines = [d.format(text) for d in exc.diagnostics]
        found = exc.diagnostics
    else:
        found, tables = checker.check(rules, RULES)
        lines = [d.format(text) for d in found]
        if not found:  # checked clean: the compiler must accept it
            for c in rules.campaigns:
                compile_campaign(c, {t.name: tables[t.name] for t in c.tables})
    for d, out in zip(found, lines):
        assert DIAG.match(out.splitlines()[0]), out
        assert 1 <= d.line <= n_lines + 1 and d.column >= 1
        assert "Expected one of" not in out
