"""Malformed events are refused by `points import` with `file:line: reason`, exit
code 1, no traceback, and the database left byte-for-byte as it was."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from points.cli.main import cli
from points.ledger import db
from tests.reliability.helpers import ENV, ROOT, content_digest, file_digest

GOOD = {"id": "g1", "type": "wesmo_payment", "member": "M1", "at": "2026-03-05T10:00:00",
        "amount": 500, "merchant": "other"}
BOOKING = {"id": "g2", "type": "ex_booking", "member": "M1", "at": "2025-12-01T10:00:00",
           "amount": 12000, "service": "ex", "ride_date": "2025-12-27", "segments": ["sanyo"]}
STORED = {"id": "s1", "type": "video_view", "member": "M9", "at": "2026-03-03T09:00:00", "video": "v1"}


def line(**over) -> str:
    ev = dict(GOOD)
    for k, v in over.items():
        if v is ...:
            ev.pop(k, None)
        else:
            ev[k] = v
    return json.dumps(ev, ensure_ascii=False)


def booking(**over) -> str:
    ev = dict(BOOKING, **over)
    return json.dumps(ev)


# name -> (file name, text lines; the bad one is the LAST line unless `bad_line` says)
CASES = {
    "amount as string": ("e.jsonl", [line(amount="500")]),
    "amount as float": ("e.jsonl", [line(amount=500.5)]),
    "amount as bool": ("e.jsonl", [line(amount=True)]),
    "member as number": ("e.jsonl", [line(member=12)]),
    "member empty": ("e.jsonl", [line(member="")]),
    "member with colon": ("e.jsonl", [line(member="a:b")]),
    "member with space": ("e.jsonl", [line(member="a b")]),
    "member too long": ("e.jsonl", [line(member="M" * 65)]),
    "bad datetime (Feb 30)": ("e.jsonl", [line(at="2026-02-30T10:00:00")]),
    "bad datetime (words)": ("e.jsonl", [line(at="yesterday")]),
    "bad datetime (number)": ("e.jsonl", [line(at=20260305)]),
    "bad datetime (hour 25)": ("e.jsonl", [line(at="2026-03-05T25:00:00")]),
    "bad date field": ("e.jsonl", [booking(ride_date="2025-13-01")]),
    "unknown type": ("e.jsonl", [line(type="wesmo_paymnt")]),
    "type null": ("e.jsonl", [line(type=None)]),
    "unknown field": ("e.jsonl", [line(colour="blue")]),
    "ref on a non-undo type": ("e.jsonl", [line(ref="g0")]),
    "missing id": ("e.jsonl", [line(id=...)]),
    "missing type": ("e.jsonl", [line(type=...)]),
    "missing member": ("e.jsonl", [line(member=...)]),
    "missing at": ("e.jsonl", [line(at=...)]),
    "missing required type field": ("e.jsonl", [booking(service=None)]),
    "id null": ("e.jsonl", [line(id=None)]),
    "enum out of range": ("e.jsonl", [booking(service="shinkansen")]),
    "segment unknown": ("e.jsonl", [booking(segments=["sanyo", "moon"])]),
    "segments not a list": ("e.jsonl", [booking(segments="sanyo")]),
    "bool as string": ("e.jsonl", [booking(ticketless="yes")]),
    "broken JSON": ("e.jsonl", [line(), '{"id": "x2", "type": "video_view",']),
    "not an object": ("e.jsonl", ["[1, 2, 3]"]),
    "bare string": ("e.jsonl", ['"hello"']),
    "trailing garbage": ("e.jsonl", [line() + " }"]),
    "NaN": ("e.jsonl", [line().replace('"amount": 500', '"amount": NaN')]),
    "huge integer": ("e.jsonl", [line(amount=10 ** 30)]),
    "integer with 5000 digits": ("e.jsonl", [line().replace('"amount": 500', '"amount": ' + "9" * 5000)]),
    "huge float": ("e.jsonl", [line().replace('"amount": 500', '"amount": 1e400')]),
    "deeply nested": ("e.jsonl", ["[" * 100_000 + "]" * 100_000]),
    "negative points": ("e.jsonl", [json.dumps({"id": "r1", "type": "redemption", "member": "M1",
                                                 "at": "2026-05-01T10:00:00", "points": -5, "use": "fare"})]),
    "zero points": ("e.jsonl", [json.dumps({"id": "r1", "type": "redemption", "member": "M1",
                                             "at": "2026-05-01T10:00:00", "points": 0, "use": "fare"})]),
    "negative booking amount": ("e.jsonl", [booking(amount=-100)]),
    "positive cashback": ("e.jsonl", [json.dumps({"id": "c1", "type": "card_cashback", "member": "M1",
                                                   "at": "2025-05-01T10:00:00", "amount": 100})]),
    "dangling ref": ("e.jsonl", [json.dumps({"id": "x1", "type": "cancel", "member": "M1",
                                             "at": "2026-03-10T10:00:00", "ref": "nope"})]),
    "ref to itself": ("e.jsonl", [json.dumps({"id": "x1", "type": "cancel", "member": "M1",
                                              "at": "2026-03-10T10:00:00", "ref": "x1"})]),
    "duplicate in file, other content": ("e.jsonl", [line(), line(amount=501)]),
    "duplicate of a stored event, other content": (
        "e.jsonl", [json.dumps(dict(STORED, video="v2"))]),
    "lone surrogate": ("e.jsonl", [line().replace('"M1"', '"M\\ud800"')]),
    "csv missing column 'at'": ("e.csv", ["id,type,member,amount", "c1,wesmo_payment,M1,500"], 1),
    "csv missing column 'id' and 'type'": ("e.csv", ["member,at", "M1,2026-03-05T10:00:00"], 1),
    "csv unknown column": ("e.csv", ["id,type,member,at,colour",
                                     "c1,video_view,M1,2026-03-05T10:00:00,red"], 1),
    "csv too many cells": ("e.csv", ["id,type,member,at,video",
                                     "c1,video_view,M1,2026-03-05T10:00:00,v1,extra"]),
    "csv bad integer": ("e.csv", ["id,type,member,at,amount",
                                  "c1,wesmo_payment,M1,2026-03-05T10:00:00,12x"]),
    "csv missing required cell": ("e.csv", ["id,type,member,at,video",
                                            "c1,video_view,M1,2026-03-05T10:00:00,"]),
    "csv bad date": ("e.csv", ["id,type,member,at,video", "c1,video_view,M1,2026-02-30,v1"]),
    "csv unknown type": ("e.csv", ["id,type,member,at", "c1,nope,M1,2026-03-05T10:00:00"]),
    # Strict input (issue 14): refused although json.loads / fromisoformat would take them.
    "duplicate JSON key": ("e.jsonl", [line().replace('"amount": 500', '"amount": 1, "amount": 900000000')]),
    "duplicate JSON key, spaced": ("e.jsonl", [line().replace('"amount": 500', '"amount" : 1,"amount":9')]),
    "NUL in id": ("e.jsonl", [line(id="g\x009")]),
    "newline in id": ("e.jsonl", [line(id="g\n9")]),
    "zero-width space in id": ("e.jsonl", [line(id="g\u200b9")]),
    "id with a trailing space": ("e.jsonl", [line(id="g9 ")]),
    "id of 129 characters": ("e.jsonl", [line(id="g" * 129)]),
    "id not in NFC": ("e.jsonl", [line(id="e\u0301")]),
    "member not in NFC": ("e.jsonl", [line(member="Jose\u0301")]),
    "ref to another member's event": ("e.jsonl", [json.dumps({"id": "x1", "type": "cancel", "member": "M2",
                                                                "at": "2026-03-10T10:00:00", "ref": "ok1"})]),
    "week-date timestamp": ("e.jsonl", [line(at="2025-W34-3T10:00:00")]),
    "basic-format timestamp": ("e.jsonl", [line(at="20250820T100000")]),
    "timestamp without minutes": ("e.jsonl", [line(at="2025-08-20T10")]),
    "timestamp with a space for T": ("e.jsonl", [line(at="2025-08-20 10:00:00")]),
    "bare date as timestamp": ("e.jsonl", [line(at="2025-08-20")]),
    "fractional seconds": ("e.jsonl", [line(at="2025-08-20T10:00:00.5")]),
    "offset without colon": ("e.jsonl", [line(at="2025-08-20T10:00:00+0900")]),
    "year 1999": ("e.jsonl", [line(at="1999-12-31T23:59:59")]),
    "year 2100": ("e.jsonl", [line(at="2100-01-01T00:00:00")]),
    "year 9999 with an offset": ("e.jsonl", [line(at="9999-12-31T23:00:00-05:00")]),
    "week date as a date field": ("e.jsonl", [booking(ride_date="2025-W52-5")]),
    "csv id with a trailing space": ("e.csv", ["id,type,member,at,video",
                                               "c1 ,video_view,M1,2026-03-05T10:00:00,v1"]),
    "csv member with a leading space": ("e.csv", ["id,type,member,at,video",
                                                  "c1,video_view, M1,2026-03-05T10:00:00,v1"]),
    "csv empty id made of spaces": ("e.csv", ["id,type,member,at,video",
                                              "   ,video_view,M1,2026-03-05T10:00:00,v1"]),
}



@pytest.fixture(scope="module")
def base_db(tmp_path_factory):
    """A database with a few events already imported (so that 'unchanged' means something)."""
    d = tmp_path_factory.mktemp("bad-events")
    path = d / "points.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", str(path), "init"]).exit_code == 0
    good = d / "good.jsonl"
    good.write_text(json.dumps(STORED) + "\n" + json.dumps(dict(GOOD, id="g0")) + "\n")
    r = runner.invoke(cli, ["--db", str(path), "import", str(good)])
    assert r.exit_code == 0, r.output
    return path


def refuse(base_db, tmp_path, name: str, data: bytes, bad_line: int | None):
    path = tmp_path / "points.db"
    shutil.copyfile(base_db, path)
    before_file = file_digest(path)
    conn = db.connect(path, readonly=True)
    before = content_digest(conn)
    conn.close()
    src = tmp_path / name
    src.write_bytes(data)
    r = CliRunner().invoke(cli, ["--db", str(path), "import", str(src)])
    out = r.output  # stdout and stderr as the user sees them
    assert r.exit_code == 1, (r.exit_code, out)
    assert isinstance(r.exception, SystemExit), out  # a clean exit, not an escaped exception
    lines = out.splitlines()
    assert re.fullmatch(r"error: (1 problem|\d+ problems) in the input; nothing imported", lines[-1]), out
    assert all(ln.startswith(f"{src}:") for ln in lines[:-1]), out
    if bad_line is not None:
        assert f"{src}:{bad_line}: " in out, out
    conn = db.connect(path, readonly=True)
    after = content_digest(conn)
    conn.close()
    assert after == before, "the database content changed"
    assert file_digest(path) == before_file, "the database file changed"
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_line_is_refused_with_file_line_reason_and_nothing_changes(base_db, tmp_path, case):
    spec = CASES[case]
    name, lines = spec[0], spec[1]
    bad_line = spec[2] if len(spec) > 2 else len(lines)
    # a valid line first (except for CSV, where the header is line 1) to show that the
    # whole file is refused, not just the bad line
    if name.endswith(".jsonl"):
        lines = [json.dumps(dict(BOOKING, id="ok1"))] + lines
        bad_line += 1
    refuse(base_db, tmp_path, name, ("\n".join(lines) + "\n").encode(), bad_line)


def test_non_utf8_line_is_refused_at_its_line(base_db, tmp_path):
    data = (json.dumps(BOOKING) + "\n").encode() + b'{"id": "\xff"}\n'
    out = refuse(base_db, tmp_path, "e.jsonl", data, 2)
    assert "e.jsonl:2: not UTF-8 text" in out


@pytest.mark.parametrize("target, reason", [("nope.jsonl", "no such file"),
                                            (".", "is a directory, not an events file")])
def test_missing_file_and_directory_are_refused(base_db, tmp_path, target, reason):
    path = tmp_path / "points.db"
    shutil.copyfile(base_db, path)
    before = file_digest(path)
    r = CliRunner().invoke(cli, ["--db", str(path), "import", str(tmp_path / target)])
    assert r.exit_code == 1, r.output
    assert r.output == f"{tmp_path / target}: {reason}\nerror: 1 problem in the input; nothing imported\n"
    assert file_digest(path) == before


# --- generated: a valid event of any type, then one corruption that must make it invalid

VALID = {
    "member_withdrawn": {},
    "campaign_entry": {"campaign": "yearend-2025"},
    "ex_booking": {"amount": 1000, "service": "ex", "ride_date": "2025-12-27", "segments": ["sanyo"]},
    "card_payment": {"amount": 1000, "merchant": "other", "card": "gold"},
    "card_cashback": {"amount": -100},
    "wesmo_charge": {"amount": 1000, "source": "atm"},
    "icoca_charge": {"amount": 1000, "source": "cash"},
    "wesmo_payment": {"amount": 100, "merchant": "other", "paid_with_points": False},
    "video_view": {"video": "v1"},
    "mynapoint_application": {},
    "redemption": {"points": 10, "use": "fare"},
}
WRONG = {  # values of the wrong type for a field of the given name (and what strict input refuses)
    "id": [1, True, [], {}, "", " h1", "h1 ", "h\x001", "h\u200b1", "e\u0301", "x" * 129],
    "type": [1, [], "", "Wesmo_Payment"],
    "member": [1, "", "a:b", " ", "x" * 65, ["M1"], "M\x07", "Jose\u0301"],
    "at": ["2026-02-29T10:00:00", "10:00", "", 1, "2026-03-05 25:00", "2026-03-05", "2026-03-05T10:00:00.5",
           "2026-03-05 10:00:00", "2026-W10-4T10:00:00", "20260305T100000", "2026-03-05T10",
           "2026-03-05T10:00:00+0900", "1999-12-31T23:59:59", "2100-01-01T00:00:00"],
    "amount": ["1", 1.5, True, 10 ** 13, -10 ** 13, [1]],
    "points": [0, -1, "1", 1.0, 10 ** 13],
    "use": ["air", 1, ""],
    "service": ["EX", 1],
    "ride_date": ["2025-12-32", "tomorrow", 20251227],
    "segments": [[], ["moon"], "sanyo", [1]],
    "campaign": ["", 1],
    "card": ["platinum", True],
    "source": ["mattress", 0],
    "merchant": [1, ""],
    "paid_with_points": ["false", 0],
    "video": ["", 7],
}


@st.composite
def corrupt_line(draw):
    etype = draw(st.sampled_from(sorted(VALID)))
    ev = {"id": "h1", "type": etype, "member": "M1", "at": "2026-03-05T10:00:00", **VALID[etype]}
    how = draw(st.sampled_from(["wrong value", "drop required", "unknown field", "truncate", "duplicate key"]))
    if how == "wrong value":
        field = draw(st.sampled_from([f for f in ev if f in WRONG]))
        ev[field] = draw(st.sampled_from(WRONG[field]))
        if field == "type":
            pass
        elif field == "amount" and etype in ("card_payment",) and isinstance(ev[field], int) \
                and not isinstance(ev[field], bool) and abs(ev[field]) <= 10 ** 12:
            ev[field] = "x"
        text = json.dumps(ev)
    elif how == "drop required":
        required = ["id", "type", "member", "at"] + [
            f for f in VALID[etype] if f not in ("merchant", "card", "paid_with_points", "source")
            and not (f == "amount" and etype in ())]
        field = draw(st.sampled_from(required))
        del ev[field]
        text = json.dumps(ev)
    elif how == "unknown field":
        ev[draw(st.sampled_from(["colour", "Amount", "memberId", "ref"]))] = "x"
        text = json.dumps(ev)
    elif how == "duplicate key":  # the same key again, even with the same value
        field = draw(st.sampled_from(sorted(ev)))
        text = json.dumps(ev)[:-1] + ", " + json.dumps({field: ev[field]})[1:]
    else:
        full = json.dumps(ev)
        text = full[: draw(st.integers(1, len(full) - 1))]
    return text


@settings(suppress_health_check=list(HealthCheck))
@given(text=corrupt_line())
def test_generated_bad_lines_are_refused(base_db, tmp_path_factory, text):
    tmp = tmp_path_factory.mktemp("gen")
    lines = [json.dumps(dict(BOOKING, id="ok1")), text]
    refuse(base_db, tmp, "e.jsonl", ("\n".join(lines) + "\n").encode(), 2)


def test_cli_subprocess_refuses_bad_events_without_traceback(base_db, tmp_path):
    """The same through the installed entry point in a fresh process."""
    path = tmp_path / "points.db"
    shutil.copyfile(base_db, path)
    before = file_digest(path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(BOOKING) + "\n" + line(amount="12") + "\n" + "{oops\n")
    badcsv = tmp_path / "bad.csv"
    badcsv.write_text("id,type,member\nc1,video_view,M1\n")
    p = subprocess.run([sys.executable, "-m", "points.cli.main", "--db", str(path), "import", str(bad),
                        str(badcsv)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "Traceback" not in out
    assert f"{bad}:2: " in out and f"{bad}:3: " in out and f"{badcsv}:1: " in out, out
    assert file_digest(path) == before
