"""Bad events files: every problem reported as file:line: reason, nothing written."""

from __future__ import annotations

import textwrap

import pytest

from points.ledger import db
from points.ledger.events import EventError, import_files, import_records, read_records


@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "points.db")
    # Something already stored, so "unchanged" means more than "still empty".
    report = import_records(c, [
        ("seed:1", {"id": "OLD1", "type": "card_payment", "member": "W1", "at": "2025-12-01T10:00:00", "amount": 500}),
        ("seed:2", {"id": "OLD2", "type": "video_view", "member": "W1", "at": "2025-12-01T10:00:00", "video": "v"}),
    ])
    assert report.added == 2
    yield c
    c.close()


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def dump(conn):
    return list(conn.execute("SELECT * FROM events ORDER BY seq"))


def import_bad(conn, *paths):
    before = dump(conn)
    report = import_files(conn, list(paths))
    assert report.errors, "expected the import to fail"
    assert (report.added, report.skipped) == (0, 0)
    assert dump(conn) == before, "a failed import must not change the events table"
    return report


AT_FORM = ("must be an ISO-8601 datetime YYYY-MM-DDTHH:MM:SS with an offset (Z, +HH:MM or -HH:MM;"
           " none means Asia/Tokyo), e.g. 2025-12-26T10:00:00+09:00")
BOOKING = ('"type": "ex_booking", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 1000,'
           ' "service": "ex", "ride_date": "2025-12-26", "segments": ["sanyo"]')

