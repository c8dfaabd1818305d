"""The benchmark suite: `python -m bench [--size small|medium|full] [--only NAME ...]`.

Every benchmark runs its subject and its reference in this same process, on the
same database file, and prints one row: subject figure, reference figure, their
ratio, the target, and whether it was met. See docs/benchmarks.md.

Issue 16's figures, each beside its reference from the same run: `points run` vs the
per-event loop and vs the awards-only SQL (settlement), `points import` vs the stdlib
floor (import), `points verify` vs bean-check and the ledger-only checks (verify,
journal), and import / run / verify through the CLI at growing sizes with peak RSS
(scale). Verdicts on CPU seconds where the machine is shared.

Sizes:
  small   ~100k events everywhere, scale points 10k and 100k: a quick check (a few minutes)
  medium  the issue's workloads: card cycle 1M events / 100k members, year-end 1M
          bookings / 300k members, import 1M events, journal 1M postings,
          scale points 100k and 1M events
  full    medium + the 10M-event / 1M-member scale point (about an hour on an idle
          2-core machine) and a 10M-posting journal
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time

SIZES = {
    #            card ev, card mem, ye ev,    ye mem,  import,    journal,    scale points
    "small": dict(card=(100_000, 10_000), yearend=(100_000, 30_000), imports=100_000,
                  journal=200_000, scale=(10_000, 100_000)),
    "medium": dict(card=(1_000_000, 100_000), yearend=(1_000_000, 300_000), imports=1_000_000,
                   journal=1_000_000, scale=(100_000, 1_000_000)),
    "full": dict(card=(1_000_000, 100_000), yearend=(1_000_000, 300_000), imports=1_000_000,
                 journal=10_000_000, scale=(100_000, 1_000_000, 10_000_000)),
}
BENCHES = ("import", "settlement", "yearend", "journal", "scale", "verify")
# verify: mixed events per journal (~1.6 postings an event): ~250k and ~1M postings
VERIFY_EVENTS = {"small": (150_000,), "medium": (150_000, 600_000), "full": (150_000, 600_000)}


# ---------------------------------------------------------------- output


def _fmt(x, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "s":
        return f"{x:,.2f} s"
    if unit in ("ms", "us"):
        return f"{x:,.2f} {unit}"
    if unit == "MB":
        return f"{x:,.0f} MB"
    return f"{x:,.0f} {unit}"


def print_rows(rows: list[dict], out=None) -> None:
    out = out or sys.stdout
    head = f"{'benchmark':34} {'subject':>16} {'reference':>16} {'ratio':>7}  {'target':10} {'result':6}"
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in rows:
        ok = r.get("ok")
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        ratio = r.get("ratio")
        print(f"{r['name']:34} {_fmt(r['subject'], r['unit']):>16} {_fmt(r.get('reference'), r.get('ref_unit', r['unit'])):>16} "
              f"{(f'{ratio:.2f}x' if ratio is not None else '-'):>7}  {r['target']:10} {verdict:6}", file=out)
    notes = [r for r in rows if r.get("note")]
    if notes:
        print(file=out)
        for r in notes:
            print(f"  {r['name']}: {r['note']}", file=out)
    out.flush()


def machine() -> str:
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 2**20:.0f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import apsw
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, Python {platform.python_version()}, "
            f"SQLite {apsw.sqlite_lib_version()}, apsw {apsw.apsw_version()}, {platform.system()} {platform.release()}")


# ---------------------------------------------------------------- benchmarks


def bench_import(size: dict, work: str, echo) -> list[dict]:
    """`points import` (a child through the CLI, on a fresh database) beside the issue's
    stdlib floor (a child: json.loads per line, a SHA-256 chain, executemany into a table
    with a UNIQUE id) on the same file; the verdict on CPU seconds (wall in the note).
    Beside it for information, the same script storing the events table the import keeps."""
    from bench import import_events as ie
    from bench import workloads as wl

    n = size["imports"]
    events = ie.generate(n)
    jsonl, csvf = os.path.join(work, "import.jsonl"), os.path.join(work, "import.csv")
    wl.write_jsonl(events, jsonl)
    wl.write_csv(events, csvf)
    del events
    echo(f"  import: {n:,} mixed events (bench/import_events.generate), jsonl "
         f"{os.path.getsize(jsonl) / 1e6:.0f} MB, csv {os.path.getsize(csvf) / 1e6:.0f} MB")
    imp = ie.cli_import(jsonl, os.path.join(work, "imp-j.db"))
    flo = ie.floor_import(jsonl, os.path.join(work, "floor.db"))
    tab = ie.floor_import(jsonl, os.path.join(work, "floor-table.db"), ie.FLOOR_TABLE_SCRIPT)
    assert flo["lines"] == n == tab["lines"], (flo, tab)
    imp_csv = ie.cli_import(csvf, os.path.join(work, "imp-c.db"))
    cpu, floor, table = n / imp["cpu"], n / flo["cpu"], n / tab["cpu"]
    return [
        dict(name="import JSONL vs stdlib floor (events/s)", subject=cpu, reference=floor, unit="/s",
             ratio=cpu / floor, target=">= 1x", ok=cpu >= floor,
             note=f"`points import` child, CPU {imp['cpu']:.2f} s ({cpu:,.0f}/s; issue 16 target 200k/s:"
                  f" {'met' if cpu >= 200_000 else 'not met'}), wall {imp['wall']:.2f} s ({n / imp['wall']:,.0f}/s),"
                  f" peak RSS {imp['rss_mb']:.0f} MB; floor child CPU {flo['cpu']:.2f} s, wall {flo['wall']:.2f} s"
                  f" ({n / flo['wall']:,.0f}/s): json.loads per line, a SHA-256 chain, executemany into a"
                  " table with a UNIQUE id (bench/import_events.py FLOOR_SCRIPT)"),
        dict(name="import vs script keeping the table", subject=cpu, reference=table, unit="/s",
             ratio=cpu / table, target="info", ok=None,
             note=f"the floor's script storing the events table `points import` keeps (its columns and"
                  f" three secondary indexes, no validation; bench/import_events.py FLOOR_TABLE_SCRIPT):"
                  f" CPU {tab['cpu']:.2f} s, wall {tab['wall']:.2f} s"),
        dict(name="import CSV (events/s)", subject=n / imp_csv["cpu"], reference=floor, unit="/s",
             ratio=(n / imp_csv["cpu"]) / floor, target="info", ok=None,
             note=f"`points import` of the same events as CSV: CPU {imp_csv['cpu']:.2f} s, wall"
                  f" {imp_csv['wall']:.2f} s, peak RSS {imp_csv['rss_mb']:.0f} MB"),
    ]


def bench_journal(size: dict, work: str, echo) -> list[dict]:
    import random

    from bench import journal as jb
    from points.ledger import db
    from points.ledger.journal import Journal

    n = size["journal"]
    r = jb.run(n, 10_000, max(10_000, n // 10), work)
    echo(f"  journal: {r['entries']:,} entries, {r['postings']:,} postings, {r['db_mb']:.0f} MiB")
    lp, rp = r["postings"] / r["append_s"], r["raw_rows"] / r["raw_s"]
    rbp = r["raw_rows"] / r["raw_both_s"]
    vp = r["postings"] / r["verify_s"]
    # balance latency on that journal: the public read, and the bare SUM it stands on
    conn = db.connect(os.path.join(work, "bench-journal.db"), readonly=True)
    j = Journal(conn)
    members = max(10_000, n // 10)
    rng = random.Random(7)
    sample = [f"W{rng.randrange(members):07d}" for _ in range(2000)]
    lat = []
    for m in sample:
        t0 = time.perf_counter()
        j.balance(m)
        lat.append(time.perf_counter() - t0)
    raw = []
    q = "SELECT kind, SUM(amount) FROM postings WHERE account IN (?, ?, ?) GROUP BY kind"
    for m in sample:
        t0 = time.perf_counter()
        conn.execute(q, (f"member:{m}:basic", f"member:{m}:limited", f"member:{m}:charge_only")).fetchall()
        raw.append(time.perf_counter() - t0)
    conn.close()
    lat.sort()
    raw.sort()
    p50, p99 = lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3
    return [
        dict(name="journal append (postings/s)", subject=lp, reference=rp, unit="/s", ratio=lp / rp,
             target="info", ok=None,
             note=f"Journal.append {r['append_s']:.2f} s vs raw executemany {r['raw_s']:.2f} s "
                  "of the posting rows into a bare table (bench/journal.py)"),
        dict(name="journal append vs entries+postings", subject=lp, reference=rbp,
             unit="/s", ratio=lp / rbp, target="info", ok=None,
             note=f"the same append vs raw executemany {r['raw_both_s']:.2f} s of the entry rows"
                  " and posting rows the ledger wrote, into two bare tables (bench/journal.py)"),
        dict(name="verify ledger-only (postings/s)", subject=vp, reference=None, unit="/s", ratio=None,
             target=">= 400k/s", ok=vp >= 400_000,
             note=f"ledger.verify.verify (no replay) over {r['postings']:,} postings: {r['verify_s']:.2f} s"),
        dict(name=f"balance p99 ({r['postings'] / 1e6:.1f}M postings)", subject=p99,
             reference=raw[int(len(raw) * 0.99)] * 1e3, unit="ms",
             ratio=p99 / (raw[int(len(raw) * 0.99)] * 1e3), target="< 10 ms", ok=p99 < 10,
             note=f"Journal.balance over 2,000 random members: p50 {p50:.3f} ms, p99 {p99:.3f} ms,"
                  f" max {lat[-1] * 1e3:.2f} ms; reference: bare SUM over the account index"),
    ]


def bench_settlement(size: dict, work: str, echo) -> list[dict]:
    from bench import settlement

    return settlement.card(*size["card"], work, echo=echo)


def bench_yearend(size: dict, work: str, echo) -> list[dict]:
    from bench import settlement

    return settlement.yearend(*size["yearend"], work, echo=echo)


def bench_scale(size: dict, work: str, echo) -> list[dict]:
    from bench import scale

    return scale.run(size["scale"], work, echo=echo)


def bench_verify(size: dict, work: str, echo) -> list[dict]:
    from bench import verify

    return verify.run(size.get("verify", (150_000,)), work, echo=echo)


RUNNERS = {"import": bench_import, "settlement": bench_settlement, "yearend": bench_yearend,
           "journal": bench_journal, "scale": bench_scale, "verify": bench_verify}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="small")
    ap.add_argument("--only", action="append", choices=BENCHES, metavar="NAME",
                    help=f"run only this benchmark (repeatable): {', '.join(BENCHES)}")
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    size = dict(SIZES[args.size], verify=VERIFY_EVENTS[args.size])
    work = args.dir or tempfile.mkdtemp(prefix="bench-")
    os.makedirs(work, exist_ok=True)
    started = time.perf_counter()

    def echo(text: str) -> None:
        print(text, flush=True)

    echo(f"python -m bench --size {args.size}" + "".join(f" --only {o}" for o in args.only or ()))
    echo(f"date    {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    echo(f"machine {machine()}")
    echo(f"work    {work}")
    echo("load    %.1f %.1f %.1f (1/5/15 min; other processes share the CPUs: wall times inflate)"
         % os.getloadavg())
    rows: list[dict] = []
    try:
        for name in args.only or BENCHES:
            t0 = time.perf_counter()
            echo(f"[{name}]")
            sub = os.path.join(work, name)
            os.makedirs(sub, exist_ok=True)
            try:
                got = RUNNERS[name](size, sub, echo)
            except Exception as exc:  # report it and go on with the other benchmarks
                import traceback

                traceback.print_exc()
                got = [dict(name=f"{name}: ERROR", subject=None, reference=None, unit="s", ratio=None,
                            target="runs", ok=False, note=f"{type(exc).__name__}: {exc}"[:300])]
            rows += got
            echo(f"  ({time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f})")
            print_rows(got)
            echo("")
            if not args.keep and not args.dir:
                shutil.rmtree(sub, ignore_errors=True)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    echo(f"== summary ({args.size}, {time.perf_counter() - started:.0f} s) ==")
    print_rows(rows)
    failed = [r["name"] for r in rows if r.get("ok") is False]
    if failed:
        echo(f"\n{len(failed)} target(s) missed: " + "; ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
