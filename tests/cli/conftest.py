"""Fixtures of the CLI tests: a CliRunner in a temporary folder, small events files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from points.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"

# Small but covering: a yearend-2025 lottery with a late cancellation that
# exceeds what is left (receivable), odd member ids (export names), a card
# payment (jwest-card), a redemption done and one refused.
EVENTS = [
    {"id": "b1", "type": "ex_booking", "member": "W1", "at": "2025-12-01T10:00:00", "amount": 12000,
     "service": "ex", "ride_date": "2025-12-27", "segments": ["tokaido", "sanyo"], "ticketless": True},
    {"id": "b2", "type": "ex_booking", "member": "W1", "at": "2025-12-02T10:00:00", "amount": 30000,
     "service": "ex", "ride_date": "2025-12-28", "segments": ["sanyo"]},
    {"id": "b3", "type": "ex_booking", "member": "W2", "at": "2025-12-02T11:00:00", "amount": 8000,
     "service": "ex", "ride_date": "2025-12-28", "segments": ["sanyo"]},
    {"id": "b4", "type": "ex_booking", "member": "w1", "at": "2025-12-03T09:00:00", "amount": 6000,
     "service": "ex", "ride_date": "2025-12-29", "segments": ["sanyo", "kyushu"]},
    {"id": "b5", "type": "ex_booking", "member": "会員_7", "at": "2025-12-03T09:30:00", "amount": 7000,
     "service": "ex", "ride_date": "2025-12-30", "segments": ["sanyo"]},
    {"id": "b6", "type": "ex_booking", "member": "W3", "at": "2025-12-04T09:30:00", "amount": 4000,
     "service": "ex", "ride_date": "2025-12-30", "segments": ["sanyo"]},
    {"id": "p1", "type": "card_payment", "member": "W2", "at": "2026-01-20T10:00:00", "amount": 5400,
     "merchant": "X", "card": "standard"},
    {"id": "r1", "type": "redemption", "member": "W1", "at": "2026-02-20T10:00:00", "points": 25000,
     "use": "fare"},
    {"id": "r2", "type": "redemption", "member": "W2", "at": "2026-02-11T10:00:00", "points": 30000,
     "use": "fare"},
    {"id": "c1", "type": "cancel", "member": "W1", "at": "2026-03-10T10:00:00", "ref": "b2"},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


class Points:
    """Runs `points --db points.db ...` in a temporary folder (relative paths only,
    so that no temporary path ends up in a snapshot)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "points.db"
        self.runner = CliRunner()

    def __call__(self, *args: str, db: str | None = "points.db", **kwargs):
        argv = (["--db", db] if db is not None else []) + [str(a) for a in args]
        return self.runner.invoke(cli, argv, catch_exceptions=False, **kwargs)


@pytest.fixture
def points(tmp_path, monkeypatch) -> Points:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POINTS_DB", raising=False)
    points = Points(tmp_path)
    # import and run refuse a missing database: every test starts from `points init`
    assert points("init").exit_code == 0
    return points


@pytest.fixture
def events_file(points) -> str:
    write_jsonl(points.folder / "events.jsonl", EVENTS)
    return "events.jsonl"


@pytest.fixture
def ran(points, events_file) -> Points:
    """A database with EVENTS imported and every campaign run until 2026-04-01."""
    assert points("import", events_file).exit_code == 0
    result = points("run", "--until", "2026-04-01", "--rules", str(RULES))
    assert result.exit_code == 0, result.output
    return points
