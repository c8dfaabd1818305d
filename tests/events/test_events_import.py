"""Importing good events files: normalisation, derived columns, storage, the hash chain."""

from __future__ import annotations

import json
import textwrap

import pytest

from points.ledger import db
from points.ledger.events import (
    GENESIS_HASH,
    event_hash,
    import_files,
    import_records,
    iter_events,
)


@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "points.db")
    yield c
    c.close()


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def dump(conn):
    return list(conn.execute("SELECT * FROM events ORDER BY seq"))


def rows(conn):
    cur = conn.execute("SELECT * FROM events ORDER BY seq")
    names = [d[0] for d in cur.getdescription()]
    return [dict(zip(names, r)) for r in cur]


GOOD_JSONL = """
{"id": "B1", "type": "ex_booking", "member": "W0001", "at": "2025-12-26T01:00:00Z", "amount": 14720, "service": "ex", "ride_date": "2025-12-28", "segments": ["tokaido", "sanyo"], "ticketless": true}

{"id": "C1", "type": "card_payment", "member": "W0002", "at": "2025-12-27T23:30:00-01:00", "amount": -1200}
{"id": "E1", "type": "campaign_entry", "member": "W0001", "at": "2025-12-01T10:00:00", "campaign": "yearend-2025"}
{"id": "X1", "type": "cancel", "member": "W0001", "at": "2025-12-29T09:15:00+09:00", "ref": "B1"}
{"id": "R1", "type": "redemption", "member": "W0002", "at": "2026-01-05T12:00:00", "points": 500, "use": "fare"}
{"id": "Q1", "type": "wesmo_charge", "member": "W0002", "at": "2026-01-06T08:00:00+09:00", "amount": 3000}
"""


def test_jsonl_import_normalises_and_derives_columns(conn, tmp_path):
    path = write(tmp_path, "events.jsonl", GOOD_JSONL)
    report = import_files(conn, [path])
    assert report.errors == ()
    assert (report.added, report.skipped) == (6, 0)
    assert report.per_file[0].records == 6 and report.per_file[0].format == "jsonl"

    got = rows(conn)
    assert [r["id"] for r in got] == ["B1", "C1", "E1", "X1", "R1", "Q1"]
    b1, c1, e1, x1, r1, q1 = got
    # 01:00 UTC is 10:00 in Tokyo, same day; a Friday.
    assert (b1["at"], b1["day"], b1["time"], b1["weekday"]) == ("2025-12-26T10:00:00", "2025-12-26", "10:00:00", 4)
    assert json.loads(b1["body"]) == {
        "id": "B1", "type": "ex_booking", "member": "W0001", "at": "2025-12-26T10:00:00",
        "amount": 14720, "service": "ex", "ride_date": "2025-12-28",
        "segments": ["tokaido", "sanyo"], "product": "", "ticketless": True,
        "payment": "credit_card", "phone_change": False, "railway_points": False,
    }
    assert b1["body"] == json.dumps(json.loads(b1["body"]), sort_keys=True, separators=(",", ":"),
                                    ensure_ascii=False)
    assert b1["source"] == f"{path}:1" and b1["amount"] == 14720 and b1["ref"] is None
    # 23:30 at -01:00 is 00:30 UTC the next day, 09:30 in Tokyo: crosses midnight.
    assert (c1["day"], c1["time"], c1["weekday"]) == ("2025-12-28", "09:30:00", 6)
    assert json.loads(c1["body"])["merchant"] == "other" and json.loads(c1["body"])["card"] == "standard"
    assert c1["source"] == f"{path}:3"  # the blank line 2 still counts
    # No offset means Asia/Tokyo.
    assert (e1["at"], e1["time"], e1["amount"]) == ("2025-12-01T10:00:00", "10:00:00", None)
    assert x1["ref"] == "B1" and x1["at"] == "2025-12-29T09:15:00"
    assert json.loads(r1["body"]) == {"id": "R1", "type": "redemption", "member": "W0002",
                                       "at": "2026-01-05T12:00:00", "amount": None,
                                       "points": 500, "use": "fare"}
    # A charge source defaults to null.
    assert q1["at"] == "2026-01-06T08:00:00" and json.loads(q1["body"])["source"] is None


