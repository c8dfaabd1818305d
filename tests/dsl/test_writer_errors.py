"""Errors for rule writers (issue 13 item 5): every error of a file, also after a syntax
error; weekdays named in hints; a dash in a name; plain words for what is not part of
the language, and what to write instead."""

from __future__ import annotations

import pytest

from points.dsl import checker
from points.dsl.errors import RulesError
from points.dsl.loader import check_files
from points.dsl.parser import parse
from tests.support import RULES

HEAD = 'campaign c "t"\n  window 2026-01-01 .. 2026-01-31\n'


def check_text(tmp_path, text: str):
    path = tmp_path / "c.rules"
    path.write_text(text, encoding="utf-8")
    _, found, _ = check_files([path], tmp_path)
    return [(d.line, d.message) for d in found if d.is_error]


def test_semantic_errors_are_reported_after_a_syntax_error(tmp_path):
    found = check_text(tmp_path, HEAD + "  stream pay = card_payment where amount >\n"
                       "  stream ok = card_payment where merchant == \"x\"\n"
                       "  value total = sum(pay.amount)\n"
                       "  value other = sum(ok.amout)\n"
                       "  award a = total + other basic\n")
    lines = [line for line, _ in found]
    assert lines == [4, 6], found  # the syntax error, then the misspelt field two lines on
    assert "unexpected name 'ok'" in found[0][1]
    assert found[1][1] == "stream ok (card_payment) has no field amout"
    # `pay` was in the broken clause: its uses are not reported again


def test_the_unfinished_clause_before_is_named(tmp_path):
    with pytest.raises(RulesError) as exc:
        parse(HEAD + "  stream pay = card_payment where amount >\n  stream ok = card_payment\n", "x.rules")
    (d,) = exc.value.diagnostics
    assert (d.line, d.column) == (4, 10)
    assert d.hint == "is the clause before it unfinished? `stream` was read as part of its expression"


def errors(body: str):
    found, _ = checker.check(parse(HEAD + body, "x.rules"), RULES)
    return [(d.message, d.hint) for d in found]


@pytest.mark.parametrize("word", ["saturday", "Saturday", "SUNDAYS", "Sat"])
def test_weekday_names_are_hinted(word):
    ((message, hint),) = errors(f"  stream s = card_payment where weekday == {word}\n  award a = count(s) basic\n")
    assert message == f"unknown name {word}: not a weekday of the language"
    assert hint.startswith("weekdays are written mon, tue, wed, thu, fri, sat, sun")
    assert errors("  stream s = card_payment where weekday == sat\n  award a = count(s) basic\n") == []


def test_weekend_is_hinted_per_member_too():
    ((message, hint),) = errors("  stream s = card_payment\n  award a = 1 basic when weekend\n")
    assert message == "unknown name weekend: not a weekday of the language"
    assert hint.startswith("a weekend is `weekday in [sat, sun]`")


def test_a_dash_between_names_reads_as_a_minus():
    ((message, _),) = errors("  stream s = card_payment\n  award a = 1 basic when jwest-card.monthly > 0\n")
    assert message == ("`jwest-card.monthly` reads as `jwest - card.monthly`: another campaign's award is "
                       "read with awarded() or award_date()")
    ((message, _),) = errors("  stream s = card_payment\n  value v = count(s) + first-day\n  award a = v basic\n")
    assert message == "`first-day` reads as `first - day`: names are written with `_`, as in `first_day`"
    # known names with a minus between them are a subtraction
    assert errors("  stream s = card_payment\n  value x = count(s)\n  value y = x-x\n  award a = y basic\n") == []


@pytest.mark.parametrize("expr, says", [
    ("avg(s.amount)", "`avg()` is not part of the rules language: an average is `sum(s.f) / count(s)`"),
    ("if(count(s) > 1, 1, 2)", "`if()` is not part of the rules language: a choice is written `A if CONDITION else B`"),
    ("datediff(first(s.date), last(s.date))", "`datediff()` is not part of the rules language: the days between"),
    ("today", "`today` is not part of the rules language: there is no clock in the rules"),
    ("null", "`null` is not part of the rules language: nothing is written `none`"),
])
def test_what_is_not_part_of_the_language_is_said_plainly(expr, says):
    ((message, _),) = errors(f"  stream s = card_payment\n  value v = {expr}\n  award a = 1 basic when v != none\n")
    assert message.startswith(says)


@pytest.mark.parametrize("condition, says, hint", [
    ("a && b", "`&&` is not part of the rules language", "write `and`"),
    ("a || b", "`||` is not part of the rules language", "write `or`"),
    ("!a", "`!` is not part of the rules language", "write `not x` (and `!=` for not equal)"),
    ("x == 'a'", "text is written in double quotes", 'e.g. `product != "EX旅パック"`'),
    ("x = 5", "`=` gives a name its value; to compare write `==`", "e.g. `when spend == 5_000`"),
])
def test_syntax_of_other_languages_is_named(condition, says, hint):
    with pytest.raises(RulesError) as exc:
        parse(HEAD + f"  award a = 1 basic when {condition}\n", "x.rules")
    (d,) = exc.value.diagnostics
    assert (d.message, d.hint) == (says, hint)
