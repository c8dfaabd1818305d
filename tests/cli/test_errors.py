"""Exit codes, help texts, the README, and no traceback on a user error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from points.cli.main import cli
from tests.reliability.helpers import file_digest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = sorted(cli.commands)


def test_every_contract_command_exists():
    assert set(COMMANDS) >= {"init", "import", "check", "run", "balance", "history", "explain",
                             "campaigns", "verify", "export", "demo"}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert re.search(rf"points (--db \S+ )?{name}\b", result.output)


def test_group_help_has_example():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "Example:" in result.output


READ_COMMANDS = ["import", "check", "run", "balance", "history", "explain", "campaigns", "verify"]


@pytest.mark.parametrize("name", READ_COMMANDS)
def test_read_commands_have_json(name):
    assert "--json" in CliRunner().invoke(cli, [name, "--help"]).output


def test_readme_mentions_every_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert re.search(rf"points (--db \S+ )?{name}\b", text), name
    for doc in ("docs/architecture.md", "docs/rules-language.md", "docs/benchmarks.md", "docs/reliability.md"):
        assert doc in text


def test_unknown_command_and_missing_argument_are_usage_errors(points):
    assert points("frobnicate").exit_code == 2
    assert points("balance").exit_code == 2
    assert points("export", "--format", "xml").exit_code == 2
    assert points("run").exit_code == 2


def _no_traceback(result, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", [["init"], ["balance", "W1"], ["import", "x.jsonl"], ["verify"],
                                     ["history", "W1"], ["export", "--format", "csv"]])
def test_db_is_a_directory(points, command):
    (points.folder / "adir").mkdir()
    result = points.runner.invoke(cli, ["--db", "adir", *command])
    _no_traceback(result)
    assert result.output.startswith("error: ") and "directory" in result.output


@pytest.mark.parametrize("command", [["init"], ["balance", "W1"], ["import", "notes.txt"], ["verify"]])
def test_db_is_not_a_database(points, command):
    notes = points.folder / "notes.txt"
    notes.write_text("hello, this is not SQLite\n" * 100)
    result = points.runner.invoke(cli, ["--db", "notes.txt", *command])
    _no_traceback(result)
    assert "not a points database" in result.output
    assert notes.read_text() == "hello, this is not SQLite\n" * 100


def test_missing_events_file(points):
    result = points("import", "missing.jsonl")
    _no_traceback(result)
    assert "missing.jsonl: no such file" in result.output


def test_events_folder_instead_of_file(points):
    assert points("init").exit_code == 0
    before = file_digest(points.db)
    (points.folder / "folder").mkdir()
    result = points("import", "folder")
    _no_traceback(result)
    assert result.output == "folder: is a directory, not an events file\nerror: 1 problem in the input; nothing imported\n"
    assert file_digest(points.db) == before


@pytest.mark.parametrize("args, option, value", [
    (["balance", "W1", "--as-of", "yesterday"], "--as-of", "yesterday"),
    (["run", "--until", "2026-1-1"], "--until", "2026-1-1"),
    (["explain", "W1", "yearend-2025", "--as-of", "2026-02-31"], "--as-of", "2026-02-31"),
])
def test_invalid_dates_are_usage_errors(ran, args, option, value):
    before = file_digest(ran.db)
    result = ran(*args)
    _no_traceback(result, code=2)
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': '{value}' is not a date (YYYY-MM-DD)")
    assert file_digest(ran.db) == before


def test_missing_rules_folder(ran):
    result = ran("run", "--until", "2026-04-01", "--rules", "no-such-folder")
    _no_traceback(result)
    assert "no-such-folder" in result.output


def test_check_ok(points):
    result = points("check", str(ROOT / "rules"))
    assert result.exit_code == 0
    assert result.output == "ok: 5 files, 5 campaigns\n"


def test_check_broken_file_prints_location_and_caret(points, snapshot):
    rules = points.folder / "rules"
    rules.mkdir()
    (rules / "broken.rules").write_text(
        'campaign broken "A broken campaign"\n'
        "  window 2026-01-01 .. 2026-01-31\n"
        "  budget 1_000 basik\n"
        "  stream x = ex_booking\n"
        "  award a = 10 basic when count(x) >= 1 on 2026-02-05\n",
        encoding="utf-8")
    result = points("check", "rules/broken.rules")
    assert result.exit_code == 1
    first = result.output.splitlines()
    assert re.match(r"rules/broken\.rules:3:\d+: ", first[0])
    assert first[1].strip() == "budget 1_000 basik"
    assert set(first[2].strip()) == {"^"}
    assert result.output == snapshot
    data = __import__("json").loads(points("check", "--json", "rules").output)
    assert data["ok"] is False and data["diagnostics"][0]["line"] == 3


def test_check_missing_path_is_a_finding(points):
    result = points("check", "nowhere.rules")
    _no_traceback(result)
    assert "nowhere.rules:1:1: no such file or folder" in result.output
