"""Reading events files: JSON Lines and CSV -> (line, record, problem), lazily.

Nothing here checks the contract (that is `ledger.event_schema`); a reader
only turns bytes into records and says which lines cannot be parsed, with
the same wording and line numbers whichever path a line takes.

Both readers are written for the common case -- UTF-8 lines of one JSON
object, CSV lines without quotes -- and hand any other line to the standard
library's own parser, so that unusual input is read exactly as before.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Iterator

from points.ledger.event_schema import ALL_FIELDS, CSV_CONVERTERS, CSV_TEXT_COLUMNS, ENVELOPE

JSONL_EXTENSIONS = (".jsonl", ".json", ".ndjson")
CSV_EXTENSIONS = (".csv",)


class EventError(Exception):
    """Raised when an events file cannot be read at all (from `line` on, if given)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line

    def where(self, path) -> str:
        return f"{path}:{self.line}" if self.line else f"{path}"


class HeaderProblem(str):
    """A reason about a CSV header: not a record, so not counted as one."""


def detect_format(path: str | os.PathLike) -> str:
    """'jsonl' or 'csv': by extension, otherwise by the first non-blank character."""
    name = os.fspath(path).lower()
    if name.endswith(JSONL_EXTENSIONS):
        return "jsonl"
    if name.endswith(CSV_EXTENSIONS):
        return "csv"
    with _open(path) as f:
        while True:
            block = f.read(65536)
            if not block:
                return "jsonl"
            text = block.lstrip(b" \t\r\n\xef\xbb\xbf")
            if text:
                return "jsonl" if text[:1] == b"{" else "csv"


def _open(path: str | os.PathLike):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise EventError("no such file") from None
    except IsADirectoryError:
        raise EventError("is a directory, not an events file") from None
    except PermissionError:
        raise EventError("permission denied") from None
    except OSError as exc:
        raise EventError(f"cannot open: {exc.strerror or exc}") from None


def read_records(path: str | os.PathLike, fmt: str | None = None) -> Iterator[tuple[int, Any, Any]]:
    """Parse an events file lazily, without checking the contract.

    Yields (line, record, extra) with 1-based line numbers. If record is None,
    extra is the reason the line (or the CSV header) is bad. Otherwise extra
    is None (JSONL) or, for a CSV row, the frozenset of envelope columns the
    header lacks (already reported once at the header's line).
    Raises EventError if the file cannot be read at all.
    """
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt == "csv":
        return _read_csv(path)
    raise ValueError(f"unknown events format {fmt!r}")


JSONL_BLOCK = 1 << 20  # bytes read and decoded at a time


def _read_jsonl(path) -> Iterator[tuple[int, Any, Any]]:
    # The scanner behind json.loads, without its wrappers: most lines are one
    # object and a line break, and take this path; any other line goes through
    # `_jsonl_line`, which decides exactly as json.loads would.
    scan = json.JSONDecoder().scan_once
    with _open(path) as f:
        n = 0
        for lines, newline in _jsonl_blocks(f):
            if type(lines) is bytes:  # a block that is not all UTF-8: line by line
                for raw in lines.split(b"\n")[:-1] if newline else (lines,):
                    n += 1
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:  # this line is bad; the others are still checked
                        yield n, None, f"not UTF-8 text (byte {exc.start + 1} of the line)"
                        continue
                    parsed = _jsonl_line(n, text + newline)
                    if parsed is not None:
                        yield n, parsed[0], parsed[1]
                continue
            for text in lines:
                n += 1
                try:
                    record, end = scan(text, 0)
                    if end == len(text) or text[end:].isspace():
                        yield n, record, None
                        continue
                except (StopIteration, ValueError, RecursionError):
                    pass
                parsed = _jsonl_line(n, text + newline)
                if parsed is not None:
                    yield n, parsed[0], parsed[1]