# (line, expected reason) -- one bad line each, all in one file.
BAD_LINES = [
    ('{"id": "A1", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": "12a"}',
     "field 'amount' must be an integer, got \"12a\""),
    ('{"id": "A2", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 12.5}',
     "field 'amount' must be an integer, got 12.5"),
    ('{"id": "A3", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": true}',
     "field 'amount' must be an integer, got true"),
    ('{"id": "A4", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 1000000000001}',
     "field 'amount' must be <= 1000000000000, got 1000000000001"),
    ('{"id": "A5", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": -99999999999999999999999}',
     "field 'amount' must be >= -1000000000000, got -99999999999999999999999"),
    ('{"id": "A6", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 1e400}',
     "field 'amount' must be an integer, got Infinity"),
    ('{"id": "D1", "type": "card_payment", "member": "W1", "at": "2025-02-30T10:00:00", "amount": 1}',
     "field 'at' must be a real date and time (an offset within +-23:59), e.g. 2025-12-26T10:00:00+09:00,"
     " got \"2025-02-30T10:00:00\""),
    ('{"id": "D2", "type": "card_payment", "member": "W1", "at": "yesterday", "amount": 1}',
     f"field 'at' {AT_FORM}, got \"yesterday\""),
    ('{"id": "D3", ' + BOOKING.replace('"ride_date": "2025-12-26"', '"ride_date": "2025/12/26"') + '}',
     "field 'ride_date' must be a date (YYYY-MM-DD), got \"2025/12/26\""),
    ('{"id": "D4", "type": "card_payment", "member": "W1", "at": 20251226, "amount": 1}',
     "field 'at' must be an ISO-8601 datetime string, got 20251226"),
    ('{"id": "T1", "type": "foo", "member": "W1", "at": "2025-12-26T10:00:00"}',
     "unknown event type 'foo' (expected one of: member_withdrawn, campaign_entry, ex_booking, cancel,"
     " refund, stopover, card_payment, card_cashback, wesmo_charge, icoca_charge, wesmo_payment,"
     " video_view, mynapoint_application, health_insurance_registration, public_account_registration,"
     " redemption, member_profile)"),
    ('{"id": "F1", ' + BOOKING + ', "colour": "blue"}', "unknown field 'colour' for ex_booking"),
    ('{"id": "F2", ' + BOOKING + ', "ref": "OLD1"}',
     "field 'ref' is not allowed on ex_booking (only on cancel, refund, stopover)"),
    ('{"id": "F3", ' + BOOKING.replace('"service": "ex"', '"service": "shinkansen"') + '}',
     "field 'service' must be one of: ex, e5489, got \"shinkansen\""),
    ('{"id": "F4", ' + BOOKING.replace('["sanyo"]', '[]') + '}',
     "field 'segments' must be a non-empty list of: tokaido, sanyo, kyushu, hokuriku, jrwest_local, other,"
     " got []"),
    ('{"id": "F5", ' + BOOKING.replace('["sanyo"]', '["sanyo", "nozomi"]') + '}',
     "field 'segments' has unknown item \"nozomi\" (expected any of: tokaido, sanyo, kyushu, hokuriku,"
     " jrwest_local, other), got [\"sanyo\", \"nozomi\"]"),
    ('{"id": "F6", ' + BOOKING + ', "ticketless": "yes"}',
     "field 'ticketless' must be a boolean (true or false), got \"yes\""),
    ('{"id": "F7", ' + BOOKING.replace('"amount": 1000', '"amount": -1') + '}',
     "field 'amount' must be >= 0, got -1"),
    ('{"id": "F8", "type": "ex_booking", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 1,'
     ' "service": "ex", "segments": ["sanyo"]}',
     "missing field 'ride_date' (required for ex_booking)"),
    ('{"type": "video_view", "member": "W1", "at": "2025-12-26T10:00:00", "video": "v"}', "missing field 'id'"),
    ('{"id": "M2", "member": "W1", "at": "2025-12-26T10:00:00"}', "missing field 'type'"),
    ('{"id": "M3", "type": "video_view", "at": "2025-12-26T10:00:00", "video": "v"}', "missing field 'member'"),
    ('{"id": "M4", "type": "video_view", "member": "W1", "video": "v"}', "missing field 'at'"),
    ('{"id": "M5", "type": "video_view", "member": "W 1", "at": "2025-12-26T10:00:00", "video": "v"}',
     "field 'member' must be 1-64 characters without whitespace or ':', got \"W 1\""),
    ('{"id": "M6", "type": "video_view", "member": "W:1", "at": "2025-12-26T10:00:00", "video": "v"}',
     "field 'member' must be 1-64 characters without whitespace or ':', got \"W:1\""),
    ('{"id": "M7", "type": "video_view", "member": "' + "W" * 65 + '", "at": "2025-12-26T10:00:00", "video": "v"}',
     "field 'member' must be 1-64 characters without whitespace or ':', got \"" + "W" * 47 + "...\""),
    ('{"id": "", "type": "video_view", "member": "W1", "at": "2025-12-26T10:00:00", "video": "v"}',
     "field 'id' must be a non-empty string, got \"\""),
    ('{"id": 7, "type": "video_view", "member": "W1", "at": "2025-12-26T10:00:00", "video": "v"}',
     "field 'id' must be a non-empty string, got 7"),
    ('{"id": "P1", "type": "redemption", "member": "W1", "at": "2025-12-26T10:00:00", "points": -5, "use": "fare"}',
     "field 'points' must be >= 1, got -5"),
    ('{"id": "P2", "type": "redemption", "member": "W1", "at": "2025-12-26T10:00:00", "points": 5, "use": "beer"}',
     "field 'use' must be one of: fare, charge, shopping, wesmo, got \"beer\""),
    ('{"id": "P3", "type": "card_cashback", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 5}',
     "field 'amount' must be <= 0, got 5"),
    ('{"id": "P4", "type": "wesmo_charge", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 5, "source": "bitcoin"}',
     "field 'source' must be one of: jwest_card, credit_card, bank, atm, cash, point_charge, gas_station,"
     " got \"bitcoin\""),
    ('{"id": "P5", "type": "campaign_entry", "member": "W1", "at": "2025-12-26T10:00:00"}',
     "missing field 'campaign' (required for campaign_entry)"),
    ('{"id": "R1", "type": "cancel", "member": "W1", "at": "2025-12-26T10:00:00", "ref": "NOPE"}',
     "'ref' names event 'NOPE' which does not exist"),
    ('{"id": "R2", "type": "refund", "member": "W1", "at": "2025-12-26T10:00:00"}',
     "missing field 'ref' (required for refund)"),
    ('{"id": "R3", "type": "stopover", "member": "W1", "at": "2025-12-26T10:00:00", "ref": "R3"}',
     "'ref' names the event itself ('R3')"),
    ('{"id": "OLD1", "type": "card_payment", "member": "W1", "at": "2025-12-01T10:00:00", "amount": 501}',
     "duplicate id 'OLD1' with different content (first seen at seed:1)"),
    ('{"id": "J1", "type": "video_view", "member": "W1" "at": "2025-12-26T10:00:00"}',
     "invalid JSON: Expecting ',' delimiter (col 51)"),
    ('{"id": "J2", "type": "video_view"', "invalid JSON: Expecting ',' delimiter (col 34)"),
    ('["J3", "video_view"]', "an event must be a JSON object, got [\"J3\", \"video_view\"]"),
    ('{"id": "J4", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 1' + "0" * 5000 + "}",
     "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5001 digits;"
     " use sys.set_int_max_str_digits() to increase the limit"),
]


