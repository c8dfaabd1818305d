"""Events declared as data: the `*.events` format, the bundled catalogue, a
rules folder's own types (imported and usable by a `.rules` file)."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from points.dsl import symbols
from points.dsl.errors import RulesError
from points.dsl.loader import check_files, load_rules
from points.ledger import db
from points.ledger.event_catalogue import bundled_catalogue, bundled_path, load_catalogue, read_catalogue
from points.ledger.event_decl import DeclError, parse_events
from points.ledger.event_rows import builders_for
from points.ledger.event_schema import schema_for
from points.ledger.events import import_files, iter_events

# DESIGN.md's table, the contract: type -> its fields beyond the envelope.
CONTRACT = {
    "member_withdrawn": set(),
    "campaign_entry": {"campaign"},
    "ex_booking": {"amount", "service", "ride_date", "segments", "product", "ticketless", "payment",
                   "phone_change", "railway_points"},
    "cancel": {"ref"}, "refund": {"ref"}, "stopover": {"ref"},
    "card_payment": {"amount", "merchant", "card"},
    "card_cashback": {"amount"},
    "wesmo_charge": {"amount", "source"}, "icoca_charge": {"amount", "source"},
    "wesmo_payment": {"amount", "merchant", "paid_with_points"},
    "video_view": {"video"},
    "mynapoint_application": set(), "health_insurance_registration": set(),
    "public_account_registration": set(),
    "redemption": {"points", "use"},
}
CHOICES = {
    ("ex_booking", "service"): ("ex", "e5489"),
    ("ex_booking", "segments"): ("tokaido", "sanyo", "kyushu", "hokuriku", "jrwest_local", "other"),
    ("ex_booking", "payment"): ("credit_card", "station", "convenience_store", "bank"),
    ("card_payment", "card"): ("standard", "osc", "gold"),
    ("wesmo_charge", "source"): ("jwest_card", "credit_card", "bank", "atm", "cash", "point_charge",
                                 "gas_station"),
    ("redemption", "use"): ("fare", "charge", "shopping", "wesmo"),
}


def test_the_bundled_catalogue_declares_the_contract_table_exactly():
    cat = bundled_catalogue()
    assert bundled_path().name == "catalogue.events"
    declared = {t.name: {f.name for f in t.fields} for t in cat.types}
    assert {k: v for k, v in declared.items() if k != "member_profile"} == CONTRACT
    assert list(declared)[:len(CONTRACT)] == list(CONTRACT)
    for (type_, name), values in CHOICES.items():
        assert next(f for f in cat.type(type_).fields if f.name == name).choices == values
    assert [t.name for t in cat.types if t.undoes] == ["cancel", "refund", "stopover"]
    kinds = {f.name: f.kind for t in cat.types for f in t.fields}
    assert (kinds["ride_date"], kinds["ticketless"], kinds["segments"], kinds["points"]) == \
        ("date", "bool", "list", "int")


def test_member_profile_is_declared_as_helpers_agreed():
    profile = bundled_catalogue().type("member_profile")
    fields = {f.name: f for f in profile.fields}
    assert {n: f.kind for n, f in fields.items()} == {
        "valid_from": "date", "birthday": "date", "tier": "text", "status": "text", "home_station": "text"}
    assert not any(f.required for f in fields.values())
    assert fields["valid_from"].default == "date of at"


def test_member_profile_valid_from_defaults_to_the_events_own_day(tmp_path):
    conn = db.connect(tmp_path / "p.db")
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"id": "P1", "type": "member_profile", "member": "W1", "at": "2025-03-31T23:30:00-01:00",'
        ' "tier": "gold"}\n'
        '{"id": "P2", "type": "member_profile", "member": "W1", "at": "2025-04-02T10:00:00",'
        ' "valid_from": "2025-05-01", "birthday": "1980-02-29"}\n')
    assert import_files(conn, [path]).errors == ()
    p1, p2 = iter_events(conn)
    # 23:30 at -01:00 is 09:30 the next day in Tokyo: the day of `at` in Asia/Tokyo.
    assert (p1["valid_from"], p1["tier"], p1["birthday"]) == ("2025-04-01", "gold", None)
    assert (p2["valid_from"], p2["birthday"], p2["tier"]) == ("2025-05-01", "1980-02-29", None)


BAD_DECLARATIONS = [
    ("event Hotel\n", 1, 7, "event type 'Hotel': use lower-case letters"),
    ("  nights: int\n", 1, 3, "a field line before any 'event NAME' line"),
    ("event hotel stay\n", 1, 13, "expected the end of the line after 'event NAME'"),
    ("evnt hotel\n", 1, 1, "expected 'event NAME'"),
    ("event h\n  n: integer\n", 2, 6, "unknown kind 'integer'"),
    ("event h\n  n int\n", 2, 5, "expected ':' after the field name, found 'int'"),
    ("event h\n  n: int, >= 1, >= 2\n", 2, 17, "the >= clause is given twice"),
    ("event h\n  n: int, >= 5, <= 1\n", 2, 6, "no value is both >= 5 and <= 1"),
    ("event h\n  n: int, >= 10000000000000\n", 2, 14, "beyond the limit of every int field"),
    ("event h\n  n: text, >= 1\n", 2, 12, "'>=' applies to int fields only"),
    ("event h\n  n: one of (a, b, a)\n", 2, 20, "value 'a' is listed twice"),
    ("event h\n  n: one of (a, b\n", 2, 18, "expected ',' or ')' at the end of the line"),
    ("event h\n  n: one of (a), default c\n", 2, 6, "the default 'c' is not one of the values"),
    ("event h\n  n: int, required, default 3\n", 2, 6, "a required field has no default"),
    ("event h\n  n: text, default \"\"\n", 2, 6, "a default of \"\" needs 'may be empty'"),
    ("event h\n  n: bool, default yes\n", 2, 20, "yes is not a bool value"),
    ("event h\n  n: int, may be empty\n", 2, 11, "'may be empty' applies to text fields only"),
    ("event h\n  n: int, sometimes\n", 2, 11, "unknown clause 'sometimes'"),
    ("event h\n  at: datetime\n", 2, 3, "'at' is in every event's envelope"),
    ("event h\n  member: text\n", 2, 3, "'member' is in every event's envelope"),
    ("event h\n  date: date\n", 2, 3, "'date' is derived from 'at'"),
    ("event h\n  amount: text\n", 2, 11, "'amount' is an int field"),
    ("event h\n  ref: int\n", 2, 8, "'ref' is the id of the event undone"),
    ("event h\n  n: int\n  n: text\n", 3, 3, "field 'n' is declared twice in h"),
    ("event h\nevent h\n", 2, 7, "event type 'h' is already declared at line 1"),
    ("event h\n  n: int ?\n", 2, 10, "unexpected character '?'"),
]


@pytest.mark.parametrize("text, line, col, message", BAD_DECLARATIONS, ids=[b[3][:30] for b in BAD_DECLARATIONS])
def test_each_bad_declaration_is_reported_with_line_and_column(text, line, col, message):
    _types, errors = parse_events(text, "h.events")
    assert len(errors) == 1, errors
    path, got_line, got_col, got = errors[0]
    assert (path, got_line, got_col) == ("h.events", line, col), got
    assert message in got


def test_every_bad_line_of_a_file_is_reported_and_good_ones_still_parse():
    text = "event h\n  a: int, >= 0\n  b: nonsense\n  c: list of text\nevent Bad\n  d: bool\nevent k\n"
    types, errors = parse_events(text, "x.events")
    assert [(e[1], e[2]) for e in errors] == [(3, 6), (5, 7)]
    assert [(t.name, [f.name for f in t.fields]) for t in types] == [("h", ["a", "c"]), ("k", [])]


def test_good_declarations_parse_every_kind_and_clause():
    text = textwrap.dedent('''
        # a comment
        event hotel_stay   # trailing comment
            nights:    int, required, >= 1, <= 365
            hotel:     text, required
            note:      text, may be empty, default ""
            rate:      one of (standard, "with # sign", 2025), default standard
            tags:      list of text
            rooms:     list of (single, double)
            breakfast: bool, default true
            checkin:   date, default 2025-01-01
            checkout:  datetime, optional
            amount:    int, required, >= 0
            ref:       text
        ''')
    types, errors = parse_events(text, "h.events")
    assert errors == []
    (hotel,) = types
    f = {x.name: x for x in hotel.fields}
    assert (f["nights"].kind, f["nights"].required, f["nights"].lo, f["nights"].hi) == ("int", True, 1, 365)
    assert f["note"].may_be_empty and f["note"].default == ""
    assert f["rate"].choices == ("standard", "with # sign", "2025") and f["rate"].default == "standard"
    assert (f["tags"].kind, f["tags"].choices) == ("list", ())
    assert f["rooms"].choices == ("single", "double")
    assert f["breakfast"].default is True and f["checkin"].default == "2025-01-01"
    assert f["checkout"].kind == "datetime" and not f["checkout"].required
    assert hotel.undoes and hotel.where == "h.events:3"


# --------------------------------------------------------------------------- a rules folder's own types

HOTEL_EVENTS = """
event hotel_stay
    nights:  int, required, >= 1
    hotel:   one of (osaka, kyoto), required
    guests:  list of text
