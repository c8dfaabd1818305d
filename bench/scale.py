"""Scale: time, CPU and peak memory of import, run and verify through the CLI as the events grow.

    python -m bench.scale --events 100000 1000000 [10000000] [--dir DIR] [--keep]

For each size N, a mixed workload of every program (bench.workloads.mixed, N
events over N/10 members) is written as JSONL into a fresh database, then the
CLI runs as child processes on that one file, in this order:

- `points --db F init` (not timed);
- `points --db F import FILE`;
- `points --db F run --until 2027-04-01 --allow-future --rules rules/ --json`
  (every seed campaign to completion, all expiries);
- `points --db F verify --json` (chains, balances, and the replay of the run).

Each child reports its wall time, its CPU seconds (user + system, from wait4)
and its own peak RSS (VmHWM of /proc/self/status at exit, written by the
launcher: VmHWM is reset by exec, ru_maxrss keeps the forked parent's).

Then the run's results are checked (read-only, not timed):
- the trial balance is zero per kind;
- one card cycle (period 2025-06) recomputed independently from the events by
  the per-event loop of bench.settlement (`card_loop`) equals, member by member,
  the net points the journal holds for that period of jwest-card;
- for a seeded sample of members, each balance per kind on 2026-05-31 equals the sum
  of what their open lots have left that day (Journal.balance against Journal.lots:
  two reads), and at --until the trial balance above.

Time grows linearly when the CPU cost per event stays the same from one point
to the next: the rows print that cost and its ratio to the previous point.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import remove_database
from bench.import_events import CLI_LAUNCHER

ROOT = Path(__file__).resolve().parent.parent
UNTIL = dt.date(2027, 4, 1)
STAGES = ("import", "run", "verify")
RSS_LIMIT_MB = 300
# The card cycle recomputed by the check: period 2025-06 is the cycle 2025-05-16 .. 2025-06-15.
CHECK_PERIOD, CHECK_CYCLE = "2025-06", (dt.date(2025, 5, 16), dt.date(2025, 6, 15))
SAMPLE_MEMBERS = 1_000
# Sampled balances are compared on a day when members hold points (after the year-end
# payment, before the redemptions and the expiries that empty most accounts by --until).
SAMPLE_DAY = dt.date(2026, 5, 31)

#: Runs `points` in a child and writes its peak RSS in KiB (VmHWM) to argv[1] at exit.
LAUNCHER = CLI_LAUNCHER


# ---------------------------------------------------------------- the children


def cli(args: list[str], work: str, stdout: str | None = None) -> dict:
    """`points ARGS` in a child process: wall and CPU seconds, peak RSS (MB), exit code 0
    required. Its standard output goes to the file `stdout` (a run's report can be big)."""
    rss = os.path.join(work, "child.rss")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = open(stdout, "w") if stdout else subprocess.DEVNULL
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, rss, *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.PIPE)
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        if stdout:
            out.close()
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        raise RuntimeError(f"points {' '.join(args)} exited {code}:\n{err.decode()[-3000:]}")
    with open(rss) as f:
        rss_mb = int(f.read()) / 1024
    return dict(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss_mb=rss_mb)


# ---------------------------------------------------------------- the checks


