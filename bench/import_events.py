"""Event import throughput: `python -m bench.import_events [--events 100000 500000 1000000]`.

For each size, writes a seeded events file (JSONL) of mixed events
(`generate`) and of one card cycle (`bench.workloads.card_cycle`), then runs,
each in a child process and on the same file:

- `points init` (not timed) and `points import FILE` through the CLI on that
  fresh database;
- the stdlib floor of issue 16 (`FLOOR_SCRIPT`): `json.loads` of each line, a
  SHA-256 chain, `executemany` into a table with a UNIQUE id;
- the same script keeping the events table `points import` keeps (its columns and
  its three secondary indexes, `FLOOR_TABLE_SCRIPT`), no validation: what the
  stored table costs a script.

Prints events/s of wall time and of CPU time (the child's user + system time,
steadier on a shared machine), the import's peak RSS, import/floor, and the
import beside the script keeping the same table.
`time_import` / `time_floor` are the in-process timings `python -m bench` uses.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

import apsw

from points.ledger import db
from points.ledger.events import import_files

from bench import remove_database
from bench.workloads import write_csv

MERCHANTS = ("other", "e5489", "lucua", "daimaru", "isetan", "ekie", "vierra", "piole")
SEGMENTS = ("tokaido", "sanyo", "kyushu", "hokuriku", "jrwest_local", "other")
SOURCES = ("jwest_card", "credit_card", "bank", "atm", "cash", "point_charge", "gas_station")
WEIGHTS = {
    "ex_booking": 30, "card_payment": 24, "wesmo_payment": 14, "wesmo_charge": 5,
    "icoca_charge": 5, "campaign_entry": 4, "video_view": 3, "redemption": 3, "cancel": 3,
    "refund": 2, "stopover": 1, "card_cashback": 2, "member_withdrawn": 1,
    "mynapoint_application": 1, "health_insurance_registration": 1,
    "public_account_registration": 1,
}


def generate(n: int, seed: int = 20251226) -> list[dict]:
    rng = random.Random(seed)
    types = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    members = [f"W{i:07d}" for i in range(max(1, n // 20))]
    bookings: list[tuple[str, str]] = []  # (id, member): a ref names the same member's event
    out = []
    base = 1_735_657_200  # 2025-01-01T00:00:00+09:00
    for i in range(n):
        type_ = rng.choices(types, weights)[0]
        if type_ in ("cancel", "refund", "stopover") and not bookings:
            type_ = "ex_booking"
        ts = base + rng.randrange(365 * 86400)
        t = time.gmtime(ts + 9 * 3600)
        if i % 4 == 0:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
        else:
            at = time.strftime("%Y-%m-%dT%H:%M:%S+09:00", t)
        ev: dict = {"id": f"E{i:09d}", "type": type_, "member": rng.choice(members), "at": at}
        if type_ == "ex_booking":
            ev.update(
                amount=rng.randrange(1000, 60000, 10), service=rng.choice(("ex", "e5489")),
                ride_date=time.strftime("%Y-%m-%d", time.gmtime(ts + 9 * 3600 + rng.randrange(0, 30) * 86400)),
                segments=rng.sample(SEGMENTS, rng.randint(1, 2)),
                ticketless=rng.random() < 0.6,
            )
            if rng.random() < 0.1:
                ev["product"] = "EX旅パック"
            if rng.random() < 0.2:
                ev["payment"] = "station"
            bookings.append((ev["id"], ev["member"]))
        elif type_ in ("cancel", "refund", "stopover"):
            ev["ref"], ev["member"] = rng.choice(bookings[-1000:])
        elif type_ == "card_payment":
            ev.update(amount=rng.randrange(-5000, 80000), merchant=rng.choice(MERCHANTS),
                      card=rng.choice(("standard", "standard", "osc", "gold")))
        elif type_ == "card_cashback":
            ev["amount"] = -rng.randrange(1, 3000)
        elif type_ in ("wesmo_charge", "icoca_charge"):
            ev.update(amount=rng.randrange(1, 50) * 1000, source=rng.choice(SOURCES))
        elif type_ == "wesmo_payment":
            ev.update(amount=rng.randrange(100, 20000), merchant=rng.choice(MERCHANTS),
                      paid_with_points=rng.random() < 0.1)
        elif type_ == "campaign_entry":
            ev["campaign"] = rng.choice(("yearend-2025", "wesmo-stamp-rally-2026", "mynapoint-icoca"))
        elif type_ == "video_view":
            ev["video"] = f"v{rng.randrange(20)}"
        elif type_ == "redemption":
            ev.update(points=rng.randrange(1, 5000), use=rng.choice(("fare", "charge", "shopping", "wesmo")))
        out.append(ev)
    return out


def write_jsonl(events: list[dict], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for ev in events:
            f.write(json.dumps(ev, ensure_ascii=False))
            f.write("\n")


def time_import(path: str, dbpath: str) -> tuple[float, int]:
    """(wall seconds, events added) of `import_files` into a fresh database."""
    timing = time_import_detail(path, dbpath)
    return timing["wall"], timing["added"]


def time_import_detail(path: str, dbpath: str) -> dict:
    """Wall and CPU seconds of one import into a fresh database, events added."""
    conn = db.connect(dbpath)
    t0, w0 = time.process_time(), time.perf_counter()
    report = import_files(conn, [path])
    wall = time.perf_counter() - w0
    cpu = time.process_time() - t0
    if report.errors:
        raise SystemExit("import failed:\n" + "\n".join(report.errors[:20]))
    conn.close()
    return {"wall": wall, "cpu": cpu, "added": report.added}


def time_floor(jsonl: str, source_db: str, raw_db: str) -> tuple[float, float]:
    """(seconds for json.loads per line, seconds for raw executemany of the same rows)."""
    return time_floor_detail(jsonl, source_db, raw_db)[:2]


def time_floor_detail(jsonl: str, source_db: str, raw_db: str) -> tuple[float, float, float, float]:
    """Wall seconds of json.loads per line and of the raw executemany, then
    the CPU seconds of each."""
    loads = json.loads
    t0, c0 = time.perf_counter(), time.process_time()
    with open(jsonl, "rb") as f:
        for line in f:
            loads(line)
    t_parse = time.perf_counter() - t0
    c_parse = time.process_time() - c0

    src = apsw.Connection(source_db)
    raw = apsw.Connection(raw_db)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT, type TEXT, member TEXT, at TEXT,"
        " day TEXT, time TEXT, weekday INTEGER, amount INTEGER, ref TEXT, body TEXT, source TEXT,"
        " prev_hash TEXT, hash TEXT)"
    )
    sql = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    t_insert = c_insert = 0.0
    raw.execute("BEGIN")
    last = 0
    while True:
        rows = src.execute(
            "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT 50000", (last,)
        ).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        t0, c0 = time.perf_counter(), time.process_time()
        raw.executemany(sql, rows)
        t_insert += time.perf_counter() - t0
        c_insert += time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    raw.execute("COMMIT")
    t_insert += time.perf_counter() - t0
    c_insert += time.process_time() - c0
    src.close()
    raw.close()
    return t_parse, t_insert, c_parse, c_insert


# ---------------------------------------------------------------- through the CLI, beside the floor

#: The end of both floor scripts below: the chain moves on, rows go to SQLite by
#: executemany in batches of 5,000, one commit, the count printed.
_WRITE_IN_BATCHES = """\
        prev = digest
        if len(rows) == 5000:
            conn.executemany(insert, rows)
            n += len(rows)
            rows = []
