"""The awards a run evaluates before it writes (engine.guards.invalid_award): only
those whose text does not prove them whole and within 64 bits (dsl.wholeness). The
seed card award is proven, so its campaign is not evaluated twice; a fractional one
still is, and refuses the run before anything is written (the CLI side of that is
tests/reliability/test_hostile_rules.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from points.cli.main import cli
from points.dsl import evaluator
from points.dsl.loader import load_rules
from points.engine import guards
from points.ledger import db
from tests.reliability.helpers import ROOT, copy_rules

SAMPLES = ROOT / "rules" / "samples" / "events.jsonl"
UNTIL = dt.date(2026, 6, 1)


def _setup(tmp_path: Path, new: str | None = None):
    folder = copy_rules(tmp_path / "rules")
    if new is not None:
        path = folder / "jwest-card.rules"
        old = "value base = trunc(total, 1_000) / 1_000 * 5"
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    path = tmp_path / "p.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", str(path), "init"]).exit_code == 0
    assert runner.invoke(cli, ["--db", str(path), "import", str(SAMPLES)]).exit_code == 0
    return db.connect(path), load_rules(folder)


def _counting(monkeypatch) -> dict:
    calls: dict[str, int] = {}
    original = evaluator.evaluate

    def evaluate(conn, plan, *args, **kwargs):
        calls[plan.campaign.name] = calls.get(plan.campaign.name, 0) + 1
        return original(conn, plan, *args, **kwargs)

    monkeypatch.setattr(evaluator, "evaluate", evaluate)
    return calls


def test_a_proven_award_is_not_evaluated_before_the_run(tmp_path, monkeypatch):
    conn, rules = _setup(tmp_path)
    (wm,) = conn.execute("SELECT MAX(seq) FROM events").fetchone()
    assert "jwest-card" not in [lc.name for lc, _ in guards.awards_to_validate(rules, wm)]
    calls = _counting(monkeypatch)
    assert guards.invalid_award(conn, rules, UNTIL) is None
    assert "jwest-card" not in calls


def test_an_unproven_award_is_still_evaluated_and_refused(tmp_path, monkeypatch):
    conn, rules = _setup(tmp_path, "value base = total / 7")
    (wm,) = conn.execute("SELECT MAX(seq) FROM events").fetchone()
    todo = {lc.name: [a.name for a in awards] for lc, awards in guards.awards_to_validate(rules, wm)}
    assert todo["jwest-card"] == ["monthly"]
    calls = _counting(monkeypatch)
    refused = guards.invalid_award(conn, rules, UNTIL)
    assert calls.get("jwest-card", 0) >= 1
    assert refused is not None and "award monthly" in refused and "not a whole number" in refused


def test_a_whole_award_too_big_for_the_database_is_evaluated(tmp_path):
    conn, rules = _setup(tmp_path)
    todo = [lc.name for lc, _ in guards.awards_to_validate(rules, 10**8)]
    assert "jwest-card" in todo  # 10**8 events of 10**12 yen: the sums could overflow