def check(path: str, n: int) -> dict:
    """The run's results, read-only: trial balance, one card cycle recomputed, sampled
    balances against their lots. Raises AssertionError on any difference."""
    from bench.settlement import card_loop
    from points.ledger import db
    from points.ledger.journal import Journal

    conn = db.connect(path, readonly=True)
    try:
        unbalanced = list(conn.execute(
            "SELECT kind, SUM(amount) FROM postings GROUP BY kind HAVING SUM(amount) <> 0"))
        assert not unbalanced, f"trial balance not zero: {unbalanced}"
        start, end = CHECK_CYCLE
        expected = card_loop(conn, start, end, UNTIL)
        got: dict[str, int] = defaultdict(int)
        for account, pts in conn.execute(
                "SELECT p.account, SUM(p.amount) FROM entries e JOIN postings p ON p.entry = e.seq"
                " WHERE e.campaign = 'jwest-card' AND e.step >= ? AND e.step < ?"
                " AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%') GROUP BY p.account",
                (CHECK_PERIOD + ":", CHECK_PERIOD + ";")):
            got[account.split(":")[1]] += pts
        got = {m: p for m, p in got.items() if p}
        if got != expected:
            diff = sorted(m for m in set(got) | set(expected) if got.get(m) != expected.get(m))
            raise AssertionError(f"card period {CHECK_PERIOD}: {len(diff)} members differ, e.g. "
                                 + ", ".join(f"{m}: journal {got.get(m)} loop {expected.get(m)}" for m in diff[:5]))
        journal = Journal(conn)
        rng = random.Random(n)
        members = max(1, n // 10)
        sample = sorted({f"W{rng.randrange(members):08d}" for _ in range(SAMPLE_MEMBERS)})
        points = 0
        for m in sample:
            bal = journal.balance(m, SAMPLE_DAY)
            left: dict[str, int] = dict.fromkeys(bal, 0)
            for lot in journal.lots(m, SAMPLE_DAY):
                left[lot.kind] = left.get(lot.kind, 0) + lot.remaining
            assert bal == left, f"{m}: balance {bal} but open lots hold {left}"
            points += sum(bal.values())
        return dict(card_members=len(expected), card_points=sum(expected.values()),
                    sampled=len(sample), sampled_points=points)
    finally:
        conn.close()


# ---------------------------------------------------------------- the parent


def measure(n: int, work: str, echo=print, keep: bool = False) -> dict:
    from bench import workloads as w

    src = os.path.join(work, f"mixed-{n}.jsonl")
    path = os.path.join(work, f"mixed-{n}.db")
    remove_database(path)
    t0 = time.perf_counter()
    w.write_jsonl(w.mixed(n, max(1, n // 10)), src)
    echo(f"  scale {n:,}: generated in {time.perf_counter() - t0:.0f} s ({os.path.getsize(src) / 1e6:.0f} MB)")
    out: dict = {}
    cli(["--db", path, "init"], work)
    steps = (("import", ["import", src], None),
             ("run", ["run", "--until", UNTIL.isoformat(), "--allow-future", "--rules", str(ROOT / "rules"),
                      "--json"], os.path.join(work, "run.json")),
             ("verify", ["verify", "--json"], os.path.join(work, "verify.json")))
    for stage, args, stdout in steps:
        r = cli(["--db", path, *args], work, stdout)
        if stage == "run":
            with open(stdout) as f:
                r["entries"] = json.load(f)["entries"]
        out[stage] = r
        echo(f"  scale {n:,}: {stage:6} {r['wall']:8.1f} s (CPU {r['cpu']:7.1f} s, {r['cpu'] / n * 1e6:5.1f} us/event)"
             f"  peak RSS {r['rss_mb']:5.0f} MB" + (f"  {r['entries']:,} entries" if "entries" in r else ""))
    t0 = time.perf_counter()
    try:
        out["check"] = check(path, n)
        c = out["check"]
        echo(f"  scale {n:,}: checked in {time.perf_counter() - t0:.0f} s: trial balance zero; card period"
             f" {CHECK_PERIOD}: {c['card_members']:,} members, {c['card_points']:,} points as the loop"
             f" computes them; {c['sampled']:,} sampled balances on {SAMPLE_DAY} ({c['sampled_points']:,} points)"
             " equal their open lots")
    except AssertionError as exc:
        out["check"] = dict(error=str(exc))
        echo(f"  scale {n:,}: CHECK FAILED: {exc}")
    out["db_mb"] = os.path.getsize(path) / 1e6
    if not keep:
        remove_database(path)
    os.remove(src)
    return out


def rows_of(results: dict[int, dict]) -> list[dict]:
    """Benchmark rows: per stage and size, CPU per event against the previous size's
    (linear growth: ratio ~1x) and peak RSS (< 300 MB); per size, the check."""
    sizes = sorted(results)
    rows = []
    for stage in STAGES:
        prev = None
        for n in sizes:
            r = results[n][stage]
            per = r["cpu"] / n * 1e6
            ref = None if prev is None else results[prev][stage]["cpu"] / prev * 1e6
            rows.append(dict(
                name=f"scale {stage} @{n / 1e6:g}M (CPU/event)", subject=per, reference=ref, unit="us",
                ratio=None if ref is None else per / ref, target="~1x prev" if ref else "info",
                ok=None if ref is None else per / ref <= 1.5,
                note=f"wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s, peak RSS {r['rss_mb']:.0f} MB"
                     + ("" if ref is None else f"; reference: CPU per event @{prev / 1e6:g}M")))
            prev = n
        for n in sizes:
            r = results[n][stage]
            rows.append(dict(
                name=f"scale {stage} @{n / 1e6:g}M peak RSS", subject=r["rss_mb"],
                reference=results[sizes[0]][stage]["rss_mb"], unit="MB",
                ratio=r["rss_mb"] / results[sizes[0]][stage]["rss_mb"], target=f"< {RSS_LIMIT_MB} MB",
                ok=r["rss_mb"] < RSS_LIMIT_MB, note=None))
    for n in sizes:
        c = results[n]["check"]
        rows.append(dict(
            name=f"scale check @{n / 1e6:g}M", subject=c.get("card_members"), reference=None,
            unit="members", ratio=None, target="exact", ok="error" not in c,
            note=c.get("error") or (f"trial balance zero per kind; card period {CHECK_PERIOD} recomputed by"
                                     f" bench.settlement.card_loop: {c['card_members']:,} members,"
                                     f" {c['card_points']:,} points, equal; {c['sampled']:,} sampled"
                                     f" balances on {SAMPLE_DAY} ({c['sampled_points']:,} points) equal their open lots")))
    return rows


def run(sizes, work: str, echo=print, keep: bool = False) -> list[dict]:
    results = {n: measure(n, work, echo, keep) for n in sorted(sizes)}
    echo(table(results))
    return rows_of(results)


def table(results: dict[int, dict]) -> str:
    """The figures as a markdown table (docs/benchmarks.md keeps it)."""
    lines = ["| events (members) | stage | wall | CPU | CPU/event | peak RSS |", "|---|---|---|---|---|---|"]
    for n in sorted(results):
        for stage in STAGES:
            r = results[n][stage]
            lines.append(f"| {n:,} ({max(1, n // 10):,}) | {stage} | {r['wall']:.1f} s | {r['cpu']:.1f} s |"
                         f" {r['cpu'] / n * 1e6:.1f} us | {r['rss_mb']:.0f} MB |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one, removed)")
    ap.add_argument("--keep", action="store_true", help="keep each size's database")
    args = ap.parse_args(argv)
    from bench.__main__ import print_rows

    work = args.dir or tempfile.mkdtemp(prefix="bench-scale-")
    os.makedirs(work, exist_ok=True)
    try:
        print_rows(run(args.events, work, keep=args.keep))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
