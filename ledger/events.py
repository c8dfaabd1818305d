"""Event import: JSON Lines and CSV files -> the append-only `events` table.

An import is all-or-nothing for the whole call: every line of every input is
checked against the declared catalogue of the rules folder (`ledger.event_schema`
compiles it; default: the bundled one), every problem is collected as a
`file:line: reason` string (the first `max_errors` kept, all counted by reason),
and only if there is none are the new events written -- in one transaction, in
file order, hash-chained like the journal (`hash = sha256(prev_hash + body + US +
source)`, the first `prev_hash` is 64 zeros).

An event whose id is already stored (or seen earlier in the same call) with
the same normalised content is skipped, so re-importing a file is a no-op; the
same id with other content is an error.

How it stays fast and bounded in memory: inputs are opened once and streamed
in blocks (`ledger.event_files`); a JSONL line of a declared type is decoded
straight into its row (`ledger.event_typed`), other plainly valid records
through the compiled builder of their type (`ledger.event_rows`), anything else
through `normalise`; rows are written in chunks inside a savepoint (duplicate
ids and refs found with one indexed query per chunk), rolled back at the end if
anything was wrong. A bulk load builds the secondary indexes at the end.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
from collections import Counter
from typing import Any, Iterable, Iterator

import apsw
import attrs

from points.ledger.db import gc_paused, page_cache, transaction
from points.ledger.event_decl import Catalogue
from points.ledger.event_files import EventError, HeaderProblem, Input, detect_format, read_jsonl_rows, read_records
from points.ledger.event_schema import EVENT_TYPES, Schema, normalise, reason_of, schema_for
from points.ledger.event_rows import builders_for, weekday_of
from points.ledger.event_typed import typed_for

__all__ = ["GENESIS_HASH", "EVENT_TYPES", "EventError", "FileReport", "ImportReport", "canonical_json",
           "detect_format", "event_hash", "import_files", "import_records", "iter_events", "normalise",
           "read_records"]

GENESIS_HASH = "0" * 64
CHUNK = 5000  # events written (and looked up) per round trip
IMPORT_CACHE_KIB = 65536  # page cache during an import (64 MiB)
INDEX_CACHE_KIB = 16384  # ... while a bulk load builds its indexes (their in-memory sorts)
BULK_BYTES_PER_EVENT = 1024  # see _is_bulk_load

_INSERT = (
    "INSERT INTO events(id, type, member, at, day, time, weekday, amount, ref,"
    " body, source, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_LOOKUP = "SELECT id, body, source FROM events WHERE id IN (SELECT value FROM json_each(?))"
_EXISTS = "SELECT id, member FROM events WHERE id IN (SELECT value FROM json_each(?))"


@attrs.frozen
class FileReport:
    """What one file (or one `import_records` batch) contributed."""

    path: str
    format: str  # 'jsonl', 'csv' or 'records'
    records: int  # non-blank lines/rows read
    added: int
    skipped: int
    errors: tuple[str, ...]


@attrs.frozen
class ImportReport:
    """The outcome of one import call. With any error, nothing was written
    (added and skipped are then 0)."""

    added: int
    skipped: int
    errors: tuple[str, ...]  # the first ones by file and line (all of them, unless capped)
    per_file: tuple[FileReport, ...]
    error_count: int = 0  # every error found, shown or not
    reasons: tuple[tuple[str, int], ...] = ()  # (reason, count), most frequent first

    @property
    def ok(self) -> bool:
        return not self.errors and not self.error_count


def canonical_json(value: Any) -> str:
    """Compact, sorted-key JSON: the form events are stored and hashed in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _make_fast_canonical():
    """canonical_json for normalised events (str, int, bool, None, lists of
    str), through the C encoder built once instead of once per call."""
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:
        return canonical_json
    enc = make(None, None, encoder.encode_basestring, None, ":", ",", True, False, True)
    join = "".join
    return lambda value: join(enc(value, 0))


_canonical = _make_fast_canonical()


def event_hash(prev_hash: str, body: str, source: str) -> str:
    """The chain hash of an events row: sha256 over prev_hash, body and source, hex.

    Every other column (id, type, member, at, day, ...) is derived from `body`;
    `verify` checks them against it, so no stored cell escapes the chain.
    """
    return hashlib.sha256((prev_hash + body + "\x1f" + source).encode()).hexdigest()


# --------------------------------------------------------------------------- importing


class _Abort(Exception):
    pass


