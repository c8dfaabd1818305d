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

IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
INT_RE = re.compile(r"-?[0-9]{1,19}")  # ASCII digits, 64-bit at most (checked below)


class TableError(Exception):
    """Raised when a reference table cannot be read or is not a well-formed CSV."""


@attrs.frozen
class Table:
    name: str
    path: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # 'int' or 'text' per column
    rows: tuple[tuple, ...]
    digest: str

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
    raw = []
    for n, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise TableError(f"table {relative}:{n}: expected {len(header)} columns, got {len(row)}")
        raw.append([c.strip() for c in row])
    types = tuple(
        "int" if raw and all(INT_RE.fullmatch(r[i]) and abs(int(r[i])) <= limits.MAX_INT for r in raw)
        else "text" for i in range(len(header))
    )
    rows = tuple(
        tuple(int(v) if t == "int" else v for v, t in zip(r, types)) for r in raw
    )
    digest = hashlib.sha256(data).hexdigest()
    return Table(name, relative, tuple(header), types, rows, digest)


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
