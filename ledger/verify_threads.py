"""Run verify's passes on the caller's connection, or on it and a second one.

The passes are independent read-only tasks, each mostly a SQLite statement
(apsw releases the GIL while SQLite works), so two connections in two
threads can run two of them at once. The second connection must read the very
state the first one reads: it is opened read-only, starts its own read
transaction, and is used only if it sees the same last entry, posting and
event (the journal tables are append-only, so equal maxima mean equal
tables); otherwise, or on a single CPU, everything runs on the caller's
connection, one task after the other.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Callable

import apsw

Task = Callable[[apsw.Connection], None]

_LAST_ROWS = ("SELECT (SELECT max(seq) FROM entries), (SELECT max(id) FROM postings),"
              " (SELECT max(seq) FROM events)")


def run_tasks(conn: apsw.Connection, tasks: list[Task], parallel: bool) -> None:
    """Run every task; `conn` must be inside its read transaction already."""
    helper = second_connection(conn) if parallel else None
    if helper is None:
        for task in tasks:
            task(conn)
        return
    # The caller's thread takes tasks from the front, the helper from the back.
    # Callers put the GIL-heavy tasks (a Python step per row) first and the SQL
    # aggregates (a few rows out) last, so the two threads seldom wait for the
    # GIL together: every row fetched hands it over.
    queue = collections.deque(tasks)
    errors: list[BaseException] = []

    def work(c: apsw.Connection, take: Callable[[], Task]) -> None:
        try:
            while not errors:
                try:
                    task = take()
                except IndexError:
                    return
                task(c)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=work, args=(helper, queue.pop), name="verify-helper",
                              daemon=True)
    thread.start()
    try:
        work(conn, queue.popleft)
    finally:
        thread.join()
        helper.close()
    if errors:
        raise errors[0]


def second_connection(conn: apsw.Connection) -> apsw.Connection | None:
    """A read-only connection on the same file in the same state (inside its own read
    transaction), or None; `conn` must be inside its read transaction already."""
    if _cpus() < 2 or not conn.filename:  # no second CPU; an in-memory or temporary database
        return None
    try:
        helper = apsw.Connection(conn.filename, flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return None
    try:
        helper.setbusytimeout(60_000)
        helper.execute("BEGIN")
        if helper.execute(_LAST_ROWS).fetchone() == conn.execute(_LAST_ROWS).fetchone():
            return helper
    except apsw.Error:
        pass
    helper.close()
    return None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