class _Batch:
    """The state of one import call: counts, errors, the chunk being built."""

    def __init__(self, conn: apsw.Connection, nfiles: int, schema: Schema,
                 max_errors: int | None = None) -> None:
        self.conn = conn
        self.schema = schema
        self.builders = builders_for(schema)
        self.max_errors = max_errors
        # The first max_errors errors by (file, line, order), as a max-heap of
        # negated keys: errors are found out of line order (duplicates at a
        # chunk's flush, refs at the end), and all may be millions.
        self.errors: list[tuple[int, int, int, str]] = []
        self.error_count = 0
        self.reasons: Counter[str] = Counter()
        self.chunk: list[tuple] = []
        self.unresolved: list[tuple[str, str, int, int, str]] = []  # (ref, member, file, line, loc)
        self.bad_ids: set[str] = set()
        self.records = [0] * nfiles
        self.file_errors = [0] * nfiles
        self.added = [0] * nfiles
        self.skipped = [0] * nfiles
        row = conn.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self.prev_hash = row[0] if row else GENESIS_HASH

    def error(self, fi: int, line: int, text: str, reason: str | None = None) -> None:
        self.error_count += 1
        self.file_errors[fi] += 1
        self.reasons[reason or reason_of(text)] += 1
        item = (-fi, -line, -self.error_count, text)
        if self.max_errors is None or len(self.errors) < self.max_errors:
            heapq.heappush(self.errors, item)
        elif self.max_errors and item > self.errors[0]:
            heapq.heapreplace(self.errors, item)

    def problem(self, fi: int, line: int, loc: str, message: str) -> None:
        self.error(fi, line, f"{loc}: {message}", reason_of(message))

    def add(self, fi: int, line: int, loc: str, record: Any, ignore_missing=frozenset()) -> None:
        self.records[fi] += 1
        row = None
        if type(record) is dict:  # the compiled builder of its type, if any
            type_ = record.get("type")
            build = self.builders.get(type_) if type(type_) is str else None
            if build is not None:
                try:
                    row = build(record)
                except TypeError:  # an unhashable list item: normalise words it
                    pass
        if row is None:
            row = self._checked_row(fi, line, loc, record, ignore_missing)
            if row is None:
                return
        try:
            row[9].encode()
        except UnicodeEncodeError:
            self.problem(fi, line, loc, "contains an invalid unicode escape (a lone surrogate)")
            self.bad_ids.add(row[0])
            return
        self.chunk.append((row, loc, fi, line))
        if len(self.chunk) >= CHUNK:
            self.flush()

    def _checked_row(self, fi: int, line: int, loc: str, record: Any, ignore_missing) -> tuple | None:
        """The row through the contract's own check, or None with every reason recorded."""
        event, reasons = self.schema.normalise(record, ignore_missing)
        if event is None:
            for reason in reasons:
                self.problem(fi, line, loc, reason)
            if type(record) is dict and type(record.get("id")) is str:
                self.bad_ids.add(record["id"])
            return None
        at = event["at"]
        day = at[:10]
        return (event["id"], event["type"], event["member"], at, day, at[11:], weekday_of(day),
                event["amount"], event.get("ref"), _canonical(event))

    def flush(self) -> None:
        chunk = self.chunk
        if not chunk:
            return
        self.chunk = []
        conn = self.conn
        ids = list(dict.fromkeys(c[0][0] for c in chunk))
        known = {i: (b, s) for i, b, s in conn.execute(_LOOKUP, (json.dumps(ids),))}
        rows, refs = [], []
        prev = self.prev_hash
        sha256 = hashlib.sha256
        added, skipped = self.added, self.skipped
        fresh = not known and len(ids) == len(chunk)  # every id new (a bulk load): nothing to look up
        for row, loc, fi, line in chunk:
            if not fresh:
                id_ = row[0]
                old = known.get(id_)
                if old is not None:
                    if old[0] == row[9]:
                        skipped[fi] += 1
                    else:
                        self.error(fi, line, f"{loc}: duplicate id {id_!r} with different content"
                                   f" (first seen at {old[1]})", "duplicate id with different content")
                    continue
                known[id_] = (row[9], loc)
            # Every body was encoded once already (add), or came from typed decoding: valid text.
            h = sha256((prev + row[9] + "\x1f" + loc).encode()).hexdigest()
            rows.append(row + (loc, prev, h))
            prev = h
            added[fi] += 1
            if row[8] is not None:
                refs.append((row[8], row[2], fi, line, loc))
        if rows:
            conn.executemany(_INSERT, rows)
        self.prev_hash = prev
        if refs:
            self.unresolved.extend(self._check_refs(refs))

    def _check_refs(self, refs):
        """Report each ref to another member's event; return those not (yet) found."""
        wanted = list(dict.fromkeys(r[0] for r in refs))
        found = dict(self.conn.execute(_EXISTS, (json.dumps(wanted),)))
        missing = []
        for ref, member, fi, line, loc in refs:
            owner = found.get(ref)
            if owner is None:
                missing.append((ref, member, fi, line, loc))
            elif owner != member:
                self.error(fi, line, f"{loc}: 'ref' names event {ref!r} of another member ({owner!r});"
                           " an event can only undo its own member's events", "'ref' names another member's event")
        return missing

    def finish(self) -> None:
        self.flush()
        if self.unresolved:
            for ref, _member, fi, line, loc in self._check_refs(self.unresolved):
                if ref in self.bad_ids:
                    self.error(fi, line, f"{loc}: 'ref' names event {ref!r} which is itself invalid",
                               "'ref' names an invalid event")
                else:
                    self.error(fi, line, f"{loc}: 'ref' names event {ref!r} which does not exist",
                               "'ref' names an event that does not exist")
            self.unresolved = []

    def sorted_errors(self) -> list[tuple[int, int, int, str]]:
        """(file, line, order, text) of the errors kept, in file and line order."""
        return sorted((-fi, -line, -n, text) for fi, line, n, text in self.errors)


