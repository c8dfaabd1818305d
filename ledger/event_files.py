"""Reading events inputs: JSON Lines and CSV -> (line, record, problem), lazily.

Nothing here checks the contract (that is `ledger.event_schema`); a reader
only turns bytes into records and says which lines cannot be parsed, with
the same wording and line numbers whichever path a line takes.

An input is opened once and read front to back in blocks, so that a pipe, a
FIFO, `/dev/stdin` or `-` (standard input) streams like a file: its format is
sniffed from the first block, which is then read again from memory. A line is
at most MAX_LINE bytes (reading stops with an error at a longer one), so no
input -- /dev/zero included -- makes memory grow. A JSON object with the same
key twice is refused (json.loads would silently keep the last value).

Both readers are written for the common case -- UTF-8 lines of one JSON
object, CSV lines without quotes -- and hand any other line to the standard
library's own parser, so that unusual input is read exactly as before.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

try:
    import msgspec
except ImportError:  # an environment installed before msgspec became a dependency
    msgspec = None

from points.ledger.event_csv import HeaderProblem, _csv_rows, _read_csv, _utf8_lines  # noqa: F401 (tests)
from points.ledger.event_input import MAX_LINE, STDIN, STDIN_LABEL, EventError, Input, _open, _too_long
from points.ledger.event_schema import Problem, Schema, schema_for

__all__ = ["STDIN", "STDIN_LABEL", "EventError", "HeaderProblem", "Input", "MAX_LINE", "detect_format",
           "read_jsonl_rows", "read_records"]

def detect_format(path: str | os.PathLike) -> str:
    """'jsonl' or 'csv': by extension, otherwise by the first non-blank character."""
    source = Input(path).open()
    source.close()
    return source.format


def read_records(path: str | os.PathLike | Input, fmt: str | None = None,
                 schema: Schema | None = None) -> Iterator[tuple[int, Any, Any]]:
    """Parse an events input lazily, without checking the contract.

    Yields (line, record, extra) with 1-based line numbers. If record is None,
    extra is the reason the line (or the CSV header) is bad. Otherwise extra
    is None (JSONL) or, for a CSV row, the frozenset of envelope columns the
    header lacks (already reported once at the header's line).
    Raises EventError if the input cannot be read at all (or from a line on).
    """
    source = path if isinstance(path, Input) else Input(path, fmt)
    if source.stream is None:
        source.open()
    try:
        if source.format == "jsonl":
            yield from _read_jsonl(source.stream)
        elif source.format == "csv":
            yield from _read_csv(source.stream, schema or schema_for())
        else:
            raise ValueError(f"unknown events format {source.format!r}")
    finally:
        source.close()


JSONL_BLOCK = 1 << 20  # bytes read and decoded at a time


class _DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def _pairs(pairs: list) -> dict:
    """object_pairs_hook: a dict, unless a key repeats (then _DuplicateKey)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return record


# Repeated keys, cheaply: a key is its closing quote, any JSON whitespace, then
# `:`. A line holds no line feed, and on the fast paths no tab or carriage
# return (bar one ending the line) and no quote followed by a space and a colon
# or by two spaces ("plain" below), so every key is written `"key":` (as in
# `{"a": 1, "b": 2}`, json.dumps' own spelling). The text then holds at least
# as many `":` as key tokens; as many as the keys read means no key came twice.
# A few C string scans instead of a Python call per object (object_pairs_hook).


class _TooLong(Exception):
    """A line is longer than MAX_LINE bytes (args: its number, when known)."""


_LONG_CHARS = MAX_LINE // 4  # a line of fewer characters cannot exceed MAX_LINE bytes of UTF-8


# (decode, the errors it raises): json.loads, slower, decides the same lines the same way here.
_DECODER = ((msgspec.json.Decoder().decode, (msgspec.DecodeError, ValueError, RecursionError)) if msgspec
            else (json.loads, (ValueError, RecursionError)))


def _read_jsonl(f) -> Iterator[tuple[int, Any, Any]]:
    # Most lines are one object and a line break: msgspec decodes those (in C,
    # several times faster than json's scanner) to the same dict json.loads
    # gives. Whatever msgspec refuses -- NaN, Infinity, numbers out of a
    # float's range, lone surrogate escapes, a BOM, bad JSON -- and every line
    # with a repeated key (msgspec would keep the last value) goes through
    # `_jsonl_line`, which decides exactly as json.loads would.
    return _read_jsonl_items(f)


def read_jsonl_rows(f, typed, label: str, fi: int) -> Iterator[Any]:
    """`_read_jsonl` with typed decoding (`ledger.event_typed.Typed`): each run
    of lines it finishes comes as one list of (row, 'label:line', fi, line),
    in between any other line as `_read_jsonl` gives it, a tuple."""
    return _read_jsonl_items(f, typed, label, fi)


def _read_jsonl_items(f, typed=None, label: str = "", fi: int = 0) -> Iterator[Any]:
    if not hasattr(f, "read"):
        with _open(f) as opened:
            yield from _read_jsonl_items(opened, typed, label, fi)
        return
    decode, not_decoded = _DECODER
    if typed is not None:
        decode_typed, finishers, not_typed = typed.decode, typed.finishers, typed.errors
    count = str.count
    long_chars = _LONG_CHARS
    n = 0
    try:
        for lines, newline in _jsonl_blocks(f):
            if type(lines) is bytes:  # a block that is not all UTF-8: line by line
                for raw in lines.split(b"\n")[:-1] if newline else (lines,):
                    n += 1
                    if len(raw) > MAX_LINE:
                        raise _TooLong(n)
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:  # this line is bad; the others are still checked
                        yield n, None, Problem(f"not UTF-8 text (byte {exc.start + 1} of the line)",
                                               "not UTF-8 text")
                        continue
                    parsed = _jsonl_line(n, text + newline)
                    if parsed is not None:
                        yield n, parsed[0], parsed[1]
                continue
            rows: list = []
            add = rows.append
            for text in lines:
                n += 1
                if len(text) > long_chars and len(text.encode("utf-8", "surrogatepass")) > MAX_LINE:
                    if rows:
                        yield rows
                    raise _TooLong(n)
                # What makes counting `":` sound (see "Repeated keys" above).
                plain = '" :' not in text and '"  ' not in text and "\t" not in text \
                    and ("\r" not in text or text.find("\r") == len(text) - 1)
                if typed is not None and plain:
                    try:
                        struct = decode_typed(text)
                    except not_typed:
                        pass
                    else:
                        row = finishers[type(struct)](struct, text)
                        if row is not None:
                            add((row, f"{label}:{n}", fi, n))
                            continue
                if rows:
                    yield rows
                    rows = []
                    add = rows.append
                try:
                    record = decode(text)
                    # No repeated key (see "Repeated keys" above).
                    if plain and type(record) is dict and count(text, '":') == len(record):
                        yield n, record, None
                        continue
                except not_decoded:
                    pass
                parsed = _jsonl_line(n, text + newline)
                if parsed is not None:
                    yield n, parsed[0], parsed[1]
            if rows:
                yield rows
    except _TooLong as exc:  # with its line, or (an unfinished line) the next one
        raise _too_long(exc.args[0] if exc.args else n + 1) from None


def _jsonl_blocks(f) -> Iterator[tuple[list[str] | bytes, str]]:
    """The lines of a binary file, a block at a time: (lines without their
    line break, "\n"), or for a block that does not decode as UTF-8 (its bytes,
    "\n"); the last line if it has no line break comes alone, with "".

    Lines are split on b"\n" only, like iterating over the file; a UTF-8
    sequence never contains that byte, so a block cut after one decodes alone.
    Raises _TooLong (after the lines before it) when an unfinished line
    exceeds MAX_LINE bytes, so that memory stays bounded.
    """
    rest = b""
    while True:
        block = f.read(JSONL_BLOCK)
        if not block:
            break
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest += block
            if len(rest) > MAX_LINE:
                raise _TooLong
            continue
        whole = rest + block[:cut]
        rest = block[cut:]
        try:
            yield whole.decode("utf-8").split("\n")[:-1], "\n"
        except UnicodeDecodeError:
            yield whole, "\n"
        if len(rest) > MAX_LINE:
            raise _TooLong
    if rest:
        try:
            yield [rest.decode("utf-8")], ""
        except UnicodeDecodeError:
            yield rest, ""


def _jsonl_line(n: int, text: str) -> tuple[Any, str | None] | None:
    """One JSONL line (with its line break, if any) -> (record, None) or
    (None, reason); None for a blank line."""
    def loads(t):
        return json.loads(t, object_pairs_hook=_pairs)

    try:
        return loads(text), None
    except _DuplicateKey as exc:
        return None, Problem(f"the key {show_key(exc.args[0])} appears twice in the object", "duplicate JSON key")
    except json.JSONDecodeError as exc:
        if n == 1 and text.startswith("\ufeff"):
            text = text[1:]
            try:
                return loads(text), None
            except _DuplicateKey as exc2:
                return None, Problem(f"the key {show_key(exc2.args[0])} appears twice in the object",
                                     "duplicate JSON key")
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
        return None, Problem(f"invalid JSON: {exc.msg} (col {exc.colno})", "invalid JSON")
    except ValueError as exc:  # e.g. an integer with too many digits
        return None, Problem(f"invalid JSON: {exc}", "invalid JSON")
    except RecursionError:
        return None, Problem("invalid JSON: nested too deeply", "invalid JSON")


def show_key(key: str) -> str:
    return repr(key if len(key) <= 50 else key[:47] + "...")
