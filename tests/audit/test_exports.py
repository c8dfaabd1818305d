"""Exports that keep the evidence: beancount from the issuer's side with the source
events, rules hash and draws as metadata; a bundle that verifies anywhere."""

from __future__ import annotations

import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from points.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "rules" / "samples" / "events.jsonl"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    runner = CliRunner()

    def points(*args, db=str(folder / "points.db")):
        return runner.invoke(cli, ["--db", db, *map(str, args)], catch_exceptions=False)

    assert points("init").exit_code == 0
    assert points("import", SAMPLES).exit_code == 0
    assert points("run", "--until", "2026-11-30", "--rules", ROOT / "rules").exit_code == 0
    return folder, points


def test_beancount_signs_are_the_issuers_and_it_still_checks(made):
    from beancount import loader
    from beancount.core import data

    folder, points = made
    out = folder / "journal.beancount"
    assert points("export", "--format", "beancount", "-o", out).exit_code == 0
    entries, errors, _ = loader.load_file(str(out))
    assert errors == [], [e.message for e in errors]
    totals = defaultdict(Decimal)
    for t in entries:
        if isinstance(t, data.Transaction):
            for p in t.postings:
                totals[p.account] += p.units.number
    members = {a: v for a, v in totals.items() if a.startswith("Liabilities:Members:")}
    assert members and all(v <= 0 for v in members.values()) and any(v < 0 for v in members.values())
    assert all(v >= 0 for a, v in totals.items() if a.startswith("Assets:Receivable:"))
    assert all(v <= 0 for a, v in totals.items() if a.startswith("Income:"))
    assert any(v < 0 for a, v in totals.items() if a.startswith("Income:"))
    assert totals["Expenses:System:Funding"] > 0
    # the member's balance in the ledger is the opposite of `points balance`
    import json
    w = json.loads(points("balance", "W0101", "--json").output)["balances"]
    name = "Liabilities:Members:W0101:Basic"
    assert totals[name] == -w["basic"]


def test_beancount_metadata_keeps_events_rules_and_draws(made):
    from beancount import loader
    from beancount.core import data

    folder, points = made
    out = folder / "meta.beancount"
    points("export", "--format", "beancount", "-o", out)
    txns = [t for t in loader.load_file(str(out))[0] if isinstance(t, data.Transaction)]
    awards = [t for t in txns if t.meta["key"].startswith("award:")]
    assert awards and all(t.meta["events"] and len(t.meta["rules-hash"]) == 64 for t in awards)
    draws = [t for t in txns if t.meta["key"].startswith("draw:")]
    assert draws and all(len(t.meta["lottery-seed"]) == 64 and len(t.meta["candidates-digest"]) == 64
                         and t.meta["winners"] for t in draws)
    runs = [t for t in txns if t.meta["key"].startswith("run:")]
    assert runs and all(len(t.meta["ruleset"]) == 64 for t in runs)


def test_a_bundle_verifies_on_another_machine(made, tmp_path, monkeypatch):
    folder, points = made
    bundle = folder / "audit.points"
    result = points("export", "--format", "bundle", "-o", bundle)
    assert result.exit_code == 0, result.output
    assert bundle.stat().st_mode & 0o077 == 0  # owner only, like the database
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(bundle, elsewhere / "audit.points")
    monkeypatch.chdir(elsewhere)  # no rules folder, no original database here
    original = points("verify")
    for args in (["verify", "--bundle", "audit.points"], ["--db", "audit.points", "verify"]):
        r = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert "runs replayed" in r.output
        head = [line for line in r.output.splitlines() if line.startswith("head: ")]
        assert head and head[0] in original.output
    assert sorted(p.name for p in elsewhere.iterdir()) == ["audit.points"]  # verify wrote nothing


def test_a_bundle_needs_an_output_file(made):
    _, points = made
    assert points("export", "--format", "bundle").exit_code == 2
