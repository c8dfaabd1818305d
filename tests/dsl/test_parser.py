"""Syntax, through the public parse API (`parse`, `parse_file`) and the AST node classes:
the precedence and associativity of every operator, literals, each named syntax error
at its `line:col` with its exact message (never lark's token lists), every error of a
file, invalid dates and times at their column, and the syntax files of tests/dsl/broken/."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from points.dsl import ast
from points.dsl.errors import RulesError
from points.dsl.parser import parse, parse_file

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
BROKEN = Path(__file__).resolve().parent / "broken"


def errors(text: str):
    with pytest.raises(RulesError) as info:
        parse(text, "x.rules")
    return [(d.line, d.column, d.message) for d in info.value.diagnostics], info.value


# ---------------------------------------------------------------- expressions

def sx(e) -> str:
    """An expression as a fully parenthesised prefix form: `a + b * c` -> `(+ a (* b c))`.
    Any node this does not know fails the test, so a new node needs a line here."""
    if isinstance(e, (ast.BinOp, ast.Compare)):
        return f"({e.op} {sx(e.left)} {sx(e.right)})"
    if isinstance(e, ast.Unary):
        return f"({e.op} {sx(e.operand)})"
    if isinstance(e, ast.Conditional):
        return f"(if {sx(e.cond)} {sx(e.then)} {sx(e.otherwise)})"
    if isinstance(e, ast.InRange):
        return f"(in {sx(e.value)} {sx(e.low)} {'..' if e.inclusive_end else '..<'} {sx(e.high)})"
    if isinstance(e, ast.Name):
        return e.name
    if isinstance(e, ast.Dotted):
        return f"{e.base}.{e.attr}"
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(sx(a) for a in e.args)})"
    if isinstance(e, ast.Filtered):
        return f"{e.stream} where {sx(e.cond)}"
    if isinstance(e, ast.ListLit):
        return f"[{', '.join(sx(i) for i in e.items)}]"
    if isinstance(e, ast.Literal):
        v = e.value
        if v is None or isinstance(v, bool):
            return {None: "none", True: "true", False: "false"}[v]
        if isinstance(v, str):
            return f'"{v}"'
        return str(v)
    raise AssertionError(f"sx() does not know {type(e).__name__}")


def expr(source: str):
    """The expression of `value x = <source>` in a one-line campaign."""
    rules = parse(f'campaign a "t"\n  value x = {source}\n', "x.rules")
    (value,) = rules.campaigns[0].values
    return value.expr


@pytest.mark.parametrize("source, tree", [
    # `*` and `/` before `+` and `-`, whichever side they are on; parentheses win
    ("a + b * c", "(+ a (* b c))"),
    ("a * b + c", "(+ (* a b) c)"),
    ("a - b / c", "(- a (/ b c))"),
    ("a / b - c", "(- (/ a b) c)"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("a * (b - c)", "(* a (- b c))"),
    # arithmetic before comparisons, comparisons before `not`, `not` before `and`, `and` before `or`
    ("a + b > c * d", "(> (+ a b) (* c d))"),
    ("a - 1 == b", "(== (- a 1) b)"),
    ("not a == b", "(not (== a b))"),
    ("not a and b", "(and (not a) b)"),
    ("a and not b", "(and a (not b))"),
    ("a or b and c", "(or a (and b c))"),
    ("a and b or c", "(or (and a b) c)"),
    ("a > 1 and b < 2 or c != 3", "(or (and (> a 1) (< b 2)) (!= c 3))"),
    ("a or (b or c)", "(or a (or b c))"),
    ("(a or b) and c", "(and (or a b) c)"),
    ("not not a", "(not (not a))"),
    # unary minus binds tighter than every binary operator
    ("-a", "(neg a)"),
    ("-3", "(neg 3)"),
    ("-a * b", "(* (neg a) b)"),
    ("a * -b", "(* a (neg b))"),
    ("-a - b", "(- (neg a) b)"),
    ("a - -b", "(- a (neg b))"),
    ("- -a", "(neg (neg a))"),
    ("-(a + b)", "(neg (+ a b))"),
    ("-a.amount / 2", "(/ (neg a.amount) 2)"),
    ("-f(x) + 1", "(+ (neg f(x)) 1)"),
    ("-a < b", "(< (neg a) b)"),
    # `if/else` binds loosest: its branches and its condition are whole `or` expressions
    ("a if c else b", "(if c a b)"),
    ("a + 1 if c or d else b * 2", "(if (or c d) (+ a 1) (* b 2))"),
    ("a or b if c else d", "(if c (or a b) d)"),
    ("a if c else b or d", "(if c a (or b d))"),
    ("a if c > 0 and d else 0", "(if (and (> c 0) d) a 0)"),
    ("(a if c else b) + 1", "(+ (if c a b) 1)"),
    # membership and ranges take arithmetic operands
    ("a in [1, 2] and b", "(and (in a [1, 2]) b)"),
    ("a not in [1]", "(not in a [1])"),
    ("a has \"x\" or b has one of [\"y\"]", '(or (has a "x") (has one of b ["y"]))'),
    ("date in 2026-01-01 .. 2026-01-31", "(in date 2026-01-01 .. 2026-01-31)"),
    ("d + 1 in lo ..< hi - 1", "(in (+ d 1) lo ..< (- hi 1))"),
    ("not d in lo .. hi", "(not (in d lo .. hi))"),
    # calls and filters
    ("sum(p.amount) * 2", "(* sum(p.amount) 2)"),
    ("count(p where amount > 0 and x) > 1", "(> count(p where (and (> amount 0) x)) 1)"),
    ("min(a, b + c)", "min(a, (+ b c))"),
])
def test_precedence(source, tree):
    assert sx(expr(source)) == tree


@pytest.mark.parametrize("source, tree", [
    ("a - b - c", "(- (- a b) c)"),
    ("a - b + c", "(+ (- a b) c)"),
    ("a + b - c", "(- (+ a b) c)"),
    ("a / b / c", "(/ (/ a b) c)"),
    ("a / b * c", "(* (/ a b) c)"),
    ("a * b / c", "(/ (* a b) c)"),
    ("a and b and c", "(and (and a b) c)"),
    ("a or b or c", "(or (or a b) c)"),
    # if/else nests to the right: `a if c else b if d else e` is `a if c else (b if d else e)`
    ("a if c else b if d else e", "(if c a (if d b e))"),
    ("a - (b - c)", "(- a (- b c))"),
])
def test_associativity(source, tree):
    assert sx(expr(source)) == tree


@pytest.mark.parametrize("source, value", [
    ("1_000", 1000),
    ("0", 0),
    ("25%", Fraction(1, 4)),
    ("2.5%", Fraction(1, 40)),
    ("100%", Fraction(1)),
    ('"J-WEST"', "J-WEST"),
    ('"a\\"b\\\\c\\n\\u00e9"', 'a"b\\c\né'),
    ("true", True),
    ("false", False),
    ("none", None),
])
def test_literals(source, value):
    lit = expr(source)
    assert isinstance(lit, ast.Literal)
    assert lit.value == value and type(lit.value) is type(value)


def test_dates_and_times_are_literals():
    assert str(expr("2026-02-28").value) == "2026-02-28"
    assert str(expr("05:00").value) == "05:00:00"
    assert str(expr("23:59:59").value) == "23:59:59"


def test_comparisons_do_not_chain():
    found, _ = errors('campaign a "t"\n  value x = a < b < c\n')
    assert found == [(2, 19, "syntax error: unexpected `<`")]


def test_spans_point_at_the_source():
    rules = parse('campaign a "t"\n  value x =\n    a + b * c\n', "x.rules")
    e = rules.campaigns[0].values[0].expr
    assert (e.span.line, e.span.column, e.span.end_column) == (3, 5, 14)
    assert (e.right.span.line, e.right.span.column, e.right.span.end_column) == (3, 9, 14)


# ---------------------------------------------------------------- named syntax errors

CAMPAIGN = 'campaign a "t"\n'


@pytest.mark.parametrize("text, line, col, message", [
    # MissingExpression
    (CAMPAIGN + "  value x =\n", 2, 11, "expected a value or condition here (unexpected end of file)"),
    (CAMPAIGN + '  value x = "abc\n', 2, 13,
     "expected a value or condition here (unexpected character '\"')"),
    # MissingKind
    (CAMPAIGN + "  award p = 500\n    when x\n", 3, 5,
     "an award needs a point kind after its amount (unexpected `when`)"),
    (CAMPAIGN + "  award p = 500\n", 2, 13, "an award needs a point kind after its amount (unexpected end of file)"),
    # UnclosedBracket
    (CAMPAIGN + "  stream s = ex_booking where (date in window\n  value v = 1\n", 3, 3,
     "a bracket or parenthesis is not closed (unexpected `value`)"),
    (CAMPAIGN + "  value x = [1, 2\n", 2, 17, "a bracket or parenthesis is not closed (unexpected end of file)"),
    (CAMPAIGN + "  value x = f(1\n", 2, 15, "a bracket or parenthesis is not closed (unexpected end of file)"),
    # MissingEquals
    (CAMPAIGN + "  value x 1\n", 2, 11, "expected '=' after the name (unexpected number '1')"),
    (CAMPAIGN + "  stream s wesmo_payment\n", 2, 12, "expected '=' after the name (unexpected name 'wesmo')"),
    # UnknownClause
    (CAMPAIGN + "  frobnicate\n", 2, 3, "not a clause of a campaign (unexpected name 'frobnicate')"),
    (CAMPAIGN + "  value x = 1 2\n", 2, 15, "not a clause of a campaign (unexpected number '2')"),
    (CAMPAIGN + "  value x = 1 @ 2\n", 2, 15, "not a clause of a campaign (unexpected character '@')"),
    # BadCampaignHeader
    ('campaign "t"\n', 1, 10, "a campaign starts with `campaign name \"title\"` (unexpected text '\"t\"')"),
    ('campaign Year-End "t"\n', 1, 10,
     "a campaign starts with `campaign name \"title\"` (unexpected name 'Year')"),
    ('campain a "t"\n', 1, 1, "a campaign starts with `campaign name \"title\"` (unexpected name 'campain')"),
    # MissingRangeEnd
    (CAMPAIGN + "  window 2026-01-01\n", 2, 10,
     "a date or time range needs both ends: `A .. B` or `A ..< B` (unexpected end of file)"),
    (CAMPAIGN + "  window 2026-01-01 ..\n", 2, 21,
     "a date or time range needs both ends: `A .. B` or `A ..< B` (unexpected end of file)"),
    # BadAwardOption
    (CAMPAIGN + "  award p = 1 basic sometimes\n", 2, 21,
     "expected an award option: when, on, expires or by lottery (unexpected name 'sometimes')"),
    (CAMPAIGN + "  award p = 1 basic\n    by chance\n", 3, 8,
     "expected an award option: when, on, expires or by lottery (unexpected name 'chance')"),
    (CAMPAIGN + "  award p = 1 basic\n    expires\n", 3, 5,
     "expected an award option: when, on, expires or by lottery (unexpected end of file)"),
    # no named class fits: a plain syntax error, still located and without token lists
    (CAMPAIGN + "  value x = a if b\n", 2, 18, "syntax error: unexpected end of file"),
])
def test_named_syntax_errors(text, line, col, message):
    found, exc = errors(text)
    assert found[0] == (line, col, message)
    rendered = exc.render()
    assert rendered.startswith(f"x.rules:{line}:{col}: {message}\n")
    assert "Expected one of" not in rendered and "* " not in rendered


def test_a_named_error_shows_its_hint():
    """The hint of each named class is shown under its message."""
    _, exc = errors(CAMPAIGN + "  award p = 500\n")
    assert exc.render().splitlines()[-1].strip() == (
        "hint: e.g. `award prize = 500 basic` (kinds: basic, limited, charge_only)")
    _, exc = errors(CAMPAIGN + "  value x 1\n")
    assert exc.render().splitlines()[-1].strip() == "hint: e.g. `value spend = sum(booking.amount)`"


def test_every_syntax_error_is_reported():
    text = ('campaign a "t"\n  window 2026-03-02 .. 2026-03-31\n  value total sum(x.amount)\n'
            '  award prize = 100 limited sometimes\n  award other = limited when total > 0\n')
    found, exc = errors(text)
    assert [(line, col) for line, col, _ in found] == [(3, 15), (4, 29), (5, 25)]
    rendered = exc.render().splitlines()
    assert rendered[0] == "x.rules:3:15: expected '=' after the name (unexpected name 'sum')"
    assert rendered[1] == "      value total sum(x.amount)"
    assert rendered[2] == "                  ^"


def test_invalid_dates_at_their_column():
    found, _ = errors('campaign a "t"\n  window 2025-12-26 .. 2026-02-30\n')
    assert found == [(2, 24, "not a valid date: 2026-02-30")]
    found, _ = errors('campaign a "t"\n  window 2025-13-01 .. 2026-01-01\n  award p = 1 basic on 2026-04-31\n')
    assert found == [(2, 10, "not a valid date: 2025-13-01"), (3, 24, "not a valid date: 2026-04-31")]


def test_invalid_time():
    found, _ = errors('campaign a "t"\n  window 2025-12-26 .. 2026-01-01\n'
                      '  stream s = wesmo_payment where time in 05:00 .. 25:00\n')
    assert found == [(3, 51, "not a valid time of day: 25:00")]


def test_duplicate_clauses_kept_for_the_checker():
    rules = parse('campaign a "t"\n  window 2025-12-26 .. 2026-01-01\n  window 2025-12-26 .. 2026-01-01\n', "x")
    assert [(tag, span.line) for tag, span in rules.campaigns[0].duplicates] == [("window", 3)]


# ---------------------------------------------------------------- the broken/ syntax files

@pytest.mark.parametrize("name, expected", [
    ("01_syntax_missing_kind.rules", [
        (6, 5, "an award needs a point kind after its amount (unexpected `when`)"),
        (7, 15, "expected a value or condition here (unexpected end of file)"),
    ]),
    ("02_syntax_unclosed.rules", [
        (5, 3, "a bracket or parenthesis is not closed (unexpected `value`)"),
        (6, 3, "not a clause of a campaign (unexpected name 'frobnicate')"),
    ]),
    ("03_invalid_date.rules", [(3, 24, "not a valid date: 2026-02-30")]),
    ("26_syntax_several.rules", [
        (6, 15, "expected '=' after the name (unexpected name 'sum')"),
        (7, 29, "expected an award option: when, on, expires or by lottery (unexpected name 'sometimes')"),
        (8, 25, "an award needs a point kind after its amount (unexpected `when`)"),
        (9, 36, "a date or time range needs both ends: `A .. B` or `A ..< B` (unexpected end of file)"),
    ]),
])
def test_broken_syntax_files(name, expected):
    with pytest.raises(RulesError) as info:
        parse_file(BROKEN / name, f"broken/{name}")
    assert [(d.path, d.line, d.column, d.message) for d in info.value.diagnostics] == [
        (f"broken/{name}", *e) for e in expected]


def test_parse_file_reports_an_unreadable_file_at_line_one(tmp_path):
    with pytest.raises(RulesError) as info:
        parse_file(tmp_path / "none.rules", "none.rules")
    assert [(d.path, d.line, d.column, d.message) for d in info.value.diagnostics] == [
        ("none.rules", 1, 1, "no such rules file")]
    (tmp_path / "latin1.rules").write_bytes(b'campaign a "caf\xe9"\n')
    with pytest.raises(RulesError) as info:
        parse_file(tmp_path / "latin1.rules", "latin1.rules")
    assert [(d.line, d.column, d.message) for d in info.value.diagnostics] == [
        (1, 1, "not UTF-8 text (invalid continuation byte at byte 15)")]


# ---------------------------------------------------------------- the shipped rules

@pytest.mark.parametrize("path", sorted(RULES.glob("*.rules")), ids=lambda p: p.name)
def test_each_shipped_file_holds_the_campaign_it_is_named_after(path):
    rules = parse_file(path)
    assert [c.name for c in rules.campaigns] == [path.stem]
    assert all(c.awards for c in rules.campaigns)
