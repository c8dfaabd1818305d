"""What an entry per member costs the journal: `python -m bench.entry_shape [--members 50000]`.

One card settlement's grants appended with `Journal.append_seqs`, each way on a fresh
database, alternating, CPU seconds of the appends and their commit:

- as the engine writes them: an entry per member (its key, its source event ids, the
  member credit with its expiry and the funding debit);
- as one entry per campaign step would (the alternative issue 16 names): every
  member's credit in one entry with one funding debit, batches of --batch members.

A measurement for the decisions in docs/benchmarks.md ("where it stops"), not a target:
the engine writes an entry per member. --cache-kib and --dirty-kib show what SQLite's
spilling of a big transaction's pages costs (section 6 there).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import tempfile
import time

from bench import remove_database
from points.ledger import db
from points.ledger.journal import Journal
from points.ledger.model import NewEntry, Posting

DAY, EXPIRES = dt.date(2025, 2, 26), dt.date(2026, 2, 28)


# (cache KiB, changed-pages KiB) from --cache-kib / --dirty-kib, set while the appends
# run through db.page_cache, as a run sets them; None: the journal's own page cache
# (64 MiB) and SQLite's default spill threshold.
CACHE: list = [None, None]


def _fresh(path: str) -> tuple:
    remove_database(path)
    conn = db.connect(path)
    return conn, Journal(conn)


def _appending(conn):
    """One transaction, with the page cache and spill threshold of --cache-kib / --dirty-kib."""
    kib, dirty = CACHE
    if kib is None and dirty is None:
        return db.transaction(conn)
    if kib is None:
        kib = -conn.execute("PRAGMA cache_size").fetchone()[0]  # the journal's, in KiB
    stack = contextlib.ExitStack()
    stack.enter_context(db.page_cache(conn, kib, dirty_kib=dirty))
    stack.enter_context(db.transaction(conn))
    return stack


def _timed_appends(awards: list[tuple], path: str, batch: int, entries) -> float:
    """CPU seconds of appending `entries(first index, awards of the batch)` batch by batch
    on a fresh database, in one transaction with its commit."""
    conn, journal = _fresh(path)
    c0 = time.process_time()
    with _appending(conn):
        for s in range(0, len(awards), batch):
            journal.append_seqs(entries(s, awards[s:s + batch]))
    cpu = time.process_time() - c0
    conn.close()
    return cpu


def _entry_per_member(_s: int, part: list[tuple]) -> list[NewEntry]:
    return [NewEntry(key=f"award:c:2025-02:monthly:{m}", effective=DAY, campaign="c", rule="c.rules",
                     step="2025-02:monthly", events=ev, memo={"member": m, "target": a},
                     postings=(Posting("system:funding", "basic", -a),
                               Posting(f"member:{m}:basic", "basic", a, expires=EXPIRES)))
            for m, a, ev in part]


def _entry_per_step(s: int, part: list[tuple]) -> list[NewEntry]:
    credits = tuple(Posting(f"member:{m}:basic", "basic", a, expires=EXPIRES) for m, a, _ in part)
    return [NewEntry(key=f"award:c:2025-02:monthly:{s}", effective=DAY, campaign="c", rule="c.rules",
                     step="2025-02:monthly", events=tuple(e for _, _, ev in part for e in ev),
                     memo={"members": len(part)},
                     postings=(Posting("system:funding", "basic", -sum(a for _, a, _ in part)),) + credits)]


def per_member(awards: list[tuple], path: str, batch: int) -> float:
    return _timed_appends(awards, path, batch, _entry_per_member)


def per_step(awards: list[tuple], path: str, batch: int) -> float:
    return _timed_appends(awards, path, batch, _entry_per_step)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.entry_shape", description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=5_000, help="members per append (the engine's batch)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache-kib", type=int, help="page cache (default: the journal's 64 MiB;"
                    " a run uses 16384)")
    ap.add_argument("--dirty-kib", type=int, help="changed pages kept before SQLite spills them"
                    " mid-transaction (a run uses 65536; default: the cache size)")
    args = ap.parse_args(argv)
    CACHE[:] = [args.cache_kib, args.dirty_kib]
    rng = random.Random(1)
    awards = [(f"W{i:08d}", rng.randint(5, 20_000), tuple(f"C{i:07d}-{k}" for k in range(10)))
              for i in range(args.members)]
    work = tempfile.mkdtemp(prefix="bench-entry-shape-")
    for r in range(args.rounds):
        a = per_member(awards, os.path.join(work, "member.db"), args.batch)
        b = per_step(awards, os.path.join(work, "step.db"), args.batch)
        print(f"round {r + 1}: {args.members:,} grants, an entry per member {a:.2f} s CPU,"
              f" an entry per {args.batch:,} members {b:.2f} s CPU ({b / a:.2f}x)")
    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    os.rmdir(work)


if __name__ == "__main__":
    main()
