"""Runs after an amendment: what the amendment took back is not taken back again.

A black-box tester's story: lower a capped prize with --amend (5,000 taken back
from W0201), then import more events or add a campaign file and run later. The
later run must settle against a paid state that includes the amendment's
adjustments, and the adjustments carry the new rules' hash.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil

import pytest

from points.engine import audit
from points.engine import workflow
from points.ledger import db

from tests.audit.test_recorded_rules import RULES, SAMPLES, Points

STAMP_RALLY = "wesmo-stamp-rally-2026.rules"
EXTRA_EVENT = ('{"id": "W0307-90", "type": "wesmo_charge", "member": "W0307", '
               '"at": "2026-02-10T07:00:00", "amount": 2000, "source": "point_charge"}\n')


def _net(conn, member: str, campaign: str) -> int:
    return conn.execute(
        "SELECT COALESCE(SUM(p.amount), 0) FROM entries e JOIN postings p ON p.entry = e.seq"
        " WHERE e.campaign = ? AND json_extract(e.memo, '$.member') = ?"
        " AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%')",
        (campaign, member)).fetchone()[0]


def _amended(tmp_path, monkeypatch, without: str = "") -> Points:
    """Bundled rules in ./rules; run to 2025-12-31; cap 20,000 -> 15,000 with --amend."""
    p = Points(tmp_path, monkeypatch)
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("__init__.py", "samples", "__pycache__"))
    if without:
        (rules / without).unlink()
    assert p("init").exit_code == 0
    assert p("import", SAMPLES).exit_code == 0
    assert p("run", "--until", "2025-12-31").exit_code == 0
    f = rules / "yearend-2024.rules"
    text = f.read_text(encoding="utf-8")
    assert "min(spend, 20_000)" in text
    f.write_text(text.replace("min(spend, 20_000)", "min(spend, 15_000)"), encoding="utf-8")
    out = p("run", "--until", "2026-01-31", "--amend", "cap lowered")
    assert out.exit_code == 0, out.output
    conn = db.connect(tmp_path / "points.db", readonly=True)
    assert _net(conn, "W0201", "yearend-2024") == 15_000
    conn.close()
    return p


def _later(tmp_path, p: Points, how: str) -> None:
    if how == "import":
        (tmp_path / "more.jsonl").write_text(EXTRA_EVENT, encoding="utf-8")
        assert p("import", tmp_path / "more.jsonl").exit_code == 0
    else:  # a campaign file added
        shutil.copy(RULES / "wesmo-stamp-rally-2026.rules", tmp_path / "rules")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["import", "added-file"])
def test_a_run_after_an_amendment_does_not_take_back_again(tmp_path, monkeypatch, how):
    p = _amended(tmp_path, monkeypatch, "" if how == "import" else STAMP_RALLY)
    _later(tmp_path, p, how)
    out = p("run", "--until", "2026-02-28")
    assert out.exit_code == 0, out.output
    conn = db.connect(tmp_path / "points.db", readonly=True)
    assert _net(conn, "W0201", "yearend-2024") == 15_000
    conn.close()
    ok = p("verify")
    assert ok.exit_code == 0, ok.output


@pytest.mark.slow
def test_adjustments_of_an_amendment_carry_the_new_rules_hash(tmp_path, monkeypatch):
    _amended(tmp_path, monkeypatch)
    conn = db.connect(tmp_path / "points.db", readonly=True)
    (amend_seq,) = conn.execute("SELECT seq FROM entries WHERE step = 'amend'").fetchone()
    hashes = {h for (h,) in conn.execute("SELECT rules_hash FROM entries WHERE key LIKE ?",
                                         (f"%~amend{amend_seq}%",))}
    new = __import__("hashlib").sha256((tmp_path / "rules" / "yearend-2024.rules").read_bytes()).hexdigest()
    conn.close()
    assert hashes == {new}


@pytest.mark.slow
def test_verify_finds_a_double_take_back_after_an_amendment(tmp_path, monkeypatch):
    """A journal written as the faulty engine did (the run after the amendment
    recomputed the earlier checkpoints): replaying it with its rules differs."""
    p = _amended(tmp_path, monkeypatch)
    _later(tmp_path, p, "import")
    with monkeypatch.context() as m:
        m.setattr(workflow.recorded, "amended_campaigns", lambda conn: {})
        assert p("run", "--until", "2026-02-28").exit_code == 0
    conn = db.connect(tmp_path / "points.db", readonly=True)
    assert _net(conn, "W0201", "yearend-2024") == 10_000  # the double take-back
    report = audit.audit(conn)
    conn.close()
    assert not report["ok"]
    assert any("re-derived" in p or "re-deriving" in p for p in report["problems"]), report["problems"]
    bad = p("verify")
    assert bad.exit_code == 1, bad.output


@pytest.mark.parametrize("bad", ["zzz", "0" * 63, "g" * 64, "0" * 65, "12 34"])
def test_expect_head_that_is_no_hash_is_a_usage_error(tmp_path, monkeypatch, bad):
    p = Points(tmp_path, monkeypatch)
    assert p("init").exit_code == 0
    out = p("verify", "--expect-head", bad)
    assert out.exit_code == 2, out.output
    assert "--expect-head" in out.output and "64 hex digits" in out.output


@pytest.mark.slow
def test_expect_head_genesis_is_not_an_entry_hash(tmp_path, monkeypatch):
    p = Points(tmp_path, monkeypatch)
    assert p("init").exit_code == 0 and p("import", SAMPLES).exit_code == 0
    shutil.copytree(RULES, tmp_path / "rules", ignore=shutil.ignore_patterns("__init__.py", "samples"))
    assert p("run", "--until", "2025-03-31").exit_code == 0
    out = p("verify", "--expect-head", "0" * 64)
    assert out.exit_code == 1, out.output
    assert "genesis" in out.output and "NOT on the chain" in out.output
    head = re.search(r"^head: entry \d+ sha256 ([0-9a-f]{64})$", out.output, re.M).group(1)
    assert p("verify", "--expect-head", head.upper()).exit_code == 0  # either case


def _delete_all(path) -> None:
    """A forger with write access: drop the triggers, delete every entry, put them back."""
    import apsw

    conn = apsw.Connection(str(path))
    for t in ("entries_no_delete", "postings_no_delete"):
        conn.execute(f"DROP TRIGGER {t}")
    conn.execute("DELETE FROM postings")
    conn.execute("DELETE FROM entries")
    db.restore_triggers(conn)
    conn.close()


@pytest.mark.slow
def test_a_finished_run_whose_entries_were_all_deleted_is_a_finding(tmp_path, monkeypatch):
    p = Points(tmp_path, monkeypatch)
    shutil.copytree(RULES, tmp_path / "rules", ignore=shutil.ignore_patterns("__init__.py", "samples"))
    assert p("init").exit_code == 0 and p("import", SAMPLES).exit_code == 0
    assert p("run", "--until", "2025-03-31").exit_code == 0
    _delete_all(tmp_path / "points.db")
    out = p("verify")
    assert out.exit_code == 1, out.output
    assert "a run finished with its marker at entry" in out.output
    assert "entries were removed" in out.output


def test_a_crash_before_the_first_entry_is_no_finding(tmp_path, monkeypatch):
    """A run start and its rules set recorded, then a crash before any entry: no marker,
    no end of run -- a run to resume, not a finding."""
    p = Points(tmp_path, monkeypatch)
    shutil.copytree(RULES, tmp_path / "rules", ignore=shutil.ignore_patterns("__init__.py", "samples"))
    assert p("init").exit_code == 0 and p("import", SAMPLES).exit_code == 0

    def crash(self):
        raise RuntimeError("killed")

    from points.dsl.loader import load_rules

    conn = db.connect(tmp_path / "points.db")
    with monkeypatch.context() as m:
        m.setattr(workflow.Runner, "_run_cached", crash)
        with pytest.raises(RuntimeError):
            workflow.Runner(conn, load_rules(tmp_path / "rules"), dt.date(2025, 3, 31)).run()
    conn.close()
    conn = db.connect(tmp_path / "points.db", readonly=True)
    assert conn.execute("SELECT COUNT(*) FROM run_starts").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0
    conn.close()
    ok = p("verify")
    assert ok.exit_code == 0, ok.output
    assert p("run", "--until", "2025-03-31").exit_code == 0  # the resume
    assert p("verify").exit_code == 0