GOOD_CSV = """
id,type,member,at,amount,service,ride_date,segments,ticketless,phone_change,railway_points,payment,product,ref,card,paid_with_points,merchant
B1,ex_booking,W0001,2025-12-26T01:00:00Z,14720,ex,2025-12-28,tokaido;sanyo,TRUE,no,1,,,,,,
B2,ex_booking,W0001,2025-12-27T08:00:00,9000,e5489,2025-12-27,"[""sanyo"",""kyushu""]",Yes,0,false,station,EX旅パック,,,,
B3,ex_booking,W0003,2025-12-27T08:00:00,0,ex,2025-12-27,hokuriku | jrwest_local,,,,,,,,,

X1,refund,W0001,2025-12-30T00:00:00,,,,,,,,,,B2,,,
C1,card_payment,W0002,2025-12-27T12:00:00, -300 ,,,,,,,,,,gold,,lucua
P1,wesmo_payment,W0002,2025-12-27T12:00:00,800,,,,,,,,,,,YES,
"""


def test_csv_import_converts_cells_per_declared_type(conn, tmp_path):
    path = write(tmp_path, "events.csv", GOOD_CSV)
    report = import_files(conn, [path])
    assert report.errors == ()
    assert report.added == 6 and report.per_file[0].format == "csv"
    events = {e["id"]: e for e in iter_events(conn)}
    assert events["B1"] == {
        "id": "B1", "type": "ex_booking", "member": "W0001", "at": "2025-12-26T10:00:00",
        "amount": 14720, "service": "ex", "ride_date": "2025-12-28",
        "segments": ["tokaido", "sanyo"], "product": "", "ticketless": True,
        "payment": "credit_card", "phone_change": False, "railway_points": True,
    }
    b2 = events["B2"]
    assert b2["segments"] == ["sanyo", "kyushu"] and b2["ticketless"] is True
    assert b2["phone_change"] is False and b2["payment"] == "station" and b2["product"] == "EX旅パック"
    assert events["B3"]["segments"] == ["hokuriku", "jrwest_local"] and events["B3"]["amount"] == 0
    assert events["B3"]["ticketless"] is False  # empty cell: absent, so the default
    assert events["X1"] == {"id": "X1", "type": "refund", "member": "W0001",
                            "at": "2025-12-30T00:00:00", "amount": None, "ref": "B2"}
    assert events["C1"]["amount"] == -300 and events["C1"]["card"] == "gold"
    assert events["C1"]["merchant"] == "lucua" and events["C1"]["at"] == "2025-12-27T12:00:00"
    assert events["P1"]["paid_with_points"] is True and events["P1"]["merchant"] == "other"
    sources = [s for (s,) in conn.execute("SELECT source FROM events ORDER BY seq")]
    assert sources == [f"{path}:{n}" for n in (2, 3, 4, 6, 7, 8)]


def test_csv_and_jsonl_of_the_same_events_store_the_same_bodies(tmp_path):
    jsonl = write(tmp_path, "a.jsonl", """
        {"id": "B1", "type": "ex_booking", "member": "W1", "at": "2025-12-26T10:00:00+09:00", "amount": 100, "service": "ex", "ride_date": "2025-12-26", "segments": ["sanyo"], "ticketless": true}
        {"id": "V1", "type": "video_view", "member": "W1", "at": "2025-12-26T10:00:00", "video": "intro"}
        """)
    csv_path = write(tmp_path, "a.csv", """
        id,type,member,at,amount,service,ride_date,segments,ticketless,video
        B1,ex_booking,W1,2025-12-26T01:00:00Z,100,ex,2025-12-26,sanyo,true,
        V1,video_view,W1,2025-12-26T10:00:00,,,,,,intro
        """)
    a, b = db.connect(tmp_path / "a.db"), db.connect(tmp_path / "b.db")
    assert import_files(a, [jsonl]).added == 2
    assert import_files(b, [csv_path]).added == 2
    body = "SELECT body FROM events ORDER BY seq"
    assert list(a.execute(body)) == list(b.execute(body))
    # The chain also covers where each event came from, so the hashes differ.
    hashes = "SELECT hash FROM events ORDER BY seq"
    assert list(a.execute(hashes)) != list(b.execute(hashes))


