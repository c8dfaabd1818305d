"""Shared helpers of the reliability suite: a seeded event generator, journal
snapshots, database content hashes and the child-process scripts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
UNTIL = "2027-12-31"  # past every award, lottery and expiry of the shipped rules

ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")


def _at(rng: random.Random, start: dt.date, days: int) -> str:
    d = start + dt.timedelta(days=rng.randrange(days))
    return f"{d.isoformat()}T{rng.randrange(5, 23):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"


def generate_events(n_members: int, seed: int = 0) -> list[dict]:
    """A data set touching every shipped campaign: bookings (2024 and 2025 year-end,
    with entries, cancels after settlement, withdrawals), Wesmo! missions, J-WEST card
    payments and returns, Mynapoint charges, and redemptions."""
    rng = random.Random(seed)
    out: list[dict] = []
    n = 0

    def ev(**kw) -> dict:
        nonlocal n
        n += 1
        kw.setdefault("id", f"e{n:06d}")
        out.append(kw)
        return kw

    for i in range(n_members):
        m = f"M{i:05d}"
        # yearend-2025 (no entry), ex bookings riding 2025-12-26 .. 2026-01-04
        for _ in range(rng.randrange(0, 4)):
            b = ev(type="ex_booking", member=m, at=_at(rng, dt.date(2025, 11, 1), 50),
                   amount=rng.randrange(2_000, 25_000), service="ex",
                   ride_date=(dt.date(2025, 12, 26) + dt.timedelta(rng.randrange(10))).isoformat(),
                   segments=rng.choice([["sanyo"], ["tokaido", "sanyo"], ["tokaido"]]),
                   ticketless=rng.random() < 0.5)
            r = rng.random()
            if r < 0.1:
                ev(type="cancel", member=m, at=_at(rng, dt.date(2026, 2, 10), 40), ref=b["id"])
            elif r < 0.15:
                ev(type="refund", member=m, at=_at(rng, dt.date(2026, 1, 10), 20), ref=b["id"])
        if rng.random() < 0.03:
            ev(type="member_withdrawn", member=m, at=_at(rng, dt.date(2026, 1, 5), 20))
        # yearend-2024 (entry required)
        if rng.random() < 0.4:
            ev(type="campaign_entry", member=m, at=_at(rng, dt.date(2024, 12, 10), 30),
               campaign="yearend-2024")
            for _ in range(rng.randrange(1, 3)):
                ev(type="ex_booking", member=m, at=_at(rng, dt.date(2024, 11, 1), 40),
                   amount=rng.randrange(3_000, 20_000), service=rng.choice(["ex", "e5489"]),
                   ride_date=(dt.date(2024, 12, 26) + dt.timedelta(rng.randrange(12))).isoformat(),
                   segments=["sanyo"])
        # wesmo stamp rally
        if rng.random() < 0.4:
            ev(type="campaign_entry", member=m, at=_at(rng, dt.date(2026, 3, 2), 30),
               campaign="wesmo-stamp-rally-2026")
            ev(type="wesmo_charge", member=m, at=_at(rng, dt.date(2026, 3, 2), 30),
               amount=rng.choice([1_000, 10_000, 50_000, 100_000]), source="atm")
            for _ in range(rng.randrange(0, 6)):
                p = ev(type="wesmo_payment", member=m, at=_at(rng, dt.date(2026, 3, 2), 30),
                       amount=rng.randrange(100, 6_000),
                       merchant=rng.choice(["other", "kobe-motomachi-01"]))
                if rng.random() < 0.1:
                    ev(type="cancel", member=m, at=_at(rng, dt.date(2026, 4, 1), 60), ref=p["id"])
            for v in range(rng.randrange(0, 3)):
                ev(type="video_view", member=m, at=_at(rng, dt.date(2026, 3, 2), 30), video=f"v{v}")
        # J-WEST card, two cycles of 2025
        if rng.random() < 0.3:
            for _ in range(rng.randrange(1, 5)):
                ev(type="card_payment", member=m, at=_at(rng, dt.date(2025, 4, 16), 60),
                   amount=rng.choice([rng.randrange(500, 30_000), -rng.randrange(500, 3_000)]),
                   merchant="other", card="standard")
        # Mynapoint ICOCA
        if rng.random() < 0.2:
            ev(type="mynapoint_application", member=m, at=_at(rng, dt.date(2022, 3, 1), 30))
            for _ in range(rng.randrange(1, 4)):
                ev(type="icoca_charge", member=m, at=_at(rng, dt.date(2022, 4, 1), 90),
                   amount=rng.randrange(1_000, 15_000), source="cash")
        # spend something later (may be refused for lack of points: recorded, no entry)
        if rng.random() < 0.3:
            ev(type="redemption", member=m, at=_at(rng, dt.date(2026, 5, 1), 60),
               points=rng.randrange(1, 3_000), use=rng.choice(["fare", "charge", "wesmo"]))
    out.sort(key=lambda e: (e["at"], e["id"]))
    return out


def write_jsonl(path: Path, events: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    return path


def journal(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT seq, key, hash FROM entries ORDER BY seq")]


TABLES = ("meta", "events", "entries", "postings")


def content_digest(conn) -> str:
    """sha256 of every row of every table (a `.dump` without the formatting)."""
    h = hashlib.sha256()
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
        h.update(f"\0table {name}\0".encode())
        for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
            h.update(repr(tuple(row)).encode())
    for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"):
        h.update(sql.encode())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of the database file and its WAL (if any)."""
    h = hashlib.sha256()
    for p in (Path(path), Path(str(path) + "-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def partial_entries(conn) -> list[str]:
    """Entries that break atomicity: postings of no entry, entries not summing to zero
    per kind, postings with a gap in idx."""
    bad = []
    for (entry,) in conn.execute(
            "SELECT DISTINCT entry FROM postings WHERE entry NOT IN (SELECT seq FROM entries)"):
        bad.append(f"postings of missing entry {entry}")
    for entry, kind, total in conn.execute(
            "SELECT entry, kind, SUM(amount) FROM postings GROUP BY entry, kind HAVING SUM(amount) != 0"):
        bad.append(f"entry {entry} sums to {total} {kind}")
    for entry, n, mx in conn.execute(
            "SELECT entry, COUNT(*), MAX(idx) FROM postings GROUP BY entry HAVING COUNT(*) != MAX(idx) + 1"):
        bad.append(f"entry {entry}: {n} postings, max idx {mx}")
    return bad


def copy_rules(dst: Path) -> Path:
    shutil.copytree(RULES, dst, ignore=shutil.ignore_patterns("__pycache__", "__init__.py", "samples"))
    return dst


def python(code: str, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout, **kw)


# A run as `points import FILE && points run --until DATE` would do it, through the
# library (load_rules + import_files + Runner), with phase markers written to a file
# (one line per step start: "<monotonic seconds> <phase>") so that a test can tell
# where a SIGKILL landed. With RELIABILITY_KILL="<phase>:<n>:<before|after>" the child
# SIGKILLs itself at its n-th kill point of that phase, just before or just after it:
# a journal append (Journal._append, inside the step's open transaction) or an award,
# reversal or flush of a checkpoint (Checkpointer.grant / take_back / flush) -- a kill at an exact point, for phases too short to hit
# reliably with a timer (a lottery draw takes a few milliseconds). At the end it writes
# "#points {phase: count}".
RUN_SCRIPT = r"""
import json, os, signal, sys, time, datetime as dt
t0 = time.monotonic()
db_path, events_path, until, rules_dir, marks = sys.argv[1:6]
fd = os.open(marks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
state = {"phase": "startup"}
def mark(phase):
    state["phase"] = phase
    os.write(fd, f"{time.monotonic() - t0:.6f} {phase}\n".encode())
mark("startup")
from points.ledger import db, events
from points.ledger.journal import Journal
from points.dsl.loader import load_rules
from points.engine import workflow
R, C = workflow.Runner, workflow.Checkpointer
def tag(cls, name, phase, after="between"):
    orig = getattr(cls, name)
    def wrapped(self, *a, **k):
        mark(phase)
        try:
            return orig(self, *a, **k)
        finally:
            mark(after)
    setattr(cls, name, wrapped)
tag(R, "fund", "settlement")
tag(R, "checkpoint", "settlement")
tag(R, "redeem", "redemption")
tag(R, "expire", "expiry")
tag(R, "mark", "marker")
tag(C, "draw", "lottery", after="settlement")
kill = os.environ.get("RELIABILITY_KILL")
kphase, kn, kwhen = (kill.split(":") if kill else (None, 0, None))
counts = {}
def hook(cls, name):
    orig = getattr(cls, name, None)
    if orig is None:  # the engine changed: fewer kill points, never a wrong one
        return
    def wrapped(*a, **k):
        ph = state["phase"]
        counts[ph] = counts.get(ph, 0) + 1
        hit = ph == kphase and counts[ph] == int(kn)
        if hit and kwhen == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = orig(*a, **k)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    setattr(cls, name, wrapped)
# kill points: every journal append (inside the step's transaction) and every award
# the checkpoint builds (grants are batched and appended once per checkpoint)
hook(Journal, "_append")
hook(C, "grant")
hook(C, "take_back")
hook(C, "flush")
rules = load_rules(rules_dir)
conn = db.connect(db_path)
mark("import")
rep = events.import_files(conn, [events_path])
if rep.errors:
    print("\n".join(rep.errors), file=sys.stderr); sys.exit(1)
if kphase == "import" and int(kn) == 0:
    os.kill(os.getpid(), signal.SIGKILL)
mark("run")
workflow.Runner(conn, rules, dt.date.fromisoformat(until)).run()
mark("done")
os.write(fd, ("#points " + json.dumps(counts) + "\n").encode())
conn.close()
"""

# After a kill: verify, look for partial entries, then finish the run (import + run
# again) and print the journal, as JSON on stdout.
CHECK_AND_FINISH_SCRIPT = r'''
import json, sys, datetime as dt
from points.ledger import db, events
from points.ledger.verify import verify
from points.dsl.loader import load_rules
from points.engine.workflow import Runner
from tests.reliability.helpers import partial_entries, journal
db_path, events_path, until, rules_dir = sys.argv[1:5]
ro = db.connect(db_path, readonly=True)
rep = verify(ro)
before = {"ok": rep.ok, "problems": rep.problems[:5], "partial": partial_entries(ro),
          "entries": ro.execute("SELECT COUNT(*) FROM entries").fetchone()[0],
          "events": ro.execute("SELECT COUNT(*) FROM events").fetchone()[0]}
ro.close()
conn = db.connect(db_path)
r = events.import_files(conn, [events_path])
assert not r.errors, r.errors
Runner(conn, load_rules(rules_dir), dt.date.fromisoformat(until)).run()
after = verify(conn)
print(json.dumps({"before": before, "after_ok": after.ok, "after_problems": after.problems[:5],
                  "journal": journal(conn)}))
'''