conn.executemany(insert, rows)
conn.commit()
conn.close()
print(n + len(rows))
"""

#: The stdlib floor of issue 16, exactly as the issue words it: `json.loads` of
#: each line, a SHA-256 chain, `executemany` into a table with a unique id
#: (the standard library's sqlite3, its default journal; the line as read is
#: what is stored and hashed). A child process, like the CLI it is set beside.
FLOOR_SCRIPT = """
import hashlib, json, sqlite3, sys
src, dbpath = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(dbpath)
conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
             " body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)")
insert = "INSERT INTO events (id, body, prev_hash, hash) VALUES (?, ?, ?, ?)"
prev, rows, n = "0" * 64, [], 0
with open(src, encoding="utf-8") as f:
    for line in f:
        event = json.loads(line)
        digest = hashlib.sha256((prev + line).encode()).hexdigest()
        rows.append((event["id"], line, prev, digest))
""" + _WRITE_IN_BATCHES

#: The same script keeping the table `points import` keeps: the events table's
#: columns (type, member, at, day, time, weekday, amount, ref, source besides id,
#: body and the chain) and its three secondary indexes, created up front as a
#: script would. No validation, no canonical body, no duplicate or ref checks: a
#: reference for what the stored table costs, set beside the issue's floor.
FLOOR_TABLE_SCRIPT = """
import datetime, hashlib, json, sqlite3, sys
src, dbpath = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(dbpath)
conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
             " member TEXT NOT NULL, at TEXT NOT NULL, day TEXT NOT NULL, time TEXT NOT NULL,"
             " weekday INTEGER NOT NULL, amount INTEGER, ref TEXT, body TEXT NOT NULL, source TEXT NOT NULL,"
             " prev_hash TEXT NOT NULL, hash TEXT NOT NULL)")
conn.execute("CREATE INDEX events_type_member ON events(type, member)")
conn.execute("CREATE INDEX events_type_day ON events(type, day)")
conn.execute("CREATE INDEX events_ref ON events(ref) WHERE ref IS NOT NULL")
insert = "INSERT INTO events (id, type, member, at, day, time, weekday, amount, ref, body, source, prev_hash, hash)" \\
         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
