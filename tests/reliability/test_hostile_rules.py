"""Rules are hostile input (issue 14, dsl/limits.py): every limit is a `file:line:col`
error from `points check` (exit 1, no traceback), and nothing outside the rules folder
is ever read; awards that cannot be written stop the run before its first entry."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from points.cli.main import cli
from points.dsl import limits
from tests.reliability.helpers import ROOT, RULES, copy_rules

SAMPLES = ROOT / "rules" / "samples" / "events.jsonl"
CARD = "jwest-card.rules"


def _check(folder: Path):
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def _rules(tmp_path: Path) -> Path:
    return copy_rules(tmp_path / "rules")


def _replace(folder: Path, old: str, new: str, name: str = CARD) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_col(folder: Path, needle: str, name: str = CARD) -> tuple[int, int]:
    for n, line in enumerate((folder / name).read_text(encoding="utf-8").split("\n"), start=1):
        if needle in line:
            return n, line.index(needle) + 1
    raise AssertionError(needle)


def test_a_budget_beyond_64_bits_is_caught_by_check(tmp_path):
    folder = _rules(tmp_path)
    _replace(folder, "budget 100_000_000 basic", "budget 10000000000000000000000000000000000000000 basic",
             "yearend-2025.rules")
    line, col = _line_col(folder, "10000000000000000000000000000000000000000", "yearend-2025.rules")
    result = _check(folder)
    assert result.exit_code == 1
    assert f"yearend-2025.rules:{line}:{col}: integer 10000000000000000000000000000000000000000 is too large" \
        in result.output


def test_a_5000_digit_literal_is_one_error_not_a_crash(tmp_path):
    folder = _rules(tmp_path)
    _replace(folder, "budget 100_000_000 basic", "budget " + "9" * 5000 + " basic", "yearend-2025.rules")
    result = _check(folder)
    assert result.exit_code == 1 and "(5,000 digits) is too large" in result.output


def test_full_width_digits_are_not_numbers(tmp_path):
    folder = _rules(tmp_path)
    _replace(folder, "budget 100_000_000 basic", "budget １００ basic", "yearend-2025.rules")
    line, col = _line_col(folder, "１００", "yearend-2025.rules")
    result = _check(folder)
    assert result.exit_code == 1
    assert f"yearend-2025.rules:{line}:{col}: '１' is not an ASCII digit" in result.output


def test_a_long_string_literal_is_refused_before_parsing(tmp_path):
    folder = _rules(tmp_path)
    text = (folder / CARD).read_text(encoding="utf-8")
    (folder / CARD).write_text(text + '\n# padding\nkind huge "' + "x" * (limits.MAX_STRING + 1) + '"\n',
                               encoding="utf-8")
    result = _check(folder)
    assert result.exit_code == 1
    assert f"string literal of {limits.MAX_STRING + 1:,} characters" in result.output


def test_deep_nesting_is_an_error_at_its_place(tmp_path):
    folder = _rules(tmp_path)
    deep = " + ".join(["total"] * 1000)
    _replace(folder, "value base = trunc(total, 1_000) / 1_000 * 5", f"value base = {deep}")
    result = _check(folder)
    assert result.exit_code == 1
    assert f"nested more than {limits.MAX_DEPTH} levels deep" in result.output
    line, _ = _line_col(folder, "value base = total")
    assert f"{CARD}:{line}:" in result.output


def test_moderate_nesting_still_runs(tmp_path):
    folder = _rules(tmp_path)
    expr = "(" * 20 + "trunc(total, 1_000)" + ")" * 20 + " / 1_000 * 5"
    _replace(folder, "value base = trunc(total, 1_000) / 1_000 * 5", f"value base = {expr}")
    assert _check(folder).exit_code == 0


def test_a_rules_file_too_big_is_refused(tmp_path):
    folder = _rules(tmp_path)
    (folder / "big.rules").write_bytes(b"#" * (limits.MAX_RULES_BYTES + 1))
    result = _check(folder)
    assert result.exit_code == 1
    assert "big.rules:1:1: " in result.output and "bytes allowed" in result.output


def test_a_symlink_out_of_the_folder_is_not_read(tmp_path):
    folder = _rules(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:SECRET-LINE\n")
    (folder / "x.rules").symlink_to(secret)
    result = _check(folder)
    assert result.exit_code == 1
    assert "x.rules:1:1: a symbolic link out of the rules folder (not read)" in result.output
    assert "SECRET" not in result.output


def _fifo_is_not_opened(path: Path, folder: Path) -> str:
    os.mkfifo(path)
    done: dict = {}
    t = threading.Thread(target=lambda: done.setdefault("r", _check(folder)), daemon=True)
    t.start()
    t.join(30)
    if t.is_alive():  # unblock the reader before failing
        with open(path, "w"):
            pass
        pytest.fail("check hangs on a FIFO")
    return done["r"].output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_rules_file_or_table_is_refused_not_opened(tmp_path):
    folder = _rules(tmp_path)
    out = _fifo_is_not_opened(folder / "f.rules", folder)
    assert "f.rules:1:1: not a regular file" in out
    (folder / "f.rules").unlink()
    table = next((folder / "data").glob("*.csv"))
    table.unlink()
    out = _fifo_is_not_opened(table, folder)
    assert f"{table.name}: not a regular file" in out


def test_a_symlinked_table_out_of_the_folder_is_refused(tmp_path):
    folder = _rules(tmp_path)
    table = next((folder / "data").glob("*.csv"))
    outside = tmp_path / "outside.csv"
    shutil.copyfile(table, outside)
    table.unlink()
    table.symlink_to(outside)
    result = _check(folder)
    assert result.exit_code == 1 and "leaves the rules folder" in result.output


def _run(folder: Path, tmp_path: Path):
    runner = CliRunner()
    db = tmp_path / "p.db"
    assert runner.invoke(cli, ["--db", str(db), "init"]).exit_code == 0
    assert runner.invoke(cli, ["--db", str(db), "import", str(SAMPLES)]).exit_code == 0
    before = db.read_bytes()
    result = runner.invoke(cli, ["--db", str(db), "run", "--until", "2026-06-01", "--rules", str(folder)])
    assert "Traceback" not in result.output
    return result, db.read_bytes() == before


def test_a_fractional_award_stops_the_run_before_any_entry(tmp_path):
    folder = _rules(tmp_path)
    _replace(folder, "value base = trunc(total, 1_000) / 1_000 * 5", "value base = total / 7")
    assert _check(folder).exit_code == 0  # only the data shows it
    result, unchanged = _run(folder, tmp_path)
    assert result.exit_code == 1
    assert "campaign jwest-card, award monthly of member " in result.stderr
    assert "not a whole number" in result.stderr and "nothing was written" in result.stderr
    assert unchanged


def test_division_by_zero_names_the_member_and_the_award(tmp_path):
    folder = _rules(tmp_path)
    _replace(folder, "value base = trunc(total, 1_000) / 1_000 * 5", "value base = total / (total - total)")
    result, unchanged = _run(folder, tmp_path)
    assert result.exit_code == 1
    assert "campaign jwest-card, award monthly of member W" in result.stderr
    assert "division by zero" in result.stderr
    assert unchanged


def test_an_award_beyond_64_bits_stops_the_run_before_any_entry(tmp_path):
    folder = _rules(tmp_path)
    _replace(folder, "value base = trunc(total, 1_000) / 1_000 * 5",
             "value base = total * 9_000_000_000_000_000_000")
    result, unchanged = _run(folder, tmp_path)
    assert result.exit_code == 1
    assert "beyond the 64-bit range" in result.stderr and unchanged
