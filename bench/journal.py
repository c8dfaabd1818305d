"""Benchmark: Journal.append and verify against a raw apsw executemany.

    python -m bench.journal --postings 1000000

Appends about N postings in realistic entries -- grants (budget -> member,
2 postings), redemptions drawing 1-3 lots (2-4 postings... up to 5 with two
kinds) and expiry entries (Journal.expire, once per simulated month) -- in
batches of --batch entries, one transaction each. Then writes the very same
posting rows with one apsw executemany per batch into a bare table with the
same columns (no index, no trigger) in a new file in the same directory (WAL,
synchronous=NORMAL) -- the reference of the issue -- and, as a second reference,
the very same entry rows and posting rows the ledger wrote into two bare tables
(same columns, no index, no trigger; one transaction per batch). Then times
`verify` on the journal. Times are wall seconds; CPU seconds
(`time.process_time`) are reported beside them because the machine is shared.
With --seqs it times Journal.append_seqs and Journal.expire_lots instead (the
calls of the rules engine: same checks and rows, no Entry objects returned).
The rows of each append are read back from the file outside the timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time

import apsw

from bench import remove_database
from points.ledger import db
from points.ledger.accounts import REDEEMED, budget_account, member_account
from points.ledger.journal import Journal
from points.ledger.model import NewEntry, Posting
from points.ledger.verify import verify

KINDS = ("basic", "limited")



def run(postings: int, batch: int, members: int, directory: str, seed: int = 1,
        seqs: bool = False) -> dict:
    rnd = random.Random(seed)
    path = os.path.join(directory, "bench-journal.db")
    raw_path = os.path.join(directory, "bench-raw.db")
    remove_database(path)
    remove_database(raw_path)
    conn = db.connect(path)
    j = Journal(conn)
    budget = budget_account("bench")
    start = dt.date(2024, 1, 1)
    for kind in KINDS:
        j.fund_budget("bench", kind, 10**15, start)

    open_lots: dict[str, list] = {}  # member -> [[lot id, kind, expires, remaining]]
    batches: list[list[tuple]] = []  # posting rows as written, per append
    n_postings = 4
    n_entries = 2
    t_append = cpu_append = 0.0
    seq_ranges: list[tuple[int, int]] = []  # (first, last) entry seq written per append
    day = start
    month = day.month
    n = 0

    def timed(call) -> tuple[list[tuple], int]:
        """Time one append (or expiry); read its posting rows back, outside the timing."""
        nonlocal t_append, cpu_append
        before = j.head()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        t_append += time.perf_counter() - t0
        cpu_append += time.process_time() - c0
        after = j.head()[0]
        if after > before:
            seq_ranges.append((before + 1, after))
        rows = conn.execute(
            "SELECT id, entry, idx, account, kind, amount, expires, lot FROM postings"
            " WHERE entry > ? AND entry <= ? ORDER BY id", (before, after)).fetchall()
        batches.append(rows)
        return rows, after - before

    while n_postings < postings:
        day += dt.timedelta(days=1)
        if day.month != month:  # month end: expire what ended last month
            month = day.month
            last_day = day - dt.timedelta(days=1)
            rows, n_written = timed(lambda: j.expire_lots(last_day) if seqs else j.expire(last_day))
            for _id, _entry, _idx, account, _kind, _amount, _expires, lot in rows:
                if lot is not None:
                    member = account.split(":")[1]
                    open_lots[member] = [l for l in open_lots.get(member, ()) if l[0] != lot]
            n_postings += len(rows)
            n_entries += n_written
        today = day.isoformat()
        entries = []
        for _ in range(batch):
            n += 1
            member = f"W{rnd.randrange(members):07d}"
            lots = [l for l in open_lots.get(member, ()) if l[2] >= today and l[3] > 0]
            if lots and rnd.random() < 0.45:
                lots.sort(key=lambda l: (l[2], l[1] != "limited", l[0]))
                take = rnd.randint(1, sum(l[3] for l in lots[:3]))
                ps, per_kind = [], {}
                for l in lots[:3]:
                    if not take:
                        break
                    amt = min(l[3], take)
                    take -= amt
                    l[3] -= amt
                    ps.append(Posting(member_account(member, l[1]), l[1], -amt, lot=l[0]))
                    per_kind[l[1]] = per_kind.get(l[1], 0) + amt
                for kind, amt in per_kind.items():
                    ps.append(Posting(REDEEMED, kind, amt))
                entries.append(NewEntry(f"redeem:E{n}", day, ps, events=(f"E{n}",),
                                        memo={"use": "fare"}))
            else:
                kind = KINDS[rnd.random() < 0.3]
                amount = rnd.choice((10, 50, 100, 300, 1000))
                expires = day + dt.timedelta(days=rnd.choice((30, 60, 90, 365)))
                entries.append(NewEntry(
                    f"award:bench:{n}", day,
                    (Posting(budget, kind, -amount), Posting(member_account(member, kind), kind,
                                                             amount, expires=expires)),
                    campaign="bench", rule="bench.rules", rules_hash="0" * 64, step="award",
                    events=(f"E{n}",)))
        rows, n_written = timed(lambda: (j.append_seqs if seqs else j.append)(entries))
        for pid, _entry, _idx, account, kind, amount, expires, _lot in rows:
            if expires is not None:
                open_lots.setdefault(account.split(":")[1], []).append([pid, kind, expires, amount])
        n_postings += len(rows)
        n_entries += n_written
        for member in list(open_lots)[: batch // 10]:  # drop spent lots now and then
            open_lots[member] = [l for l in open_lots[member] if l[3] > 0]

    total_rows = sum(len(b) for b in batches)
    raw = _bare(raw_path)
    t0, c0 = time.perf_counter(), time.process_time()
    for rows in batches:
        with db.transaction(raw):
            raw.executemany(_RAW_POSTING, rows)
    t_raw = time.perf_counter() - t0
    cpu_raw = time.process_time() - c0
    raw.close()

    # Second reference: the entry rows and posting rows exactly as the ledger stored
    # them (read back from its file, outside the timing), per append, into bare tables.
    both = []
    for first, last in seq_ranges:
        both.append((
            conn.execute("SELECT * FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq",
                         (first, last)).fetchall(),
            conn.execute("SELECT * FROM postings WHERE entry BETWEEN ? AND ? ORDER BY id",
                         (first, last)).fetchall()))
    remove_database(raw_path)
    raw = _bare(raw_path)
    t0, c0 = time.perf_counter(), time.process_time()
    for erows, prows in both:
        with db.transaction(raw):
            raw.executemany(_RAW_POSTING, prows)
            raw.executemany(_RAW_ENTRY, erows)
    t_raw_both = time.perf_counter() - t0
    cpu_raw_both = time.process_time() - c0
    raw.close()
    del both

    conn.close()
    ro = db.connect(path, readonly=True)
    t0 = time.perf_counter()
    report = verify(ro)
    t_verify = time.perf_counter() - t0
    assert report.ok, report.problems[:5]
    assert report.checked_postings == n_postings, (report.checked_postings, n_postings)
    size = os.path.getsize(path)
    return {
        "postings": n_postings, "entries": n_entries, "raw_rows": total_rows,
        "append_s": t_append, "raw_s": t_raw, "verify_s": t_verify, "db_mb": size / 2**20,
        "append_cpu": cpu_append, "raw_cpu": cpu_raw,
        "raw_both_s": t_raw_both, "raw_both_cpu": cpu_raw_both,
    }


_RAW_POSTING = "INSERT INTO postings VALUES (?,?,?,?,?,?,?,?)"
_RAW_ENTRY = "INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"


def _bare(path: str) -> apsw.Connection:
    """A new file with the journal's two tables, same columns, no index, no trigger."""
    raw = apsw.Connection(path)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(
        "CREATE TABLE postings (id INTEGER PRIMARY KEY, entry INTEGER NOT NULL,"
        " idx INTEGER NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL,"
        " amount INTEGER NOT NULL, expires TEXT, lot INTEGER)")
    raw.execute(
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY, key TEXT NOT NULL,"
        " effective TEXT NOT NULL, recorded TEXT NOT NULL, campaign TEXT, rule TEXT,"
        " rules_hash TEXT, step TEXT, events TEXT NOT NULL, reverses INTEGER,"
        " memo TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)")
    return raw


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postings", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000, help="entries per append (transaction)")
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--dir", default=None, help="directory for the database files")
    ap.add_argument("--seqs", action="store_true",
                    help="time Journal.append_seqs and expire_lots (what the rules engine calls,"
                         " no Entry objects returned) instead of append and expire")
    args = ap.parse_args(argv)
    directory = args.dir or tempfile.mkdtemp(prefix="bench-journal-")
    r = run(args.postings, args.batch, args.members, directory, seqs=args.seqs)
    n, nr = r["postings"], r["raw_rows"]  # the references write the rows of the timed appends
    print(f"entries {r['entries']:,}, postings {n:,}, database {r['db_mb']:.0f} MiB")
    print(f"{'':34s}   wall s    postings/s |    CPU s    postings/s")
    rows = (("Journal.append_seqs" if args.seqs else "Journal.append", n, r["append_s"],
             r["append_cpu"]),
            ("raw executemany, postings only", nr, r["raw_s"], r["raw_cpu"]),
            ("raw executemany, entries+postings", nr, r["raw_both_s"], r["raw_both_cpu"]))
    for name, count, wall, cpu in rows:
        print(f"{name:34s} {wall:8.2f} {count / wall:13,.0f} | {cpu:8.2f} {count / cpu:13,.0f}")
    for name, count, wall, cpu in rows[1:]:
        print(f"ratio ledger/raw ({name}): {(n / r['append_s']) / (count / wall):.2f}x wall,"
              f" {(n / r['append_cpu']) / (count / cpu):.2f}x CPU  (target >= 0.5x)")
    print(f"verify         : {r['verify_s']:7.2f} s  {r['postings'] / r['verify_s']:12,.0f} postings/s"
          "  (target >= 400,000)")


if __name__ == "__main__":
    main()
