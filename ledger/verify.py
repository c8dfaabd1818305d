"""Re-derive and check everything the journal promises (read-only).

The checks run as a few streaming passes, each mostly inside SQLite, in one
read transaction; none keeps a Python structure per entry, lot or account, so
memory stays flat however long the journal is:

1. ledger.verify_chain: entries in seq order -- seqs contiguous from 1,
   prev_hash equal to the previous entry's hash, hash equal to
   sha256(prev_hash || canonical(entry)) (the bytes are built by SQLite, one
   sha256 per entry in Python), and each entry's own rules: postings with idx
   0..n-1, zero sum per kind, member credits with expires (>= effective),
   member debits naming a lot, no expires/lot on other accounts, `reverses`
   naming an earlier entry.
2-5. ledger.verify_balances: valid accounts and kinds; every member debit
   draws from a known, open lot of its account and kind and no lot goes below
   zero; no budget below zero and no receivable above zero after any entry, in
   seq order; no posting outside an entry.
6. the events chain and the event columns derived from the hashed body.
7. the per-connection balance cache of ledger.journal.
8. SQLite's own `PRAGMA integrity_check` (b-trees, every index against its
   table: the replay reads the stored journal through its indexes) and the
   schema against the one ledger.db creates.

Passes 1-6 and SQLite's check are tasks (the chain cut into seq ranges, each starting from the
stored hash of the entry before it) run one after the other, or, on large
journals, by two threads on two connections (ledger.verify_threads).

Problems are reported in seq order of the entry they name, whichever pass
found them, so `first_bad` names the lowest entry that disagrees.
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Callable

import apsw
import attrs

from points.ledger import db
from points.ledger.hashing import GENESIS
from points.ledger.verify_balances import (check_accounts, check_lots, check_orphans,
                                    check_running_balances)
from points.ledger.verify_chain import ChainState, check_chain
from points.ledger.verify_threads import run_tasks

MAX_PROBLEMS = 1000

_sha256 = hashlib.sha256


@attrs.define
class VerifyReport:
    ok: bool
    checked_entries: int
    checked_postings: int
    checked_events: int
    problems: list[str]
    first_bad: str | None


class _Problems:
    """The problems found, kept in report order and bounded.

    Each problem has a sort key: entry problems by the entry's seq, then the
    rank of the pass that found it; then events; then the balance cache. Only
    the MAX_PROBLEMS first in that order are kept; all are counted. Passes may
    run in two threads, hence the lock (taken only when a problem is found).
    """

    def __init__(self) -> None:
        self.count = 0
        self._kept: list[tuple] = []
        self._other = 0
        self._lock = threading.Lock()

    def about_entries(self, rank: int) -> Callable[[object, str], None]:
        """add(seq, text) for the pass of that rank; seq is the value stored (maybe not an int)."""
        def add(seq: object, text: str) -> None:
            self._keep(0, seq if type(seq) is int else math.inf, rank, text)
        return add

    def add(self, text: str, first: bool = False) -> None:
        """A problem after every entry problem (events, cache), in the order found;
        `first`: before those others (SQLite's own checks, the schema)."""
        with self._lock:
            self._other += 1
            other = self._other
        self._keep(1, (not first, other), 0, text)

    def _keep(self, section: int, key, rank: int, text: str) -> None:
        with self._lock:
            self.count += 1
            self._kept.append((section, key, rank, self.count, text))
            if len(self._kept) >= 2 * MAX_PROBLEMS:
                self._kept.sort()
                del self._kept[MAX_PROBLEMS:]

    def report_lines(self) -> list[str]:
        self._kept.sort()
        lines = [item[-1] for item in self._kept[:MAX_PROBLEMS]]
        if self.count > len(lines):
            lines.append(f"... and {self.count - len(lines)} more problems")
        return lines


# Below this many entries one connection does everything (a second one and a
# thread cost more than they save).
PARALLEL_MIN_ENTRIES = 50_000
CHAIN_CHUNKS = 8  # the chain walk is cut in this many seq ranges (tasks)


def verify(conn: apsw.Connection) -> VerifyReport:
    """Check the journal (and events chain, and balance cache); never writes."""
    bad = _Problems()
    # A second connection can only share a snapshot the caller is not inside of.
    may_share = conn.getautocommit()
    with db.transaction(conn, immediate=False):  # one snapshot for every pass
        (last_seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()
        chains: list[ChainState] = []
        n_events = []
        tasks = [_chain_task(chains, bad.about_entries(0), last_seq * i // CHAIN_CHUNKS,
                             last_seq * (i + 1) // CHAIN_CHUNKS if i + 1 < CHAIN_CHUNKS
                             else 2**63 - 1)
                 for i in range(CHAIN_CHUNKS)]
        sqlite_own: list[str] = []
        tasks += [  # run_tasks: GIL-heavy first, SQL aggregates last
            lambda c: n_events.append(verify_events(c, bad)),
            lambda c: check_accounts(c, bad.about_entries(1)),
            lambda c: check_running_balances(c, bad.about_entries(3)),
            lambda c: check_lots(c, bad.about_entries(2)),
            # SQLite's own b-tree and index check (all in SQLite: the helper thread
            # takes it while the caller's walks the chain)
            lambda c: sqlite_own.extend(db.integrity_problems(c)),
        ]
        run_tasks(conn, tasks, may_share and last_seq >= PARALLEL_MIN_ENTRIES)
        # reported after the entry problems, before the others: SQLite's own check,
        # then the schema (triggers included) against the one ledger.db creates
        for text in sqlite_own + db.schema_problems(conn):
            bad.add(text, first=True)
        n_entries = sum(c.entries for c in chains)
        n_postings = check_orphans(conn, bad.about_entries(4), sum(c.postings for c in chains))
        _verify_cache(conn, bad)
    problems = bad.report_lines()
    return VerifyReport(
        ok=bad.count == 0,
        checked_entries=n_entries,
        checked_postings=n_postings,
        checked_events=n_events[0],
        problems=problems,
        first_bad=problems[0] if problems else None,
    )


def _chain_task(chains: list, add, after: int, upto: int) -> Callable[[apsw.Connection], None]:
    """The chain walk over after < seq <= upto, starting from the entry before it."""
    def task(c: apsw.Connection) -> None:
        state = ChainState()
        before = c.execute("SELECT seq, hash FROM entries WHERE seq <= ? ORDER BY seq DESC"
                           " LIMIT 1", (after,)).fetchone()
        if before is not None:
            state = ChainState(before[0] + 1, before[1])
        check_chain(c, add, state, after, upto)
        chains.append(state)
    return task


def verify_events(conn: apsw.Connection, bad: _Problems | None = None) -> int:
    """Check the events hash chain with ledger.events.event_hash; 0 if not available."""
    try:
        from points.ledger.events import event_hash  # type: ignore[attr-defined]
    except ImportError:
        return 0
    try:
        from points.ledger.events import GENESIS_HASH as genesis  # type: ignore[attr-defined]
    except ImportError:
        genesis = GENESIS
    own = bad if bad is not None else _Problems()
    chain = genesis
    n = 0
    sha256 = _sha256
    # SQLite joins the hashed text (as event_hash does); a NULL (a cell that is
    # not text) or a mismatch is decided by event_hash itself.
    for seq, eid, prev_hash, h, text in conn.execute(_EVENT_HASHED_BYTES):
        n += 1
        if prev_hash != chain:
            own.add(f"event {seq} ({eid}): prev_hash does not match the previous event")
        if text is None or sha256(text).hexdigest() != h:
            body, source = conn.execute("SELECT body, source FROM events WHERE seq = ?",
                                        (seq,)).fetchone()
            if (not isinstance(body, str) or not isinstance(source, str)
                    or event_hash(prev_hash, body, source) != h):
                own.add(f"event {seq} ({eid}): hash mismatch")
        chain = h
    # The other columns are derived from `body` (the hashed truth); one SQL pass
    # finds any row whose columns disagree with it.
    for seq, eid in conn.execute(_EVENT_COLUMNS_DISAGREE):
        own.add(f"event {seq} ({eid}): stored columns disagree with its hashed body")
    return n


_EVENT_HASHED_BYTES = """
SELECT seq, id, prev_hash, hash,
  CASE WHEN typeof(prev_hash) = 'text' AND typeof(body) = 'text' AND typeof(source) = 'text'
  THEN CAST(prev_hash || body || char(31) || source AS BLOB) END
FROM events ORDER BY seq
"""

_EVENT_COLUMNS_DISAGREE = """
SELECT seq, id FROM events WHERE NOT json_valid(body)
   OR id IS NOT json_extract(body, '$.id')
   OR type IS NOT json_extract(body, '$.type')
   OR member IS NOT json_extract(body, '$.member')
   OR at IS NOT json_extract(body, '$.at')
   OR day IS NOT substr(json_extract(body, '$.at'), 1, 10)
   OR time IS NOT substr(json_extract(body, '$.at'), 12, 8)
   OR weekday IS NOT (CAST(strftime('%w', substr(json_extract(body, '$.at'), 1, 10)) AS INTEGER) + 6) % 7
   OR amount IS NOT json_extract(body, '$.amount')
   OR ref IS NOT json_extract(body, '$.ref')
ORDER BY seq
"""


def _verify_cache(conn: apsw.Connection, bad: _Problems) -> None:
    """Cached budget/receivable balances must equal the postings up to their watermark."""
    from points.ledger.journal import cached_balances

    cache = cached_balances(conn)
    if not cache:
        return
    for (account, kind), (balance, upto) in sorted(cache.items()):
        (truth,) = conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM postings WHERE account = ? AND kind = ? AND id <= ?",
            (account, kind, upto)).fetchone()
        if truth != balance:
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(entry), 0) FROM postings WHERE id <= ?", (upto,)).fetchone()
            bad.add(f"entry {seq}: cached balance of {account} ({kind}) is {balance},"
                    f" postings say {truth}")
