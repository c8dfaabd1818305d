"""Guards before writing (issue 14): a slip of the operator is refused with one line,
exit 1, and the database bytes unchanged (or no file created)."""

from __future__ import annotations

import datetime as dt

import apsw
import pytest

from points.cli.format import today
from points.cli.main import cli
from tests.cli.conftest import RULES


def _refused(result, reason: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert reason in lines[0], lines[0]


@pytest.mark.parametrize("command", [["import", "events.jsonl"], ["run", "--until", "2026-04-01"]])
def test_write_commands_refuse_a_missing_database(points, events_file, command):
    extra = ["--rules", str(RULES)] if command[0] == "run" else []
    result = points(*command, *extra, db="nope.db")
    _refused(result, "no points database at nope.db; create it with points init")
    assert not (points.folder / "nope.db").exists()


@pytest.mark.parametrize("command", [["import", "events.jsonl"], ["run", "--until", "2026-04-01"],
                                     ["init"]])
def test_write_commands_refuse_a_foreign_sqlite_file(points, events_file, command):
    other = apsw.Connection(str(points.folder / "other.db"))
    other.execute("CREATE TABLE photos (name TEXT); INSERT INTO photos VALUES ('cat.jpg')")
    other.close()
    before = (points.folder / "other.db").read_bytes()
    _refused(points(*command, db="other.db"), "other.db: a SQLite database without the points tables")
    assert (points.folder / "other.db").read_bytes() == before


@pytest.mark.parametrize("command", [["import", "events.jsonl"], ["run", "--until", "2026-04-01"],
                                     ["balance", "W1"]])
def test_an_empty_file_is_not_a_database(points, events_file, command):
    (points.folder / "empty.db").write_bytes(b"")
    _refused(points(*command, db="empty.db"), "empty.db: empty file, not a points database")
    assert (points.folder / "empty.db").read_bytes() == b""


def test_init_initialises_an_empty_file_but_creates_no_folder(points):
    _refused(points("init", db="no/such/dir/p.db"), "no/such/dir: no such folder")
    assert not (points.folder / "no").exists()
    (points.folder / "empty.db").write_bytes(b"")
    assert points("init", db="empty.db").exit_code == 0
    assert points("balance", "W1", db="empty.db").output.startswith("error: unknown member")


def test_run_refuses_a_date_after_today_without_allow_future(points, events_file):
    assert points("import", events_file).exit_code == 0
    before = points.db.read_bytes()
    future = today() + dt.timedelta(days=1)
    _refused(points("run", "--until", future.isoformat(), "--rules", str(RULES)),
             f"--until {future} is after today ({today()}, Asia/Tokyo); pass --allow-future")
    assert points.db.read_bytes() == before
    assert points("close-events", "--through", "2026-03-31").exit_code == 0  # the wesmo lottery's period
    ok = points("run", "--until", future.isoformat(), "--allow-future", "--rules", str(RULES))
    assert ok.exit_code == 0, ok.output


def test_run_refuses_a_date_past_the_supported_range(points):
    _refused(points("run", "--until", "9999-11-30", "--allow-future", "--rules", str(RULES)),
             "--until 9999-11-30: after 2999-12-31")


def test_demo_refuses_a_database_in_use(ran):
    before = ran.db.read_bytes()
    result = ran.runner.invoke(cli, ["demo", "--db", "points.db"])
    _refused(result, "points.db: not empty (10 events, ")
    assert ran.db.read_bytes() == before


def test_db_is_accepted_after_the_subcommand(ran):
    after = ran("balance", "W1", "--db", "points.db", "--json", db=None)
    before = ran("balance", "W1", "--json")
    assert after.exit_code == 0 and after.output == before.output
    _refused(ran("balance", "W1", "--db", "elsewhere.db", db=None), "no points database at elsewhere.db")


# ---------------------------------------------------------------- dry run, cut-off, late events


def test_dry_run_prints_what_would_be_posted_and_changes_nothing(points, events_file):
    assert points("import", events_file).exit_code == 0
    before = points.db.read_bytes()
    dry = points("run", "--until", "2026-04-01", "--dry-run", "--rules", str(RULES), "--json")
    assert dry.exit_code == 0, dry.output
    assert points.db.read_bytes() == before
    real = points("run", "--until", "2026-04-01", "--rules", str(RULES), "--json")
    import json

    would, did = json.loads(dry.output), json.loads(real.output)
    assert would.pop("dry_run") is True and did.pop("dry_run") is False
    assert would == did  # the same entries, points, members, draws, reversals, redemptions, expiries
    assert did["campaigns"]["yearend-2025"]["draws"] == 1 and did["entries"] > 0
    text = points("run", "--until", "2026-04-01", "--dry-run", "--rules", str(RULES))
    assert text.output.startswith("dry run (nothing written): run until 2026-04-01")


def test_run_before_import_refuses_to_draw_a_lottery_on_no_events(points):
    before = points.db.read_bytes()
    _refused(points("run", "--until", "2026-03-01", "--rules", str(RULES)),
             "run refused: the yearend-2024 lottery prize would be drawn on 2025-02-15 from events "
             "through 2025-01-06, but no event has been imported yet")
    assert points.db.read_bytes() == before


def test_a_draw_waits_for_the_cut_off_that_close_events_declares(points):
    # bookings of the yearend-2025 period, the latest on 2025-12-20: its period runs to 2026-01-04
    write = __import__("tests.cli.conftest", fromlist=["write_jsonl"]).write_jsonl
    from tests.cli.conftest import EVENTS

    write(points.folder / "early.jsonl", [e for e in EVENTS if e["at"] < "2025-12-05"])
    assert points("import", "early.jsonl").exit_code == 0
    before = points.db.read_bytes()
    _refused(points("run", "--until", "2026-02-05", "--rules", str(RULES)),
             "but events are complete only through 2025-12-04 (the day of the latest imported event)")
    assert points.db.read_bytes() == before
    declared = points("close-events", "--through", "2026-01-04")
    assert declared.exit_code == 0, declared.output
    assert declared.output.startswith("events declared complete through 2026-01-04")
    ran = points("run", "--until", "2026-02-05", "--rules", str(RULES), "--json")
    assert ran.exit_code == 0, ran.output
    import json

    assert json.loads(ran.output)["campaigns"]["yearend-2025"]["draws"] == 1


def test_close_events_refuses_a_future_day(points):
    future = today() + dt.timedelta(days=1)
    _refused(points("close-events", "--through", future.isoformat()), "events of days to come")


def test_events_arriving_after_their_period_was_drawn_are_reported(ran):
    from tests.cli.conftest import write_jsonl

    write_jsonl(ran.folder / "late.jsonl", [
        {"id": "late1", "type": "ex_booking", "member": "W9", "at": "2025-12-03T10:00:00", "amount": 9000,
         "service": "ex", "ride_date": "2025-12-28", "segments": ["sanyo"]}])
    assert ran("import", "late.jsonl").exit_code == 0
    result = ran("run", "--until", "2026-04-01", "--rules", str(RULES))
    assert result.exit_code == 0, result.output
    late = [ln for ln in result.output.splitlines() if ln.startswith("  late:")]
    assert late == ["  late: 1 event of yearend-2025 period main arrived after its lottery was drawn on "
                    "2026-02-05: they cannot change who won; a winner's award is recomputed with them "
                    "(a cancellation is reversed)"], result.output
