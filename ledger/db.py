"""The SQLite file: schema, connection settings and transactions (through apsw).

One file holds everything an auditor needs: the imported events, the journal
(entries and their postings) and a few meta rows. Every journal table is
append-only: triggers refuse UPDATE and DELETE, so a correction can only be a
new entry linked to what it corrects.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
from pathlib import Path
from typing import Iterator

import apsw

from points.ledger.rulesets import SCHEMA as RULESET_SCHEMA

SCHEMA_VERSION = 1

# Tables whose rows are never changed once written. `verify` checks them all.
JOURNAL_TABLES = ("events", "entries", "postings")
# Every table with the append-only triggers.
APPEND_ONLY_TABLES = JOURNAL_TABLES + ("closings",)

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

-- The operator's declarations that every event up to a day has been imported
-- (`points close-events --through DATE`); the latest row is the cut-off that a
-- run's final steps (lottery draws) wait for. Append-only like the journal.
CREATE TABLE IF NOT EXISTS closings (
    seq      INTEGER PRIMARY KEY,
    through  TEXT NOT NULL,   -- 'YYYY-MM-DD' (Asia/Tokyo)
    declared TEXT NOT NULL,   -- when, UTC, ISO 8601
    note     TEXT NOT NULL
);
"""

# Append-only: no UPDATE or DELETE on any journal table, ever. Written without
# IF NOT EXISTS: setup compares each trigger's SQL with this text and recreates
# any that differ, so a same-named trigger with `WHEN 0` cannot survive a write.
APPEND_ONLY_TRIGGERS = "\n".join(
    f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;
"""
    for table in APPEND_ONLY_TABLES
)

# Postings are written before their entry row; the entry row is refused
# unless its postings sum to zero per kind, and no posting may be added to an
# entry that already exists. Zero-sum is thus enforced by the database itself.
ZERO_SUM_TRIGGERS = """
CREATE TRIGGER entries_zero_sum BEFORE INSERT ON entries
WHEN EXISTS (SELECT 1 FROM postings WHERE entry = NEW.seq
             GROUP BY kind HAVING SUM(amount) != 0)
BEGIN SELECT RAISE(ABORT, 'entry does not sum to zero per kind'); END;

CREATE TRIGGER postings_closed_entry BEFORE INSERT ON postings
WHEN EXISTS (SELECT 1 FROM entries WHERE seq = NEW.entry)
BEGIN SELECT RAISE(ABORT, 'postings of a written entry cannot change'); END;
"""

TRIGGERS = APPEND_ONLY_TRIGGERS + ZERO_SUM_TRIGGERS


class DatabaseError(Exception):
    """Raised when the database file cannot be opened or has an unknown schema."""


class MissingDatabase(DatabaseError):
    """There is no points database at the path (`points init` creates one)."""


class ForeignDatabase(DatabaseError):
    """The file is not a points database (another SQLite file, or not SQLite at all)."""


class DamagedDatabase(DatabaseError):
    """The database's bytes do not decode as a points database."""

    def __init__(self, detail: str):
        super().__init__(f"database damaged: {detail}")


SQLITE_MAGIC = b"SQLite format 3\0"


def _header(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(len(SQLITE_MAGIC))


def check_file(path: Path, *, empty_ok: bool, tables: bool = True) -> bool:
    """Refuse what is not a points database before anything opens it for writing.

    Returns True if the file exists (and is a points database or, with
    `empty_ok`, a 0-byte file), False if there is no file at all. `tables`: also
    open it (read-only) to look for the points tables.
    """
    if not path.exists():
        if path.is_symlink():
            raise DatabaseError(f"{path}: a dangling symbolic link, not a points database")
        return False
    if path.is_dir():
        raise DatabaseError(f"{path}: is a directory, not a points database")
    if not path.is_file():
        raise ForeignDatabase(f"{path}: not a regular file, not a points database")
    if path.stat().st_size == 0:
        if empty_ok:
            return True
        raise ForeignDatabase(f"{path}: empty file, not a points database; create it with points init")
    if _header(path) != SQLITE_MAGIC:
        raise ForeignDatabase(f"{path}: not a SQLite file, not a points database")
    if not tables:
        return True
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.setbusytimeout(60_000)
        _check_version(conn, path)
    finally:
        conn.close()
    return True


def connect(path: str | os.PathLike, *, readonly: bool = False, create: bool = True) -> apsw.Connection:
    """Open the points database at `path` (and, with `create`, create it if absent).

    A new file is created readable and writable by its owner only, in a folder
    that must exist (folders are never created). A 0-byte file is initialised
    only with `create`. A SQLite file without the points tables, or any other
    file, is refused before anything is written to it. Read-only connections
    never create, migrate or write anything.
    """
    path = Path(path)
    if readonly:
        if not path.exists():
            raise MissingDatabase(f"no points database at {path}; create it with points init")
        check_file(path, empty_ok=False, tables=False)  # the tables: on this connection
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.setbusytimeout(60_000)
        _check_version(conn, path)
        return conn
    if not check_file(path, empty_ok=create):
        if not create:
            raise MissingDatabase(f"no points database at {path}; create it with points init")
        if not path.parent.is_dir():
            raise DatabaseError(f"{path.parent}: no such folder; create it first "
                                "(points does not create folders)")
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    try:
        conn = apsw.Connection(str(path))
    except apsw.Error as exc:
        raise DatabaseError(f"{path}: cannot open database: {exc}") from None
    conn.setbusytimeout(60_000)
    try:
        setup(conn)
    except (apsw.NotADBError, apsw.CorruptError, UnicodeDecodeError) as exc:
        conn.close()
        raise DamagedDatabase(f"{path}: {' '.join(str(exc).split())[:200]}") from None
    _check_version(conn, path)
    return conn


def setup(conn: apsw.Connection) -> None:
    """Connection settings, the schema, and the triggers exactly as written above.

    A database that already has all of it is not written to (its bytes stay as
    they are); a trigger whose SQL differs from ours, or that is missing, is
    dropped and created again.
    """
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    with transaction(conn):
        conn.execute(SCHEMA)
        conn.execute(RULESET_SCHEMA)  # the rules sets runs used (ledger.rulesets)
        restore_triggers(conn)
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )


def restore_triggers(conn: apsw.Connection) -> None:
    """Every expected trigger exactly as expected (dropped and created if it differs)."""
    have = {name: sql for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")}
    for name, (kind, _table, sql) in expected_schema().items():
        if kind == "trigger" and _normal(have.get(name)) != sql:
            conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
            conn.execute(_expected_sql()[name])


def _check_version(conn: apsw.Connection, path: Path) -> None:
    try:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            what = "a SQLite database without the points tables" if tables else "an empty SQLite database"
            raise ForeignDatabase(f"{path}: {what}, not a points database")
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except (apsw.NotADBError, apsw.CorruptError, UnicodeDecodeError, apsw.SQLError) as exc:
        raise DamagedDatabase(f"{path}: {' '.join(str(exc).split())[:200]}") from None
    if row is None:
        raise ForeignDatabase(f"{path}: no schema version in its meta table, not a points database")
    if str(row[0]) != str(SCHEMA_VERSION):
        raise DatabaseError(
            f"{path}: schema version {str(row[0])[:20]!r}, expected {SCHEMA_VERSION}"
        )


# ---------------------------------------------------------------- the schema, as expected

def _normal(sql: str | None) -> str | None:
    """SQL without comments, whitespace collapsed: what two schemas are compared by."""
    if sql is None:
        return None
    return " ".join(re.sub(r"--[^\n]*", " ", sql).split())


def _create_all(conn: apsw.Connection) -> None:
    conn.execute(SCHEMA)
    conn.execute(TRIGGERS)
    conn.execute(RULESET_SCHEMA)


@functools.lru_cache(maxsize=1)
def _expected_sql() -> dict[str, str]:
    """name -> the SQL of every table, index and trigger that SCHEMA, TRIGGERS and
    ledger.rulesets create, as SQLite stores it (read from a fresh in-memory database)."""
    mem = apsw.Connection(":memory:")
    try:
        _create_all(mem)
        return {name: sql for name, sql in mem.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%'")}
    finally:
        mem.close()


@functools.lru_cache(maxsize=1)
def expected_schema() -> dict[str, tuple[str, str, str | None]]:
    """name -> (type, table, normalised SQL) of every expected table, index and trigger."""
    mem = apsw.Connection(":memory:")
    try:
        _create_all(mem)
        return {name: (kind, table, _normal(sql)) for kind, name, table, sql in mem.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%'")}
    finally:
        mem.close()


def schema_problems(conn: apsw.Connection) -> list[str]:
    """Every table, index and trigger that is missing, different or unexpected,
    compared with the schema this module creates (so new tables are covered)."""
    want = expected_schema()
    have = {name: (kind, table, _normal(sql)) for kind, name, table, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM main.sqlite_master WHERE name NOT LIKE 'sqlite_stat%'")}
    out = []
    for name in sorted(set(want) | set(have)):
        w, h = want.get(name), have.get(name)
        if h is None:
            out.append(f"schema: {w[0]} {name} is missing")
        elif w is None:
            out.append(f"schema: unexpected {h[0]} {name} on {h[1]}")
        elif h != w:
            out.append(f"schema: {w[0]} {name} differs from the expected one: {h[2] or '(no SQL)'}"[:300])
    return out


def integrity_problems(conn: apsw.Connection, limit: int = 20) -> list[str]:
    """SQLite's own `PRAGMA integrity_check` (b-trees, indexes against their tables)."""
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA integrity_check({int(limit)})")]
    return [] if rows == ["ok"] else [f"integrity: {' '.join(r.split())}" for r in rows]


def scratch_copy(source: apsw.Connection) -> apsw.Connection:
    """A private copy of `source` (SQLite's backup API) in a delete-on-close file:
    what a dry run writes to, gone with the process however it ends."""
    conn = apsw.Connection("")
    with conn.backup("main", source, "main") as backup:
        backup.step()  # all pages
    conn.execute("PRAGMA foreign_keys=ON")
    with transaction(conn):  # tables a database made by an older version lacks
        conn.execute(SCHEMA)
        conn.execute(RULESET_SCHEMA)
        restore_triggers(conn)
    return conn


def scratch(*, uri: bool = False) -> apsw.Connection:
    """A private on-disk database with the points schema that no process can leave
    behind: SQLite opens it delete-on-close, which unlinks the file as soon as it
    is opened, so even a killed process leaves no file (it lives in $TMPDIR).
    `uri`: ATTACH takes `file:` URIs (e.g. `?mode=ro`) on this connection."""
    conn = apsw.Connection("", flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
                           | (apsw.SQLITE_OPEN_URI if uri else 0))
    conn.execute("PRAGMA foreign_keys=ON")
    with transaction(conn):
        _create_all(conn)
        conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    return conn


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
def page_cache(conn: apsw.Connection, kib: int, dirty_kib: int | None = None) -> Iterator[apsw.Connection]:
    """The connection's page cache at `kib` KiB while the block runs, its own size after.

    SQLite also sizes each sorter's in-memory runs by this cache (read when a
    statement starts), so a smaller cache can mean cheaper sorts, a bigger one
    fewer page reads on random index inserts.

    `dirty_kib`: the pages a transaction changed may fill this much (if more than
    `kib`) before SQLite writes them to the WAL in the middle of the transaction
    (`PRAGMA cache_spill`); clean pages stay within `kib`.
    """
    (before,), (spill,) = (conn.execute(f"PRAGMA {p}").fetchone() for p in ("cache_size", "cache_spill"))
    if dirty_kib is not None:  # in pages
        conn.execute(f"PRAGMA cache_spill={dirty_kib * 1024 // conn.execute('PRAGMA page_size').fetchone()[0]}")
    conn.execute(f"PRAGMA cache_size=-{kib}")
    try:
        yield conn
    finally:
        conn.execute(f"PRAGMA cache_size={int(before)}")
        conn.execute(f"PRAGMA cache_spill={int(spill)}")


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


def member_known(conn: apsw.Connection, member: str) -> bool:
    """Has any event or any account of the journal this member?"""
    for prefix in ("member", "receivable"):  # a range of the postings(account) index
        if conn.execute("SELECT 1 FROM postings WHERE account >= ? AND account < ? LIMIT 1",
                        (f"{prefix}:{member}:", f"{prefix}:{member};")).fetchone():
            return True
    return conn.execute("SELECT 1 FROM events WHERE member = ? LIMIT 1", (member,)).fetchone() is not None
