"""Benchmark: the reports (`balances`, `report trial-balance|payouts|liability|html`) on a
journal of about N postings, beside a bare SQL aggregation on the same file.

    python -m bench.reports --postings 1000000 --db /tmp/bench-reports.db

The journal is built once and kept at --db (re-used when it already holds at least N
postings): a monthly program (`bench-monthly`, periods YYYY-MM, paid from funding) and
a budgeted campaign (`bench-yearend`, period main) grant lots with varied expiries to
--members members; about a third of the entries are redemptions drawing 1-3 lots; a
few awards are reversed; every month end expires what ended (Journal.expire_lots).
Entries go through Journal.append_seqs, so the journal is what the ledger writes.

Then, in this one process, each report's library call is timed (best of --repeat,
wall and CPU seconds), beside the references: `SELECT account, kind, SUM(amount) FROM
postings GROUP BY account, kind` (the least any per-account report reads) and the same
joined to entries for an as-of day; and each command is timed end to end as a child
process (`points ... > /dev/null`: start-up, query, formatting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import time

from points.ledger import db, payouts, reports
from points.ledger.accounts import FUNDING, REDEEMED, budget_account, member_account
from points.ledger.journal import Journal
from points.ledger.model import NewEntry, Posting

AS_OF = dt.date(2025, 2, 28)  # about the middle of the built journal


def build(path: str, postings: int, members: int, batch: int = 5_000, seed: int = 7) -> int:
    """Write a journal of about `postings` postings at `path` (if it has fewer); return the count."""
    conn = db.connect(path)
    (have,) = conn.execute("SELECT COUNT(*) FROM postings").fetchone()
    if have >= postings:
        return have
    if have:
        raise SystemExit(f"{path}: holds {have:,} postings, fewer than {postings:,}: remove it first")
    rnd = random.Random(seed)
    j = Journal(conn)
    start = dt.date(2025, 1, 1)
    j.append_seqs([NewEntry("fund:bench-yearend:basic", start,
                            (Posting(FUNDING, "basic", -10**12), Posting(budget_account("bench-yearend"),
                                                                         "basic", 10**12)),
                            campaign="bench-yearend", step="fund")])
    lots: dict[str, list[list]] = {}  # member -> [[lot id, kind, expires, remaining, entry seq]]
    n = written = 0
    day, month = start, start.month
    while written < postings:
        day += dt.timedelta(days=1)
        if day.month != month:
            month = day.month
            j.expire_lots(day - dt.timedelta(days=1))
            cut = (day - dt.timedelta(days=1)).isoformat()
            for held in lots.values():
                held[:] = [l for l in held if l[2] > cut]
        entries = []
        today = day.isoformat()
        for _ in range(batch):
            n += 1
            member = f"M{rnd.randrange(members):07d}"
            open_ = [l for l in lots.get(member, ()) if l[3] > 0 and l[2] >= today]
            r = rnd.random()
            if open_ and r < 0.33:
                open_.sort(key=lambda l: (l[2], l[1] != "limited", l[0]))
                take = rnd.randint(1, sum(l[3] for l in open_[:3]))
                ps, per = [], {}
                for l in open_[:3]:
                    amt = min(l[3], take)
                    if not amt:
                        break
                    take -= amt
                    l[3] -= amt
                    ps.append(Posting(member_account(member, l[1]), l[1], -amt, lot=l[0]))
                    per[l[1]] = per.get(l[1], 0) + amt
                ps += [Posting(REDEEMED, k, v) for k, v in per.items()]
                entries.append(NewEntry(f"redeem:B{n}", day, ps, memo={"use": "fare"}))
                continue
            if open_ and r < 0.34 and open_[0][5] == "bench-yearend":  # a late cancellation
                l = open_[0]
                amt = l[3]
                l[3] = 0
                entries.append(NewEntry(
                    f"reverse:B{n}", day, (Posting(budget_account("bench-yearend"), "basic", amt),
                                           Posting(member_account(member, "basic"), "basic", -amt, lot=l[0])),
                    campaign="bench-yearend", step="main:prize", reverses=l[4],
                    memo={"award": "prize", "member": member, "period": "main", "target": 0}))
                continue
            yearend = day.month == 2 and rnd.random() < 0.5
            kind = "basic" if yearend or rnd.random() < 0.7 else "limited"
            amount = rnd.choice((10, 50, 100, 300, 1000, 5000)) if not yearend else rnd.choice((5000, 10000, 30000))
            expires = day + dt.timedelta(days=rnd.choice((30, 90, 180, 365)))
            campaign, period = ("bench-yearend", "main") if yearend else ("bench-monthly", f"{day:%Y-%m}")
            source = budget_account(campaign) if yearend else FUNDING
            award = "prize" if yearend else "monthly"
            entries.append(NewEntry(
                f"award:{campaign}:{period}:{award}:{member}:{n}", day,
                (Posting(source, kind, -amount), Posting(member_account(member, kind), kind, amount,
                                                         expires=expires)),
                campaign=campaign, step=f"{period}:{award}",
                memo={"award": award, "member": member, "period": period, "target": amount}))
        seqs = j.append_seqs(entries)
        lo = min(seqs)
        for pid, entry, account, kind, amount, expires, campaign in conn.execute(
                "SELECT p.id, p.entry, p.account, p.kind, p.amount, p.expires, e.campaign FROM postings p"
                " JOIN entries e ON e.seq = p.entry WHERE p.entry >= ? AND p.expires IS NOT NULL", (lo,)):
            lots.setdefault(account.split(":")[1], []).append([pid, kind, expires, amount, entry, campaign])
        (written,) = conn.execute("SELECT COUNT(*) FROM postings").fetchone()
        print(f"  built {written:,} postings (to {day})", file=sys.stderr, flush=True)
    conn.close()
    return written


def timed(call, repeat: int) -> tuple[float, float]:
    best = best_cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postings", type=int, default=1_000_000)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--db", default="/tmp/bench-reports.db", help="journal file (built once, kept)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end command timings")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    total = build(args.db, args.postings, args.members)
    print(f"journal: {args.db}, {total:,} postings (ready in {time.perf_counter() - t0:,.1f} s)")
    conn = db.connect(args.db, readonly=True)
    rows = [
        ("reference: SUM GROUP BY account, kind", lambda: conn.execute(
            "SELECT account, kind, SUM(amount) FROM postings GROUP BY account, kind").fetchall()),
        ("reference: same, as of a day (join)", lambda: conn.execute(
            "SELECT p.account, p.kind, SUM(p.amount) FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE e.effective <= ? GROUP BY p.account, p.kind", (AS_OF.isoformat(),)).fetchall()),
        ("balances", lambda: reports.member_balances(conn)),
        (f"balances --as-of {AS_OF}", lambda: reports.member_balances(conn, AS_OF)),
        ("trial-balance", lambda: reports.trial_balance(conn)),
        (f"trial-balance --as-of {AS_OF}", lambda: reports.trial_balance(conn, AS_OF)),
        ("payouts", lambda: payouts.payouts(conn)),
        ("liability", lambda: reports.liability(conn)),
        (f"liability --as-of {AS_OF}", lambda: reports.liability(conn, AS_OF)),
    ]
    print(f"{'library call':42} {'wall':>9} {'cpu':>9}")
    for name, call in rows:
        wall, cpu = timed(call, args.repeat)
        print(f"{name:42} {wall:8.2f}s {cpu:8.2f}s", flush=True)
    if args.no_cli:
        return
    exe = os.path.join(os.path.dirname(sys.executable), "points")
    print(f"{'command (child process, output to /dev/null)':42} {'wall':>9}")
    for argv_ in (["balances", "--csv"], ["report", "trial-balance"], ["report", "payouts", "--csv"],
                  ["report", "liability", "--csv"], ["report", "html", "-o", os.devnull + ".html"]):
        if argv_[1:2] == ["html"]:
            argv_ = ["report", "html", "-o", args.db + ".html"]
        t = time.perf_counter()
        with open(os.devnull, "w") as out:
            subprocess.run([exe, "--db", args.db, *argv_], stdout=out, check=True)
        print(f"{'points ' + ' '.join(argv_):42} {time.perf_counter() - t:8.2f}s", flush=True)


if __name__ == "__main__":
    main()
