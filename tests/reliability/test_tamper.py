"""Tampering behind the triggers' back is detected by `verify` and the entry (or
event) is named: every column of every journal table, one cell at a time, plus
deleted, inserted and reordered rows, on a COPY of a database built by a real run."""

from __future__ import annotations

import datetime as dt
import shutil

import apsw
import pytest

from points.dsl.loader import load_rules
from points.engine.workflow import Runner
from points.ledger import db, events
from points.ledger.verify import verify
from tests.reliability.helpers import RULES, UNTIL

EVENT_COLUMNS = ("seq", "id", "type", "member", "at", "day", "time", "weekday", "amount", "ref",
                 "body", "source", "prev_hash", "hash")
ENTRY_COLUMNS = ("seq", "key", "effective", "recorded", "campaign", "rule", "rules_hash", "step",
                 "events", "reverses", "memo", "prev_hash", "hash")
POSTING_COLUMNS = ("id", "entry", "idx", "account", "kind", "amount", "expires", "lot")



@pytest.fixture(scope="module")
def built(tmp_path_factory, small_events):
    """A database after importing the small data set and running every shipped campaign."""
    path = tmp_path_factory.mktemp("tamper") / "points.db"
    conn = db.connect(path)
    rep = events.import_files(conn, [small_events])
    assert not rep.errors, rep.errors
    Runner(conn, load_rules(RULES), dt.date.fromisoformat(UNTIL)).run()
    assert verify(conn).ok
    conn.close()
    return path


def tampered(built, tmp_path, *sql_and_params):
    """A copy of the database with the triggers dropped, the statements applied, and the
    triggers created again (the tamperer covers their tracks)."""
    path = tmp_path / "copy.db"
    shutil.copyfile(built, path)
    raw = apsw.Connection(str(path))
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        raw.execute(f'DROP TRIGGER "{name}"')
    with raw:
        for item in sql_and_params:
            sql, params = item if isinstance(item, tuple) else (item, ())
            raw.execute(sql, params)
        assert raw.changes() >= 1 or "DELETE" in sql or "INSERT" in sql
    db.restore_triggers(raw)  # put back as they were: verify's schema check would see them gone
    raw.close()
    return path


def report_of(path):
    conn = db.connect(path, readonly=True)
    try:
        return verify(conn)
    finally:
        conn.close()


def changed(value, column: str):
    """A different value of the same storage type (or a value where there was NULL)."""
    if value is None:
        return {"reverses": 1, "lot": 1, "expires": "2099-12-31", "ref": "e000001",
                "amount": 1, "campaign": "yearend-2025", "rule": "x.rules",
                "rules_hash": "0" * 64, "step": "x"}[column]
    if isinstance(value, int):
        return value + 1
    if column in ("prev_hash", "hash", "rules_hash"):
        return ("1" if value[0] != "1" else "2") + value[1:]
    if column in ("day", "effective", "expires", "recorded"):
        d = dt.date.fromisoformat(value[:10])
        return (d - dt.timedelta(days=1)).isoformat() + value[10:]
    if column == "at":
        return value[:11] + ("00" if value[11:13] != "00" else "01") + value[13:]
    if column == "time":
        return ("00" if value[:2] != "00" else "01") + value[2:]
    if column in ("body", "memo", "events"):
        return value.replace(",", ", ", 1) if "," in value else value + " "
    if column == "account":
        parts = value.split(":")
        return ":".join(parts[:1] + ["X" + parts[1]] + parts[2:])
    if column == "kind":
        return "limited" if value != "limited" else "basic"
    return value + "x"


