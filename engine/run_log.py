"""What a run reports member by member, kept out of memory when it is big.

A run's report counts the members each campaign paid (`MemberTally`) and lists
every refused redemption and award (`RunLog`); on a big program these are as
many rows as members, so they live in TEMP tables of the run's connection (a
temp file, bounded by its page cache) instead of Python sets and lists.
"""

from __future__ import annotations

import itertools

import apsw

__all__ = ["MemberTally", "RunLog"]


class MemberTally:
    """The distinct members a campaign awarded in one run (`add`, `len`), kept in a
    TEMP table of the run's connection (a temp file, bounded by its page cache)
    instead of a set that would hold every member id in memory."""

    _made = itertools.count(1)
    FLUSH_EVERY = 10_000

    def __init__(self, conn: apsw.Connection):
        self.conn = conn
        self.table = f"temp.run_awarded_{next(self._made)}"
        # Made as the campaign's first checkpoint starts, before its queries: a schema
        # change aborts the statements running at that moment.
        conn.execute(f"CREATE TABLE {self.table} (member TEXT PRIMARY KEY) WITHOUT ROWID")
        self.buffer: list[tuple[str]] = []

    def add(self, member: str) -> None:
        self.buffer.append((member,))
        if len(self.buffer) >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany(f"INSERT OR IGNORE INTO {self.table} VALUES (?)", self.buffer)
        self.buffer = []

    def __len__(self) -> int:
        self.flush()
        return self.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]


class RunLog:
    """Rows a run reports one by one (refused redemptions and awards): a list while
    short, then kept in a TEMP table of the run's connection, so that a run refusing
    many does not hold every row and its message in memory. `append`, `extend`,
    `len`, iteration in the order added (tuples); read before the connection closes."""

    _made = itertools.count(1)
    IN_MEMORY = 10_000  # rows kept as a list; beyond it, in the table

    def __init__(self, conn: apsw.Connection, width: int):
        self.conn, self.width = conn, width
        self.table = f"temp.run_log_{next(self._made)}"
        # Made before the run's (or the campaign's first checkpoint's) queries start:
        # a schema change aborts the statements running at that moment.
        conn.execute(f"CREATE TABLE {self.table} (n INTEGER PRIMARY KEY, "
                     + ", ".join(f"c{i}" for i in range(width)) + ")")
        self.rows: list[tuple] = []
        self.stored = 0

    def append(self, row: tuple) -> None:
        self.rows.append(tuple(row))
        if len(self.rows) >= self.IN_MEMORY:
            self.flush()

    def extend(self, rows) -> None:
        for row in rows:
            self.append(row)

    def flush(self) -> None:
        if self.rows:
            marks = ", ".join("?" * self.width)
            self.conn.executemany(f"INSERT INTO {self.table} VALUES (NULL, {marks})", self.rows)
            self.stored += len(self.rows)
            self.rows = []

    def __len__(self) -> int:
        return self.stored + len(self.rows)

    def __iter__(self):
        if self.stored:
            cols = ", ".join(f"c{i}" for i in range(self.width))
            yield from self.conn.execute(f"SELECT {cols} FROM {self.table} ORDER BY n")
        yield from self.rows