@pytest.mark.parametrize("line, reason", BAD_LINES, ids=[r[:40] for _, r in BAD_LINES])
def test_each_bad_line_is_reported(conn, tmp_path, line, reason):
    good = '{"id": "G1", "type": "member_withdrawn", "member": "W1", "at": "2025-12-26T10:00:00"}'
    path = write(tmp_path, "events.jsonl", good + "\n" + line + "\n")
    report = import_bad(conn, path)
    assert report.errors == (f"{path}:2: {reason}",)


def test_all_errors_of_a_file_are_listed_in_line_order(conn, tmp_path):
    lines = ['{"id": "G0", "type": "member_withdrawn", "member": "W1", "at": "2025-12-26T10:00:00"}']
    lines += [line for line, _ in BAD_LINES]
    lines.append('{"id": "G1", "type": "member_withdrawn", "member": "W1", "at": "2025-12-26T10:00:00"}')
    path = write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    report = import_bad(conn, path)
    assert report.errors == tuple(f"{path}:{n}: {reason}" for n, (_, reason) in enumerate(BAD_LINES, 2))
    assert report.per_file[0].errors == report.errors
    assert report.per_file[0].records == len(lines)


def test_one_line_can_have_several_errors(conn, tmp_path):
    path = write(tmp_path, "e.jsonl", """
        {"id": "A", "type": "wesmo_payment", "member": "", "at": "soon", "amount": "12a", "paid_with_points": 1, "tip": 3}
        """)
    report = import_bad(conn, path)
    assert report.errors == (
        f"{path}:1: field 'member' must be 1-64 characters without whitespace or ':', got \"\"",
        f"{path}:1: field 'at' {AT_FORM}, got \"soon\"",
        f"{path}:1: unknown field 'tip' for wesmo_payment",
        f"{path}:1: field 'amount' must be an integer, got \"12a\"",
        f"{path}:1: field 'paid_with_points' must be a boolean (true or false), got 1",
    )


def test_duplicate_ids_with_other_content_within_a_file(conn, tmp_path):
    path = write(tmp_path, "e.jsonl", """
        {"id": "E1", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 100}
        {"id": "E2", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 100}
        {"id": "E1", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 100}
        {"id": "E1", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00", "amount": 101}
        """)
    report = import_bad(conn, path)
    assert report.errors == (f"{path}:4: duplicate id 'E1' with different content (first seen at {path}:1)",)


def test_a_bad_file_stops_the_good_file_of_the_same_call(conn, tmp_path):
    good = write(tmp_path, "good.jsonl", '{"id": "G", "type": "member_withdrawn", "member": "W1", "at": "2025-12-26T10:00:00"}\n')
    bad = write(tmp_path, "bad.csv", """
        id,type,member,at,amount
        C1,card_payment,W1,2025-12-26T10:00:00,12a
        """)
    report = import_bad(conn, good, bad)
    assert report.errors == (f"{bad}:2: field 'amount' must be an integer, got \"12a\"",)
    assert [f.errors for f in report.per_file] == [(), report.errors]