def pick_row(conn, table: str, column: str, key: str):
    """A row from the middle of the table, with the column set if any row has it."""
    n = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL").fetchone()[0]
    where = f"WHERE {column} IS NOT NULL" if n else ""
    n = n or conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return conn.execute(f"SELECT {key}, {column} FROM {table} {where} ORDER BY {key}"
                        f" LIMIT 1 OFFSET ?", (n // 2,)).fetchone()


def names(report, *wanted: str) -> bool:
    return any(p.startswith(w) for p in report.problems for w in wanted)


def _param(table, column):
    return pytest.param(table, column, id=f"{table}.{column}")


@pytest.mark.parametrize("table, column",
                         [_param("events", c) for c in EVENT_COLUMNS]
                         + [_param("entries", c) for c in ENTRY_COLUMNS]
                         + [_param("postings", c) for c in POSTING_COLUMNS])
def test_every_changed_cell_is_detected_and_named(built, tmp_path, table, column):
    key = {"events": "seq", "entries": "seq", "postings": "id"}[table]
    conn = db.connect(built, readonly=True)
    row_key, value = pick_row(conn, table, column, key)
    if table == "postings":
        entry = conn.execute("SELECT entry FROM postings WHERE id = ?", (row_key,)).fetchone()[0]
        expect = (f"entry {entry}:",)
        if column == "entry":  # move it to the nearest later entry where its idx is free
            idx = conn.execute("SELECT idx FROM postings WHERE id = ?", (row_key,)).fetchone()[0]
            target = conn.execute(
                "SELECT seq FROM entries e WHERE seq > ? AND NOT EXISTS (SELECT 1 FROM postings"
                " WHERE entry = e.seq AND idx = ?) ORDER BY seq LIMIT 1", (entry, idx)).fetchone()[0]
            expect += (f"entry {target}:",)
    elif table == "entries":
        expect = (f"entry {row_key}:", f"entry {row_key + 1}:")  # seq: the gap it leaves
    else:
        eid = conn.execute("SELECT id FROM events WHERE seq = ?", (row_key,)).fetchone()[0]
        expect = (f"event {row_key} ", f"event {row_key + 1} ", f"event {row_key}:", eid)
    conn.close()
    new = changed(value, column)
    if column in ("seq", "id") and not (table, column) == ("events", "id"):  # +1 is taken
        new = 10_000_000 + row_key
    if column == "entry" and table == "postings":
        new = target
    if column == "idx":  # UNIQUE (entry, idx)
        new = value + 100
    path = tampered(built, tmp_path, (f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (new, row_key)))
    report = report_of(path)
    assert not report.ok, f"{table}.{column} {value!r} -> {new!r} not detected"
    assert names(report, *expect) or any(e in p for p in report.problems for e in expect), report.problems


@pytest.mark.parametrize("what, sql", [
    ("delete an entry", "DELETE FROM entries WHERE seq = {mid_entry}"),
    ("delete a posting", "DELETE FROM postings WHERE id = {mid_posting}"),
    ("delete an event", "DELETE FROM events WHERE seq = {mid_event}"),
    ("delete the first event", "DELETE FROM events WHERE seq = 1"),
    ("swap two postings' ids", ["UPDATE postings SET id = -1 WHERE id = {mid_posting}",
                                "UPDATE postings SET id = {mid_posting} WHERE id = {mid_posting} + 1",
                                "UPDATE postings SET id = {mid_posting} + 1 WHERE id = -1"]),
    ("swap two entries' seqs", ["UPDATE entries SET seq = -1 WHERE seq = {mid_entry}",
                                "UPDATE entries SET seq = {mid_entry} WHERE seq = {mid_entry} + 1",
                                "UPDATE entries SET seq = {mid_entry} + 1 WHERE seq = -1"]),
    ("swap two events' seqs", ["UPDATE events SET seq = -1 WHERE seq = {mid_event}",
                               "UPDATE events SET seq = {mid_event} WHERE seq = {mid_event} + 1",
                               "UPDATE events SET seq = {mid_event} + 1 WHERE seq = -1"]),
    ("insert a posting into a written entry",
     "INSERT INTO postings(id, entry, idx, account, kind, amount) VALUES (1000000, {mid_entry}, 99,"
     " 'system:funding', 'basic', 0)"),
    ("duplicate an event row under a new id",
     "INSERT INTO events(id, type, member, at, day, time, weekday, amount, ref, body, source,"
     " prev_hash, hash) SELECT id || 'dup', type, member, at, day, time, weekday, amount, ref, body,"
     " source, prev_hash, hash FROM events WHERE seq = {mid_event}"),
])
def test_deleted_inserted_and_reordered_rows_are_detected(built, tmp_path, what, sql):
    conn = db.connect(built, readonly=True)
    q = lambda s: conn.execute(s).fetchone()[0]
    # an entry with postings in the middle of the journal
    mid_entry = q("SELECT entry FROM postings ORDER BY id LIMIT 1 OFFSET"
                  " (SELECT COUNT(*) / 2 FROM postings)")
    ctx = dict(mid_entry=mid_entry, last_entry=q("SELECT MAX(seq) FROM entries"),
               mid_posting=q(f"SELECT MIN(id) FROM postings WHERE entry = {mid_entry}"),
               mid_event=q("SELECT COUNT(*) / 2 FROM events"))
    conn.close()
    stmts = [s.format(**ctx) for s in ([sql] if isinstance(sql, str) else sql)]
    report = report_of(tampered(built, tmp_path, *stmts))
    assert not report.ok, f"{what}: not detected"
    assert names(report, "entry ", "event "), report.problems


def test_truncating_the_journal_tail_is_caught_by_an_anchored_head(built, tmp_path):
    """Dropping the newest entries (a whole run and its marker, behind the triggers) leaves
    a valid shorter chain whose runs all replay: only a head kept outside the file finds it
    (`verify --expect-head`), while the untouched journal still holds that head."""
    from points.engine.audit import audit, heads

    conn = db.connect(built, readonly=True)
    last = conn.execute("SELECT MAX(seq) FROM entries").fetchone()[0]
    head = heads(conn)["sha256"]
    assert audit(conn, expect_head=head)["ok"]
    conn.close()
    path = tampered(built, tmp_path, f"DELETE FROM postings WHERE entry >= {last - 2}",
                    f"DELETE FROM entries WHERE seq >= {last - 2}")
    conn = db.connect(path, readonly=True)
    assert verify(conn).ok
    report = audit(conn, expect_head=head)
    conn.close()
    assert not report["ok"]
    assert any(p.startswith("expected head") for p in report["problems"])
    assert report["head"]["entry"] == last - 3


def test_events_chain_rewritten_consistently_is_caught_by_rederive(built, tmp_path):
    """Changing an event's body and recomputing the events chain from there on fools the
    chain (there is no outside anchor), but re-deriving the journal from the events no
    longer gives the stored entries when the change matters to an award."""
    conn = db.connect(built, readonly=True)
    row = conn.execute(
        "SELECT seq, body FROM events WHERE type = 'ex_booking' AND id IN "
        "(SELECT value FROM entries, json_each(entries.events) WHERE entries.campaign = 'yearend-2025'"
        " AND entries.step LIKE 'main:prize') ORDER BY seq LIMIT 1").fetchone()
    assert row is not None
    seq, body = row
    rows = conn.execute("SELECT seq, body, source FROM events WHERE seq >= ? ORDER BY seq", (seq,)).fetchall()
    prev = conn.execute("SELECT prev_hash FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    conn.close()
    import json
    ev = json.loads(body)
    ev["amount"] += 1000
    stmts = []
    for s, b, src in rows:
        if s == seq:
            b = events.canonical_json(ev)
            stmts.append(("UPDATE events SET body = ?, amount = ? WHERE seq = ?", (b, ev["amount"], s)))
        h = events.event_hash(prev, b, src)
        stmts.append(("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, s)))
        prev = h
    path = tampered(built, tmp_path, *stmts)
    from points.engine.replay import rederive
    conn = db.connect(path, readonly=True)
    problems = rederive(conn, RULES)
    conn.close()
    assert problems and problems[0].startswith("entry "), problems
