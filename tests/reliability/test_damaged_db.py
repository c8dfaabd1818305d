"""Damaged database files fail cleanly (issue 14): byte-flipped copies of a demo
database, every command, exit 0 or 1 and never a traceback; the reasons are one line."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner

from points.cli.main import cli
from points.ledger import db
from points.ledger.verify import verify
from tests.reliability.helpers import ROOT

SAMPLES = ROOT / "rules" / "samples" / "events.jsonl"
COMMANDS = [["verify"], ["export", "--format", "jsonl"], ["import", str(SAMPLES)],
            ["run", "--until", "2026-03-01"], ["balance", "W0001"], ["history", "W0001"],
            ["campaigns"]]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("damaged") / "demo.db"
    result = CliRunner().invoke(cli, ["demo", "--db", str(path)])
    assert result.exit_code == 0, result.output
    conn = apsw.Connection(str(path))  # fold the WAL into the file: the copies are whole
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def _flipped(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 20)):
        pos = rng.randrange(100, len(b))  # past the file header: SQLite would say "not a database"
        b[pos] ^= 1 << rng.randrange(8)
    return bytes(b)


def _clean(result, command) -> str:
    assert result.exit_code in (0, 1), (command, result.exit_code, result.output[-500:])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        (command, repr(result.exception))
    assert "Traceback" not in result.output
    return result.stderr


@pytest.mark.slow
def test_byte_flipped_databases_never_print_a_traceback(demo_db, tmp_path, figures):
    data = demo_db.read_bytes()
    rng = random.Random(14)
    runner = CliRunner()
    outcomes = {"ok": 0, "refused": 0, "damaged": 0}
    for i in range(100):
        path = tmp_path / f"d{i}.db"
        path.write_bytes(_flipped(data, rng))
        for command in COMMANDS:
            err = _clean(runner.invoke(cli, ["--db", str(path), *command]), command)
            if err:
                lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
                assert len(lines) <= 1, err  # one reason
                outcomes["damaged" if "damaged" in err else "refused"] += 1
            else:
                outcomes["ok"] += 1
        path.unlink()
    figures("damaged_databases", outcomes)
    assert outcomes["damaged"] > 0  # the flips did reach data that commands read


def test_a_damaged_text_cell_is_reported_as_damage_not_a_traceback(demo_db, tmp_path):
    path = tmp_path / "p.db"
    shutil.copyfile(demo_db, path)
    raw = apsw.Connection(str(path))
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.execute(f'DROP TRIGGER "{name}"')
    raw.execute("UPDATE entries SET memo = CAST(x'7b22ff' AS TEXT)")  # not UTF-8, not JSON
    db.restore_triggers(raw)  # the schema as expected: only the cells are damaged
    raw.close()
    before = path.read_bytes()
    runner = CliRunner()
    for command in (["export", "--format", "jsonl"], ["run", "--until", "2026-03-01"],
                    ["history", "W0001"], ["verify"]):
        result = runner.invoke(cli, ["--db", str(path), *command])
        _clean(result, command)
        assert result.exit_code == 1, (command, result.output[-300:])
        if command[0] != "verify":  # verify reports it as a FAILED check
            assert result.stderr.startswith("error: database damaged: "), (command, result.stderr)
            assert len(result.stderr.splitlines()) == 1, result.stderr
    assert path.read_bytes() == before


def test_verify_reports_a_broken_index_and_a_disarmed_trigger(demo_db, tmp_path):
    path = tmp_path / "p.db"
    shutil.copyfile(demo_db, path)
    raw = apsw.Connection(str(path))
    # a trigger replaced by a same-named one that never fires
    raw.execute("DROP TRIGGER entries_no_update")
    raw.execute("CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries WHEN 0 BEGIN SELECT 1; END")
    # an index whose rows no longer match its definition (its SQL rewritten in place)
    raw.execute("PRAGMA writable_schema = ON")
    raw.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX events_type_day ON events(member, day)' "
                "WHERE name = 'events_type_day'")
    raw.close()
    report = verify(db.connect(path, readonly=True))
    assert not report.ok
    assert any(p.startswith("integrity: ") for p in report.problems), report.problems
    assert any(p.startswith("schema: trigger entries_no_update differs") for p in report.problems), \
        report.problems
    assert any(p.startswith("schema: index events_type_day differs") for p in report.problems)


def test_a_writable_open_recreates_a_disarmed_trigger_exactly(demo_db, tmp_path):
    path = tmp_path / "p.db"
    shutil.copyfile(demo_db, path)
    raw = apsw.Connection(str(path))
    raw.execute("DROP TRIGGER entries_no_update")
    raw.execute("CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries WHEN 0 BEGIN SELECT 1; END")
    raw.execute("DROP TRIGGER postings_no_delete")
    raw.close()
    db.connect(path).close()
    assert db.schema_problems(db.connect(path, readonly=True)) == []
    conn = db.connect(path)
    with pytest.raises(apsw.ConstraintError, match="append-only"):
        conn.execute("UPDATE entries SET memo = '{}' WHERE seq = 1")