def test_ref_to_a_rejected_event_says_so(conn, tmp_path):
    path = write(tmp_path, "e.jsonl", """
        {"id": "B", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00"}
        {"id": "X", "type": "refund", "member": "W1", "at": "2025-12-27T10:00:00", "ref": "B"}
        """)
    report = import_bad(conn, path)
    assert report.errors == (
        f"{path}:1: missing field 'amount' (required for card_payment)",
        f"{path}:2: 'ref' names event 'B' which is itself invalid",
    )


CSV_BAD = """
id,type,member,at,amount,ticketless,segments,colour,size,service,ride_date
C1,card_payment,W1,2025-12-26T10:00:00,12a,,,red,,,
B1,ex_booking,W1,2025-12-26T10:00:00,100,maybe,sanyo;nozomi,,,ex,2025-12-26
B2,ex_booking,W1,2025-12-26T10:00:00,100,true,[sanyo,,,ex,
B3,ex_booking,W1,2025-12-26T10:00:00,100,,,,,ex,2025-12-26,extra
B4,ex_booking,W1,2025-12-26T10:00:00,100,,,,,,2025-12-26
"""


def test_csv_errors(conn, tmp_path):
    path = write(tmp_path, "events.csv", CSV_BAD)
    report = import_bad(conn, path)
    known = ("id, type, member, at, amount, campaign, service, ride_date, segments, product, ticketless,"
             " payment, phone_change, railway_points, ref, merchant, card, source, paid_with_points, video,"
             " points, use, valid_from, birthday, tier, status, home_station")
    assert report.errors == (
        f"{path}:1: unknown columns 'colour', 'size' (known columns: {known})",
        f"{path}:2: field 'amount' must be an integer, got \"12a\"",
        f"{path}:3: field 'segments' has unknown item \"nozomi\" (expected any of: tokaido, sanyo, kyushu,"
        " hokuriku, jrwest_local, other), got [\"sanyo\", \"nozomi\"]",
        f"{path}:3: field 'ticketless' must be a boolean (true or false), got \"maybe\"",
        f"{path}:4: missing field 'ride_date' (required for ex_booking)",
        f"{path}:4: field 'segments' must be a non-empty list of: tokaido, sanyo, kyushu, hokuriku,"
        " jrwest_local, other, got \"[sanyo\"",
        f"{path}:5: 12 cells, but the header has 11 columns",
        f"{path}:6: missing field 'service' (required for ex_booking)",
        f"{path}:6: missing field 'segments' (required for ex_booking)",
    )


def test_csv_missing_required_columns_reported_once(conn, tmp_path):
    path = write(tmp_path, "events.csv", """
        id,type,at,amount
        C1,card_payment,2025-12-26T10:00:00,100
        C2,card_payment,2025-12-26T10:00:00,200
        """)
    report = import_bad(conn, path)
    assert report.errors == (f"{path}:1: missing column 'member' (required for every event)",)


def test_csv_duplicate_and_empty_columns(conn, tmp_path):
    path = write(tmp_path, "events.csv", """
        id,type,member,at,amount,,amount
        C1,card_payment,W1,2025-12-26T10:00:00,100,,
        """)
    report = import_bad(conn, path)
    assert report.errors == (
        f"{path}:1: empty column name (column 6)",
        f"{path}:1: duplicate column 'amount'",
    )


def test_unreadable_files(conn, tmp_path):
    missing = str(tmp_path / "nope.jsonl")
    missing_noext = str(tmp_path / "nope")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"id,type,member,at\nE1,member_withdrawn,Jos\xe9,2025-12-26\n")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b'{"id": "E1", "type": "member_withdrawn", "member": "W1", "at": "2025-12-26T10:00:00"}\n\xff\xfe\n')
    report = import_bad(conn, missing, missing_noext, str(latin1), str(binary), str(tmp_path))
    assert report.errors == (
        f"{missing}: no such file",
        f"{missing_noext}: no such file",
        f"{latin1}:2: not UTF-8 text (byte 24 of the line)",
        f"{binary}:2: not UTF-8 text (byte 1 of the line)",
        f"{tmp_path}: is a directory, not an events file",
    )
    with pytest.raises(EventError, match="no such file"):
        list(read_records(missing))
