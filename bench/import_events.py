"""Event import throughput: `python -m bench.import_events --events 1000000`.

Generates a seeded, realistic events file in JSONL and in CSV, then times:

- `ledger.events.import_files` of the JSONL file into a fresh database;
- the same for the CSV file;
- the practical floor for the JSONL import: reading the file with
  `json.loads` per line, plus a raw apsw `executemany` of exactly the rows the
  import wrote into a bare table (same columns, no indexes, no checks).

Prints events/s (wall) for each, with the CPU seconds beside it (steadier on
a shared machine), and the ratio of the import to the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time

import apsw

from points.ledger import db
from points.ledger.events import import_files

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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.import_events", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="number of events (default 200000)")
    ap.add_argument("--seed", type=int, default=20251226)
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    args = ap.parse_args(argv)

    work = args.dir or tempfile.mkdtemp(prefix="bench-import-")
    os.makedirs(work, exist_ok=True)
    try:
        n = args.events
        t0 = time.perf_counter()
        events = generate(n, args.seed)
        jsonl, csvf = os.path.join(work, "events.jsonl"), os.path.join(work, "events.csv")
        write_jsonl(events, jsonl)
        write_csv(events, csvf)
        del events
        print(f"generated {n} events in {time.perf_counter() - t0:.1f}s "
              f"(jsonl {os.path.getsize(jsonl) / 1e6:.1f} MB, csv {os.path.getsize(csvf) / 1e6:.1f} MB)")

        for name in ("j.db", "c.db", "raw.db"):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(os.path.join(work, name + suffix)):
                    os.remove(os.path.join(work, name + suffix))
        load = os.getloadavg()[0]
        j = time_import_detail(jsonl, os.path.join(work, "j.db"))
        assert j["added"] == n, j
        c = time_import_detail(csvf, os.path.join(work, "c.db"))
        assert c["added"] == n, c
        t_parse, t_insert, c_parse, c_insert = time_floor_detail(
            jsonl, os.path.join(work, "j.db"), os.path.join(work, "raw.db"))
        t_jsonl, t_csv, t_floor = j["wall"], c["wall"], t_parse + t_insert

        def rate(seconds: float, cpu: float) -> str:
            return f"{n / seconds:>12,.0f} events/s  ({seconds:7.2f} s; CPU {cpu:.2f} s)"

        print(f"load average at start {load:.2f} on {os.cpu_count()} CPUs")
        print(f"import_files JSONL            {rate(t_jsonl, j['cpu'])}")
        print(f"import_files CSV              {rate(t_csv, c['cpu'])}")
        print(f"json.loads per line           {rate(t_parse, c_parse)}")
        print(f"raw apsw executemany          {rate(t_insert, c_insert)}")
        print(f"floor (loads + executemany)   {rate(t_floor, c_parse + c_insert)}")
        print(f"ratio JSONL import / floor    {t_jsonl / t_floor:.2f}x the time")
        print(f"ratio CSV import / floor      {t_csv / t_floor:.2f}x the time")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
