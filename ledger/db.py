"""The SQLite file: schema, connection settings and transactions (through apsw).

One file holds everything an auditor needs: the imported events, the journal
(entries and their postings) and a few meta rows. Every journal table is
append-only: triggers refuse UPDATE and DELETE, so a correction can only be a
new entry linked to what it corrects.
"""

from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path
from typing import Iterator

import apsw

from points.ledger.rulesets import SCHEMA as RULESET_SCHEMA

SCHEMA_VERSION = 1

# Tables whose rows are never changed once written. `verify` checks them all.
JOURNAL_TABLES = ("events", "entries", "postings")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Imported events, in import order. `body` is the canonical JSON of the
-- normalised event; the other columns are derived from it for fast filtering.
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    type      TEXT NOT NULL,
    member    TEXT NOT NULL,
    at        TEXT NOT NULL,      -- Asia/Tokyo local time, 'YYYY-MM-DDTHH:MM:SS'
    day       TEXT NOT NULL,      -- 'YYYY-MM-DD' (Asia/Tokyo)
    time      TEXT NOT NULL,      -- 'HH:MM:SS' (Asia/Tokyo)
    weekday   INTEGER NOT NULL,   -- 0 = Monday .. 6 = Sunday
    amount    INTEGER,
    ref       TEXT,
    body      TEXT NOT NULL,
    source    TEXT NOT NULL,      -- 'file:line' it was imported from
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_type_member ON events(type, member);
-- No index on (member) alone: every member query also names the type(s), and
-- each index costs a random B-tree insert per imported event.
DROP INDEX IF EXISTS events_member;
DROP INDEX IF EXISTS events_day;
-- Campaign periods, relevance after payment and redemptions all ask "events of
-- these types from this day on": (type, day) answers them with range scans.
CREATE INDEX IF NOT EXISTS events_type_day ON events(type, day);
CREATE INDEX IF NOT EXISTS events_ref ON events(ref) WHERE ref IS NOT NULL;

-- The journal: atomic groups of postings, hash-chained in `seq` order.
CREATE TABLE IF NOT EXISTS entries (
    seq        INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,  -- idempotency key
    effective  TEXT NOT NULL,         -- 'YYYY-MM-DD' (Asia/Tokyo)
    recorded   TEXT NOT NULL,         -- logical clock of the run that wrote it
    campaign   TEXT,
    rule       TEXT,                  -- rules file name
    rules_hash TEXT,                  -- sha256 of that file's content
    step       TEXT,
    events     TEXT NOT NULL,         -- JSON list of source event ids
    reverses   INTEGER REFERENCES entries(seq),
    memo       TEXT NOT NULL,         -- canonical JSON: details (lottery seed, trace...)
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_campaign ON entries(campaign, step);
CREATE INDEX IF NOT EXISTS entries_effective ON entries(effective);
CREATE INDEX IF NOT EXISTS entries_reverses ON entries(reverses) WHERE reverses IS NOT NULL;

CREATE TABLE IF NOT EXISTS postings (
    id       INTEGER PRIMARY KEY,
    entry    INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    account  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    amount   INTEGER NOT NULL,
    expires  TEXT,       -- set on every credit to a member account: it opens a lot
    lot      INTEGER,    -- set on every debit of a member account: the lot it draws from
    UNIQUE (entry, idx)
);
CREATE INDEX IF NOT EXISTS postings_account ON postings(account, kind);
-- (entry) lookups use the UNIQUE (entry, idx) index; no separate index needed.
CREATE INDEX IF NOT EXISTS postings_lot ON postings(lot) WHERE lot IS NOT NULL;
CREATE INDEX IF NOT EXISTS postings_expires ON postings(expires) WHERE expires IS NOT NULL;
"""

# Append-only: no UPDATE or DELETE on any journal table, ever.
APPEND_ONLY_TRIGGERS = "\n".join(
    f"""
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;
"""
    for table in JOURNAL_TABLES
)

# Postings are written before their entry row; the entry row is refused
# unless its postings sum to zero per kind, and no posting may be added to an
# entry that already exists. Zero-sum is thus enforced by the database itself.
ZERO_SUM_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS entries_zero_sum BEFORE INSERT ON entries
WHEN EXISTS (SELECT 1 FROM postings WHERE entry = NEW.seq
             GROUP BY kind HAVING SUM(amount) != 0)
BEGIN SELECT RAISE(ABORT, 'entry does not sum to zero per kind'); END;

CREATE TRIGGER IF NOT EXISTS postings_closed_entry BEFORE INSERT ON postings
WHEN EXISTS (SELECT 1 FROM entries WHERE seq = NEW.entry)
BEGIN SELECT RAISE(ABORT, 'postings of a written entry cannot change'); END;
"""


class DatabaseError(Exception):
    """Raised when the database file cannot be opened or has an unknown schema."""


def connect(path: str | os.PathLike, *, readonly: bool = False) -> apsw.Connection:
    """Open (and, unless read-only, create) the points database at `path`.

    A new file is created readable and writable by its owner only. Read-only
    connections never create, migrate or write anything.
    """
    path = Path(path)
    if readonly:
        if not path.exists():
            raise DatabaseError(f"{path}: no such database (run `points init` first)")
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.setbusytimeout(60_000)
        _check_version(conn, path)
        return conn
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    try:
        conn = apsw.Connection(str(path))
    except apsw.Error as exc:
        raise DatabaseError(f"{path}: cannot open database: {exc}") from None
    conn.setbusytimeout(60_000)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with transaction(conn):
            conn.execute(SCHEMA)
            conn.execute(APPEND_ONLY_TRIGGERS)
            conn.execute(ZERO_SUM_TRIGGERS)
            conn.execute(RULESET_SCHEMA)  # the rules sets runs used (ledger.rulesets)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
    except apsw.NotADBError:
        raise DatabaseError(f"{path}: not a points database") from None
    _check_version(conn, path)
    return conn


def _check_version(conn: apsw.Connection, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except (apsw.SQLError, apsw.NotADBError):
        raise DatabaseError(f"{path}: not a points database") from None
    if row is None or int(row[0]) != SCHEMA_VERSION:
        raise DatabaseError(
            f"{path}: schema version {row[0] if row else 'missing'}, expected {SCHEMA_VERSION}"
        )


@contextlib.contextmanager
def transaction(conn: apsw.Connection, *, immediate: bool = True) -> Iterator[apsw.Connection]:
    """One atomic unit of work: everything inside commits together or not at all.

    IMMEDIATE takes the write lock up front, so two writers queue (busy
    timeout) instead of failing half-way with "database is locked".
    Nested use joins the outer transaction.
    """
    if not conn.getautocommit():
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@contextlib.contextmanager
def page_cache(conn: apsw.Connection, kib: int) -> Iterator[apsw.Connection]:
    """The connection's page cache at `kib` KiB while the block runs, its own size after.

    SQLite also sizes each sorter's in-memory runs by this cache (read when a
    statement starts), so a smaller cache can mean cheaper sorts, a bigger one
    fewer page reads on random index inserts.
    """
    (before,) = conn.execute("PRAGMA cache_size").fetchone()
    conn.execute(f"PRAGMA cache_size=-{kib}")
    try:
        yield conn
    finally:
        conn.execute(f"PRAGMA cache_size={int(before)}")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off while the block runs (back on after, if it was).

    For batches that allocate many small objects which all stay alive until the
    batch ends (events being imported, entries being built and written): GC passes
    over that growing heap would find nothing to collect and only cost time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
