"""A division by zero: per member it stops the run (test_hostile_rules); per event, in a
stream's `field`, it is `none` for that event. docs/rules-language.md says both."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.test_hostile_rules import _replace, _rules, _run

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules-language.md"


def test_the_language_doc_says_what_run_does():
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    assert "A division by zero is `none`." not in text  # what run never did per member
    assert ("A division by zero in a per-member expression (a `value`, an award, a condition) "
            "stops `run` with an error") in text
    assert "in a per-event `field` (computed in SQL) it gives `none` for that event, which `sum` skips" in text


def _jwest(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.lstrip().startswith("jwest-card:")]


@pytest.mark.slow
def test_a_per_event_division_by_zero_is_none_and_sum_skips_it(tmp_path):
    plain, _ = _run(_rules(tmp_path / "a"), tmp_path / "a")
    folder = _rules(tmp_path / "b")
    _replace(folder, "    field multiplier = rate * (",
             "    field zero = floor(amount / (amount - amount))\n    field multiplier = rate * (")
    _replace(folder, "value total = sum(purchase.amount)", "value total = sum(purchase.zero) + sum(purchase.amount)")
    result, _ = _run(folder, tmp_path / "b")
    assert plain.exit_code == 0 and result.exit_code == 0, result.output
    assert _jwest(result) == _jwest(plain) != []
