"""More from outside: tampering that verify catches with no head kept, --rules naming missing
and extra files, all-or-nothing import over several files, rules errors before any write."""

import sqlite3

import pytest

from tests.acceptance.cli import BUNDLED, SAMPLE_EVENTS, copy_rules, digest, points


@pytest.fixture
def ran(fresh_loaded, workdir):
    r = points("run", "--until", "2025-12-31", cwd=workdir, db=fresh_loaded)
    assert r.returncode == 0, r.stderr
    return fresh_loaded


def _tamper(db, change):
    con = sqlite3.connect(db)
    triggers = con.execute("select name, sql from sqlite_master where type = 'trigger'").fetchall()
    for name, _ in triggers:
        con.execute(f'drop trigger "{name}"')
    change(con, dict(triggers))
    con.commit()
    con.close()


def test_deleting_every_entry_after_two_runs_is_caught(ran, workdir):
    later = points("run", "--until", "2026-06-30", cwd=workdir, db=ran)
    assert later.returncode == 0, later.stderr
    def wipe(con, triggers):
        con.execute("delete from postings")
        con.execute("delete from entries")
        for sql in triggers.values():
            con.execute(sql)
    _tamper(ran, wipe)
    r = points("verify", cwd=workdir, db=ran)
    assert r.returncode == 1, r.stdout
    assert r.stdout.startswith("FAILED")


def test_a_disarmed_trigger_is_caught(ran, workdir):
    def disarm(con, triggers):
        for name, sql in triggers.items():
            con.execute(sql.replace("BEGIN", "WHEN 0 BEGIN", 1) if name == "entries_no_delete" else sql)
    _tamper(ran, disarm)
    r = points("verify", cwd=workdir, db=ran)
    assert r.returncode == 1
    assert "entries_no_delete" in r.stdout


def test_verify_rules_names_a_missing_file_and_an_extra_one(ran, workdir):
    folder = copy_rules(workdir / "rules", [p.name for p in BUNDLED.glob("*.rules") if p.name != "jwest-card.rules"])
    (folder / "extra.rules").write_text((BUNDLED / "jwest-card.rules").read_text().replace("jwest-card", "jwest-card-2"))
    (folder / "data" / "point_up_periods.csv").unlink()
    r = points("verify", "--rules", folder, cwd=workdir, db=ran)
    assert r.returncode == 1
    for name in ("jwest-card.rules", "extra.rules", "point_up_periods.csv"):
        assert name in r.stdout


def test_import_of_several_files_is_all_or_nothing(fresh_loaded, workdir, tmp_path):
    db = tmp_path / "new.db"
    assert points("init", cwd=workdir, db=db).returncode == 0
    good = workdir / "good.jsonl"
    good.write_text(SAMPLE_EVENTS.read_text())
    bad = workdir / "bad.jsonl"
    bad.write_text('{"id": "x", "type": "nosuch", "member": "W1", "at": "2025-08-20T10:00:00"}\n')
    before = digest(db)
    r = points("import", good, bad, cwd=workdir, db=db)
    assert r.returncode == 1
    assert "bad.jsonl:1:" in r.stderr
    assert digest(db) == before


def test_a_rules_error_stops_run_before_anything_is_written(fresh_loaded, workdir):
    folder = copy_rules(workdir / "rules", [p.name for p in BUNDLED.glob("*.rules")])
    award = folder / "yearend-2025.rules"
    award.write_text(award.read_text().replace("min(spend, cap) basic", "min(spend, cap) basik"))
    before = digest(fresh_loaded)
    r = points("run", "--until", "2025-12-31", cwd=workdir, db=fresh_loaded)
    assert r.returncode == 1
    assert "yearend-2025.rules:" in r.stderr and "basik" in r.stderr
    assert "Traceback" not in r.stderr
    assert digest(fresh_loaded) == before