"""

HOTEL_RULES = """
campaign hotel-nights "100 points a night in Osaka"
  window 2026-04-01 .. 2026-04-30
  stream stays = hotel_stay where date in window and nights >= 2 and hotel == "osaka"
  value nights_total = sum(stays.nights)
  award per_night "100 points a night" = nights_total * 100 basic
    when nights_total > 0
    on 2026-05-15
    expires 12 months after payment
"""


def hotel_folder(tmp_path: Path, rules: str | None = HOTEL_RULES) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "hotel.events").write_text(HOTEL_EVENTS)
    if rules is not None:
        (folder / "hotel.rules").write_text(rules)
    return folder


def test_a_folder_without_events_files_uses_the_bundled_catalogue(tmp_path):
    assert load_catalogue(tmp_path) is bundled_catalogue()
    assert load_catalogue(None) is bundled_catalogue()
    assert load_catalogue(bundled_path().parent) is bundled_catalogue()


def test_a_folder_adds_its_types_to_the_bundled_ones(tmp_path):
    cat = load_catalogue(hotel_folder(tmp_path))
    assert cat.names[-1] == "hotel_stay" and cat.names[:-1] == bundled_catalogue().names


def test_a_folder_can_replace_a_bundled_type_to_add_a_choice_value(tmp_path):
    (tmp_path / "cards.events").write_text(
        "event card_payment\n  amount: int, required\n  merchant: text, default other\n"
        "  card: one of (standard, osc, gold, platinum), default standard\n")
    conn = db.connect(tmp_path / "p.db")
    events = tmp_path / "e.jsonl"
    events.write_text('{"id": "C1", "type": "card_payment", "member": "W1", "at": "2026-04-02T10:00:00",'
                      ' "amount": 100, "card": "platinum"}\n')
    refused = import_files(conn, [events])
    assert refused.errors == (f"{events}:1: field 'card' must be one of: standard, osc, gold,"
                              " got \"platinum\"",)
    report = import_files(conn, [events], catalogue=load_catalogue(tmp_path))
    assert report.errors == () and report.added == 1


def test_a_new_type_imports_and_is_usable_by_a_rules_file(tmp_path):
    folder = hotel_folder(tmp_path)
    catalogue = load_catalogue(folder)
    conn = db.connect(tmp_path / "p.db")
    events = tmp_path / "stays.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in [
        {"id": "H1", "type": "hotel_stay", "member": "W1", "at": "2026-04-03T15:00:00", "nights": 3,
         "hotel": "osaka", "guests": ["ann", "bo"]},
        {"id": "H2", "type": "hotel_stay", "member": "W1", "at": "2026-04-10T15:00:00", "nights": 1,
         "hotel": "osaka"},
        {"id": "H3", "type": "hotel_stay", "member": "W2", "at": "2026-04-11T15:00:00", "nights": 2,
         "hotel": "kyoto"},
        {"id": "H4", "type": "hotel_stay", "member": "W2", "at": "2026-04-12T15:00:00", "nights": 4,
         "hotel": "osaka"},
    ]))
    # The bundled catalogue does not know the type; the folder's does.
    assert "unknown event type 'hotel_stay'" in import_files(conn, [events]).errors[0]
    report = import_files(conn, [events], catalogue=catalogue)
    assert report.errors == () and report.added == 4
    assert next(iter_events(conn))["guests"] == ["ann", "bo"]

    rules = load_rules(folder)
    assert [c.name for c in rules.campaigns] == ["hotel-nights"]
    assert rules.catalogue == catalogue
    from points.engine.workflow import Runner
    import datetime as dt

    Runner(conn, rules, dt.date(2026, 6, 1)).run()
    balances = dict(conn.execute(
        "SELECT account, SUM(amount) FROM postings WHERE account LIKE 'member:%' GROUP BY account"))
    assert balances == {"member:W1:basic": 300, "member:W2:basic": 400}


def test_check_reports_unknown_types_and_fields_against_the_folders_declarations(tmp_path):
    folder = hotel_folder(tmp_path, HOTEL_RULES.replace("nights >= 2", "nigths >= 2"))
    _parsed, diagnostics, _sources = check_files(sorted(folder.glob("*.rules")), folder)
    assert len(diagnostics) == 1 and "unknown" in diagnostics[0].message and "nigths" in diagnostics[0].message
    assert "did you mean nights" in (diagnostics[0].hint or "")
    # The same rules beside no declaration: the type itself is unknown.
    (folder / "hotel.events").unlink()
    _parsed, diagnostics, _sources = check_files(sorted(folder.glob("*.rules")), folder)
    assert any("hotel_stay" in d.message for d in diagnostics)


def test_bad_declarations_are_check_diagnostics_and_stop_load_rules(tmp_path):
    folder = hotel_folder(tmp_path)
    (folder / "more.events").write_text("event spa\n  minutes: int, >= 1\n  nights: text\n")
    _parsed, diagnostics, _sources = check_files(sorted(folder.glob("*.rules")), folder)
    (d,) = diagnostics
    assert (Path(d.path).name, d.line, d.column) == ("more.events", 3, 1)
    assert "field 'nights' is text here but int in" in d.message
    with pytest.raises(RulesError, match="more.events:3:1"):
        load_rules(folder)


def test_a_type_declared_in_two_files_of_a_folder_is_refused(tmp_path):
    folder = hotel_folder(tmp_path, None)
    shutil.copy(folder / "hotel.events", folder / "again.events")
    with pytest.raises(DeclError) as caught:
        load_catalogue(folder)
    (problem,) = caught.value.problems
    assert Path(problem[0]).name == "hotel.events" and "already declared at" in problem[3]


def test_symbols_follow_the_catalogue_in_use(tmp_path):
    catalogue = load_catalogue(hotel_folder(tmp_path, None))
    assert "hotel_stay" not in symbols.EVENT_TYPES
    with symbols.using(catalogue):
        assert "hotel_stay" in symbols.EVENT_TYPES
        assert symbols.event_fields("hotel_stay")["guests"] == symbols.LIST
        assert symbols.event_fields("hotel_stay")["nights"] == symbols.INT
        assert symbols.is_event_field("nights")
    assert not symbols.is_event_field("nights")
    assert symbols.UNDO_TYPES == ("cancel", "refund", "stopover")


def test_the_schema_of_a_catalogue_is_compiled_once():
    cat = read_catalogue([bundled_path()])
    assert schema_for(cat) is schema_for(cat)
    assert set(builders_for(schema_for(cat))) == set(cat.names)


def test_declaration_files_are_read_like_rules_files(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT\n")
    (folder / "leak.events").symlink_to(secret)
    os.mkfifo(folder / "pipe.events")
    (folder / "big.events").write_text("# x\n" * 300_000)
    (folder / "latin1.events").write_bytes(b"# caf\xe9\n")
    with pytest.raises(DeclError) as caught:
        load_catalogue(folder)
    got = {Path(p).name: msg for p, _line, _col, msg in caught.value.problems}
    assert got == {
        "big.events": "cannot read: more than the 1,048,576 bytes allowed",
        "latin1.events": "cannot read: not UTF-8 text (byte 6)",
        "leak.events": "cannot read: a symbolic link out of the rules folder (not read)",
        "pipe.events": "cannot read: not a regular file (a FIFO, device or folder is not read)",
    }
    assert "SECRET" not in str(caught.value)
    # A link that stays inside the folder is read.
    for name in got:
        (folder / name).unlink()
    (folder / "real.txt").write_text("event spa\n")
    (folder / "inside.events").symlink_to(folder / "real.txt")
    assert load_catalogue(folder).names[-1] == "spa"