def _jsonl_blocks(f) -> Iterator[tuple[list[str] | bytes, str]]:
    """The lines of a binary file, a block at a time: (lines without their
    line break, "\n"), or for a block that does not decode as UTF-8 (its bytes,
    "\n"); the last line if it has no line break comes alone, with "".

    Lines are split on b"\n" only, like iterating over the file; a UTF-8
    sequence never contains that byte, so a block cut after one decodes alone.
    """
    rest = b""
    while True:
        block = f.read(JSONL_BLOCK)
        if not block:
            break
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest += block
            continue
        whole = rest + block[:cut]
        rest = block[cut:]
        try:
            yield whole.decode("utf-8").split("\n")[:-1], "\n"
        except UnicodeDecodeError:
            yield whole, "\n"
    if rest:
        try:
            yield [rest.decode("utf-8")], ""
        except UnicodeDecodeError:
            yield rest, ""


def _jsonl_line(n: int, text: str) -> tuple[Any, str | None] | None:
    """One JSONL line (with its line break, if any) -> (record, None) or
    (None, reason); None for a blank line."""
    loads = json.loads
    try:
        return loads(text), None
    except json.JSONDecodeError as exc:
        if n == 1 and text.startswith("\ufeff"):
            text = text[1:]
            try:
                return loads(text), None
            except json.JSONDecodeError as exc2:
                exc = exc2
        text = text.rstrip()
        if not text:
            return None
        try:  # again without the line break, for the column of the problem
            loads(text)
        except json.JSONDecodeError as exc2:
            exc = exc2
        except (ValueError, RecursionError):
            pass
        return None, f"invalid JSON: {exc.msg} (col {exc.colno})"
    except ValueError as exc:  # e.g. an integer with too many digits
        return None, f"invalid JSON: {exc}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"


_ENVELOPE_NAMES = tuple(f.name for f in ENVELOPE)
_KNOWN_COLUMNS = frozenset(ALL_FIELDS)


def _utf8_lines(f) -> Iterator[str]:
    n = 0
    for raw in f:
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


def _read_csv(path) -> Iterator[tuple[int, Any, Any]]:
    with _open(path) as f:
        header: list[str] | None = None
        plan: list[tuple[int, str, Any]] = []
        names: list[str] = []  # every column, when each is a known field named once
        typed: list[tuple[str, Any]] = []  # (column, converter) of the non-text columns
        ncols = 0
        missing: frozenset[str] = frozenset()
        for line, row, problem in _csv_rows(f):
            if row is None:
                yield line, None, problem
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
                        yield line, None, HeaderProblem(f"empty column name (column {i + 1})")
                    elif name in seen:
                        yield line, None, HeaderProblem(f"duplicate column {name!r}")
                    elif name not in _KNOWN_COLUMNS:
                        unknown.append(name)
                    else:
                        plan.append((i, name, CSV_CONVERTERS[name]))
                    seen.add(name)
                if unknown:
                    names_ = ", ".join(repr(u) for u in unknown)
                    yield line, None, HeaderProblem(
                        f"unknown column{'s' if len(unknown) > 1 else ''} {names_}"
                        f" (known columns: {', '.join(ALL_FIELDS)})"
                    )
                absent = [n for n in _ENVELOPE_NAMES if n not in seen]
                for name in absent:
                    yield line, None, HeaderProblem(f"missing column {name!r} (required for every event)")
                missing = frozenset(absent)
                if len(plan) == ncols:
                    names = header
                    typed = [(name, convert) for _i, name, convert in plan if name not in CSV_TEXT_COLUMNS]
                continue
            if len(row) > ncols and any(cell.strip() for cell in row[ncols:]):
                yield line, None, f"{len(row)} cells, but the header has {ncols} columns"
                continue
            if names:  # the same record as the loop below builds, in fewer steps
                record = {name: cell.strip() for name, cell in zip(names, row) if cell}
                if "" in record.values():  # cells of only spaces are absent values
                    record = {name: cell for name, cell in record.items() if cell}
                for name, convert in typed:
                    cell = record.get(name)
                    if cell is not None:
                        record[name] = convert(cell)
                yield line, record, missing
                continue
            record = {}
            width = len(row)
            for i, name, convert in plan:
                if i < width:
                    cell = row[i].strip()
                    if cell:
                        record[name] = convert(cell)
            yield line, record, missing
