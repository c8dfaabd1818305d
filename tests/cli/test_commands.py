"""Every command, human and --json output (syrupy snapshots where output is stable)."""

from __future__ import annotations

import json
import os
import re
import stat

import apsw
import pytest

from tests.cli.conftest import EVENTS, RULES, write_jsonl


def _count(points, table: str) -> int:
    conn = apsw.Connection(str(points.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------- init


def test_init_creates_private_database_idempotently(points):
    first = points("init")
    assert first.exit_code == 0
    assert first.output == "points.db\n"
    assert stat.S_IMODE(os.stat(points.db).st_mode) == 0o600
    assert points("init").exit_code == 0


def test_db_from_environment(points, monkeypatch):
    monkeypatch.setenv("POINTS_DB", "env.db")
    result = points("init", db=None)
    assert result.exit_code == 0 and result.output == "env.db\n"
    assert (points.folder / "env.db").exists()


# ---------------------------------------------------------------- import


def test_import(points, events_file, snapshot):
    result = points("import", events_file)
    assert result.exit_code == 0
    assert result.output == snapshot
    again = points("import", events_file)
    assert again.output == f"{events_file}: imported 0 events ({len(EVENTS)} skipped)\n"


def test_import_two_files_prints_total(points, events_file):
    write_jsonl(points.folder / "more.jsonl", [
        {"id": "x1", "type": "member_withdrawn", "member": "W9", "at": "2026-01-01T00:00:00"}])
    result = points("import", events_file, "more.jsonl")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == f"total: imported {len(EVENTS) + 1} events (0 skipped)"


def test_import_json(points, events_file, snapshot):
    result = points("import", "--json", events_file)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["added"] == len(EVENTS) and data["skipped"] == 0 and data["errors"] == []
    assert data == snapshot


def test_bad_events_file_prints_every_bad_line_and_changes_nothing(points, events_file):
    assert points("import", events_file).exit_code == 0
    before = (_count(points, "events"), _count(points, "entries"))
    bad = points.folder / "bad.jsonl"
    bad.write_text(
        '{"id": "n1", "type": "redemption", "member": "W5", "at": "2026-01-01T00:00:00", "points": 5, "use": "fare"}\n'
        '{"id": "n2", "type": "no_such_type", "member": "W5", "at": "2026-01-01T00:00:00"}\n'
        'this is not json\n'
        '{"id": "n3", "type": "redemption", "member": "W5", "at": "yesterday", "points": 5, "use": "fare"}\n',
        encoding="utf-8")
    result = points("import", "bad.jsonl")
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.startswith("bad.jsonl:")]
    assert [ln.split(":")[1] for ln in lines] == ["2", "3", "4"]
    assert "nothing imported" in result.output
    assert "Traceback" not in result.output
    assert (_count(points, "events"), _count(points, "entries")) == before
    as_json = json.loads(points("import", "--json", "bad.jsonl").output)
    assert as_json["added"] == 0 and len(as_json["errors"]) == 3


# ---------------------------------------------------------------- run


def test_run(points, events_file, snapshot):
    assert points("import", events_file).exit_code == 0
    result = points("run", "--until", "2026-04-01", "--rules", str(RULES))
    assert result.exit_code == 0
    assert "running" not in result.output  # no progress bar when stdout is not a TTY
    assert result.output == snapshot
    again = points("run", "--until", "2026-04-01", "--rules", str(RULES))
    assert again.exit_code == 0
    assert "nothing to do" in again.output


def test_run_json(points, events_file, snapshot):
    assert points("import", events_file).exit_code == 0
    result = points("run", "--until", "2026-04-01", "--rules", str(RULES), "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    y = data["campaigns"]["yearend-2025"]
    assert y["winners"] == 4 and y["reversals"] == 1
    assert data["redemptions"]["done"] == 1 and len(data["redemptions"]["refused"]) == 1
    assert data == snapshot


def test_run_uses_bundled_rules_without_a_rules_folder(points, events_file):
    assert not (points.folder / "rules").exists()
    assert points("import", events_file).exit_code == 0
    result = points("run", "--until", "2026-04-01", "--json")
    assert result.exit_code == 0
    assert "yearend-2025" in json.loads(result.output)["campaigns"]


def test_run_invalid_date_is_usage_error(points):
    result = points("run", "--until", "2026-02-30")
    assert result.exit_code == 2
    assert "is not a date" in result.output and "Traceback" not in result.output


def test_run_bad_rules_renders_diagnostic(points, events_file):
    broken = points.folder / "broken"
    broken.mkdir()
    text = (RULES / "yearend-2025.rules").read_text(encoding="utf-8")
    (broken / "yearend-2025.rules").write_text(text.replace("min(spend, cap)", "min(spend, capp)"),
                                               encoding="utf-8")
    result = points("run", "--until", "2026-04-01", "--rules", "broken")
    assert result.exit_code == 1
    assert "broken/yearend-2025.rules:" in result.output
    assert "^" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- balance / history


def test_balance(ran, snapshot):
    result = ran("balance", "W1")
    assert result.exit_code == 0
    assert result.output == snapshot


def test_balance_json(ran, snapshot):
    data = json.loads(ran("balance", "W1", "--json").output)
    assert data["member"] == "W1"
    assert set(data["balances"]) == {"basic", "limited", "charge_only"}
    assert data["receivable"] == {"basic": 13000}
    assert data == snapshot


def test_balance_as_of(ran):
    data = json.loads(ran("balance", "W1", "--as-of", "2026-02-05", "--json").output)
    assert data["as_of"] == "2026-02-05"
    assert data["balances"] == {"basic": 30000, "limited": 0, "charge_only": 0}
    assert data["lots"] == [{"kind": "basic", "remaining": 30000, "granted": 30000, "expires": "2027-03-31",
                             "entry": data["lots"][0]["entry"], "campaign": "yearend-2025"}]


def test_balance_charge_only_display_name_is_dated(ran):
    old = json.loads(ran("balance", "W1", "--as-of", "2023-03-01", "--json").output)
    new = json.loads(ran("balance", "W1", "--as-of", "2023-03-07", "--json").output)
    assert old["display_names"]["charge_only"] == "ICOCAポイント"
    assert new["display_names"]["charge_only"] != "ICOCAポイント"


def test_balance_of_a_member_without_entries_is_zero(ran):
    # W3 has a booking (4,000 yen: below every threshold) and no entry
    result = ran("balance", "W3", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["balances"] == {"basic": 0, "limited": 0, "charge_only": 0}
    assert data["lots"] == [] and data["receivable"] == {}


@pytest.mark.parametrize("command", [["balance", "NOBODY"], ["history", "NOBODY"],
                                     ["explain", "NOBODY", "yearend-2025"]])
def test_unknown_member_is_a_finding(ran, command):
    result = ran(*command)
    assert result.exit_code == 1
    assert result.output == "error: unknown member 'NOBODY': no event and no entry names them\n"


def test_history(ran, snapshot):
    result = ran("history", "W1")
    assert result.exit_code == 0
    assert result.output == snapshot
    assert ran("history", "W2").output == snapshot


def test_history_json(ran, snapshot):
    data = json.loads(ran("history", "W1", "--json").output)
    reasons = [e["reason"].split(" ")[0] for e in data["entries"]]
    assert reasons == ["award", "redemption", "reversal"]
    assert [e["seq"] for e in data["entries"]] == sorted(e["seq"] for e in data["entries"])
    assert data == snapshot


def test_history_of_a_member_without_entries(ran):
    result = ran("history", "W3", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["entries"] == []


# ---------------------------------------------------------------- explain


def test_explain(ran):
    result = ran("explain", "W1", "yearend-2025", "--rules", str(RULES))
    assert result.exit_code == 0, result.output
    assert "W1" in result.output and "yearend-2025" in result.output


def test_explain_json(ran):
    result = ran("explain", "W1", "yearend-2025", "--rules", str(RULES), "--json")
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    assert trace["member"] == "W1" and trace["campaign"] == "yearend-2025"
    as_of = json.loads(ran("explain", "W1", "yearend-2025", "--rules", str(RULES), "--json",
                           "--as-of", "2026-02-05").output)
    assert as_of["as_of"] == "2026-02-05"


def test_explain_unknown_campaign_lists_campaigns(ran):
    result = ran("explain", "W1", "no-such-campaign", "--rules", str(RULES))
    assert result.exit_code == 1
    assert "no-such-campaign" in result.output
    for name in ("yearend-2025", "yearend-2024", "jwest-card", "mynapoint-icoca", "wesmo-stamp-rally-2026"):
        assert name in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- campaigns


def test_campaigns(ran, snapshot):
    result = ran("campaigns", "--rules", str(RULES))
    assert result.exit_code == 0
    for name in ("yearend-2025", "yearend-2024", "jwest-card", "mynapoint-icoca", "wesmo-stamp-rally-2026"):
        assert name in result.output
    data = json.loads(ran("campaigns", "--rules", str(RULES), "--json").output)
    y = data["campaigns"]["yearend-2025"]
    assert data["latest_run"] == "2026-04-01"
    assert y["budget"]["funded"] == 100_000_000
    assert y["budget"]["paid"] + y["budget"]["remaining"] == 100_000_000
    assert y["winners"] == 4 and y["members_paid"] == 4
    assert data["campaigns"]["jwest-card"]["next_step"] == "2026-04-26"
    assert data["campaigns"]["wesmo-stamp-rally-2026"]["next_step"] == "2026-04-30"
    assert data == snapshot


def test_campaigns_expiring_points(ran):
    # yearend-2025 points expire 2027-03-31: within 90 days of a run until 2027-01-15.
    # the wesmo lottery (drawn 2026-04-30) has no event of its period (to 2026-03-31): declare them complete
    assert ran("close-events", "--through", "2026-03-31").exit_code == 0
    assert ran("run", "--until", "2027-01-15", "--allow-future", "--rules", str(RULES)).exit_code == 0
    data = json.loads(ran("campaigns", "--rules", str(RULES), "--json").output)
    exp = data["campaigns"]["yearend-2025"]["expiring"]
    assert exp["30_days"] == 0 and exp["90_days"] > 0


# ---------------------------------------------------------------- verify


def test_verify_ok(ran, snapshot):
    result = ran("verify", "--rules", str(RULES))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")
    assert re.search(r"^head: entry \d+ sha256 [0-9a-f]{64}$", result.output, re.M)
    data = json.loads(ran("verify", "--rules", str(RULES), "--json").output)
    assert data["ok"] is True and data["problems"] == []
    assert data["checked"]["runs_replayed"] >= 1
    assert data["checked"]["entries_rederived"] == data["entries"] > 0
    assert f"head: entry {data['head']['entry']} sha256 {data['head']['sha256']}" in result.output


def test_verify_detects_tampering(ran):
    conn = apsw.Connection(str(ran.db))
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET memo = '{\"tampered\":1}' WHERE seq = 3")
    conn.close()
    result = ran("verify", "--rules", str(RULES))
    assert result.exit_code == 1
    assert "entry 3" in result.output
    data = json.loads(ran("verify", "--rules", str(RULES), "--json").output)
    assert data["ok"] is False and data["first_problem"].startswith("entry 3")


@pytest.mark.parametrize("command", [["balance", "W1"], ["history", "W1"], ["verify"],
                                     ["campaigns"], ["export", "--format", "jsonl"]])
def test_read_commands_do_not_create_a_database(points, command):
    result = points(*command, db="other.db")
    assert result.exit_code == 1
    assert result.output == "error: no points database at other.db; create it with points init\n"
    assert not (points.folder / "other.db").exists()
