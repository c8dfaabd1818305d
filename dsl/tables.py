"""Reference tables: CSV files beside the rules, loaded into TEMP tables for SQL joins.

A table may only be read from the rules folder (or below it): a rules file
cannot reach other files on the machine. Column names become SQL identifiers,
so they must be plain lower-case words; values are bound as parameters.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import apsw
import attrs

from points.dsl import limits
from points.dsl.errors import Diagnostic, at

IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
INT_RE = re.compile(r"-?[0-9]{1,19}")  # ASCII digits, 64-bit at most (checked below)


class TableError(Exception):
    """Raised when a reference table cannot be read or is not a well-formed CSV."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line, self.column = line, column  # of the bad cell in the CSV file, when one is


def diagnostic(exc: TableError, span, relative: str) -> Diagnostic:
    """A table's error: at its bad cell (`rules/data/x.csv:5:3`) when it has one, else at
    the `table` declaration of the rules file."""
    if exc.line is None:
        return at(span, str(exc), "tables are CSV files in the rules folder, e.g. \"data/stores.csv\"")
    return Diagnostic(str(Path(span.path).parent / relative), exc.line, exc.column or 1, str(exc))


@attrs.frozen
class Table:
    name: str
    path: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # 'int' or 'text' per column
    rows: tuple[tuple, ...]
    digest: str
    lines: tuple[int, ...] = ()  # the CSV line of each row

    def duplicate(self, columns: tuple[str, ...]) -> tuple[int, int, tuple] | None:
        """(first line, second line, values) of two rows equal in `columns`, or None."""
        at_ = [self.columns.index(c) for c in columns]
        seen: dict[tuple, int] = {}
        for row, line in zip(self.rows, self.lines):
            key = tuple(row[i] for i in at_)
            if all(v == "" for v in key):  # a blank key is no key (as unique_column skips NULL)
                continue
            if key in seen:
                return seen[key], line, key
            seen[key] = line
        return None

    @property
    def sql_name(self) -> str:
        return f'temp."ref_{self.name}_{self.digest[:12]}"'

    def column(self, name: str) -> str:
        if name not in self.columns:
            raise TableError(f"table {self.name} has no column {name!r}")
        return f'"{name}"'

    def column_type(self, name: str) -> str:
        return self.types[self.columns.index(name)]


def resolve(rules_dir: Path, relative: str) -> Path:
    """The table's path, refusing anything outside the rules folder."""
    if Path(relative).is_absolute() or "\\" in relative:
        raise TableError(f"table path must be relative to the rules folder: {relative!r}")
    base = rules_dir.resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise TableError(f"table path leaves the rules folder: {relative!r}")
    if target.suffix.lower() != ".csv":
        raise TableError(f"a table must be a .csv file: {relative!r}")
    return target


def load(name: str, rules_dir: Path, relative: str) -> Table:
    path = resolve(rules_dir, relative)
    try:
        data = limits.read_limited(path, limits.MAX_TABLE_BYTES)  # no FIFO, no huge file
        text = data.decode("utf-8-sig")
    except limits.FileRefused as exc:
        raise TableError(f"table {relative}: {exc}") from None
    except FileNotFoundError:
        raise TableError(f"no such table file: {relative}") from None
    except UnicodeDecodeError:
        raise TableError(f"table {relative} is not UTF-8") from None
    except OSError as exc:
        raise TableError(f"cannot read table {relative}: {exc.strerror}") from None
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise TableError(f"table {relative} is empty (a header row is required)") from None
    header = [h.strip() for h in header]
    for col in header:
        if not IDENT.fullmatch(col):
            raise TableError(f"table {relative}: column {col!r} must be a lower-case word")
    if len(set(header)) != len(header):
        raise TableError(f"table {relative}: duplicate column names")
    raw, lines, texts = [], [], text.splitlines()
    for row in reader:
        n = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise TableError(f"table {relative}:{n}: expected {len(header)} columns, got {len(row)}", n)
        raw.append([c.strip() for c in row])
        lines.append(n)
    types = tuple(_column_type(relative, header[i], i, raw, lines, texts) for i in range(len(header)))
    rows = tuple(
        tuple(int(v) if t == "int" else v for v, t in zip(r, types)) for r in raw
    )
    digest = hashlib.sha256(data).hexdigest()
    return Table(name, relative, tuple(header), types, rows, digest, tuple(lines))


def _is_int(cell: str) -> bool:
    return bool(INT_RE.fullmatch(cell)) and abs(int(cell)) <= limits.MAX_INT


def _numeric(cell: str) -> bool:
    """Written as a number, valid or not: `12`, `１２`, `1.5`, `1e3`, 10^40."""
    if not any(ch.isdigit() for ch in cell):
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_type(relative: str, name: str, i: int, raw: list, lines: list, texts: list) -> str:
    """'int' when every cell is an ASCII integer within 64 bits; 'text' when some cell is
    not written as a number; a column of numbers with one that is not a valid integer
    is an error at that cell (it used to turn the column into text silently)."""
    cells = [r[i] for r in raw]
    if cells and all(_is_int(c) for c in cells):
        return "int"
    if not cells or not all(_numeric(c) for c in cells):
        return "text"
    k = next(k for k, c in enumerate(cells) if not _is_int(c))
    cell, line = cells[k], lines[k]
    if any(ch.isdigit() and not "0" <= ch <= "9" for ch in cell):
        why = "is not written with ASCII digits; write numbers with 0-9"
    elif INT_RE.fullmatch(cell) or re.fullmatch(r"-?[0-9]+", cell):
        why = "is beyond the 64-bit range (points and yen are 64-bit integers)"
    else:
        why = "is not a whole number (table numbers are integers)"
    shown = cell if len(cell) <= 40 else f"{cell[:12]}...({len(cell):,} characters)"
    source = texts[line - 1] if 0 < line <= len(texts) else ""
    column = 1
    if '"' not in source:  # the cell's own column (a quoted line: its start)
        fields = source.split(",")
        column = sum(len(f) + 1 for f in fields[:i]) + len(fields[i]) - len(fields[i].lstrip()) + 1
    raise TableError(f"column {name}: {shown!r} {why}", line, column)


def install(conn: apsw.Connection, table: Table) -> None:
    """Create the TEMP table for `table` on this connection (once)."""
    exists = conn.execute(
        "SELECT 1 FROM temp.sqlite_master WHERE type='table' AND name=?",
        (table.sql_name.split('"')[1],),
    ).fetchone()
    if exists:
        return
    cols = ", ".join(f'"{c}" {"INTEGER" if t == "int" else "TEXT"}' for c, t in zip(table.columns, table.types))
    conn.execute(f"CREATE TEMP TABLE {table.sql_name.split('.', 1)[1]} ({cols})")
    if table.rows:
        marks = ", ".join("?" for _ in table.columns)
        conn.executemany(f"INSERT INTO {table.sql_name} VALUES ({marks})", table.rows)
    conn.execute(f'CREATE INDEX IF NOT EXISTS temp."{table.sql_name.split(chr(34))[1]}_k" '
                 f'ON {table.sql_name.split(".", 1)[1]} ("{table.columns[0]}")')
