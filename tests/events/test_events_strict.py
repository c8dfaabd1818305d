"""Strict, streamed input: each rule of docs/events.md both ways and at its
boundaries, the error cap and counts, empty inputs, bounded lines, and
standard input, pipes and FIFOs read as streams."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from points.ledger import db
from points.ledger.event_files import MAX_LINE, read_records
from points.ledger.event_schema import normalise
from points.ledger.events import import_files, import_records

POINTS = [sys.executable, "-m", "points.cli.main"]


def event(**over) -> dict:
    ev = {"id": "V1", "type": "video_view", "member": "W1", "at": "2026-03-05T10:00:00", "video": "v"}
    ev.update(over)
    return {k: v for k, v in ev.items() if v is not ...}


def reasons(**over) -> list[str]:
    out, errors = normalise(event(**over))
    assert (out is None) == bool(errors)
    return errors


def accepted(**over) -> dict:
    out, errors = normalise(event(**over))
    assert errors == [], errors
    return out


# --------------------------------------------------------------------------- timestamps

@pytest.mark.parametrize("text, tokyo", [
    ("2026-03-05T10:00:00", "2026-03-05T10:00:00"),  # no offset: Asia/Tokyo, the one default
    ("2026-03-05T01:00:00Z", "2026-03-05T10:00:00"),
    ("2026-03-05T10:00:00+09:00", "2026-03-05T10:00:00"),
    ("2026-03-04T20:30:00-05:30", "2026-03-05T11:00:00"),
    ("2026-03-05T10:00:00+23:59", "2026-03-04T19:01:00"),
    ("2000-01-01T00:00:00", "2000-01-01T00:00:00"),  # first second of the range
    ("1999-12-31T15:00:00Z", "2000-01-01T00:00:00"),  # in range once in Tokyo time
    ("2099-12-31T23:59:59", "2099-12-31T23:59:59"),  # last second of the range
])
def test_timestamps_accepted(text, tokyo):
    assert accepted(at=text)["at"] == tokyo


FORM = ("field 'at' must be an ISO-8601 datetime YYYY-MM-DDTHH:MM:SS with an offset (Z, +HH:MM or"
        " -HH:MM; none means Asia/Tokyo), e.g. 2025-12-26T10:00:00+09:00")


@pytest.mark.parametrize("text, message", [
    ("2025-W34-3T10:00:00", FORM), ("20250820T100000", FORM), ("2025-08-20T10", FORM),
    ("2025-08-20T10:00", FORM), ("2025-08-20 10:00:00", FORM), ("2025-08-20", FORM),
    ("2025-08-20T10:00:00.5", FORM), ("2025-08-20T10:00:00z", FORM), ("2025-08-20T10:00:00+0900", FORM),
    ("2025-08-20T10:00:00+09", FORM), (" 2025-08-20T10:00:00", FORM), ("2025-08-20T10:00:00 ", FORM),
    ("２０２５-08-20T10:00:00", FORM), ("2025-08-20t10:00:00", FORM), ("", FORM),
    ("2025-02-29T10:00:00", "field 'at' must be a real date and time"),
    ("2025-08-20T24:00:00", "field 'at' must be a real date and time"),
    ("2025-08-20T10:00:00+24:00", "field 'at' must be a real date and time"),
    ("1999-12-31T23:59:59", "field 'at' must be in the years 2000-2099 (Asia/Tokyo)"),
    ("2000-01-01T00:00:00+09:01", "field 'at' must be in the years 2000-2099 (Asia/Tokyo)"),
    ("2099-12-31T15:00:00Z", "field 'at' must be in the years 2000-2099 (Asia/Tokyo)"),
    ("2100-01-01T00:00:00", "field 'at' must be in the years 2000-2099 (Asia/Tokyo)"),
    ("9999-12-31T23:00:00-05:00", "field 'at' must be in the years 2000-2099 (Asia/Tokyo)"),
])
def test_timestamps_refused(text, message):
    (reason,) = reasons(at=text)
    assert reason.startswith(message), reason


@pytest.mark.parametrize("value, ok", [
    ("1900-01-01", True), ("2099-12-31", True), ("1899-12-31", False), ("2100-01-01", False),
    ("2025-02-29", False), ("2024-02-29", True), ("2025-W52-5", False), ("20251226", False),
    ("2025-12-26T00:00:00", False), ("2025-1-26", False),
])
def test_date_fields_are_exactly_yyyy_mm_dd_in_1900_2099(value, ok):
    record = event(type="member_profile", birthday=value, video=...)
    got, errors = normalise(record)
    assert (got is not None) == ok, errors
    if ok:
        assert got["birthday"] == value
    else:
        assert errors[0].startswith("field 'birthday' must be")


# --------------------------------------------------------------------------- ids and members

@pytest.mark.parametrize("field", ["id", "member"])
@pytest.mark.parametrize("value, message", [
    ("W\x00", "must not contain control characters"),
    ("W\x7f", "must not contain control characters"),
    ("Wé\u200b", "must not contain control or invisible characters"),
    ("Wé\u202e", "must not contain control or invisible characters"),
    ("Jose\u0301", "must be in Unicode NFC form"),
])
def test_ids_and_members_refuse_invisible_and_unnormalised_text(field, value, message):
    (reason,) = reasons(**{field: value})
    assert reason.startswith(f"field {field!r} {message}"), reason


@pytest.mark.parametrize("value", [" V1", "V1 ", "\u3000V1", "V1\u00a0"])
def test_ids_with_surrounding_spaces_are_refused(value):
    (reason,) = reasons(id=value)
    assert reason.startswith("field 'id' must not start or end with a space"), reason


@pytest.mark.parametrize("value", ["V 1", "José", "会員-7", "x" * 128, "a\u3000b"])
def test_ids_accepted(value):
    assert accepted(id=value)["id"] == value


def test_id_length_boundary():
    assert accepted(id="x" * 128)
    assert reasons(id="x" * 129) == ["field 'id' must be at most 128 characters, got \"" + "x" * 47 + "...\""]


def test_members_keep_their_rule_and_accept_nfc_text():
    assert accepted(member="José")["member"] == "José"
    assert accepted(member="M" * 64)
    assert reasons(member=" W1")[0].startswith("field 'member' must be 1-64 characters without whitespace")
    assert reasons(member="M" * 65)[0].startswith("field 'member' must be 1-64 characters")


def test_text_length_boundary():
    assert accepted(video="v" * 1000)
    assert reasons(video="v" * 1001)[0].startswith("field 'video' must be at most 1,000 characters")


# --------------------------------------------------------------------------- files

@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "points.db")
    assert import_records(c, [("seed:1", {"id": "B1", "type": "ex_booking", "member": "W1",
                                          "at": "2025-12-01T10:00:00", "amount": 100, "service": "ex",
                                          "ride_date": "2025-12-27", "segments": ["sanyo"]})]).added == 1
    yield c
    c.close()


def write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n"
                            for x in lines), encoding="utf-8")
    return path


def test_duplicate_json_keys_are_refused_and_single_keys_are_not(conn, tmp_path):
    good = '{"id": "C1", "type": "card_payment", "member": "W1", "at": "2026-01-01T10:00:00", "amount": 1}'
    bad = [good.replace('"amount": 1', '"amount": 1, "amount": 900000000'),
           good.replace('"amount": 1', '"amount" :1,"amount":2'),
           good.replace('"amount": 1', '"amount": 1,\t"amount": 2'),
           good.replace('"amount": 1', '"amount": 1, "amo\\u0075nt": 2'),
           good.replace('"member": "W1"', '"member": "W1", "member": "W1"')]
    path = write(tmp_path / "e.jsonl", [good.replace("C1", f"C{i}") for i in range(2, 4)] + bad)
    report = import_files(conn, [path])
    assert [e.split(": ", 1)[1] for e in report.errors] == [
        "the key 'amount' appears twice in the object"] * 4 + ["the key 'member' appears twice in the object"]
    assert [int(e.split(":")[1]) for e in report.errors] == [3, 4, 5, 6, 7]
    # Keys that only look alike, and a `":` inside a value, are not duplicates.
    fine = write(tmp_path / "f.jsonl", [
        good.replace('"amount": 1', '"amount": 1, "merchant": "a\\":b"'),
        good.replace("C1", "C9").replace('"amount": 1', '"amount":1,"card" : "gold"')])
    assert import_files(conn, [fine]).errors == ()


def test_the_same_whitespace_rule_for_csv_and_jsonl(conn, tmp_path):
    csv_path = tmp_path / "e.csv"
    csv_path.write_text("id,type,member,at,video\nV1 ,video_view,W1,2026-03-05T10:00:00,v\n"
                        "V2,video_view,W2 ,2026-03-05T10:00:00,v\nV3,video_view,W3,2026-03-05T10:00:00, v \n")
    jsonl = write(tmp_path / "e.jsonl", [event(id="V1 "), event(id="V2", member="W2 ")])
    c = import_files(conn, [csv_path])
    j = import_files(conn, [jsonl])
    strip = lambda errors: [e.split(": ", 1)[1].split(", got")[0] for e in errors]  # noqa: E731
    assert strip(c.errors) == strip(j.errors) == [
        "field 'id' must not start or end with a space",
        "field 'member' must be 1-64 characters without whitespace or ':'"]
    # Other CSV cells are still trimmed: " v " is the video "v".
    ok = tmp_path / "ok.csv"
    ok.write_text("id,type,member,at,video\nV3,video_view,W3,2026-03-05T10:00:00, v \n")
    assert import_files(conn, [ok]).added == 1


def test_a_ref_must_name_the_same_members_event(conn, tmp_path):
    path = write(tmp_path / "e.jsonl", [
        {"id": "X1", "type": "cancel", "member": "W2", "at": "2026-01-01T10:00:00", "ref": "B1"},
        {"id": "B2", "type": "card_payment", "member": "W2", "at": "2026-01-01T10:00:00", "amount": 5},
        {"id": "X2", "type": "refund", "member": "W1", "at": "2026-01-01T10:00:00", "ref": "B2"},
    ])
    report = import_files(conn, [path])
    assert report.errors == (
        f"{path}:1: 'ref' names event 'B1' of another member ('W1'); an event can only undo its own member's events",
        f"{path}:3: 'ref' names event 'B2' of another member ('W2'); an event can only undo its own member's events",
    )
    ok = write(tmp_path / "ok.jsonl", [
        {"id": "X1", "type": "cancel", "member": "W1", "at": "2026-01-01T10:00:00", "ref": "B1"}])
    assert import_files(conn, [ok]).added == 1


def test_errors_are_capped_and_counted_by_reason(conn, tmp_path):
    lines = [event(id=f"V{i}", video=1) for i in range(30)] + [event(id=f"U{i}", colour=i) for i in range(7)]
    lines.insert(3, "{broken")
    path = write(tmp_path / "e.jsonl", lines)
    report = import_files(conn, [path], max_errors=5)
    assert report.error_count == 38 and len(report.errors) == 5
    assert [int(e.split(":")[1]) for e in report.errors] == [1, 2, 3, 4, 5]  # the first ones, by line
    assert report.reasons == (("field 'video' must be a non-empty string", 30), ("unknown field", 7),
                              ("invalid JSON", 1))
    assert import_files(conn, [path]).errors == import_files(conn, [path], max_errors=None).errors
    assert len(import_files(conn, [path]).errors) == 38
    assert import_files(conn, [path], max_errors=0).errors == ()


def test_late_errors_still_come_in_line_order_under_the_cap(conn, tmp_path):
    # Errors found late (a dangling ref is known only at the end) come before
    # later lines' errors when they are on an earlier line.
    lines = [{"id": "X0", "type": "cancel", "member": "W1", "at": "2026-01-01T10:00:00", "ref": "nope"}]
    lines += [event(id=f"V{i}", video=1) for i in range(10)]
    report = import_files(conn, [write(tmp_path / "e.jsonl", lines)], max_errors=2)
    assert [int(e.split(":")[1]) for e in report.errors] == [1, 2]
    assert "'ref' names event 'nope' which does not exist" in report.errors[0]


@pytest.mark.parametrize("content, why", [
    (b"", "(the input is empty)"), (b"\n  \n\n", "(only blank lines or a CSV header)"),
])
def test_an_input_without_events_is_an_error(conn, tmp_path, content, why):
    path = tmp_path / "e.jsonl"
    path.write_bytes(content)
    report = import_files(conn, [path])
    assert report.errors == (f"{path}: no events {why}",)
    header_only = tmp_path / "h.csv"
    header_only.write_text("id,type,member,at\n")
    assert import_files(conn, [header_only]).errors == (
        f"{header_only}: no events (only blank lines or a CSV header)",)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ""])
def test_a_line_longer_than_the_limit_stops_the_input(conn, tmp_path, suffix):
    first = (json.dumps(event()) if suffix != ".csv" else "id,type,member,at,video")
    long_line = '{"id": "' + "x" * MAX_LINE + '"}' if suffix != ".csv" else "x" * (MAX_LINE + 1)
    path = tmp_path / f"e{suffix}"
    path.write_text(first + "\n" + long_line + "\n" + json.dumps(event(id="V9")) + "\n")
    report = import_files(conn, [path])
    assert report.errors[-1] == (f"{path}:2: line longer than 65,536 bytes (the limit of one event);"
                                 " the rest of the input was not read")
    # At the limit itself the line is read (and judged on its content).
    exact = tmp_path / f"x{suffix or '.jsonl'}"
    padded = json.dumps(event(video="v" * 900))
    exact.write_text(padded + " " * (MAX_LINE - len(padded)) + "\n")
    if suffix != ".csv":
        assert import_files(conn, [exact]).errors == ()


def test_an_endless_line_does_not_grow_memory(tmp_path):
    class Endless:  # like /dev/zero
        def read(self, n=-1):
            return b"\0" * (n if n and n > 0 else 65536)

    from points.ledger import event_files
    with pytest.raises(event_files.EventError, match="line longer than"):
        list(event_files._read_jsonl(Endless()))
    with pytest.raises(event_files.EventError, match="line longer than"):
        list(event_files._read_csv(Endless()))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_points(args, **kw):
    return subprocess.run([*POINTS, *args], capture_output=True, timeout=120, **kw)


@pytest.fixture
def db_file(tmp_path):
    path = tmp_path / "p.db"
    assert run_points(["--db", str(path), "init"]).returncode == 0
    return path


@pytest.mark.slow
def test_stdin_pipe_fifo_and_dev_stdin_stream_and_refusals_change_no_byte(tmp_path, db_file):
    lines = [event(id=f"V{i}") for i in range(50)]
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    r = run_points(["--db", str(db_file), "import", "-"], input=data)
    assert r.returncode == 0 and r.stdout.decode() == "<stdin>: imported 50 events (0 skipped)\n", r
    r = run_points(["--db", str(db_file), "import", "/dev/stdin"], input=data)
    assert r.returncode == 0 and "imported 0 events (50 skipped)" in r.stdout.decode(), r
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    more = "".join(json.dumps(event(id=f"F{i}")) + "\n" for i in range(3)).encode()
    writer = threading.Thread(target=lambda: fifo.write_bytes(more))
    writer.start()
    r = run_points(["--db", str(db_file), "import", str(fifo)])
    writer.join()
    assert r.returncode == 0 and f"{fifo}: imported 3 events" in r.stdout.decode(), r

    before = digest(db_file)
    for bad_input, expected in [
        (b"", "<stdin>: no events (the input is empty)"),
        (data + b'{"id": "Z", "id": "Z"}\n', "<stdin>:51: the key 'id' appears twice in the object"),
        (b"\0" * (MAX_LINE + 10), "<stdin>:1: line longer than 65,536 bytes"),
    ]:
        r = run_points(["--db", str(db_file), "import", "-"], input=bad_input)
        err = r.stderr.decode()
        assert r.returncode == 1 and expected in err and "Traceback" not in err, err
        assert r.stdout == b""
        assert digest(db_file) == before, "a refused import changed the database"


def test_cli_caps_errors_and_prints_counts_by_reason(tmp_path):
    from click.testing import CliRunner

    from points.cli.main import cli

    path = tmp_path / "p.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", str(path), "init"]).exit_code == 0
    bad = write(tmp_path / "e.jsonl", [event(id=f"V{i}", video=1) for i in range(25)] + [event(id="Q", x=1)])
    before = digest(path)
    r = runner.invoke(cli, ["--db", str(path), "import", str(bad)])
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert len([x for x in lines if x.startswith(f"{bad}:")]) == 20
    assert "... and 6 more (--max-errors N shows more)" in lines
    assert "error: 26 problems in the input; nothing imported" in lines
    assert lines[-3:-1] == ["         25  field 'video' must be a non-empty string", "          1  unknown field"]
    r = runner.invoke(cli, ["--db", str(path), "import", "--max-errors", "2", "--json", str(bad)])
    data = json.loads(r.stdout)
    assert r.exit_code == 1 and len(data["errors"]) == 2 and data["error_count"] == 26
    assert data["reasons"] == {"field 'video' must be a non-empty string": 25, "unknown field": 1}
    assert digest(path) == before


def test_cli_import_reads_the_rules_folders_declarations(tmp_path):
    from click.testing import CliRunner

    from points.cli.main import cli

    folder = tmp_path / "myrules"
    folder.mkdir()
    (folder / "hotel.events").write_text("event hotel_stay\n  nights: int, required, >= 1\n")
    path = tmp_path / "p.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", str(path), "init"]).exit_code == 0
    stays = write(tmp_path / "s.jsonl", [{"id": "H1", "type": "hotel_stay", "member": "W1",
                                          "at": "2026-04-01T15:00:00", "nights": 2}])
    r = runner.invoke(cli, ["--db", str(path), "import", str(stays)])
    assert r.exit_code == 1 and "unknown event type 'hotel_stay'" in r.stderr
    r = runner.invoke(cli, ["--db", str(path), "import", "--rules", str(folder), str(stays)])
    assert r.exit_code == 0, r.output
    (folder / "bad.events").write_text("event spa\n  minutes: float\n")
    r = runner.invoke(cli, ["--db", str(path), "import", "--rules", str(folder), str(stays)])
    assert r.exit_code == 1
    assert f"{folder / 'bad.events'}:2:12: unknown kind 'float'" in r.stderr


def test_read_records_still_reads_lazily_from_a_path(tmp_path):
    path = write(tmp_path / "e.jsonl", [event(), "{bad"])
    got = list(read_records(path))
    assert got[0][1]["id"] == "V1" and got[1][1] is None and got[1][2].startswith("invalid JSON")
