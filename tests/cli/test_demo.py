"""`points demo`: bundled sample events through every seed program, summarised."""

from __future__ import annotations

from points.cli import commands_demo
from points.cli.main import cli
from tests.cli.conftest import EVENTS, write_jsonl


def _samples(points, monkeypatch):
    """The bundled sample events; a small fallback while rules/samples/ is not there."""
    path = commands_demo.sample_events_path()
    if not path.is_file():
        path = write_jsonl(points.folder / "samples.jsonl", EVENTS)
        monkeypatch.setattr(commands_demo, "sample_events_path", lambda: path)
    return path


def test_demo_reads_the_rules_package_samples():
    path = commands_demo.sample_events_path()
    assert path.parts[-3:] == ("rules", "samples", "events.jsonl")


def test_demo(points, monkeypatch):
    _samples(points, monkeypatch)
    result = points.runner.invoke(cli, ["demo", "--db", "demo.db"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "points paid per campaign" in out
    for name in ("yearend-2025", "yearend-2024", "jwest-card", "mynapoint-icoca", "wesmo-stamp-rally-2026"):
        assert name in out
    assert "$ points explain" in out
    assert (points.folder / "demo.db").exists()
    before = (points.folder / "demo.db").read_bytes()
    again = points.runner.invoke(cli, ["demo", "--db", "demo.db"])
    assert again.exit_code == 1  # a database in use: never the 182 sample events again
    assert again.output.startswith("error: demo.db: not empty (182 events, ")
    assert (points.folder / "demo.db").read_bytes() == before
    verify = points.runner.invoke(cli, ["--db", "demo.db", "verify"])
    assert verify.exit_code == 0, verify.output


def test_demo_uses_global_db_when_given(points, monkeypatch):
    _samples(points, monkeypatch)
    result = points.runner.invoke(cli, ["--db", "g.db", "demo"])
    assert result.exit_code == 0, result.output
    assert (points.folder / "g.db").exists()


def test_demo_without_samples_is_a_clean_error(points, monkeypatch):
    monkeypatch.setattr(commands_demo, "sample_events_path", lambda: points.folder / "nope.jsonl")
    result = points.runner.invoke(cli, ["demo", "--db", "demo.db"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "sample events not found" in result.output
