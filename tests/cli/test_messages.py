"""Messages a black-box tester found unclear: each one sentence naming what the user gave."""

from __future__ import annotations

import pytest

from tests.cli.conftest import RULES


def test_an_unknown_campaign_of_report_payouts_is_one_clear_sentence(ran):
    out = ran("report", "payouts", "--campaign", "nosuch")
    assert out.exit_code == 1
    names = out.output.split("(campaigns with entries: ")[1].rstrip(")\n").split(", ")
    assert "yearend-2025" in names and "jwest-card" in names
    assert out.output == f"error: no entries for campaign 'nosuch' (campaigns with entries: {', '.join(names)})\n"
    out = ran("report", "payouts", "--campaign", "nosuch", "--as-of", "2025-12-31")
    assert out.output.startswith("error: no entries for campaign 'nosuch' up to 2025-12-31 (campaigns")


@pytest.mark.parametrize("reason", ["", "   ", "\t"])
def test_an_empty_amendment_reason_is_a_usage_error(ran, reason):
    before = ran.db.read_bytes()
    out = ran("run", "--until", "2026-04-01", "--rules", str(RULES), "--amend", reason)
    assert out.exit_code == 2, out.output
    assert "Invalid value for '--amend': needs a reason" in out.output
    assert ran.db.read_bytes() == before


def test_export_to_a_missing_folder_names_the_users_path(ran):
    out = ran("export", "--format", "jsonl", "-o", "/nonexistent/x.jsonl")
    assert out.exit_code == 1
    assert out.output == "error: /nonexistent: no such folder for x.jsonl\n"
