"""Several `points run` processes at once on one database, and an import while they
run: they queue on the write lock (busy timeout 60 s) instead of failing with
"database is locked"; nobody is paid twice; no event is lost; verify passes."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time

import pytest

from points.ledger import db
from points.ledger.verify import verify
from tests.reliability.helpers import ENV, ROOT, RULES, UNTIL, generate_events, write_jsonl

CLI = [sys.executable, "-m", "points.cli.main"]


def points(path, *args) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "--db", str(path), *map(str, args)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def net_by_member_campaign(path) -> dict:
    """(campaign, member, kind) -> net points credited to the member (grants - reversals)."""
    conn = db.connect(path, readonly=True)
    out = collections.Counter()
    for campaign, account, kind, amount in conn.execute(
            "SELECT e.campaign, p.account, p.kind, p.amount FROM postings p JOIN entries e"
            " ON e.seq = p.entry WHERE e.campaign IS NOT NULL"
            " AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%')"):
        out[(campaign, account.split(":")[1], kind)] += amount
    conn.close()
    return {k: v for k, v in out.items() if v}


def late_events(n: int) -> list[dict]:
    """Events of new members for the programs without a lottery (card and ICOCA)."""
    out = []
    for e in generate_events(n, seed=99):
        if e["type"] in ("card_payment", "mynapoint_application", "icoca_charge"):
            e = dict(e, id="late-" + e["id"], member="N" + e["member"][1:])
            out.append(e)
    return out


@pytest.mark.slow  # four CLI processes on one database: about 4 s
def test_concurrent_runs_and_an_import_do_not_double_pay_or_lose_events(tmp_path, figures):
    # With redemption events: two runs may reach the same one; the first records it (spent or
    # refused) and the other sees it done (test_a_refused_redemption_written_by_another_run...).
    first = write_jsonl(tmp_path / "a.jsonl", generate_events(100, seed=11))
    late = write_jsonl(tmp_path / "b.jsonl", late_events(100))
    path = tmp_path / "points.db"
    for args in (("init",), ("import", first)):
        p = subprocess.run([*CLI, "--db", str(path), *map(str, args)], cwd=ROOT, env=ENV,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr

    t0 = time.monotonic()
    procs = {f"run{i}": points(path, "run", "--until", until, "--allow-future", "--rules", RULES)
             for i, until in enumerate([UNTIL, UNTIL, UNTIL, "2026-03-01"])}
    # start the import once the runs are writing
    watch = db.connect(path, readonly=True)
    while watch.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0:
        assert time.monotonic() - t0 < 120 and all(p.poll() is None for p in procs.values())
        time.sleep(0.01)
    watch.close()
    import_started = time.monotonic() - t0
    procs["import"] = points(path, "import", late)
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        results[name] = (proc.returncode, out, err, time.monotonic() - t0)
    for name, (rc, out, err, _) in results.items():
        assert rc == 0, f"{name}: rc {rc}\n{out}\n{err}"
        assert "locked" not in (out + err).lower() and "Traceback" not in err, (name, err)

    # The import may have landed after some runs looked at the events: one more run
    # settles what it brought (a late event is a correction, never a second payment).
    p = subprocess.run([*CLI, "--db", str(path), "run", "--until", UNTIL, "--allow-future", "--rules", RULES],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr

    # Reference: one process, every event, one run.
    ref = tmp_path / "ref.db"
    for args in (("init",), ("import", first, late), ("run", "--until", UNTIL, "--allow-future", "--rules", RULES)):
        q = subprocess.run([*CLI, "--db", str(ref), *map(str, args)], cwd=ROOT, env=ENV,
                           capture_output=True, text=True)
        assert q.returncode == 0, q.stderr

    conn = db.connect(path, readonly=True)
    report = verify(conn)
    assert report.ok, report.problems[:5]
    ids = {i for (i,) in conn.execute("SELECT id FROM events")}
    want = {json.loads(l)["id"] for f in (first, late) for l in open(f)}
    assert ids == want, f"lost {len(want - ids)} events"
    # every award is paid at most once per member, award and checkpoint
    dup = conn.execute(
        "SELECT campaign, step, memo, COUNT(*) FROM entries WHERE key LIKE 'award:%'"
        " GROUP BY campaign, step, effective, json_extract(memo, '$.member') HAVING COUNT(*) > 1"
    ).fetchall()
    assert not dup, dup
    n_entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    conn.close()

    assert net_by_member_campaign(path) == net_by_member_campaign(ref)
    rconn = db.connect(ref, readonly=True)
    budgets = lambda c: dict(c.execute(
        "SELECT account, SUM(amount) FROM postings WHERE account LIKE 'campaign:%' GROUP BY account"))
    assert budgets(db.connect(path, readonly=True)) == budgets(rconn)
    rconn.close()

    figures("concurrency", {
        "processes": list(procs), "events": len(want), "entries": n_entries,
        "import_started_after_s": round(import_started, 2),
        "finished_after_s": {k: round(v[3], 2) for k, v in results.items()},
        "entries_written_by": {k: v[1].split("\n")[0] for k, v in results.items()},
    })


def test_a_refused_redemption_written_by_another_run_is_not_a_conflict(tmp_path):
    """The interleaving of two runs, made deterministic: run B checked for the key before
    run A committed its refused redemption, then B redeems inside its own transaction."""
    import datetime as dt

    from points.engine.workflow import Runner
    from points.ledger import events as ev
    from tests.support import real_rules

    conn_a = db.connect(tmp_path / "p.db")
    rep = ev.import_records(conn_a, [("t:1", {
        "id": "r1", "type": "redemption", "member": "M1", "at": "2026-05-01T10:00:00",
        "points": 100, "use": "fare"})])
    assert not rep.errors
    conn_b = db.connect(tmp_path / "p.db")
    runner_b = Runner(conn_b, real_rules(), dt.date(2026, 6, 1))
    Runner(conn_a, real_rules(), dt.date(2026, 6, 1)).run()  # A: refused, recorded
    real = runner_b.journal.entry_by_key
    stale = {"redeem:r1"}  # B's first look-up (outside its transaction) came before A's commit

    def entry_by_key(key):
        if key in stale:
            stale.discard(key)
            return None
        return real(key)

    runner_b.journal.entry_by_key = entry_by_key
    runner_b.run()  # must treat A's record as done, not as a conflict
    assert verify(conn_b).ok
