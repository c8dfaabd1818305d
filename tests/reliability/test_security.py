"""Rules cannot run code, read files outside their folder or inject SQL; read
commands open the database read-only; the database file is private (0600)."""

from __future__ import annotations

import builtins
import datetime as dt
import os
import pathlib
import stat
import subprocess
import sys

import apsw
import pytest
from click.testing import CliRunner

from points.cli.main import cli
from points.dsl.errors import RulesError
from points.dsl.loader import load_rules
from points.engine.workflow import Runner
from points.ledger import db, events
from points.ledger.journal import Journal
from points.ledger.verify import verify
from tests.reliability.helpers import ENV, ROOT, RULES, file_digest

HOSTILE = [
    "'; DROP TABLE events; --",
    "\"; DROP TABLE events; --",  # written with an escaped quote in the rules file
    "x' OR '1'='1",
    "x\" OR 1=1 OR \"",
    "__import__('os').system('touch PWNED')",
    "`touch PWNED`",
    "$(touch PWNED)",
    "{__import__('os')}",
    "%s %d ? :wm",
    "\\\\' ) ; ATTACH DATABASE 'x' AS y; --",
]

CAMPAIGN = """campaign sec-test "Security test"
  window 2026-03-01 .. 2026-03-31
  stream pay = wesmo_payment
    where date in window and merchant == {literal}
  value n = count(pay)
  award prize "Prize" = 100 basic
    when n >= 1
    on 2026-04-15
    expires 2026-12-31
"""


def rules_literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def setup(tmp_path, text: str, merchants: list[str]):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "sec.rules").write_text(text, encoding="utf-8")
    conn = db.connect(tmp_path / "points.db")
    rep = events.import_records(conn, [(f"t:{i}", {
        "id": f"p{i}", "type": "wesmo_payment", "member": f"S{i}", "at": "2026-03-05T10:00:00",
        "amount": 500, "merchant": m}) for i, m in enumerate(merchants)])
    assert not rep.errors, rep.errors
    return folder, conn


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_string_literal_is_plain_data(tmp_path, value, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, conn = setup(tmp_path, CAMPAIGN.format(literal=rules_literal(value)),
                         ["other", value, value + " "])
    n_events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    rules = load_rules(folder)
    Runner(conn, rules, dt.date(2026, 5, 1)).run()
    # the events table is intact and only the event whose merchant IS the string matched
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == n_events
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= {
        "events", "entries", "postings", "meta"}
    j = Journal(conn)
    assert j.balance("S1")["basic"] == 100
    assert j.balance("S0")["basic"] == 0 and j.balance("S2")["basic"] == 0
    assert not (tmp_path / "PWNED").exists() and not (ROOT / "PWNED").exists()
    assert verify(conn).ok


@pytest.mark.parametrize("value", HOSTILE[:5])
def test_hostile_string_matches_nothing_when_no_event_has_it(tmp_path, value):
    folder, conn = setup(tmp_path, CAMPAIGN.format(literal=rules_literal(value)), ["other", "x"])
    Runner(conn, load_rules(folder), dt.date(2026, 5, 1)).run()
    assert conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2


@pytest.mark.parametrize("snippet", [
    "value __import__ = 1",
    "value x = __import__(\"os\")",
    "value x = eval(\"1\")",
    "value x = `id`",
    "value x = exec(\"import os\")",
    "value x = open(\"/etc/passwd\")",
    "value x = n.__class__",
    "value x = n; DROP TABLE events",
])
def test_code_in_names_and_expressions_is_rejected_or_inert(tmp_path, snippet, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = CAMPAIGN.format(literal='"other"').replace("  value n = count(pay)\n",
                                                        f"  value n = count(pay)\n  {snippet}\n")
    folder, conn = setup(tmp_path, text, ["other"])
    try:
        rules = load_rules(folder)
    except RulesError as exc:
        assert all(d.path.endswith("sec.rules") and d.line >= 1 for d in exc.diagnostics)
    else:
        Runner(conn, rules, dt.date(2026, 5, 1)).run()
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    assert not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------- files outside the folder

TABLE_RULES = """campaign sec-test "Security test"
  window 2026-03-01 .. 2026-03-31
  table t from {path}
  stream pay = wesmo_payment
    where date in window and merchant in t.merchant
  value n = count(pay)
  award prize "Prize" = 100 basic
    when n >= 1
    on 2026-04-15
    expires 2026-12-31
"""


@pytest.fixture
def reads(monkeypatch):
    """Every file path opened for reading through open() / Path.read_bytes / read_text."""
    seen: list[str] = []
    real_open, real_rb, real_rt = builtins.open, pathlib.Path.read_bytes, pathlib.Path.read_text

    def spy_open(file, *a, **k):
        if isinstance(file, (str, os.PathLike)):
            seen.append(os.path.realpath(file))
        return real_open(file, *a, **k)

    def spy_rb(self):
        seen.append(os.path.realpath(self))
        return real_rb(self)

    def spy_rt(self, *a, **k):
        seen.append(os.path.realpath(self))
        return real_rt(self, *a, **k)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(pathlib.Path, "read_bytes", spy_rb)
    monkeypatch.setattr(pathlib.Path, "read_text", spy_rt)
    return seen


@pytest.mark.parametrize("path", [
    "../../etc/passwd", "/etc/passwd", "data/../../outside.csv", "../outside.csv",
    "data/link.csv", "data/../data/../../outside.csv", "data\\..\\..\\outside.csv",
    "//etc/passwd", "~/outside.csv", "data/%2e%2e/outside.csv", "file:///etc/passwd",
])
def test_tables_outside_the_rules_folder_are_refused_and_not_read(tmp_path, reads, path):
    outside = tmp_path / "outside.csv"
    outside.write_text("merchant\nsecret\n")
    folder = tmp_path / "sub" / "rules"
    (folder / "data").mkdir(parents=True)
    os.symlink(outside, folder / "data" / "link.csv")  # a link inside that points outside
    text = TABLE_RULES.format(path=rules_literal(path))
    (folder / "sec.rules").write_text(text)
    reads.clear()
    with pytest.raises(RulesError) as info:
        load_rules(folder)
    line = next(i for i, l in enumerate(text.split("\n"), 1) if "table t" in l)
    assert any(d.path.endswith("sec.rules") and d.line == line and d.column >= 1
               for d in info.value.diagnostics), info.value.diagnostics
    base = os.path.realpath(folder)
    leaked = [p for p in reads if not (p == base or p.startswith(base + os.sep))
              and ("outside" in p or p.startswith("/etc"))]
    assert not leaked, leaked


def test_a_table_inside_the_folder_is_read(tmp_path):
    folder = tmp_path / "rules"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "t.csv").write_text("merchant\nshop-1\n")
    (folder / "sec.rules").write_text(TABLE_RULES.format(path='"data/t.csv"'))
    conn = db.connect(tmp_path / "p.db")
    events.import_records(conn, [("t:1", {"id": "p1", "type": "wesmo_payment", "member": "S1",
                                          "at": "2026-03-05T10:00:00", "amount": 1, "merchant": "shop-1"})])
    Runner(conn, load_rules(folder), dt.date(2026, 5, 1)).run()
    assert Journal(conn).balance("S1")["basic"] == 100


def test_hostile_table_values_and_lookups_bind_as_parameters(tmp_path):
    """A reference table holding SQL is data: it matches only the identical merchant code."""
    folder = tmp_path / "rules"
    (folder / "data").mkdir(parents=True)
    evil = "x'); DROP TABLE events; --"
    (folder / "data" / "t.csv").write_text(f'merchant\n"{evil}"\n')
    (folder / "sec.rules").write_text(TABLE_RULES.format(path='"data/t.csv"'))
    conn = db.connect(tmp_path / "p.db")
    events.import_records(conn, [(f"t:{i}", {"id": f"p{i}", "type": "wesmo_payment", "member": f"S{i}",
                                             "at": "2026-03-05T10:00:00", "amount": 1, "merchant": m})
                                 for i, m in enumerate(["x", evil])])
    Runner(conn, load_rules(folder), dt.date(2026, 5, 1)).run()
    j = Journal(conn)
    assert j.balance("S1")["basic"] == 100 and j.balance("S0")["basic"] == 0
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2


# ---------------------------------------------------------------- the database file

def test_database_file_is_created_private(tmp_path):
    old = os.umask(0o022)
    try:
        (tmp_path / "new").mkdir()  # folders are never created (ledger.db.connect)
        conn = db.connect(tmp_path / "new" / "points.db")
        Journal(conn).fund_budget("c", "basic", 10, dt.date(2026, 1, 1))  # creates the WAL
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "new").iterdir()}
        conn.close()
    finally:
        os.umask(old)
    assert modes["points.db"] == 0o600, modes
    assert all(m & 0o077 == 0 for m in modes.values()), modes  # -wal and -shm too