def test_format_is_sniffed_without_a_known_extension(conn, tmp_path):
    j = str(tmp_path / "events.txt")
    (tmp_path / "events.txt").write_text(
        '  \n\n{"id": "M1", "type": "member_withdrawn", "member": "W1", "at": "2025-12-26T10:00:00"}\n'
    )
    c = write(tmp_path, "events2", """
        id,type,member,at
        M2,member_withdrawn,W2,2025-12-26T10:00:00
        """)
    report = import_files(conn, [j, c])
    assert report.errors == ()
    assert [f.format for f in report.per_file] == ["jsonl", "csv"]
    assert [e["id"] for e in iter_events(conn)] == ["M1", "M2"]
    assert [s for (s,) in conn.execute("SELECT source FROM events ORDER BY seq")] == [f"{j}:3", f"{c}:2"]


def test_reimport_is_a_no_op(conn, tmp_path):
    path = write(tmp_path, "events.jsonl", GOOD_JSONL)
    first = import_files(conn, [path])
    before = dump(conn)
    again = import_files(conn, [path])
    assert again.errors == ()
    assert (again.added, again.skipped) == (0, 6)
    assert again.per_file[0].skipped == 6
    assert dump(conn) == before and first.added == 6


def test_identical_duplicates_are_skipped_within_and_across_files(conn, tmp_path):
    line = '{"id": "V1", "type": "video_view", "member": "W1", "at": "2025-12-26T10:00:00", "video": "a"}'
    same_spelled_otherwise = ('{"video": "a", "at": "2025-12-26T01:00:00Z", "member": "W1",'
                              ' "type": "video_view", "id": "V1", "amount": null}')
    a = write(tmp_path, "a.jsonl", line + "\n" + line + "\n")
    b = write(tmp_path, "b.jsonl", same_spelled_otherwise + "\n")
    report = import_files(conn, [a, b])
    assert report.errors == ()
    assert (report.added, report.skipped) == (1, 2)
    assert [(f.added, f.skipped) for f in report.per_file] == [(1, 1), (0, 1)]
    assert len(dump(conn)) == 1


def test_hash_chain_continues_across_imports(conn, tmp_path):
    a = write(tmp_path, "a.jsonl", GOOD_JSONL)
    b = write(tmp_path, "b.csv", """
        id,type,member,at,ref
        S1,stopover,W0001,2025-12-31T09:00:00,B1
        H1,health_insurance_registration,W0009,2026-01-02T09:00:00,
        """)
    assert import_files(conn, [a]).added == 6
    assert import_files(conn, [b]).added == 2  # S1 refers to B1 from the earlier import
    prev = GENESIS_HASH
    got = list(conn.execute("SELECT prev_hash, body, source, hash FROM events ORDER BY seq"))
    assert len(got) == 8
    for prev_hash, body, source, h in got:
        assert prev_hash == prev
        assert h == event_hash(prev_hash, body, source)
        prev = h
    import hashlib
    assert event_hash("ab", "{}", "f:1") == hashlib.sha256(b"ab{}\x1ff:1").hexdigest()