prev, rows, n, weekdays = "0" * 64, [], 0, {}
with open(src, encoding="utf-8") as f:
    for i, line in enumerate(f, 1):
        e = json.loads(line)
        at = e["at"][:19]
        day = at[:10]
        wd = weekdays.get(day)
        if wd is None:
            wd = weekdays[day] = datetime.date.fromisoformat(day).weekday()
        source = f"{src}:{i}"
        digest = hashlib.sha256((prev + line + source).encode()).hexdigest()
        rows.append((e["id"], e["type"], e["member"], at, day, at[11:], wd, e.get("amount"), e.get("ref"),
                     line, source, prev, digest))
""" + _WRITE_IN_BATCHES

#: Runs `points` (the console script's own function) in this child and writes
#: its peak RSS (VmHWM: reset by exec, unlike ru_maxrss) to argv[1] at exit.
CLI_LAUNCHER = """
import atexit, sys
out = sys.argv.pop(1)
def hwm():
    with open("/proc/self/status") as f:
        kb = next((l.split()[1] for l in f if l.startswith("VmHWM:")), "0")
    with open(out, "w") as f:
        f.write(kb)
atexit.register(hwm)
from points.cli.main import main
sys.argv[0] = "points"
main()
"""


def _child(cmd: list[str]) -> dict:
    """Run `cmd`; its wall seconds, CPU seconds (user + system, from wait4) and output."""
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "out": out.decode()}



def cli_import(src: str, dbpath: str, python: str = sys.executable) -> dict:
    """`points init` (not timed), then `points import` of `src` in a child:
    wall, CPU, peak RSS (MB). `python`: the interpreter (another tree's venv, for an A/B)."""
    remove_database(dbpath)
    _child([python, "-c", CLI_LAUNCHER, dbpath + ".rss", "--db", dbpath, "init"])
    r = _child([python, "-c", CLI_LAUNCHER, dbpath + ".rss", "--db", dbpath, "import", src])
    with open(dbpath + ".rss") as f:
        r["rss_mb"] = int(f.read()) / 1024
    return r


def floor_import(src: str, dbpath: str, script: str = FLOOR_SCRIPT) -> dict:
    """The stdlib floor of `src` in a child (or `script`: FLOOR_TABLE_SCRIPT): wall, CPU,
    lines stored."""
    remove_database(dbpath)
    r = _child([sys.executable, "-c", script, src, dbpath])
    r["lines"] = int(r["out"].split()[-1])
    return r


def compare(sizes: list[int], kinds: list[str], work: str, rounds: int = 1, echo=print) -> list[dict]:
    """`points import` beside the stdlib floor, same file, same run, for each size and data set."""
    from bench import workloads

    results = []
    for n in sizes:
        for kind in kinds:
            src = os.path.join(work, f"{kind}-{n}.jsonl")
            events = generate(n) if kind == "mixed" else workloads.card_cycle(n, max(1, n // 10))
            workloads.write_jsonl(events, src)
            del events
            for r in range(rounds):
                imp = cli_import(src, os.path.join(work, "cli.db"))
                flo = floor_import(src, os.path.join(work, "floor.db"))
                tab = floor_import(src, os.path.join(work, "floor-table.db"), FLOOR_TABLE_SCRIPT)
                assert flo["lines"] == n == tab["lines"], (flo, tab)
                row = dict(kind=kind, events=n, round=r + 1, load=os.getloadavg()[0],
                           import_wall=n / imp["wall"], import_cpu=n / imp["cpu"], import_rss_mb=imp["rss_mb"],
                           floor_wall=n / flo["wall"], floor_cpu=n / flo["cpu"],
                           table_wall=n / tab["wall"], table_cpu=n / tab["cpu"])
                results.append(row)
                echo(f"{kind:5} {n:>9,}  points import {row['import_wall']:>9,.0f}/s wall "
                     f"{row['import_cpu']:>9,.0f}/s CPU  RSS {imp['rss_mb']:5.0f} MB | floor "
                     f"{row['floor_wall']:>9,.0f}/s wall {row['floor_cpu']:>9,.0f}/s CPU | import/floor "
                     f"{row['import_wall'] / row['floor_wall']:.2f}x wall {row['import_cpu'] / row['floor_cpu']:.2f}x CPU"
                     f" | the floor keeping the events table {row['table_cpu']:>9,.0f}/s CPU: import"
                     f" {row['import_cpu'] / row['table_cpu']:.2f}x  (load {row['load']:.1f})")
            os.remove(src)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.import_events", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="+", default=[100_000, 500_000, 1_000_000],
                    help="sizes, in lines (default 100000 500000 1000000)")
    ap.add_argument("--data", nargs="+", choices=("mixed", "card"), default=["mixed", "card"],
                    help="bench.import_events.generate (mixed) and/or bench.workloads.card_cycle (card)")
    ap.add_argument("--rounds", type=int, default=1, help="import and floor pairs per file (default 1)")
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    args = ap.parse_args(argv)

    work = args.dir or tempfile.mkdtemp(prefix="bench-import-")
    os.makedirs(work, exist_ok=True)
    try:
        print(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
              "CPU = the child's user + system time")
        compare(args.events, args.data, work, args.rounds)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
