"""DESIGN's command-line contract and the README's promises, from outside."""

import json
import os
import subprocess

import pytest

from tests.acceptance.cli import (
    BUNDLED, SAMPLE_EVENTS, assert_clean_refusal, digest, points, points_exe,
)

COMMANDS = ["init", "import", "check", "run", "balance", "balances", "history", "explain",
            "campaigns", "verify", "export", "demo", "close-events", "report",
            "report trial-balance", "report payouts", "report liability", "report html"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(workdir, command):
    r = points(*command.split(), "--help", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "Example" in r.stdout


@pytest.mark.parametrize("args", [
    ["balance", "W0101"], ["history", "W0101"], ["explain", "W0101", "yearend-2025"], ["campaigns"],
    ["verify"], ["balances"], ["report", "trial-balance"], ["report", "payouts"], ["report", "liability"],
])
def test_every_read_command_has_json_and_changes_nothing(demo_db, workdir, args):
    before = digest(demo_db)
    r = points(*args, "--json", cwd=workdir, db=demo_db)
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)
    assert digest(demo_db) == before


def test_balance_json_shape(demo_db, workdir):
    doc = json.loads(points("balance", "W0101", "--as-of", "2026-03-31", "--json", cwd=workdir, db=demo_db).stdout)
    assert doc["member"] == "W0101"
    assert set(doc["balances"]) >= {"basic", "limited", "charge_only"}
    assert all(isinstance(v, int) for v in doc["balances"].values())
    assert doc["balances"]["basic"] == 30_000
    for key in ("as_of", "display_names", "lots", "receivable"):
        assert key in doc


def test_history_json_has_running_balances(demo_db, workdir):
    doc = json.loads(points("history", "W0210", "--json", cwd=workdir, db=demo_db).stdout)
    entries = doc["entries"] if isinstance(doc, dict) else doc
    assert entries
    for key in ("points", "member_points", "receivable_points", "balance", "owed"):
        assert key in entries[0], entries[0]


def test_verify_json_keys_as_documented(demo_db, workdir):
    doc = json.loads(points("verify", "--json", cwd=workdir, db=demo_db).stdout)
    for key in ("ok", "entries", "postings", "events", "rederived", "checked", "runs", "head",
                "first_problem", "problems"):
        assert key in doc
    assert set(doc["head"]) >= {"entry", "sha256", "events"}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "beancount"])
def test_export_formats(demo_db, workdir, fmt):
    r = points("export", "--format", fmt, cwd=workdir, db=demo_db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    if fmt == "jsonl":
        lines = r.stdout.splitlines()
        assert all(json.loads(line) for line in lines)


def test_bundle_export_verifies_alone(demo_db, workdir, tmp_path):
    bundle = tmp_path / "audit.points"
    assert points("export", "--format", "bundle", "-o", bundle, cwd=workdir, db=demo_db).returncode == 0
    r = points("verify", "--bundle", bundle, cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "head: entry" in r.stdout


@pytest.mark.parametrize("args", [
    ["run", "--until", "2026-13-45"], ["balance", "W0101", "--as-of", "yesterday"],
    ["no-such-command"], ["campaigns", "--no-such-option"], ["export", "--format", "xml"],
])
def test_usage_errors_exit_2(demo_db, workdir, args):
    r = points(*args, cwd=workdir, db=demo_db)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr


def test_unknown_campaign_is_a_finding_listing_campaigns(demo_db, workdir):
    r = points("explain", "W0101", "no-such-campaign", cwd=workdir, db=demo_db)
    assert_clean_refusal(r)
    assert "yearend-2025" in r.stderr


def test_check_prints_path_line_col_then_the_line_and_a_caret(workdir):
    text = (BUNDLED / "yearend-2025.rules").read_text()
    award = "= min(spend, cap) basic"
    line = text[: text.index(award)].count("\n") + 1
    (workdir / "bad.rules").write_text(text.replace(award, "= min(spend, cap) basik"))
    r = points("check", "bad.rules", cwd=workdir)
    assert r.returncode == 1
    out = (r.stdout + r.stderr).splitlines()
    assert out[0].startswith(f"bad.rules:{line}:"), out
    assert "basik" in out[1]
    assert out[2].strip().startswith("^")


def test_check_the_bundled_rules_is_ok(workdir):
    r = points("check", BUNDLED, cwd=workdir)
    assert r.returncode == 0, r.stdout
    assert r.stdout.startswith("ok:")


@pytest.mark.slow
def test_run_is_idempotent_and_reimport_is_a_no_op(fresh_loaded, workdir):
    first = points("run", "--until", "2025-12-31", cwd=workdir, db=fresh_loaded)
    assert first.returncode == 0
    journal = points("export", "--format", "jsonl", cwd=workdir, db=fresh_loaded).stdout
    assert journal.strip()
    again = points("run", "--until", "2025-12-31", cwd=workdir, db=fresh_loaded)
    assert again.returncode == 0 and "0 new journal entries" in again.stdout
    imp = points("import", SAMPLE_EVENTS, cwd=workdir, db=fresh_loaded)
    assert imp.returncode == 0 and "(182 skipped)" in imp.stdout
    assert points("export", "--format", "jsonl", cwd=workdir, db=fresh_loaded).stdout == journal
    ok = points("verify", cwd=workdir, db=fresh_loaded)
    assert ok.returncode == 0 and "182 events" in ok.stdout.splitlines()[0]


def test_points_db_environment_variable(fresh_loaded, workdir):
    env = dict(os.environ, POINTS_DB=str(fresh_loaded))
    r = subprocess.run([points_exe(), "balance", "W0101", "--json"], cwd=workdir, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["member"] == "W0101"
