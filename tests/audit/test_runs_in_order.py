"""Runs one after the other: concurrent runs and a crash before its resume never make
`verify` report a problem that is not there (issue 12 item 2)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from points.dsl.loader import load_rules
from points.engine import settlement
from points.engine.audit import audit
from points.engine.workflow import Runner
from points.ledger import db
from points.ledger.events import import_files

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SAMPLES = RULES / "samples" / "events.jsonl"


def fresh(path: Path):
    conn = db.connect(path)
    report = import_files(conn, [SAMPLES])
    assert not report.errors
    return conn


def keys(conn) -> list[tuple]:
    return conn.execute("SELECT seq, key, hash FROM entries ORDER BY seq").fetchall()


def test_a_crash_before_its_resume_is_pending_not_a_finding(tmp_path, monkeypatch):
    rules = load_rules(RULES)
    until = dt.date(2026, 6, 30)
    reference = fresh(tmp_path / "ref.db")
    Runner(reference, rules, until).run()

    conn = fresh(tmp_path / "crash.db")
    real_run, calls = settlement.Checkpointer.run, []

    def dies_at_the_twentieth(self):
        calls.append(1)
        if len(calls) == 20:
            raise KeyboardInterrupt  # the process dies inside a checkpoint's transaction
        return real_run(self)

    monkeypatch.setattr(settlement.Checkpointer, "run", dies_at_the_twentieth)
    with pytest.raises(KeyboardInterrupt):
        Runner(conn, rules, until).run()
    monkeypatch.setattr(settlement.Checkpointer, "run", real_run)

    between = audit(conn)
    assert between["ok"], between["problems"]
    assert between["checked"]["entries_pending"] == between["entries"] > 0
    assert between["checked"]["runs_replayed"] == 0
    # the interrupted run is re-derived as far as it went
    assert between["checked"]["pending_rederived"] is True
    assert between["checked"]["entries_rederived"] == between["entries"]

    Runner(conn, rules, until).run()  # the resume
    after = audit(conn)
    assert after["ok"], after["problems"]
    assert after["checked"]["entries_pending"] == 0
    assert after["checked"]["entries_rederived"] == after["entries"]
    assert keys(conn) == keys(reference)  # the resumed journal is the uninterrupted one


@pytest.mark.slow
def test_two_concurrent_runs_with_different_dates_verify(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli = [sys.executable, "-m", "points.cli.main", "--db", str(tmp_path / "points.db")]
    from tests.reliability.helpers import generate_events, write_jsonl

    events = write_jsonl(tmp_path / "events.jsonl", generate_events(150, seed=5))
    for args in (["init"], ["import", str(events)]):
        subprocess.run(cli + args, check=True, capture_output=True, env=env)
    procs = [subprocess.Popen(cli + ["run", "--until", until, "--rules", str(RULES)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for until in ("2026-06-30", "2026-01-31", "2026-11-30")]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    verify = subprocess.run(cli + ["verify", "--json"], capture_output=True, text=True, env=env)
    assert verify.returncode == 0, verify.stdout
    import json
    data = json.loads(verify.stdout)
    assert data["checked"]["runs_replayed"] == 3
    assert data["checked"]["entries_rederived"] == data["entries"]


def crash_at(monkeypatch, n: int):
    real_run, calls = settlement.Checkpointer.run, []

    def dies(self):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real_run(self)

    monkeypatch.setattr(settlement.Checkpointer, "run", dies)
    return lambda: monkeypatch.setattr(settlement.Checkpointer, "run", real_run)


def test_a_resume_with_another_date_and_new_events_replays_both_runs(tmp_path, monkeypatch):
    """Interrupted at --until A, resumed by --until B after an import: each run is
    replayed with its own date and events, the first exactly as far as it went."""
    from tests.reliability.helpers import generate_events, write_jsonl

    rules = load_rules(RULES)
    conn = fresh(tmp_path / "p.db")
    restore = crash_at(monkeypatch, 25)
    with pytest.raises(KeyboardInterrupt):
        Runner(conn, rules, dt.date(2026, 6, 30)).run()
    restore()
    tampered_before = audit(conn)
    assert tampered_before["ok"], tampered_before["problems"]
    more = write_jsonl(tmp_path / "more.jsonl", [
        dict(e, id="late-" + e["id"], member="N" + e["member"])
        for e in generate_events(20, seed=3) if e["type"] in ("card_payment", "icoca_charge")])
    assert not import_files(conn, [more]).errors
    Runner(conn, rules, dt.date(2026, 11, 30)).run()
    after = audit(conn)
    assert after["ok"], after["problems"]
    assert after["checked"]["entries_rederived"] == after["entries"]
    assert after["checked"]["entries_pending"] == 0

    # and a forged entry in the interrupted part is still found
    conn.close()
    import apsw
    raw = apsw.Connection(str(tmp_path / "p.db"))
    raw.execute("DROP TRIGGER entries_no_update")
    (seq,) = raw.execute("SELECT MIN(seq) FROM entries WHERE key LIKE 'award:%'").fetchone()
    raw.execute("UPDATE entries SET recorded = '2026-11-30' WHERE seq = ?", (seq,))
    rehash_from(raw, seq)  # a forger who rewrites the chain after it: only replay can tell
    db.restore_triggers(raw)  # and puts the trigger back
    raw.close()
    conn = db.connect(tmp_path / "p.db", readonly=True)
    found = audit(conn)
    assert found["problems"][0].startswith(
        f"entry {seq}: re-derived entry differs: recorded: stored 2026-11-30, re-derived 2026-06-30")
    assert len(found["problems"]) == 1, found["problems"]


def rehash_from(raw, seq: int) -> None:
    from points.ledger.hashing import ENTRY_COLUMNS, POSTING_COLUMNS, entry_hash

    prev = raw.execute("SELECT prev_hash FROM entries WHERE seq = ?", (seq,)).fetchone()[0]
    cols = ", ".join(ENTRY_COLUMNS[:-1])
    for row in raw.execute(f"SELECT {cols} FROM entries WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
        postings = raw.execute(f"SELECT {', '.join(POSTING_COLUMNS)} FROM postings WHERE entry = ?"
                               " ORDER BY idx", (row[0],)).fetchall()
        h = entry_hash(tuple(row) + (prev,), postings)
        raw.execute("UPDATE entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, row[0]))
        prev = h