def test_refs_may_point_forward_and_across_files_of_one_call(conn, tmp_path):
    a = write(tmp_path, "a.jsonl", """
        {"id": "X1", "type": "cancel", "member": "W1", "at": "2025-12-29T10:00:00", "ref": "B9"}
        {"id": "X2", "type": "refund", "member": "W1", "at": "2025-12-29T10:00:00", "ref": "B8"}
        """)
    b = write(tmp_path, "b.jsonl", """
        {"id": "B9", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 10}
        {"id": "B8", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 10}
        """)
    report = import_files(conn, [a, b])
    assert report.errors == ()
    assert [e["id"] for e in iter_events(conn)] == ["X1", "X2", "B9", "B8"]


def test_iter_events_by_member_and_import_records(conn):
    report = import_records(conn, [
        ("demo:1", {"id": "A", "type": "icoca_charge", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 5000,
                    "source": "point_charge"}),
        ("demo:2", {"id": "B", "type": "mynapoint_application", "member": "W2", "at": "2025-12-26T10:00:00"}),
        ("demo:3", {"id": "C", "type": "public_account_registration", "member": "W1", "at": "2025-12-27T10:00:00"}),
    ], label="demo")
    assert report.errors == () and report.added == 3 and report.per_file[0].path == "demo"
    assert [e["id"] for e in iter_events(conn, member="W1")] == ["A", "C"]
    assert [e["id"] for e in iter_events(conn, member="W2")] == ["B"]
    assert next(iter_events(conn))["source"] == "point_charge"
    assert [s for (s,) in conn.execute("SELECT source FROM events ORDER BY seq")] == ["demo:1", "demo:2", "demo:3"]


def test_import_records_reports_errors_with_the_given_sources(conn):
    report = import_records(conn, [
        ("demo:1", {"id": "A", "type": "icoca_charge", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 0}),
        ("demo:2", {"id": "B", "type": "mynapoint_application", "member": "W2", "at": "2025-12-26T10:00:00"}),
    ])
    assert report.errors == ("demo:1: field 'amount' must be >= 1, got 0",)
    assert report.added == 0 and dump(conn) == []


def test_import_inside_an_outer_transaction_rolls_back_only_itself(conn, tmp_path):
    bad = write(tmp_path, "bad.jsonl", '{"id": "Z", "type": "nope", "member": "W1", "at": "2025-12-26T10:00:00"}\n')
    with db.transaction(conn):
        ok = import_records(conn, [("r:1", {"id": "A", "type": "member_withdrawn", "member": "W1",
                                            "at": "2025-12-26T10:00:00"})])
        failed = import_files(conn, [bad])
    assert ok.added == 1 and failed.errors
    assert [e["id"] for e in iter_events(conn)] == ["A"]


def test_duplicates_and_refs_across_write_chunks(conn, tmp_path, monkeypatch):
    import points.ledger.events as events_module

    monkeypatch.setattr(events_module, "CHUNK", 2)
    good = write(tmp_path, "a.jsonl", """
        {"id": "X1", "type": "cancel", "member": "W1", "at": "2025-12-29T10:00:00", "ref": "B5"}
        {"id": "B1", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 1}
        {"id": "B2", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 2}
        {"id": "B1", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 1}
        {"id": "B5", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 5}
        """)
    report = import_files(conn, [good])
    assert report.errors == () and (report.added, report.skipped) == (4, 1)
    before = dump(conn)
    bad = write(tmp_path, "b.jsonl", """
        {"id": "N1", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 1}
        {"id": "N2", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 1}
        {"id": "N3", "type": "refund", "member": "W1", "at": "2025-12-29T10:00:00", "ref": "N9"}
        {"id": "N1", "type": "card_payment", "member": "W1", "at": "2025-12-28T10:00:00", "amount": 9}
        {"id": "B2", "type": "card_payment", "member": "W2", "at": "2025-12-28T10:00:00", "amount": 2}
        """)
    report = import_files(conn, [bad])
    assert report.errors == (
        f"{bad}:3: 'ref' names event 'N9' which does not exist",
        f"{bad}:4: duplicate id 'N1' with different content (first seen at {bad}:1)",
        f"{bad}:5: duplicate id 'B2' with different content (first seen at {good}:3)",
    )
    assert dump(conn) == before
