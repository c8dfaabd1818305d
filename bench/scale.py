"""Scale: time and peak memory of import, run and verify as the events grow.

    python -m bench.scale --events 100000 1000000 [10000000]

For each size N, a mixed workload of every program (bench.workloads.mixed, N
events over N/10 members) is written as JSONL, then three child processes run
on one database file, each reporting its wall time and its own peak RSS
(VmHWM of /proc/self/status at exit: the process's own high-water mark; not
ru_maxrss, which on Linux keeps the forked parent's size across exec):

- import: `ledger.events.import_files` (what `points import FILE` does);
- run: `engine.workflow.Runner(conn, load_rules('rules/'), 2027-04-01).run()`
  (what `points run --until 2027-04-01` does: every seed campaign to completion,
  all expiries);
- verify: `ledger.verify.verify` on a read-only connection.

Linearity is shown by comparing the time at the largest size with the time at
the smallest size scaled by the ratio of the sizes (ratio 1.00x = exactly linear).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNTIL = dt.date(2027, 4, 1)
STAGES = ("import", "run", "verify")


# ---------------------------------------------------------------- the children


def child(stage: str, dbpath: str, arg: str | None) -> dict:
    from points.ledger import db

    t0 = time.perf_counter()
    extra: dict = {}
    if stage == "import":
        from points.ledger.events import import_files

        conn = db.connect(dbpath)
        report = import_files(conn, [arg])
        assert report.ok, report.errors[:5]
        extra["added"] = report.added
    elif stage == "run":
        from points.dsl.loader import load_rules
        from points.engine.workflow import Runner

        conn = db.connect(dbpath)
        report = Runner(conn, load_rules(ROOT / "rules"), dt.date.fromisoformat(arg)).run()
        extra["entries"] = report.entries
    elif stage == "verify":
        from points.ledger.verify import verify

        conn = db.connect(dbpath, readonly=True)
        report = verify(conn)
        assert report.ok, report.problems[:5]
        extra.update(entries=report.checked_entries, postings=report.checked_postings,
                     events=report.checked_events)
    else:
        raise SystemExit(f"unknown stage {stage}")
    conn.close()
    seconds = time.perf_counter() - t0
    return dict(stage=stage, seconds=seconds, cpu=time.process_time(), rss_mb=peak_rss_mb(), **extra)


def peak_rss_mb() -> float:
    """This process's peak resident set size. VmHWM, not ru_maxrss: on Linux ru_maxrss
    keeps the high-water mark of the pre-exec image (the forked parent), VmHWM is
    reset by exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(stage: str, dbpath: str, arg: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "bench.scale", "--child", stage, dbpath] + ([arg] if arg else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


# ---------------------------------------------------------------- the parent


def measure(n: int, work: str, echo=print) -> dict:
    from bench import workloads as w

    src = os.path.join(work, f"mixed-{n}.jsonl")
    path = os.path.join(work, f"mixed-{n}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    t0 = time.perf_counter()
    w.write_jsonl(w.mixed(n, max(1, n // 10)), src)
    echo(f"  scale {n:,}: generated in {time.perf_counter() - t0:.0f} s ({os.path.getsize(src) / 1e6:.0f} MB)")
    out = {}
    for stage, arg in (("import", src), ("run", UNTIL.isoformat()), ("verify", None)):
        r = run_child(stage, path, arg)
        out[stage] = r
        extra = {k: v for k, v in r.items() if k not in ("stage", "seconds", "cpu", "rss_mb", "wall")}
        echo(f"  scale {n:,}: {stage:6} {r['seconds']:8.1f} s (CPU {r['cpu']:7.1f} s)  peak RSS {r['rss_mb']:6.0f} MB  {extra}")
    out["db_mb"] = os.path.getsize(path) / 1e6
    os.remove(src)
    return out


def run(sizes, work: str, echo=print) -> list[dict]:
    sizes = sorted(sizes)
    results = {n: measure(n, work, echo) for n in sizes}
    lo, hi = sizes[0], sizes[-1]
    rows = []
    for stage in STAGES:
        t_lo, t_hi = results[lo][stage]["seconds"], results[hi][stage]["seconds"]
        linear = t_lo * hi / lo
        per = ", ".join(f"{n / 1e6:g}M: {results[n][stage]['seconds']:.1f} s "
                        f"({results[n][stage]['seconds'] / n * 1e6:.1f} us/event, CPU {results[n][stage]['cpu']:.1f} s)"
                        for n in sizes)
        rows.append(dict(name=f"scale {stage} time @{hi / 1e6:g}M", subject=t_hi, reference=linear, unit="s",
                         ratio=t_hi / linear, target="~1x linear", ok=t_hi / linear <= 1.5,
                         note=f"reference = time @{lo / 1e6:g}M x {hi // lo}; {per}"))
    for stage in STAGES:
        m_lo, m_hi = results[lo][stage]["rss_mb"], results[hi][stage]["rss_mb"]
        per = ", ".join(f"{n / 1e6:g}M: {results[n][stage]['rss_mb']:.0f} MB" for n in sizes)
        rows.append(dict(name=f"scale {stage} peak RSS @{hi / 1e6:g}M", subject=m_hi, reference=m_lo, unit="MB",
                         ratio=m_hi / m_lo, target="< 300 MB", ok=m_hi < 300 and m_hi / m_lo <= 1.5,
                         note=f"reference = peak RSS @{lo / 1e6:g}M (flat means ratio ~1x); {per}"))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        stage, dbpath, *rest = args.child
        print(json.dumps(child(stage, dbpath, rest[0] if rest else None)))
        return
    from bench.__main__ import print_rows

    print_rows(run(args.events, args.dir or tempfile.mkdtemp(prefix="bench-scale-")))


if __name__ == "__main__":
    main()
