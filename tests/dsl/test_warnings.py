"""Warnings: clauses the engine ignores or reads otherwise than they seem. `points check`
prints them and still succeeds; `load_rules` loads the file."""

from __future__ import annotations

import json

from click.testing import CliRunner

from points.cli.main import cli
from points.dsl import checker
from points.dsl.loader import load_rules
from points.dsl.parser import parse
from tests.support import RULES

BODY = '''
  stream charge = icoca_charge where date in period
  award bonus = 100 basic when exists(charge)
'''


def warnings(text: str):
    found, _ = checker.check(parse(text, "x.rules"), RULES)
    assert all(d.severity == "warning" for d in found), found
    return [(d.line, d.message) for d in found]


def test_a_window_beside_a_cycle_is_a_warning():
    text = 'campaign c "t"\n  window 2026-01-01 .. 2026-03-31\n  every month from day 1 to day 28\n' + BODY
    (found,) = warnings(text.replace("day 1 to day 28", "day 16 to day 15"))
    assert found[0] == 2 and "does not limit the monthly periods" in found[1]
    assert warnings(text.replace("  window 2026-01-01 .. 2026-03-31\n", "").replace(
        "day 1 to day 28", "day 16 to day 15")) == []


def test_a_campaign_pay_date_every_award_overrides_is_a_warning():
    head = 'campaign c "t"\n  window 2026-01-01 .. 2026-01-31\n  pay on 2026-02-10\n'
    (found,) = warnings(head + BODY.replace("exists(charge)", "exists(charge) on 2026-02-20"))
    assert found[0] == 3 and "never used" in found[1]
    assert warnings(head + BODY) == []  # the award uses it


def test_a_budget_no_award_draws_from_is_a_warning():
    head = 'campaign c "t"\n  window 2026-01-01 .. 2026-01-31\n  budget 1_000 limited\n'
    (found,) = warnings(head + BODY)
    assert "no award pays limited points" in found[1]
    assert warnings(head + BODY.replace("100 basic", "100 limited")) == []


def test_check_prints_a_warning_and_succeeds_and_the_run_loads_it(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    path = folder / "c.rules"
    path.write_text('campaign c "t"\n  window 2026-01-01 .. 2026-01-31\n  budget 1_000 limited\n' + BODY,
                    encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "c.rules:3:3: warning: no award pays limited points" in result.output
    assert result.output.rstrip().endswith("ok: 1 files, 1 campaigns (1 warning)")
    result = CliRunner().invoke(cli, ["check", "--json", str(path)])
    data = json.loads(result.output)
    assert data["ok"] is True and [d["severity"] for d in data["diagnostics"]] == ["warning"]
    assert load_rules(folder).campaign("c") is not None


def test_an_error_beside_a_warning_still_fails_the_check(tmp_path):
    path = tmp_path / "c.rules"
    path.write_text('campaign c "t"\n  window 2026-01-01 .. 2026-01-31\n  budget 1_000 limited\n'
                    + BODY.replace("exists(charge)", "exists(chrage)"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1
    assert "warning: no award pays" in result.output and "unknown stream chrage" in result.output
