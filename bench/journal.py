"""Benchmark: Journal.append and verify against a raw apsw executemany.

    python -m bench.journal --postings 1000000

Appends about N postings in realistic entries -- grants (budget -> member,
2 postings), redemptions drawing 1-3 lots (2-4 postings... up to 5 with two
kinds) and expiry entries (Journal.expire, once per simulated month) -- in
batches of --batch entries, one transaction each. Then writes the very same
posting rows with one apsw executemany per batch into a bare table with the
same columns (no index, no trigger) in a new file in the same directory (WAL,
synchronous=NORMAL), and times `verify` on the journal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time

import apsw

from ledger import db
from ledger.accounts import REDEEMED, budget_account, member_account
from ledger.journal import Journal
from ledger.model import NewEntry, Posting
from ledger.verify import verify

KINDS = ("basic", "limited")


def _fresh(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def run(postings: int, batch: int, members: int, directory: str, seed: int = 1) -> dict:
    rnd = random.Random(seed)
    path = os.path.join(directory, "bench-journal.db")
    raw_path = os.path.join(directory, "bench-raw.db")
    _fresh(path)
    _fresh(raw_path)
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
    t_append = 0.0
    day = start
    month = day.month
    n = 0
    while n_postings < postings:
        day += dt.timedelta(days=1)
        if day.month != month:  # month end: expire what ended last month
            month = day.month
            t0 = time.perf_counter()
            written = j.expire(day - dt.timedelta(days=1))
            t_append += time.perf_counter() - t0
            rows = []
            for e in written:
                for i, p in enumerate(e.postings):
                    rows.append((p.id, e.seq, i, p.account, p.kind, p.amount, _iso(p.expires), p.lot))
                for p in e.postings:
                    if p.lot is not None:
                        lots = open_lots.get(p.account.split(":")[1], [])
                        open_lots[p.account.split(":")[1]] = [l for l in lots if l[0] != p.lot]
            batches.append(rows)
            n_postings += len(rows)
            n_entries += len(written)
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
        del spent_here
        t0 = time.perf_counter()
        written = j.append(entries)
        t_append += time.perf_counter() - t0
        rows = []
        for e in written:
            for i, p in enumerate(e.postings):
                rows.append((p.id, e.seq, i, p.account, p.kind, p.amount, _iso(p.expires), p.lot))
                if p.expires is not None:
                    open_lots.setdefault(p.account.split(":")[1], []).append(
                        [p.id, p.kind, p.expires.isoformat(), p.amount])
        batches.append(rows)
        n_postings += len(rows)
        n_entries += len(written)
        for member in list(open_lots)[: batch // 10]:  # drop spent lots now and then
            open_lots[member] = [l for l in open_lots[member] if l[3] > 0]

    total_rows = sum(len(b) for b in batches)
    raw = apsw.Connection(raw_path)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(
        "CREATE TABLE postings (id INTEGER PRIMARY KEY, entry INTEGER NOT NULL,"
        " idx INTEGER NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL,"
        " amount INTEGER NOT NULL, expires TEXT, lot INTEGER)")
    t0 = time.perf_counter()
    for rows in batches:
        with db.transaction(raw):
            raw.executemany("INSERT INTO postings VALUES (?,?,?,?,?,?,?,?)", rows)
    t_raw = time.perf_counter() - t0
    raw.close()

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
    }


def _iso(d):
    return None if d is None else d.isoformat()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postings", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000, help="entries per append (transaction)")
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--dir", default=None, help="directory for the database files")
    args = ap.parse_args(argv)
    directory = args.dir or tempfile.mkdtemp(prefix="bench-journal-")
    r = run(args.postings, args.batch, args.members, directory)
    lp = r["postings"] / r["append_s"]
    rp = r["raw_rows"] / r["raw_s"]
    print(f"entries {r['entries']:,}, postings {r['postings']:,}, database {r['db_mb']:.0f} MiB")
    print(f"Journal.append : {r['append_s']:7.2f} s  {lp:12,.0f} postings/s")
    print(f"raw executemany: {r['raw_s']:7.2f} s  {rp:12,.0f} postings/s")
    print(f"ratio ledger/raw: {lp / rp:.2f}x  (target >= 0.5x)")
    print(f"verify         : {r['verify_s']:7.2f} s  {r['postings'] / r['verify_s']:12,.0f} postings/s"
          "  (target >= 400,000)")


if __name__ == "__main__":
    main()
