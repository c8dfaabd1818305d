"""Reading CSV events inputs: rows of cells -> (line, record, problem), lazily.

The CSV half of `ledger.event_files` (which see): the header names the
columns, cells are trimmed and converted by the schema's column types, and a
line without quotes is split on commas (exactly what csv.reader returns for
it); any other line goes to csv.reader itself.
"""

from __future__ import annotations

import csv
from typing import Any, Iterator

from points.ledger.event_input import MAX_LINE, EventError, _open, _too_long
from points.ledger.event_schema import ENVELOPE, Problem, Schema, schema_for

CSV_BLOCK = 1 << 20  # bytes read at a time


class HeaderProblem(Problem):
    """A reason about a CSV header: not a record, so not counted as one."""


_ENVELOPE_NAMES = tuple(f.name for f in ENVELOPE)


def _byte_lines(f) -> Iterator[bytes]:
    """The lines of a binary stream (with their b"\\n"), read in blocks; raises
    EventError at a line longer than MAX_LINE bytes."""
    if not hasattr(f, "read"):
        yield from f  # an iterable of lines (tests)
        return
    rest = b""
    n = 0
    while True:
        block = f.read(CSV_BLOCK)
        if not block:
            break
        rest += block
        start = 0
        while True:
            cut = rest.find(b"\n", start) + 1
            if cut == 0:
                break
            n += 1
            if cut - start > MAX_LINE:
                raise _too_long(n)
            yield rest[start:cut]
            start = cut
        rest = rest[start:]
        if len(rest) > MAX_LINE:
            raise _too_long(n + 1)
    if rest:
        yield rest


def _utf8_lines(f) -> Iterator[str]:
    n = 0
    for raw in _byte_lines(f):
        n += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(f"not UTF-8 text (byte {exc.start + 1} of the line)", line=n) from None
        if n == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield text


class _PushBack:
    """An iterator of lines that can give one line back: what csv.reader reads
    from, so that it sees only the lines the fast split leaves to it."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.back: str | None = None

    def __iter__(self):
        return self

    def __next__(self) -> str:
        text = self.back
        if text is None:
            return next(self.lines)
        self.back = None
        return text


def _csv_rows(f) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(first line, cells, None) per CSV record, or (line, None, reason).

    A line with no quote, no carriage return (bar its line end) and no NUL is
    split on commas: exactly what csv.reader returns for it, at a fraction of
    the cost. Any other line goes to csv.reader itself, which may read on for
    a quoted field spanning lines; the line numbers follow what it consumed.
    """
    source = _PushBack(_utf8_lines(f))
    reader = csv.reader(source)
    limit = csv.field_size_limit()
    n = 0  # physical lines consumed so far
    for text in source.lines:
        n += 1
        cells = text[:-1] if text[-1:] == "\n" else text
        if cells[-1:] == "\r":
            cells = cells[:-1]
        if '"' not in cells and "\r" not in cells and "\x00" not in cells and len(cells) <= limit:
            yield n, cells.split(",") if cells else [], None
            continue
        source.back = text
        before = reader.line_num
        try:
            row = next(reader)
        except csv.Error as exc:
            n += reader.line_num - before - 1
            yield n, None, f"bad CSV: {exc}"
            continue
        first = n
        n += reader.line_num - before - 1
        yield first, row, None


_IDENTITY = ("id", "member", "ref")  # cells taken as they stand: never trimmed (see _read_csv)


def _read_csv(f, schema: Schema | None = None) -> Iterator[tuple[int, Any, Any]]:
    """CSV records: cells trimmed and converted by the schema's column types;
    a cell of only spaces is absent. Ids, members and refs are never trimmed,
    so that " W1" is refused in CSV exactly as in JSON Lines."""
    if not hasattr(f, "read"):
        with _open(f) as opened:
            yield from _read_csv(opened, schema)
        return
    schema = schema or schema_for()
    converters, text_columns = schema.csv_converters, schema.csv_text_columns
    header: list[str] | None = None
    plan: list[tuple[int, str, Any]] = []
    names: list[str] = []  # every column, when each is a known field named once
    typed: list[tuple[str, Any]] = []  # (column, converter) of the non-text columns
    identity: list[tuple[int, str]] = []  # (index, column) of id, member, ref
    ncols = 0
    missing: frozenset[str] = frozenset()
    for line, row, problem in _csv_rows(f):
        if row is None:
            yield line, None, Problem(problem, "bad CSV")
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if header is None:
            header = [name.strip() for name in row]
            ncols = len(header)
            seen: set[str] = set()
            unknown = []
            for i, name in enumerate(header):
                if not name:
                    yield line, None, HeaderProblem(f"empty column name (column {i + 1})", "empty column name")
                elif name in seen:
                    yield line, None, HeaderProblem(f"duplicate column {name!r}", "duplicate column")
                elif name not in converters:
                    unknown.append(name)
                else:
                    plan.append((i, name, converters[name]))
                    if name in _IDENTITY:
                        identity.append((i, name))
                seen.add(name)
            if unknown:
                names_ = ", ".join(repr(u if len(u) <= 50 else u[:47] + "...") for u in unknown[:20])
                more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
                yield line, None, HeaderProblem(
                    f"unknown column{'s' if len(unknown) > 1 else ''} {names_}{more}"
                    f" (known columns: {', '.join(schema.all_fields)})", "unknown column"
                )
            absent = [n for n in _ENVELOPE_NAMES if n not in seen]
            for name in absent:
                yield line, None, HeaderProblem(f"missing column {name!r} (required for every event)",
                                                f"missing column {name!r}")
            missing = frozenset(absent)
            if len(plan) == ncols:
                names = header
                typed = [(name, convert) for _i, name, convert in plan if name not in text_columns]
            continue
        if len(row) > ncols and any(cell.strip() for cell in row[ncols:]):
            yield line, None, Problem(f"{len(row)} cells, but the header has {ncols} columns",
                                      "more cells than the header has columns")
            continue
        if names:  # the same record as the loop below builds, in fewer steps
            record = {name: cell.strip() for name, cell in zip(names, row) if cell}
            if "" in record.values():  # cells of only spaces are absent values
                record = {name: cell for name, cell in record.items() if cell}
            for name, convert in typed:
                cell = record.get(name)
                if cell is not None:
                    record[name] = convert(cell)
        else:
            record = {}
            width = len(row)
            for i, name, convert in plan:
                if i < width:
                    cell = row[i].strip()
                    if cell:
                        record[name] = convert(cell)
        width = len(row)
        for i, name in identity:
            # str.strip gives back the very string when there is nothing to
            # strip, so `is not` finds a trimmed cell cheaply (an equal copy
            # would only be put back as it was).
            if i < width:
                cell = row[i]
                if cell and record.get(name) is not cell:
                    record[name] = cell
        yield line, record, missing
