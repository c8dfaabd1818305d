"""Typed decoding (ledger/event_typed.py) against the dict path it shortcuts.

A line the typed path finishes must give exactly the row the dict path gives
(the block reader, then the compiled row builder, itself checked against
`normalise` in test_events_fastpaths.py); a line it is not sure about must be
left to the dict path, which decides as before. Also the cached datetime
check (`fast_datetime`) against the general one.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from points.ledger import db, event_checks, event_files, event_typed, events
from points.ledger.event_rows import BUILDERS, fast_row
from points.ledger.event_schema import BUNDLED, EVENT_TYPES
from points.ledger.events import import_files

TYPED = event_typed.typed_for(BUNDLED)
SAMPLES = Path(__file__).resolve().parents[2] / "rules" / "samples" / "events.jsonl"

odd_text = st.text(st.sampled_from(['a', 'é', '"', '\\', '\x01', ' ', ':', '{', '}', '\u2028']), max_size=6)
any_value = st.one_of(
    st.none(), st.booleans(), st.integers(-2 * 10**12, 2 * 10**12), odd_text, st.floats(allow_nan=False),
    st.sampled_from(["E1", "ex", "e5489", "gold", "osc", "station", "fare", "atm", "other", "", "2025-01-31",
                     "2025-02-29", "2024-02-29", "2025-01-31T23:59:59Z", "tokaido"]),
    st.lists(st.sampled_from(["tokaido", "sanyo", "nowhere", 3]), max_size=3),
)
FIELDS = ["id", "member", "at", "amount", "ref", "service", "ride_date", "segments", "product",
          "ticketless", "payment", "phone_change", "railway_points", "merchant", "card", "source",
          "paid_with_points", "campaign", "video", "points", "use", "valid_from", "birthday", "tier", "extra"]
ATS = ["2025-03-01T10:00:00+09:00", "2025-03-01T01:00:00Z", "2025-03-01T16:59:59Z", "2025-03-01T10:00:00",
       "2024-02-29T23:00:00Z", "2025-02-29T10:00:00", "2025-03-01T24:00:00", "2025-03-01T10:60:00Z",
       "1999-12-31T20:00:00Z", "2099-12-31T15:00:00Z", "2025-03-01T10:00:00-05:00", "2025-03-01t10:00:00"]


@st.composite
def records(draw):
    record = {"type": draw(st.sampled_from(EVENT_TYPES + ("nope",))),
              "id": draw(st.sampled_from(["E1", "é1", "E 1", " E1", "E2"])),
              "member": draw(st.sampled_from(["W1", "W 1", "W:1", "ü" * 64, "ü" * 65])),
              "at": draw(st.sampled_from(ATS))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        record[name] = draw(any_value)
    if draw(st.booleans()):
        del record[draw(st.sampled_from(["id", "type", "member", "at"]))]
    return record


def valid_value(draw, f):
    """A value `f` takes (mostly), by its kind."""
    kind = f.kind
    if kind == "int":
        return draw(st.sampled_from([f.lo, f.hi, 0 if f.lo <= 0 <= f.hi else f.lo, f.lo - 1, f.hi + 1]))
    if kind == "bool":
        return draw(st.booleans())
    if kind == "choice":
        return draw(st.sampled_from(f.choices + ("nope",)))
    if kind == "list":
        return draw(st.lists(st.sampled_from(f.choices or ("x",)), max_size=3))
    if kind == "date":
        return draw(st.sampled_from(["2025-01-31", "1990-02-28", "2025-02-29", "1899-12-31", "2025-1-31"]))
    if kind == "id":
        return draw(st.sampled_from(["E0", "E9", "E1", "E\u00e90"]))
    return draw(st.one_of(st.sampled_from(["x", "shop 1", "", "a" * 1000, "a" * 1001]), odd_text))


@st.composite
def valid_records(draw):
    """Records of a bundled type with every field of its kind (some made bad)."""
    type_ = draw(st.sampled_from(EVENT_TYPES))
    record = {"type": type_, "id": draw(st.sampled_from(["E1", "E2", "E 1"])),
              "member": draw(st.sampled_from(["W1", "W2", "W 1"])), "at": draw(st.sampled_from(ATS))}
    for f in BUNDLED.fields_of(type_)[4:]:
        if f.required or draw(st.booleans()):
            record[f.name] = None if draw(st.integers(0, 9)) == 0 else valid_value(draw, f)
    if draw(st.integers(0, 4)) == 0:
        record[draw(st.sampled_from(FIELDS))] = draw(any_value)
    return record


def spellings(record: dict, rng: random.Random) -> list[str]:
    """The record as JSON text in a few spellings: json.dumps', compact, keys
    shuffled, a key repeated (to be refused), whitespace before a colon."""
    items = list(record.items())
    rng.shuffle(items)
    shuffled = dict(items)
    out = [json.dumps(record, ensure_ascii=False), json.dumps(shuffled, separators=(",", ":")),
           json.dumps(record, ensure_ascii=True)]
    if items:
        key, value = items[0]
        out.append(json.dumps(shuffled, ensure_ascii=False)[:-1] + f", {json.dumps(key)}: {json.dumps(value)}}}")
        out.append(json.dumps(shuffled).replace('":', '" :', 1))
    return out


def typed_row(text: str):
    try:
        struct = TYPED.decode(text)
    except TYPED.errors:
        return None
    return TYPED.finishers[type(struct)](struct, text)


# Cheap (well under a millisecond an example) over a wide space: twenty times the profile's examples.
@settings(max_examples=20 * settings.default.max_examples)
@given(record=st.one_of(records(), valid_records()), seed=st.integers(0, 1000))
def test_a_typed_line_gives_the_dict_path_row_or_steps_aside(record, seed):
    for text in spellings(record, random.Random(seed)):
        row = typed_row(text)
        if row is None:
            continue
        read = list(event_files._read_jsonl(io.BytesIO((text + "\n").encode())))
        assert len(read) == 1 and read[0][2] is None, (text, read)  # the dict path takes it too...
        assert row == fast_row(read[0][1]), text  # ...to the very same row


def test_typed_decoding_takes_the_common_spellings():
    """Plain valid events do take the typed path (else it would be dead code)."""
    lines = [
        {"id": "E1", "type": "ex_booking", "member": "W1", "at": "2025-12-26T10:00:00+09:00", "amount": 12000,
         "service": "ex", "ride_date": "2025-12-27", "segments": ["sanyo", "tokaido"], "product": "EX旅パック",
         "ticketless": True},
        {"id": "E2", "type": "card_payment", "member": "W1", "at": "2025-01-31T16:00:00Z", "amount": -300,
         "merchant": "lucua \"1\"", "card": "gold"},
        {"id": "E3", "type": "cancel", "member": "W1", "at": "2025-12-26T10:00:00", "ref": "E1", "amount": None},
        {"id": "E4", "type": "redemption", "member": "W1", "at": "2025-12-26T10:00:00+09:00", "points": 5,
         "use": "fare"},
        {"id": "E5", "type": "member_profile", "member": "W1", "at": "2025-12-26T10:00:00Z", "birthday": "1990-01-02",
         "tier": "gold"},
    ]
    for record in lines:
        for text in (json.dumps(record, ensure_ascii=False), json.dumps(record, separators=(",", ":"))):
            row = typed_row(text)
            assert row is not None, text
            assert row == fast_row(json.loads(text))
    assert {s.__struct_config__.tag for s in TYPED.finishers} == set(BUILDERS) == set(EVENT_TYPES)


def test_typed_decoding_steps_aside_for_repeated_keys_and_what_only_normalise_words():
    base = '{"id": "E1", "type": "cancel", "member": "W1", "at": "2025-12-26T10:00:00", "ref": "E0"'
    assert typed_row(base + "}") is not None
    for text in (base + ', "ref": "E2"}', base + ', "type": "cancel"}', base.replace('"ref":', '"ref" :') + "}",
                 base.replace('"E0"', '"E1"') + "}",  # a ref to itself
                 base + ', "amount": 1.0}', base + ', "amount": true}', base + ', "extra": 1}',
                 base.replace('"W1"', '"W 1"') + "}", base.replace("T10", " 10") + "}"):
        assert typed_row(text) is None, text


def test_import_with_and_without_typed_decoding_stores_the_same_rows(tmp_path, monkeypatch):
    rng = random.Random(7)
    lines, earlier = [], []
    for i in range(400):
        record = {"id": f"E{i}", "type": "card_payment", "member": f"W{rng.randrange(20)}",
                  "at": rng.choice(ATS[:5]), "amount": rng.randrange(-500, 90000)}
        if rng.random() < 0.5:
            record["card"] = rng.choice(["gold", "osc", "standard"])
        if earlier and rng.random() < 0.1:  # a refund of an earlier payment of the same member
            ref, member = rng.choice(earlier)
            record = {"id": f"E{i}", "type": "refund", "member": member, "at": record["at"], "ref": ref}
        earlier.append((record["id"], record["member"]))
        lines.append(rng.choice(spellings(record, rng)[:3]))
    src = tmp_path / "e.jsonl"
    src.write_text("\n".join(lines) + "\n" + SAMPLES.read_text(encoding="utf-8"),
                   encoding="utf-8")

    def stored(name):
        conn = db.connect(tmp_path / name)
        report = import_files(conn, [src])
        rows = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
        conn.close()
        return report.added, report.errors, rows

    typed = stored("typed.db")
    # Lines the typed path leaves to the dict path, between typed ones: the errors
    # (and their lines) must be the same too.
    odd = ['{"id": "X1", "type": "card_payment", "member": "W1", "at": "2025-01-01T10:00:00", "amount": 1,'
           ' "amount": 2}', '{"id": "X2", "type": "card_payment", "member": "W1", "at": "2025-01-01T10:00:00",'
           ' "amount": 1.5}', "", "  ", '{"id": "X3"', lines[3], '{"id": "X4", "type": "nope"}']
    with open(src, "a", encoding="utf-8") as f:
        f.write("\n".join(odd) + "\n" + "\n".join(lines[:20]) + "\n")
    typed_bad = stored("typed-bad.db")
    monkeypatch.setattr(events, "typed_for", lambda schema: None)
    src.write_text(src.read_text(encoding="utf-8").split("\n" + odd[0])[0] + "\n", encoding="utf-8")
    assert stored("plain.db") == typed
    src.write_text(src.read_text(encoding="utf-8") + "\n".join(odd) + "\n" + "\n".join(lines[:20]) + "\n",
                   encoding="utf-8")
    assert stored("plain-bad.db") == typed_bad
    assert typed[0] == 400 + 182 and typed[1] == ()  # every line stored
    assert typed_bad[0] == 0 and len(typed_bad[1]) >= 5, typed_bad[1]  # nothing stored, every bad line named


@given(day=st.dates(), hour=st.integers(0, 25), minute=st.integers(0, 61), second=st.integers(0, 61),
       suffix=st.sampled_from(["", "Z", "+09:00", "-05:00", "+00:00", "z", " ", "+09:00 "]),
       again=st.booleans())
def test_cached_datetime_check_matches_the_general_one(day, hour, minute, second, suffix, again):
    value = f"{day.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}{suffix}"
    if again:  # the day cached first (by a valid spelling of the same day)
        event_checks.fast_datetime(f"{day.isoformat()}T16:00:00Z")
    assert event_checks.fast_datetime(value) == event_checks._slow_datetime(value)
