"""Syntax: named errors (never lark's token lists), every error of a file, invalid dates at
their column, and a snapshot of the AST of every file in rules/."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from points.dsl import ast
from points.dsl.errors import RulesError
from points.dsl.parser import parse

RULES = Path(__file__).resolve().parents[2] / "rules"
RULE_FILES = sorted(RULES.glob("*.rules"))
SPAN_FIELDS = {"span", "type_span", "kind_span", "duplicates", "source"}


def errors(text: str):
    with pytest.raises(RulesError) as info:
        parse(text, "x.rules")
    return [(d.line, d.column, d.message) for d in info.value.diagnostics], info.value


@pytest.mark.parametrize("text, line, col, message", [
    ('campaign a "t"\n  award p = 500\n    when x\n', 3, 5,
     "an award needs a point kind after its amount (unexpected `when`)"),
    ('campaign a "t"\n  value x =\n', 2, 11, "expected a value or condition here (unexpected end of file)"),
    ('campaign a "t"\n  stream s = ex_booking where (date in window\n  value v = 1\n', 3, 3,
     "a bracket or parenthesis is not closed (unexpected `value`)"),
    ('campaign a "t"\n  value x 1\n', 2, 11, "expected '=' after the name (unexpected number '1')"),
    ('campaign a "t"\n  frobnicate\n', 2, 3, "not a clause of a campaign (unexpected name 'frobnicate')"),
    ('campaign "t"\n', 1, 10, "a campaign starts with `campaign name \"title\"` (unexpected text '\"t\"')"),
    ('campaign a "t"\n  award p = 1 basic sometimes\n', 2, 21,
     "expected an award option: when, on, expires or by lottery (unexpected name 'sometimes')"),
])
def test_named_syntax_errors(text, line, col, message):
    found, exc = errors(text)
    assert found[0] == (line, col, message)
    assert "Expected one of" not in exc.render() and "* " not in exc.render()


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


def _plain(value):
    """The AST without spans, as nested dicts/lists: stable and readable in a snapshot."""
    if attrs.has(type(value)):
        out = {"node": type(value).__name__}
        for f in attrs.fields(type(value)):
            if f.name not in SPAN_FIELDS:
                out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)  # dates, times, fractions


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_ast_of_rules(path, snapshot):
    rules = parse(path.read_text(encoding="utf-8"), path.name)
    assert isinstance(rules, ast.RulesFile)
    assert _plain(rules) == snapshot
