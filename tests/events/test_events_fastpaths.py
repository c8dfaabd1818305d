"""The import's fast paths against the reference behaviour they shortcut.

- the compiled row builders (ledger/event_rows.py) against `normalise` +
  `canonical_json`: a builder returns None or exactly the reference row;
- the block-decoded JSONL reader against the line-by-line reader it replaced;
- the comma split of plain CSV lines against csv.reader;
- a bulk load (secondary indexes dropped, rebuilt at the end) leaves the
  schema as it was, and a failed one rolls the drops back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from points.ledger import db, event_files, events
from points.ledger.event_rows import BUILDERS, fast_row
from points.ledger.event_schema import EVENT_TYPES, normalise
from points.ledger.events import canonical_json, import_files


def reference_row(record):
    event, _reasons = normalise(record)
    if event is None:
        return None
    at = event["at"]
    day = at[:10]
    return (event["id"], event["type"], event["member"], at, day, at[11:],
            dt.date.fromisoformat(day).weekday(), event["amount"], event.get("ref"),
            canonical_json(event))


# Values that are valid for some field of some type, invalid for others.
odd_text = st.text(st.sampled_from(['a', 'é', '"', '\\', '\n', '\x01', ' ', ':', '\ud800', '{', '}']),
                   max_size=6)
any_value = st.one_of(
    st.none(), st.booleans(), st.integers(-2 * 10**12, 2 * 10**12), odd_text,
    st.sampled_from(["E1", "E2", "ex", "e5489", "gold", "osc", "station", "bank", "fare", "atm", "other", "",
                     "2025-01-31", "2025-W01-1", "2025-02-30", "2025-01-31T23:59:59",
                     "2025-01-31T23:59:59Z", "2025-01-31T23:59:59+09:00", "2025-01-31T15:00:00-05:30",
                     "2025-01-31 10:00:00", "9999-12-31T23:00:00Z", "2025-01-31T24:00:00+09:00"]),
    st.lists(st.sampled_from(["tokaido", "sanyo", "nowhere", 3]), max_size=3),
    st.lists(st.lists(st.just("sanyo"), max_size=1), max_size=2),
)
FIELDS = ["id", "member", "at", "amount", "ref", "service", "ride_date", "segments", "product",
          "ticketless", "payment", "phone_change", "railway_points", "merchant", "card", "source",
          "paid_with_points", "campaign", "video", "points", "use", "extra"]


@st.composite
def records(draw):
    type_ = draw(st.sampled_from(EVENT_TYPES))
    record = {"type": type_, "id": draw(st.sampled_from(["E1", "é\"\\1", "E2"])),
              "member": draw(st.sampled_from(["W1", "W 1", "W:1", "ü" * 64, "ü" * 65])),
              "at": draw(st.sampled_from(["2025-03-01T10:00:00+09:00", "2025-03-01T01:00:00Z",
                                          "2025-03-01T10:00:00"]))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        record[name] = draw(any_value)
    return record


# Cheap (a few milliseconds an example) over a wide space (every field with every kind
# of value), and the fast path must never disagree: twenty times the profile's examples.
@settings(max_examples=20 * settings.default.max_examples)
@given(record=records())
def test_a_builder_gives_the_reference_row_or_steps_aside(record):
    row = fast_row(record)
    if row is not None:
        assert row == reference_row(record)


def test_builders_take_the_common_spellings():
    """Plain valid events do take the fast path (else it would be dead code)."""
    common = [
        {"id": "E1", "type": "ex_booking", "member": "W1", "at": "2025-12-26T10:00:00+09:00",
         "amount": 12000, "service": "ex", "ride_date": "2025-12-27", "segments": ["sanyo", "tokaido"],
         "product": "EX旅パック", "ticketless": True},
        {"id": "E2", "type": "card_payment", "member": "W1", "at": "2025-01-31T16:00:00Z",
         "amount": -300, "merchant": "lucua \"1\"", "card": "gold"},
        {"id": "E3", "type": "cancel", "member": "W1", "at": "2025-12-26T10:00:00", "ref": "E1"},
        {"id": "E4", "type": "redemption", "member": "W1", "at": "2025-12-26T10:00:00+09:00",
         "points": 5, "use": "fare"},
    ]
    for record in common:
        assert fast_row(record) is not None, record
        assert fast_row(record) == reference_row(record)
    assert set(BUILDERS) == set(EVENT_TYPES)


def test_builders_step_aside_for_what_only_normalise_words():
    itself = {"id": "E1", "type": "cancel", "member": "W1", "at": "2025-12-26T10:00:00", "ref": "E1"}
    assert fast_row(itself) is None
    assert normalise(itself) == (None, ["'ref' names the event itself ('E1')"])
    for bad in ({"id": "E1", "type": "card_payment", "member": "W1", "at": "2025-12-26T10:00:00",
                 "amount": True},
                {"id": "E1", "type": "video_view", "member": "W1", "at": "2025-12-26T10:00:00",
                 "video": "v", "amount": None, "merchant": "x"},
                {"id": "E1", "type": "ex_booking", "member": "W1", "at": "2025-12-26T10:00:00",
                 "amount": 1, "service": "ex", "ride_date": "2025-12-26", "segments": [["sanyo"]]}):
        assert fast_row(bad) is None and normalise(bad)[0] is None


def test_lenient_spellings_are_refused_by_both_paths():
    record = {"id": "E1", "type": "ex_booking", "member": "W1", "at": "2025-12-26 10:00:00",
              "amount": 1, "service": "ex", "ride_date": "2025-W52-5", "segments": ["other"]}
    assert fast_row(record) is None  # a space instead of 'T', a week date: normalise words it
    event, reasons = normalise(record)
    assert event is None
    assert [r.split(" must ")[0] for r in reasons] == ["field 'at'", "field 'ride_date'"]


# --------------------------------------------------------------------------- JSONL reader


def old_read_jsonl(data: bytes):
    """The line-by-line reader the block reader replaced (the oracle)."""
    out = []
    for n, raw in enumerate(io.BytesIO(data), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.append((n, None, f"not UTF-8 text (byte {exc.start + 1} of the line)"))
            continue
        parsed = event_files._jsonl_line(n, text)
        if parsed is not None:
            out.append((n, *parsed))
    return out


jsonl_line = st.one_of(
    st.builds(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass"),
              st.dictionaries(st.sampled_from(["id", "a"]), st.one_of(st.integers(), odd_text), max_size=2)),
    st.sampled_from([b"", b"  ", b"{", b'{"a":1} x', b'{"a":1}  ', b"[1]", b"\xef\xbb\xbf{}", b"\xff{}",
                     b'{"a":"\xc3\xa9"}', b'{"a":\xc3}', b"1e999", b"{}\r", b'"\\ud800"',
                     # what msgspec (the fast decoder) refuses or reads differently from json.loads
                     b'{"a":NaN}', b'{"a":1e400}', b'{"a":01}', b'{"a":"\\ud800"}', b'{"a":1}\x0b',
                     b'{"a":"\x01"}', b'{"a":' + b"9" * 5000 + b"}",
                     # repeated keys in the spellings the duplicate pre-check must see through
                     b'{"a": 1, "a": 2}', b'{"a" : 1, "a": 2}', b'{"a"  :1,"a":2}', b'{"a"\t:1,"a":2}',
                     b'{"a"\r:1,"a":2}', b'{"b": "x\\": y", "a": 1, "a": 2}', b'{"a\\"": 1, "a\\"": 2}',
                     b' {"a": 1, "b": [1, {"a": 2}]}']),
)


@given(lines=st.lists(jsonl_line, max_size=8), final_newline=st.booleans(), block=st.integers(1, 40))
def test_block_jsonl_reader_matches_the_line_reader(tmp_path, monkeypatch, lines, final_newline, block):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path = tmp_path / "e.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(event_files, "JSONL_BLOCK", block)
    assert list(event_files._read_jsonl(path)) == old_read_jsonl(data)


@given(lines=st.lists(jsonl_line, max_size=8))
def test_jsonl_reader_without_msgspec_matches_the_line_reader(tmp_path, monkeypatch, lines):
    # An environment installed before msgspec was a dependency decodes with json.loads.
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / "e.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(event_files, "_DECODER", (json.loads, (ValueError, RecursionError)))
    assert list(event_files._read_jsonl(path)) == old_read_jsonl(data)


# --------------------------------------------------------------------------- CSV rows


def reference_csv_rows(data: bytes):
    reader = csv.reader(event_files._utf8_lines(io.BytesIO(data)))
    out, prev = [], 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return out
        except csv.Error as exc:
            out.append((reader.line_num, None, f"bad CSV: {exc}"))
            prev = reader.line_num
            continue
        out.append((prev + 1, row, None))
        prev = reader.line_num


# About a millisecond an example, and the quoting corner cases are rare in random text:
# twenty times the profile's examples.
@settings(max_examples=20 * settings.default.max_examples)
@given(text=st.text(st.sampled_from(['a', ',', '"', '\r', '\n', ' ', '\x00', 'é', '\u2028']), max_size=30))
def test_comma_split_matches_csv_reader(text):
    data = text.encode()
    assert list(event_files._csv_rows(io.BytesIO(data))) == reference_csv_rows(data)


# --------------------------------------------------------------------------- bulk load


def index_sql(conn):
    return conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                        " AND tbl_name = 'events' ORDER BY name").fetchall()


def test_bulk_load_keeps_the_indexes_and_a_failed_one_rolls_back(tmp_path):
    conn = db.connect(tmp_path / "p.db")
    before = index_sql(conn)
    assert len(before) >= 3
    good = tmp_path / "good.jsonl"
    good.write_text("".join(
        json.dumps({"id": f"E{i}", "type": "card_payment", "member": f"W{i % 7}",
                    "at": "2025-01-31T10:00:00+09:00", "amount": i}) + "\n" for i in range(300)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text().replace('"amount": 7}', '"amount": "7"}'))
    assert events._is_bulk_load(conn, good.stat().st_size)

    report = import_files(conn, [bad])
    assert report.errors == (f"{bad}:8: field 'amount' must be an integer, got \"7\"",)
    assert index_sql(conn) == before
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)

    report = import_files(conn, [good])
    assert report.added == 300 and not report.errors
    assert index_sql(conn) == before
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT seq FROM events WHERE type = 'card_payment'"
                        " AND member = 'W3'").fetchall()
    assert "events_type_member" in str(plan)
    assert conn.execute("SELECT COUNT(*) FROM events INDEXED BY events_type_member"
                        " WHERE type = 'card_payment' AND member = 'W3'").fetchone() == (43,)
    # The stored events now outnumber what the same file could add: no rebuild.
    assert not events._is_bulk_load(conn, good.stat().st_size)
