"""Issue 12 as an auditor meets it: rules recorded in the journal, heads, tampering, --rules."""

import json
import re
import shutil
import sqlite3
import subprocess

import pytest

from tests.acceptance.cli import (
    BUNDLED, SAMPLE_EVENTS, assert_clean_refusal, copy_rules, digest, points, points_exe,
)

HEAD = re.compile(r"^head: entry (\d+) sha256 ([0-9a-f]{64})$", re.M)
OTHER_ROW = "other,Any non-preferred merchant,,other,1,1"


def head_of(verify_stdout):
    m = HEAD.search(verify_stdout)
    assert m, verify_stdout
    return int(m.group(1)), m.group(2)


def cut_journal_after(db, seq):
    """What an insider with sqlite3 does: drop the guards, delete the tail, put the guards back."""
    con = sqlite3.connect(db)
    triggers = con.execute("select name, sql from sqlite_master where type = 'trigger'").fetchall()
    for name, _ in triggers:
        con.execute(f'drop trigger "{name}"')
    con.execute("delete from postings where entry > ?", (seq,))
    con.execute("delete from entries where seq > ?", (seq,))
    for _, sql in triggers:
        con.execute(sql)
    con.commit()
    con.close()


@pytest.mark.slow
def test_the_auditors_story_campaigns_added_and_amended_then_verified_from_the_file_alone(tmp_path):
    work = tmp_path / "ops"
    work.mkdir()
    rules = copy_rules(work / "rules", ["yearend-2024.rules", "yearend-2025.rules", "jwest-card.rules"])
    assert points("init", cwd=work).returncode == 0
    assert points("import", SAMPLE_EVENTS, cwd=work).returncode == 0
    first = points("run", "--until", "2025-12-31", cwd=work)
    assert first.returncode == 0, first.stderr
    assert "wesmo-stamp-rally-2026" not in first.stdout

    # A new campaign file needs nothing special.
    shutil.copy(BUNDLED / "wesmo-stamp-rally-2026.rules", rules / "wesmo-stamp-rally-2026.rules")
    second = points("run", "--until", "2026-06-30", cwd=work)
    assert second.returncode == 0, second.stderr
    assert "wesmo-stamp-rally-2026" in second.stdout

    # Amending a table of a campaign that has paid: refused, then accepted with --amend.
    table = rules / "data" / "jwest_merchants.csv"
    text = table.read_text()
    assert OTHER_ROW in text
    table.write_text(text.replace(OTHER_ROW, "other,Any non-preferred merchant,,other,2,2"))
    db = work / "points.db"
    before = digest(db)
    refused = points("run", "--until", "2026-07-31", cwd=work)
    assert_clean_refusal(refused)
    assert "jwest_merchants.csv" in refused.stderr and "--amend" in refused.stderr
    assert digest(db) == before
    amended = points("run", "--until", "2026-07-31", "--amend", "double the base rate", cwd=work)
    assert amended.returncode == 0, amended.stderr

    # The auditor: the database file alone, in a folder with no rules anywhere.
    audit = tmp_path / "auditor"
    audit.mkdir()
    shutil.copy(db, audit / "ledger.db")
    ok = points("verify", cwd=audit, db=audit / "ledger.db")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ok:")
    assert "3 runs replayed" in ok.stdout
    assert "amendment" in ok.stdout
    seq, sha = head_of(ok.stdout)

    as_json = points("verify", "--json", cwd=audit, db=audit / "ledger.db")
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is True and doc["head"]["entry"] == seq and doc["head"]["sha256"] == sha

    assert points("verify", "--expect-head", sha, cwd=audit, db=audit / "ledger.db").returncode == 0

    # verify --rules: the operators' folder matches; a copy with one changed row is named.
    same = points("verify", "--rules", rules, cwd=audit, db=audit / "ledger.db")
    assert same.returncode == 0, same.stdout
    changed = copy_rules(audit / "changed", [p.name for p in rules.glob("*.rules")])
    shutil.copy(table, changed / "data" / "jwest_merchants.csv")
    row = "other,Any non-preferred merchant,,other,2,2"
    changed_table = changed / "data" / "jwest_merchants.csv"
    changed_table.write_text(changed_table.read_text().replace(row, "other,Any non-preferred merchant,,other,2,3"))
    differs = points("verify", "--rules", changed, cwd=audit, db=audit / "ledger.db")
    assert differs.returncode == 1
    assert "jwest_merchants.csv" in differs.stdout + differs.stderr
    assert "Traceback" not in differs.stderr

    # Cut the last run off behind the triggers: the kept head catches it.
    runs = doc["runs"]
    cut_journal_after(audit / "ledger.db", runs[-2]["entry"])
    cut = points("verify", "--expect-head", sha, cwd=audit, db=audit / "ledger.db")
    assert cut.returncode == 1, cut.stdout
    assert sha in cut.stdout + cut.stderr
    assert "Traceback" not in cut.stderr


@pytest.mark.slow
def test_verify_with_no_rules_anywhere_prints_the_head(fresh_loaded, workdir):
    run = points("run", "--until", "2025-12-31", cwd=workdir, db=fresh_loaded)
    assert run.returncode == 0, run.stderr
    assert not (workdir / "rules").exists()
    ok = points("verify", cwd=workdir, db=fresh_loaded)
    assert ok.returncode == 0, ok.stdout
    seq, sha = head_of(ok.stdout)
    assert seq > 0
    wrong = points("verify", "--expect-head", "5" * 64, cwd=workdir, db=fresh_loaded)
    assert wrong.returncode == 1


@pytest.mark.slow
def test_two_concurrent_runs_with_different_dates_then_verify_is_ok(fresh_loaded, workdir):
    exe = points_exe()
    procs = [
        subprocess.Popen([exe, "--db", str(fresh_loaded), "run", "--until", until],
                         cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for until in ("2026-06-30", "2025-12-31")
    ]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert "Traceback" not in err
    ok = points("verify", cwd=workdir, db=fresh_loaded)
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.startswith("ok:")


def test_every_exported_draw_is_redone_from_docs_lottery_md(demo_db, workdir):
    import hashlib

    def sha(text):
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    r = points("export", "--format", "jsonl", cwd=workdir, db=demo_db)
    assert r.returncode == 0, r.stderr
    draws = [e for e in map(json.loads, r.stdout.splitlines()) if e["key"].startswith("draw:")]
    assert len(draws) >= 3
    for entry in draws:
        _, campaign, period, award = entry["key"].split(":")
        memo = entry["memo"]
        members = memo["order"]
        assert len(members) == memo["candidates"]
        digest = sha("\n".join(sorted(members)))
        assert digest == memo["candidates_digest"]
        seed = sha(f"{campaign}|{period}|{award}|{entry['effective']}|{digest}")
        assert seed == memo["seed"], entry["key"]
        assert sorted(members, key=lambda m: (sha(f"{seed}|{m}"), m)) == members
        assert memo["winners"] == members[: len(memo["winners"])]
