"""Hypothesis: lines generated from the declarations themselves (any declared
type, every kind of field), through the real import paths.

A valid record is accepted by `normalise`, the compiled builder gives the
same row or steps aside, and the import stores exactly the normalised event;
one corrupted field makes the record refused, naming that field."""

from __future__ import annotations

import datetime as dt
import unicodedata
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from points.ledger import db
from points.ledger.event_catalogue import bundled_catalogue, merge
from points.ledger.event_decl import BOOL, CHOICE, DATE, DATE_OF_AT, DATETIME, INT, LIST, TEXT, parse_events
from points.ledger.event_rows import builders_for
from points.ledger.event_schema import schema_for
from points.ledger.events import canonical_json, import_files, iter_events

EXTRA = """
event hotel_stay
    nights:    int, required, >= 1, <= 365
    hotel:     one of (osaka, "kyoto \\"east\\"", 2025), required
    guests:    list of text
    rooms:     list of (single, double)
    note:      text, may be empty, default ""
    checkout:  datetime
    since:     date, default date of at
    amount:    int, >= 0
"""
_types, _errors = parse_events(EXTRA, "extra.events")
assert not _errors
CATALOGUE, _clashes = merge(bundled_catalogue(), _types)
SCHEMA = schema_for(CATALOGUE)

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
# Ids and members must be NFC (strict input): a text NFC changes (e.g. a CJK compatibility
# ideograph such as U+F900) is a refused id, not a valid one, so it is left out here.
ident = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp"),
                              blacklist_characters=":"), min_size=1, max_size=12
                ).filter(lambda s: unicodedata.normalize("NFC", s) == s)


def tokyo(moment: dt.datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


@st.composite
def stamp(draw, lo=2000, hi=2099):
    """(as written, Tokyo local) for a datetime field."""
    local = draw(st.datetimes(dt.datetime(lo, 1, 2), dt.datetime(hi, 12, 30))).replace(microsecond=0)
    minutes = draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    if draw(st.booleans()):
        return local.isoformat(), tokyo(local)
    zone = dt.timezone(dt.timedelta(minutes=minutes))
    written = local.replace(tzinfo=dt.timezone(dt.timedelta(hours=9))).astimezone(zone)
    return written.isoformat(), tokyo(local)


def value_of(draw, f):
    """(as written, as normalised) for a declared field."""
    if f.name == "ref":
        raise AssertionError("refs are drawn by the batch")
    if f.kind == TEXT:
        v = draw(st.just("") if f.may_be_empty and draw(st.booleans()) else text)
        return v, v
    if f.kind == INT:
        v = draw(st.integers(f.lo, f.hi))
        return v, v
    if f.kind == BOOL:
        v = draw(st.booleans())
        return v, v
    if f.kind == CHOICE:
        v = draw(st.sampled_from(f.choices))
        return v, v
    if f.kind == DATE:
        v = draw(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31))).isoformat()
        return v, v
    if f.kind == DATETIME:
        return draw(stamp(1901, 2098))
    if f.kind == LIST:
        items = st.sampled_from(f.choices) if f.choices else text
        v = draw(st.lists(items, min_size=1, max_size=4))
        return v, v
    raise AssertionError(f.kind)


@st.composite
def batches(draw):
    """[(record as written, normalised event)] of any declared types."""
    out = []
    for i in range(draw(st.integers(1, 12))):
        owners = [(n["id"], n["member"]) for _, n in out]
        names = [t.name for t in CATALOGUE.types if owners or not t.undoes]
        t = CATALOGUE.type(draw(st.sampled_from(names)))
        written, normal = draw(stamp())
        raw = {"id": f"{draw(ident)}#{i}", "type": t.name, "member": draw(ident), "at": written}
        norm = dict(raw, at=normal, amount=None)
        for f in t.fields:
            if f.name == "ref":
                raw["ref"], raw["member"] = draw(st.sampled_from(owners))
                norm["ref"], norm["member"] = raw["ref"], raw["member"]
                continue
            if f.required or draw(st.booleans()):
                raw[f.name], norm[f.name] = value_of(draw, f)
            else:
                norm[f.name] = normal[:10] if f.default == DATE_OF_AT else f.default
        if "amount" not in {f.name for f in t.fields} and draw(st.booleans()):
            raw["amount"] = norm["amount"] = draw(st.integers(-10**12, 10**12))
        out.append((raw, norm))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=batches())
def test_generated_valid_lines_import_as_declared(tmp_path_factory, batch):
    for raw, norm in batch:
        got, errors = SCHEMA.normalise(raw)
        assert errors == [] and got == norm
        row = builders_for(SCHEMA)[raw["type"]](raw)
        assert row is None or (row[0], row[3], row[9]) == (norm["id"], norm["at"], canonical_json(norm))
    tmp = tmp_path_factory.mktemp("gen")
    path = tmp / "e.jsonl"
    path.write_text("".join(json.dumps(raw, ensure_ascii=False) + "\n" for raw, _ in batch), encoding="utf-8")
    conn = db.connect(tmp / "p.db")
    report = import_files(conn, [path], catalogue=CATALOGUE)
    assert report.errors == () and report.added == len(batch)
    assert list(iter_events(conn)) == [norm for _, norm in batch]
    conn.close()


WRONG = {TEXT: [7, True, ["x"], "x" * 1001], INT: ["1", 1.5, True, 10**13], BOOL: ["true", 1, None],
         CHOICE: ["nope", 1, ["osaka"]], DATE: ["2025-02-30", "2025-W01-1", "1899-12-31", 20250101],
         DATETIME: ["2025-01-01 10:00:00", "2025-01-01", 3], LIST: [[], "single", [1], [""]]}


@st.composite
def corrupted(draw):
    """(record with one bad field, that field's name)."""
    batch = draw(batches())
    raw, _norm = batch[0]
    t = CATALOGUE.type(raw["type"])
    candidates = [f for f in t.fields if f.name != "ref" and not (f.kind == TEXT and f.may_be_empty)]
    if not candidates:  # a type without such fields: corrupt the envelope
        return dict(raw, at="2025-01-01 10:00:00"), "at"
    f = draw(st.sampled_from(candidates))
    bad = draw(st.sampled_from(WRONG[f.kind]))
    if bad is None:
        if not f.required:
            return dict(raw, member=" W"), "member"
        return {k: v for k, v in raw.items() if k != f.name}, f.name
    if f.kind == INT and bad == 10**13:
        bad = f.hi + 1  # just past the declared bound
    return dict(raw, **{f.name: bad}), f.name


@settings(max_examples=200, deadline=None)
@given(case=corrupted())
def test_one_corrupted_field_is_refused_naming_it(case):
    record, name = case
    got, errors = SCHEMA.normalise(record)
    assert got is None
    assert any(f"'{name}'" in e for e in errors), errors
    assert builders_for(SCHEMA)[record["type"]](record) is None
