"""Property: any valid events, written as JSONL or CSV, come back from
`iter_events` normalised exactly as the contract says, hash-chained."""

from __future__ import annotations

import csv
import datetime as dt
import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from points.ledger import db
from points.ledger.events import GENESIS_HASH, event_hash, import_files, iter_events

TOKYO = dt.timezone(dt.timedelta(hours=9))
SEGMENTS = ["tokaido", "sanyo", "kyushu", "hokuriku", "jrwest_local", "other"]
SOURCES = ["jwest_card", "credit_card", "bank", "atm", "cash", "point_charge", "gas_station"]
MAX = 10**12

# Strings that survive every format unchanged (CSV trims cells; ':' and spaces are not member-safe;
# ids and members are refused with control or invisible characters, or not in NFC).
words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp"), blacklist_characters=":"),
    min_size=1, max_size=10,
).map(lambda w: unicodedata.normalize("NFC", w))
amount = st.integers(-MAX, MAX)


@st.composite
def moment(draw):
    """(text as written, expected Tokyo local 'YYYY-MM-DDTHH:MM:SS')."""
    local = draw(st.datetimes(dt.datetime(2000, 1, 2), dt.datetime(2098, 12, 30))).replace(microsecond=0)
    how = draw(st.sampled_from(["naive", "Z", "offset"]))
    if how == "naive":
        return local.isoformat(), local.isoformat()
    minutes = draw(st.integers(-12 * 4, 14 * 4)) * 15 if how == "offset" else 0
    tz = dt.timezone(dt.timedelta(minutes=minutes))
    text = local.replace(tzinfo=TOKYO).astimezone(tz).isoformat()
    if how == "Z":
        text = text.replace("+00:00", "Z")
    return text, local.isoformat()


def opt(draw, strategy):
    return draw(st.one_of(st.none(), strategy))


@st.composite
def event(draw, i: int, earlier: list[str]):
    """(raw event as written, expected normalised event)."""
    types = ["member_withdrawn", "campaign_entry", "ex_booking", "card_payment", "card_cashback",
             "wesmo_charge", "icoca_charge", "wesmo_payment", "video_view", "mynapoint_application",
             "health_insurance_registration", "public_account_registration", "redemption"]
    if earlier:
        types += ["cancel", "refund", "stopover"]
    type_ = draw(st.sampled_from(types))
    at_text, at = draw(moment())
    raw = {"id": f"{draw(words)}#{i}", "type": type_, "member": draw(words), "at": at_text}
    norm = dict(raw, at=at, amount=None)

    def field(name, strategy, default, required=False):
        value = draw(strategy) if required else opt(draw, strategy)
        if value is not None:
            raw[name] = value
        norm[name] = default if value is None else value

    if type_ == "ex_booking":
        field("amount", st.integers(0, MAX), None, required=True)
        field("service", st.sampled_from(["ex", "e5489"]), None, required=True)
        field("ride_date", st.dates(dt.date(2000, 1, 1), dt.date(2099, 1, 1)).map(str), None, required=True)
        field("segments", st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4), None, required=True)
        field("product", words, "")
        field("ticketless", st.booleans(), False)
        field("payment", st.sampled_from(["credit_card", "station", "convenience_store", "bank"]),
              "credit_card")
        field("phone_change", st.booleans(), False)
        field("railway_points", st.booleans(), False)
    elif type_ in ("cancel", "refund", "stopover"):
        ref, owner = draw(st.sampled_from(earlier))
        raw["ref"] = norm["ref"] = ref
        raw["member"] = norm["member"] = owner  # a ref names the same member's event
        field("amount", amount, None)
    elif type_ == "card_payment":
        field("amount", amount, None, required=True)
        field("merchant", words, "other")
        field("card", st.sampled_from(["standard", "osc", "gold"]), "standard")
    elif type_ == "card_cashback":
        field("amount", st.integers(-MAX, 0), None, required=True)
    elif type_ in ("wesmo_charge", "icoca_charge"):
        field("amount", st.integers(1, MAX), None, required=True)
        field("source", st.sampled_from(SOURCES), None)
    elif type_ == "wesmo_payment":
        field("amount", st.integers(0, MAX), None, required=True)
        field("merchant", words, "other")
        field("paid_with_points", st.booleans(), False)
    elif type_ == "campaign_entry":
        field("campaign", words, None, required=True)
        field("amount", amount, None)
    elif type_ == "video_view":
        field("video", words, None, required=True)
    elif type_ == "redemption":
        field("points", st.integers(1, MAX), None, required=True)
        field("use", st.sampled_from(["fare", "charge", "shopping", "wesmo"]), None, required=True)
        field("amount", amount, None)
    else:
        field("amount", amount, None)
    return raw, norm


@st.composite
def batches(draw):
    out = []
    for i in range(draw(st.integers(1, 25))):
        out.append(draw(event(i, [(n["id"], n["member"]) for _, n in out])))
    return out


def csv_cell(value, style):
    if value is None:
        return ""
    if isinstance(value, bool):
        return {"word": "true" if value else "FALSE", "digit": "1" if value else "0",
                "yes": "Yes" if value else "no"}[style]
    if isinstance(value, list):
        return {"word": ";".join(value), "digit": json.dumps(value), "yes": " | ".join(value)}[style]
    return str(value)


def check_stored(conn, expected):
    assert list(iter_events(conn)) == expected
    prev = GENESIS_HASH
    for row in conn.execute("SELECT id, day, time, weekday, amount, ref, body, prev_hash, hash, source"
                            " FROM events ORDER BY seq"):
        id_, day, time, weekday, amt, ref, body, prev_hash, h, source = row
        norm = json.loads(body)
        assert id_ == norm["id"] and amt == norm["amount"] and ref == norm.get("ref")
        assert day + "T" + time == norm["at"]
        assert weekday == dt.date.fromisoformat(day).weekday()
        assert body == json.dumps(norm, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert prev_hash == prev and h == event_hash(prev_hash, body, source)
        prev = h


@given(batch=batches(), style=st.sampled_from(["word", "digit", "yes"]))
def test_valid_events_round_trip_through_jsonl_and_csv(tmp_path_factory, batch, style):
    tmp = tmp_path_factory.mktemp("prop")
    expected = [norm for _, norm in batch]

    jsonl = tmp / "events.jsonl"
    jsonl.write_text("".join(json.dumps(raw, ensure_ascii=False) + "\n" for raw, _ in batch), encoding="utf-8")
    conn = db.connect(tmp / "j.db")
    report = import_files(conn, [jsonl])
    assert report.errors == () and report.added == len(batch)
    check_stored(conn, expected)
    again = import_files(conn, [jsonl])
    assert (again.added, again.skipped, again.errors) == (0, len(batch), ())

    columns = sorted({k for raw, _ in batch for k in raw})
    path = tmp / "events.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for raw, _ in batch:
            w.writerow([csv_cell(raw.get(c), style) for c in columns])
    conn2 = db.connect(tmp / "c.db")
    report = import_files(conn2, [path])
    assert report.errors == () and report.added == len(batch)
    check_stored(conn2, expected)
    # The same events from the other format are all duplicates, hence skipped.
    cross = import_files(conn2, [jsonl])
    assert (cross.added, cross.skipped, cross.errors) == (0, len(batch), ())
