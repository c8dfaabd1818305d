"""A bad number in a table is an error at its cell (file:line:col, and why), not a type
mismatch at a rule that reads the column; a lookup by equal keys with a duplicate key is
a `check` error naming both lines."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from points.cli.main import cli
from tests.reliability.helpers import copy_rules

TABLE = "data/jwest_merchants.csv"


def _check(folder):
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert "Traceback" not in result.output
    return result


def _set_cell(folder, line: int, column: str, value: str) -> int:
    """Write `value` into a cell; returns its 1-based character column."""
    path = folder / TABLE
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    i = header.index(column)
    cells[i] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    return sum(len(c) + 1 for c in cells[:i]) + 1


@pytest.mark.parametrize("value, why", [
    ("１", "'１' is not written with ASCII digits; write numbers with 0-9"),
    ("1.5", "'1.5' is not a whole number (table numbers are integers)"),
    ("1" + "0" * 40, "'100000000000...(41 characters)' is beyond the 64-bit range"),
    ("9223372036854775808", "'9223372036854775808' is beyond the 64-bit range"),
])
def test_a_bad_number_is_named_at_its_cell(tmp_path, value, why):
    folder = copy_rules(tmp_path / "rules")
    col = _set_cell(folder, 4, "osc", value)
    result = _check(folder)
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"{folder / TABLE}:4:{col}: column osc: {why}"), first
    assert "type mismatch" not in result.output


def test_text_columns_and_valid_numbers_are_unchanged(tmp_path):
    folder = copy_rules(tmp_path / "rules")
    _set_cell(folder, 4, "name", "1.5")  # a name that looks like a number: the column is text
    assert _check(folder).exit_code == 0


def test_a_duplicate_key_of_a_lookup_names_both_lines(tmp_path):
    folder = copy_rules(tmp_path / "rules")
    path = folder / TABLE
    text = path.read_text(encoding="utf-8")
    third = text.split("\n")[3]  # line 4
    path.write_text(text.rstrip("\n") + "\n" + third + "\n", encoding="utf-8")
    last = len(path.read_text(encoding="utf-8").rstrip("\n").split("\n"))
    key = third.split(",")[0]
    result = _check(folder)
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{folder / TABLE}:{last}:1: duplicate key in table jwest_merchants: lines 4 and {last} both "
        f"have merchant {key!r}, and a `lookup ... where merchant == ...` must find one row")
    assert result.output.count("duplicate key") == 1  # three lookups, one finding


def test_rows_told_apart_by_a_range_may_share_a_key(tmp_path):
    folder = copy_rules(tmp_path / "rules")
    (folder / "data" / "point_up_periods.csv").write_text(
        "facility,start,end,factor\nabc,2025-01-01,2025-01-31,2\nabc,2025-03-01,2025-03-31,3\n",
        encoding="utf-8")
    result = _check(folder)
    assert result.exit_code == 0, result.output
