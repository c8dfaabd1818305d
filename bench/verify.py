"""Benchmark: `points verify` (re-derivation included) beside `bean-check` on the same journal.

    python -m bench.verify --events 170000 [680000 ...] [--dir DIR] [--rounds N]

For each size N, a mixed workload of every program (bench.workloads.mixed, N
events over N/10 members; ~1.5 postings an event) goes through the real CLI in
child processes: `points init`, `points import FILE`, `points run --until
2027-04-01 --allow-future` (every campaign to completion, expiries included),
`points export --format beancount -o F`. Then, in the same run and alternating:

- `points verify` (a child process: chains, balances, every run replayed from
  the rules recorded in the database, compared entry by entry);
- `bean-check --no-cache F` (beancount's own checker, a child process) on the
  export: parse, check and realize every time (with its cache, a second
  bean-check only unpickles what the first one parsed);
- the ledger-only checks (`ledger.verify.verify`, what verify runs before the
  replay) in a child process, as postings/s.

Each child reports wall seconds and CPU seconds (user + system, from
getrusage of the children; steadier than wall on a shared machine) and the
verify child its peak RSS. `--base PYTHON` times verify and the ledger-only
checks with another tree's interpreter too, in the same rounds. With --dir the built journals are kept and re-used
(a file per size). Targets (issue 16): verify at least 5x faster than
bean-check; ledger-only checks >= 400k postings/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNTIL = "2027-04-01"


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def timed(cmd: list[str], cwd: str | Path = ROOT, check: bool = True) -> dict:
    """Run a child; its wall and CPU seconds, exit code and output."""
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {out.returncode}:\n"
                           f"{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return dict(wall=wall, cpu=cpu, rc=out.returncode, stdout=out.stdout, stderr=out.stderr)


def points(*args: str) -> list[str]:
    return [sys.executable, "-m", "points.cli.main", *args]


def bean_check() -> list[str] | None:
    """The bean-check of this interpreter's environment (installed with beancount)."""
    here = Path(sys.executable).parent / "bean-check"
    if here.exists():
        return [str(here)]
    found = shutil.which("bean-check")
    return [found] if found else None