def test_points_init_creates_a_private_file(tmp_path):
    p = subprocess.run([sys.executable, "-m", "points.cli.main", "--db", str(tmp_path / "p.db"), "init"],
                       cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE((tmp_path / "p.db").stat().st_mode) == 0o600


def test_readonly_connection_refuses_every_write(tmp_path):
    conn = db.connect(tmp_path / "p.db")
    Journal(conn).fund_budget("c", "basic", 10, dt.date(2026, 1, 1))
    conn.close()
    before = file_digest(tmp_path / "p.db")
    ro = db.connect(tmp_path / "p.db", readonly=True)
    for sql in ["INSERT INTO meta(key, value) VALUES ('x', 'y')", "DELETE FROM meta",
                "CREATE TABLE x(y)", "DROP TRIGGER entries_no_update", "PRAGMA user_version = 7"]:
        with pytest.raises(apsw.ReadOnlyError):
            ro.execute(sql)
    with pytest.raises(apsw.ReadOnlyError):
        Journal(ro).fund_budget("d", "basic", 10, dt.date(2026, 1, 1))
    assert verify(ro).ok
    ro.close()
    assert file_digest(tmp_path / "p.db") == before
    with pytest.raises(db.DatabaseError):
        db.connect(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("args", [
    ["verify"], ["verify", "--json"], ["balance", "M00001", "--json"], ["history", "M00001"],
    ["campaigns", "--json"], ["explain", "M00001", "yearend-2025"], ["export", "--format", "jsonl"],
])
def test_read_commands_open_the_database_read_only(tmp_path, monkeypatch, args, small_events):
    path = tmp_path / "p.db"
    conn = db.connect(path)
    events.import_files(conn, [small_events])
    from tests.support import real_rules
    Runner(conn, real_rules(), dt.date(2026, 3, 1)).run()
    conn.close()
    before_file, opened = file_digest(path), []
    real = db.connect

    def spy(p, *a, **k):
        opened.append((str(p), k.get("readonly", False)))
        return real(p, *a, **k)

    monkeypatch.setattr(db, "connect", spy)
    extra = ["--rules", str(RULES)] if args[0] in ("verify", "campaigns", "explain") else []
    r = CliRunner().invoke(cli, ["--db", str(path), *args, *extra])
    assert r.exit_code == 0, r.output
    mine = [ro for p, ro in opened if os.path.realpath(p) == os.path.realpath(path)]
    assert mine and all(mine), opened
    assert file_digest(path) == before_file