def _secondary_indexes(conn: apsw.Connection) -> list[tuple[str, str]]:
    """(name, CREATE statement) of every index on `events` that can be dropped
    (not the UNIQUE id constraint, which the duplicate lookups use)."""
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
        " AND sql IS NOT NULL ORDER BY name").fetchall()


def _is_bulk_load(conn: apsw.Connection, incoming_bytes: int) -> bool:
    """Whether the files being imported clearly outnumber the events stored.

    Then the secondary indexes are cheaper to build afresh (one sort each) than
    to update with one random B-tree insert per event. A line is counted as BULK_BYTES_PER_EVENT, several times any real
    event line, so that a re-import or a small addition never rebuilds them.
    """
    (stored,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
    return stored * BULK_BYTES_PER_EVENT < incoming_bytes


def _run(conn: apsw.Connection, labels: list[tuple[str, str]], feed, incoming_bytes: int = 0,
         schema: Schema | None = None, max_errors: int | None = None) -> ImportReport:
    """Run `feed(batch)` in a savepoint; keep its writes only if it found no error."""
    # A bigger page cache while importing (indexes updated in random order
    # thrash the default 2 MB); every parsed event lives until its chunk is written.
    with page_cache(conn, IMPORT_CACHE_KIB), gc_paused():
        try:
            with transaction(conn):
                batch = _Batch(conn, len(labels), schema or schema_for(), max_errors)
                # A savepoint, so that inside a caller's transaction only this import is
                # undone; on its own, the whole transaction is rolled back too (not
                # committed empty): a refused import leaves the file untouched.
                with conn:
                    # A bulk load writes into a table without its secondary
                    # indexes and builds them at the end, inside the same
                    # savepoint: a failed import rolls the DROPs back too.
                    rebuild = _secondary_indexes(conn) if _is_bulk_load(conn, incoming_bytes) else []
                    for name, _sql in rebuild:
                        conn.execute(f'DROP INDEX "{name}"')
                    feed(batch)
                    batch.finish()
                    if batch.error_count:
                        raise _Abort
                    if rebuild:  # SQLite sorts in memory up to the cache size: keep the peak down
                        conn.execute(f"PRAGMA cache_size=-{INDEX_CACHE_KIB}")
                    for _name, sql in rebuild:
                        conn.execute(sql)
        except _Abort:
            pass
    kept = batch.sorted_errors()
    failed = batch.error_count > 0
    by_file: list[list[str]] = [[] for _ in labels]
    for fi, _line, _n, text in kept:
        by_file[fi].append(text)
    per_file = tuple(
        FileReport(
            path=label,
            format=fmt,
            records=batch.records[i],
            added=0 if failed else batch.added[i],
            skipped=0 if failed else batch.skipped[i],
            errors=tuple(by_file[i]),
        )
        for i, (label, fmt) in enumerate(labels)
    )
    return ImportReport(
        added=0 if failed else sum(batch.added),
        skipped=0 if failed else sum(batch.skipped),
        errors=tuple(text for *_key, text in kept),
        per_file=per_file,
        error_count=batch.error_count,
        reasons=tuple(sorted(batch.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def import_files(conn: apsw.Connection, paths: Iterable[str | os.PathLike],
                 catalogue: Catalogue | None = None, max_errors: int | None = None) -> ImportReport:
    """Import events inputs (JSONL or CSV files; "-" is standard input),
    all-or-nothing for the whole call, checked against `catalogue` (default:
    the bundled one).

    Errors -- including inputs that cannot be read, and an input with no
    event at all -- come back in the report as 'file:line: reason' (or
    'file: reason'), never as exceptions; with `max_errors`, only the first
    that many are kept (all are counted, by reason). Each input is opened
    and read once, front to back, so pipes and FIFOs stream.
    """
    schema = schema_for(catalogue)
    typed = typed_for(schema)
    inputs = [Input(p) for p in paths]
    labels = [(i.label, i.format or "unknown") for i in inputs]
    regular_bytes, streamed = 0, False

    def feed(batch: _Batch) -> None:
        for fi, source in enumerate(inputs):
            label = source.label
            try:
                source.open()
                labels[fi] = (label, source.format)
                records = batch.records
                for item in (read_jsonl_rows(source.stream, typed, label, fi) if source.format == "jsonl"
                             and typed else read_records(source, schema=schema)):
                    if type(item) is list:  # rows already, of lines in a row (typed decoding)
                        records[fi] += len(item)
                        batch.chunk += item
                        if len(batch.chunk) >= CHUNK:
                            batch.flush()
                        continue
                    line, record, problem = item
                    if record is None:
                        batch.problem(fi, line, f"{label}:{line}", problem)
                        if not isinstance(problem, HeaderProblem):
                            records[fi] += 1
                    else:  # `problem`: the columns a CSV header lacks (None in JSONL)
                        batch.add(fi, line, f"{label}:{line}", record, problem or frozenset())
            except EventError as exc:
                batch.error(fi, exc.line or 1 << 62, f"{exc.where(label)}: {exc}", str(exc))
                continue
            finally:
                source.close()
            if batch.records[fi] == 0 and not batch.file_errors[fi]:
                empty = source.stream is not None and source.stream.bytes_read == 0
                batch.error(fi, 0, f"{label}: no events" + (" (the input is empty)" if empty else
                            " (only blank lines or a CSV header)"), "no events in the input")

    # Whether to bulk load is decided before reading: by the regular files'
    # sizes; an input of unknown size (a pipe) counts as a bulk load only
    # into an empty table.
    for path in (os.fspath(p) for p in paths):
        try:
            if path != "-" and os.path.isfile(path):
                regular_bytes += os.path.getsize(path)
            else:
                streamed = True
        except OSError:
            pass
    return _run(conn, labels, feed, regular_bytes or (1 if streamed else 0), schema, max_errors)


def import_records(
    conn: apsw.Connection, records: Iterable[tuple[str, dict]], label: str = "records",
    catalogue: Catalogue | None = None,
) -> ImportReport:
    """Import already-parsed events: (source, record) pairs, e.g. ('demo:1', {...}).

    Same checks and all-or-nothing rule as `import_files`; `source` is what
    errors are prefixed with and what the `source` column stores.
    """

    def feed(batch: _Batch) -> None:
        for n, (source, record) in enumerate(records, 1):
            batch.add(0, n, source, record)

    return _run(conn, [(label, "records")], feed, schema=schema_for(catalogue))


_TYPES_STORED = """WITH RECURSIVE t(type) AS (SELECT MIN(type) FROM events UNION ALL
  SELECT (SELECT MIN(type) FROM events WHERE type > t.type) FROM t WHERE t.type IS NOT NULL)
SELECT type FROM t WHERE type IS NOT NULL"""


def iter_events(conn: apsw.Connection, member: str | None = None) -> Iterator[dict]:
    """The stored events, normalised, in import order (optionally of one member)."""
    if member is None:
        cursor = conn.execute("SELECT body FROM events ORDER BY seq")
    else:
        # Through the (type, member) index: one probe per event type stored
        # (found by skipping through the same index, one step per type).
        types = [t for (t,) in conn.execute(_TYPES_STORED)] or list(EVENT_TYPES)
        marks = ",".join("?" * len(types))
        cursor = conn.execute(
            f"SELECT body FROM events WHERE type IN ({marks}) AND member = ? ORDER BY seq",
            (*types, member))
    loads = json.loads
    for (body,) in cursor:
        yield loads(body)