def build(n: int, work: str, echo=print) -> dict:
    """The journal of N mixed events through the CLI, and its beancount export (re-used
    if a previous build left both in `work`)."""
    from bench import workloads as w

    path = os.path.join(work, f"verify-{n}.db")
    bean = os.path.join(work, f"verify-{n}.beancount")
    if os.path.exists(path) and os.path.exists(bean):
        echo(f"  verify {n:,}: re-using {path}")
        return dict(db=path, bean=bean)
    for p in (path, path + "-wal", path + "-shm", bean):
        if os.path.exists(p):
            os.remove(p)
    src = os.path.join(work, f"verify-{n}.jsonl")
    w.write_jsonl(w.mixed(n, max(1, n // 10)), src)
    for step in (("init",), ("import", src),
                 ("run", "--until", UNTIL, "--allow-future", "--rules", str(ROOT / "rules")),
                 ("export", "--format", "beancount", "-o", bean)):
        r = timed(points("--db", path, *step), cwd=work)
        echo(f"  verify {n:,}: points {step[0]:7} {r['wall']:7.1f} s (CPU {r['cpu']:6.1f} s)")
    os.remove(src)
    return dict(db=path, bean=bean)


def ledger_only(path: str, python: str = sys.executable) -> dict:
    """`ledger.verify.verify` alone in a child (no replay): wall, CPU, postings."""
    code = ("import json, sys, time\n"
            "from points.ledger import db\n"
            "from points.ledger.verify import verify\n"
            "conn = db.connect(sys.argv[1], readonly=True)\n"
            "t0, c0 = time.perf_counter(), time.process_time()\n"
            "r = verify(conn)\n"
            "assert r.ok, r.problems[:5]\n"
            "print(json.dumps(dict(wall=time.perf_counter() - t0, cpu=time.process_time() - c0,"
            " postings=r.checked_postings, entries=r.checked_entries)))\n")
    r = timed([python, "-c", code, path])
    return json.loads(r["stdout"].strip().splitlines()[-1])


def verify_child(path: str, python: str = sys.executable) -> dict:
    """`points verify --json` as a child, with its peak RSS (VmHWM at exit)."""
    code = ("import sys, runpy\n"
            "from points.cli.main import cli\n"
            "try:\n"
            "    cli.main(sys.argv[1:], prog_name='points', standalone_mode=True)\n"
            "finally:\n"
            "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
            "    sys.stderr.write('\\nVMHWM ' + hwm[0].split()[1] + '\\n')\n")
    r = timed([python, "-c", code, "--db", path, "verify", "--json"], check=False)
    if r["rc"] != 0:
        raise RuntimeError(f"points verify exited {r['rc']}:\n{r['stdout'][-2000:]}\n{r['stderr'][-2000:]}")
    report = json.loads(r["stdout"])
    assert report["ok"] and report["rederived"], report["problems"][:5]
    kib = [line.split()[1] for line in r["stderr"].splitlines() if line.startswith("VMHWM ")]
    return dict(wall=r["wall"], cpu=r["cpu"], rss_mb=int(kib[-1]) / 1024 if kib else None,
                postings=report["postings"], entries=report["entries"],
                rederived=report["checked"]["entries_rederived"], runs=len(report["runs"]))


def measure(n: int, work: str, rounds: int = 1, echo=print, base: str | None = None) -> dict:
    built = build(n, work, echo)
    bc = bean_check()
    out: dict = {"verify": [], "bean": [], "ledger": [], "base": [], "base_ledger": []}
    for _ in range(rounds):
        if base:  # the same children with another tree's interpreter (A/B in one run)
            v, lo = verify_child(built["db"], base), ledger_only(built["db"], base)
            out["base"].append(v)
            out["base_ledger"].append(lo)
            echo(f"  verify {n:,}: BASE verify  {v['wall']:7.2f} s (CPU {v['cpu']:6.2f} s), peak RSS "
                 f"{v['rss_mb']:.0f} MB; ledger-only {lo['wall']:.2f} s (CPU {lo['cpu']:.2f} s)")
        v = verify_child(built["db"])
        out["verify"].append(v)
        echo(f"  verify {n:,}: points verify {v['wall']:7.2f} s (CPU {v['cpu']:6.2f} s), peak RSS "
             f"{v['rss_mb']:.0f} MB; {v['entries']:,} entries, {v['postings']:,} postings, "
             f"{v['rederived']:,} re-derived, {v['runs']} runs")
        if bc:
            b = timed(bc + ["--no-cache", built["bean"]], cwd=work, check=False)
            if b["rc"] != 0:
                raise RuntimeError(f"bean-check exited {b['rc']}: {b['stderr'][-1000:]}{b['stdout'][-1000:]}")
            out["bean"].append(b)
            echo(f"  verify {n:,}: bean-check    {b['wall']:7.2f} s (CPU {b['cpu']:6.2f} s)")
        lo = ledger_only(built["db"])
        out["ledger"].append(lo)
        echo(f"  verify {n:,}: ledger-only   {lo['wall']:7.2f} s (CPU {lo['cpu']:6.2f} s): "
             f"{lo['postings'] / lo['wall']:,.0f} postings/s wall, {lo['postings'] / lo['cpu']:,.0f} CPU")
    out["postings"] = out["verify"][0]["postings"]
    return out


def rows(results: dict[int, dict]) -> list[dict]:
    got = []
    for n, r in sorted(results.items()):
        v = min(r["verify"], key=lambda x: x["wall"])
        p = r["postings"]
        label = f"{p / 1e6:.2f}M postings"
        if r["bean"]:
            b = min(r["bean"], key=lambda x: x["wall"])
            got.append(dict(name=f"verify vs bean-check ({label})", subject=v["wall"], reference=b["wall"],
                            unit="s", ratio=v["wall"] / b["wall"], target="<= 0.2x",
                            ok=v["wall"] / b["wall"] <= 0.2,
                            note=f"`points verify` child {v['wall']:.2f} s (CPU {v['cpu']:.2f} s, peak RSS "
                                 f"{v['rss_mb']:.0f} MB) vs `bean-check` on its beancount export "
                                 f"{b['wall']:.2f} s (CPU {b['cpu']:.2f} s): CPU ratio "
                                 f"{v['cpu'] / b['cpu']:.2f}x; {n:,} mixed events, best of "
                                 f"{len(r['verify'])}"))
        else:
            got.append(dict(name=f"verify ({label})", subject=v["wall"], reference=None, unit="s",
                            ratio=None, target="info", ok=None, note="bean-check not installed"))
        if r["base"]:
            bv = min(r["base"], key=lambda x: x["wall"])
            bl = min(r["base_ledger"], key=lambda x: x["wall"])
            got.append(dict(name=f"verify, base tree ({label})", subject=v["wall"], reference=bv["wall"],
                            unit="s", ratio=v["wall"] / bv["wall"], target="info", ok=None,
                            note=f"this tree {v['wall']:.2f} s (CPU {v['cpu']:.2f} s) vs --base "
                                 f"{bv['wall']:.2f} s (CPU {bv['cpu']:.2f} s, peak RSS {bv['rss_mb']:.0f} MB);"
                                 f" ledger-only {bl['wall']:.2f} s (CPU {bl['cpu']:.2f} s)"))
        lo = min(r["ledger"], key=lambda x: x["wall"])
        got.append(dict(name=f"verify ledger-only ({label})", subject=p / lo["wall"], reference=None,
                        unit="/s", ratio=None, target=">= 400k/s", ok=p / lo["wall"] >= 400_000,
                        note=f"ledger.verify.verify {lo['wall']:.2f} s (CPU {lo['cpu']:.2f} s, "
                             f"{p / lo['cpu']:,.0f} postings/s of CPU)"))
    return got


def run(sizes, work: str, rounds: int = 1, echo=print, base: str | None = None) -> list[dict]:
    return rows({n: measure(n, work, rounds, echo, base) for n in sizes})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="+", default=[170_000],
                    help="mixed events per journal (~1.5 postings an event)")
    ap.add_argument("--rounds", type=int, default=1, help="timings per size (alternating)")
    ap.add_argument("--dir", default=None, help="keep (and re-use) the journals in DIR")
    ap.add_argument("--base", metavar="PYTHON", help="also time verify with this interpreter (another"
                    " tree's venv, e.g. main's) in the same rounds: an A/B")
    args = ap.parse_args(argv)
    work = args.dir or tempfile.mkdtemp(prefix="bench-verify-")
    os.makedirs(work, exist_ok=True)
    from bench.__main__ import print_rows

    try:
        print_rows(run(args.events, work, args.rounds, base=args.base))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
