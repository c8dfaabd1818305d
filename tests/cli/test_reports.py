"""`balances` and `report trial-balance|payouts|liability` on the demo journal.

The figures are checked against what other parts of the product compute in their
own way: the journal's raw postings (`export --format jsonl`, summed here), each
member's `balance` and lots, `campaigns --json`, and against each other (the trial
balance's member and receivable classes = the totals of `balances` = the net of the
monthly flows). The --json shapes are snapshot-tested (docs/reports.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict

import apsw
import pytest
from click.testing import CliRunner

from points.cli.main import cli
from points.ledger.journal import Journal

KINDS = ("basic", "limited", "charge_only")
AS_OF_DATES = (None, "2022-12-31", "2025-03-01", "2025-03-10", "2026-02-05", "2026-03-31", "2026-05-10")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo journal (bundled sample events, every seed program run to 2028-12-31)."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    result = CliRunner().invoke(cli, ["--db", str(path), "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    def run(*args: str, code: int = 0):
        out = CliRunner().invoke(cli, ["--db", str(path), *args], catch_exceptions=False)
        assert out.exit_code == code, out.output
        return out

    run.path = path
    return run


def _json(demo, *args):
    return json.loads(demo(*args, "--json").output)


def _csv(demo, *args):
    return list(csv.DictReader(io.StringIO(demo(*args, "--csv").output)))


def _postings(demo, as_of: str | None):
    """Every posting of the journal from the jsonl export: (entry, posting) pairs."""
    text = demo("export", "--format", "jsonl").output
    for line in text.splitlines():
        entry = json.loads(line)
        if as_of is not None and entry["effective"] > as_of:
            continue
        for p in entry["postings"]:
            yield entry, p


def _class(account: str) -> str:
    head = account.split(":")[0]
    return {"member": "members", "receivable": "receivables", "campaign": "budgets"}.get(
        head, account.split(":")[-1])


# ---------------------------------------------------------------- trial balance


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_trial_balance_sums_to_zero_and_matches_the_raw_postings(demo, as_of):
    args = ["report", "trial-balance"] + (["--as-of", as_of] if as_of else [])
    tb = _json(demo, *args)
    want: dict = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    for _entry, p in _postings(demo, as_of):
        want[_class(p["account"])][p["kind"]] += p["amount"]
    got = {c["class"]: c["amounts"] for c in tb["classes"]}
    assert {k: v for k, v in got.items() if any(v.values())} == {k: v for k, v in want.items()
                                                                  if any(v.values())}
    assert tb["total"] == dict.fromkeys(KINDS, 0) and tb["balanced"] is True
    assert demo(*args).output.rstrip().endswith("sums to zero per kind: yes (basic, limited, charge_only)")


def test_trial_balance_agrees_with_balances_and_the_issue_figures(demo):
    for as_of in AS_OF_DATES:
        extra = ["--as-of", as_of] if as_of else []
        tb = {c["class"]: c["amounts"] for c in _json(demo, "report", "trial-balance", *extra)["classes"]}
        totals = _json(demo, "balances", *extra)["totals"]
        assert tb["members"] == totals["balances"]
        assert {k: -v for k, v in tb["receivables"].items()} == totals["owed"]
    # The auditor's figures of issue 15, computed by hand in SQL on the demo journal.
    tb = {c["class"]: c["amounts"]["basic"] for c in _json(demo, "report", "trial-balance")["classes"]}
    assert (tb["budgets"], tb["funding"], tb["expired"], tb["redeemed"], tb["receivables"]) == (
        199_855_000, -200_012_130, 145_980, 15_100, -3_950)


def test_as_of_is_the_end_of_the_day(demo):
    # yearend-2025 pays on 2026-02-05: in the state at the end of that day, not the day before.
    before = _json(demo, "balances", "--as-of", "2026-02-04")["totals"]["balances"]["basic"]
    on = _json(demo, "balances", "--as-of", "2026-02-05")["totals"]["balances"]["basic"]
    assert on - before == 108_000


# ---------------------------------------------------------------- balances


def test_balances_match_each_members_balance(demo):
    data = _json(demo, "balances", "--as-of", "2026-03-31")
    conn = apsw.Connection(str(demo.path), flags=apsw.SQLITE_OPEN_READONLY)
    j = Journal(conn)
    day = dt.date(2026, 3, 31)
    assert len(data["members"]) == 30
    for m in data["members"]:
        assert m["balances"] == j.balance(m["member"], day)
        assert m["owed"] == j.receivable(m["member"], day)
    assert data["totals"]["members"] == 30
    assert data["totals"]["balances"]["basic"] == sum(m["balances"]["basic"] for m in data["members"])


def test_balances_filters(demo):
    held = _json(demo, "balances", "--as-of", "2026-03-31", "--min", "10000")["members"]
    assert [m["member"] for m in held] == ["W0101", "W0103", "W0107", "W0110"]
    basic = _json(demo, "balances", "--as-of", "2026-03-31", "--kind", "basic")["members"]
    assert all(m["balances"]["basic"] or m["owed"]["basic"] for m in basic)
    assert "W0210" in {m["member"] for m in basic}  # owes basic points, holds none
    assert _json(demo, "balances", "--as-of", "2026-03-31", "--kind", "limited")["members"] == []


def test_balances_csv_is_one_plain_row_per_member(demo):
    rows = _csv(demo, "balances", "--as-of", "2026-03-31")
    assert list(rows[0]) == ["member", *KINDS, "owed", *(f"owed_{k}" for k in KINDS)]
    data = _json(demo, "balances", "--as-of", "2026-03-31")
    assert [r["member"] for r in rows] == [m["member"] for m in data["members"]]
    for r, m in zip(rows, data["members"]):
        assert [int(r[k]) for k in KINDS] == [m["balances"][k] for k in KINDS]
        assert int(r["owed"]) == sum(m["owed"].values())


def test_json_and_csv_together_is_a_usage_error(demo):
    demo("balances", "--json", "--csv", code=2)
    demo("report", "payouts", "--json", "--csv", code=2)


# ---------------------------------------------------------------- payouts


def test_payouts_agree_with_campaigns_and_the_journal(demo):
    pay = {c["campaign"]: c for c in _json(demo, "report", "payouts")["campaigns"]}
    camp = _json(demo, "campaigns")["campaigns"]
    assert set(pay) == set(camp)
    gross: dict = defaultdict(int)
    back: dict = defaultdict(int)
    for entry, p in _postings(demo, None):
        if entry["campaign"] and p["account"].split(":")[0] in ("member", "receivable"):
            (back if entry["reverses"] is not None else gross)[(entry["campaign"], p["kind"])] += p["amount"]
    for name, c in pay.items():
        assert c["total"]["net"] == camp[name]["points_paid"]
        assert c["members"] == camp[name]["members_paid"]
        won = [p["winners"] for p in c["periods"] if p["winners"] is not None]
        assert (sum(won) if won else None) == camp[name]["winners"]
        for kind, n in c["total"]["gross"].items():
            assert n == gross[(name, kind)] and c["total"]["reversed"][kind] == -back[(name, kind)]
        if camp[name]["budget"]:
            b = camp[name]["budget"]
            assert (c["budget"]["funded"], c["budget"]["left"]) == (b["funded"], b["remaining"])
            assert c["budget"]["funded"] - c["budget"]["left"] == c["total"]["net"][b["kind"]]
            assert c["periods"][-1]["budget_left"] == b["remaining"]
        else:
            assert c["budget"] is None


def test_payouts_per_period_and_as_of(demo):
    card = _json(demo, "report", "payouts", "--campaign", "jwest-card")["campaigns"]
    assert [p["period"] for p in card[0]["periods"]] == ["2025-02", "2025-03", "2025-04", "2025-06", "2025-09"]
    assert sum(p["net"] for p in card[0]["periods"]) == card[0]["total"]["net"]["basic"]
    # Before the yearend-2025 cancellation of 2026-03-10 nothing is reversed yet.
    early = _json(demo, "report", "payouts", "--campaign", "yearend-2025", "--as-of", "2026-03-09")
    late = _json(demo, "report", "payouts", "--campaign", "yearend-2025", "--as-of", "2026-03-10")
    (e,), (l,) = early["campaigns"][0]["periods"], late["campaigns"][0]["periods"]
    assert (e["gross"], e["reversed"], l["gross"], l["reversed"]) == (108_000, 0, 108_000, 18_000)
    assert e["budget_left"] - l["budget_left"] == -18_000


def test_payouts_csv_and_unknown_campaign(demo):
    rows = _csv(demo, "report", "payouts")
    assert list(rows[0]) == ["campaign", "period", "kind", "first_day", "gross", "reversed", "net",
                             "members", "winners", "budget", "budget_left"]
    assert all(int(r["gross"]) - int(r["reversed"]) == int(r["net"]) for r in rows)
    assert {r["winners"] for r in rows if r["campaign"] == "jwest-card"} == {""}
    out = demo("report", "payouts", "--campaign", "nope", code=1)
    assert "no entries for campaign 'nope'" in out.output and "yearend-2025" in out.output


# ---------------------------------------------------------------- liability


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_liability_matches_the_lots_and_the_trial_balance(demo, as_of):
    extra = ["--as-of", as_of] if as_of else []
    li = _json(demo, "report", "liability", *extra)
    conn = apsw.Connection(str(demo.path), flags=apsw.SQLITE_OPEN_READONLY)
    j = Journal(conn)
    day = dt.date.fromisoformat(as_of) if as_of else None
    want: dict = defaultdict(int)
    for m in _json(demo, "balances", *extra)["members"]:
        for lot in j.lots(m["member"], day):
            want[(lot.kind, lot.expires.isoformat()[:7])] += lot.remaining
    assert {(o["kind"], o["expires"]): o["points"] for o in li["outstanding"]} == dict(want)
    tb = {c["class"]: c["amounts"] for c in _json(demo, "report", "trial-balance", *extra)["classes"]}
    assert li["outstanding_total"] == tb["members"]
    net = dict.fromkeys(KINDS, 0)
    for f in li["months"]:
        assert f["net"] == f["issued"] - f["reversed"] - f["redeemed"] - f["expired"]
        net[f["kind"]] += f["net"]
    assert net == {k: tb["members"][k] + tb["receivables"][k] for k in KINDS}
    assert sum(f["redeemed"] for f in li["months"] if f["kind"] == "basic") == tb["redeemed"]["basic"]


def test_liability_csv(demo):
    rows = _csv(demo, "report", "liability", "--as-of", "2026-03-31")
    assert list(rows[0]) == ["month", "kind", "issued", "reversed", "redeemed", "expired", "net",
                             "outstanding_expiring"]
    assert sum(int(r["outstanding_expiring"]) for r in rows) == 84_295
    assert [r["month"] for r in rows] == sorted(r["month"] for r in rows)


# ---------------------------------------------------------------- shapes and help


@pytest.mark.parametrize("args", [
    ("balances", "--as-of", "2026-03-31"),
    ("report", "trial-balance"),
    ("report", "payouts"),
    ("report", "liability", "--as-of", "2026-03-31"),
])
def test_json_shapes(demo, args, snapshot):
    assert _json(demo, *args) == snapshot


@pytest.mark.parametrize("args", [
    ("balances", "--as-of", "2026-03-31", "--min", "1"),
    ("report", "trial-balance"),
    ("report", "payouts", "--campaign", "yearend-2024"),
    ("report", "liability", "--as-of", "2026-03-31"),
])
def test_text_output(demo, args, snapshot):
    assert demo(*args).output == snapshot


@pytest.mark.parametrize("name", ["trial-balance", "payouts", "liability", "html"])
def test_report_subcommands_have_help_with_example(name):
    result = CliRunner().invoke(cli, ["report", name, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
    assert f"points report {name}" in result.output
    if name != "html":
        assert "--json" in result.output and "--csv" in result.output and "--as-of" in result.output


# ---------------------------------------------------------------- history


@pytest.mark.parametrize("member", ["W0210", "W0301", "W0113", "W0407"])
def test_history_running_balance_matches_balance_on_each_day(demo, member):
    items = _json(demo, "history", member)["entries"]
    conn = apsw.Connection(str(demo.path), flags=apsw.SQLITE_OPEN_READONLY)
    j = Journal(conn)
    last_of_day = {it["effective"]: it for it in items}  # the state after a day's last entry
    for day, it in last_of_day.items():
        d = dt.date.fromisoformat(day)
        assert it["balance"] == j.balance(member, d)
        assert it["owed"] == j.receivable(member, d)
    for it in items:  # the old merged column stays, split into its two parts
        both = {k: it["member_points"].get(k, 0) + it["receivable_points"].get(k, 0) for k in KINDS}
        assert {k: v for k, v in both.items() if v or k in it["points"]} == it["points"]


def test_history_shows_a_debt_payoff_in_the_receivable_column(demo):
    items = _json(demo, "history", "W0210")["entries"]
    payoff = items[-1]  # jwest-card's 50 points went to the debt, not to the balance
    assert (payoff["member_points"], payoff["receivable_points"]) == ({}, {"basic": 50})
    assert payoff["balance"]["basic"] == 0 and payoff["owed"]["basic"] == 3_950
    line = demo("history", "W0210").output.splitlines()[-1]
    assert "+50 basic" in line and "3,950 basic" in line


def test_readme_shows_real_output(demo):
    """Each `$ points --db demo.db ...` block of the README is that command's output on the
    demo journal (when the engine changes the demo, refresh the README block)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n\$ points --db demo\.db (.*?)\n(.*?)```", text, re.S)
    shown = {cmd.split()[0] if cmd.split()[0] != "report" else " ".join(cmd.split()[:2]) for cmd, _ in blocks}
    assert shown >= {"balances", "history", "report trial-balance", "report payouts", "report liability"}
    for cmd, out in blocks:
        assert demo(*cmd.split()).output == out, f"README block `points {cmd}` is not the real output"


@pytest.mark.parametrize("args", [("balances",), ("report", "trial-balance"), ("report", "payouts"),
                                  ("report", "liability"), ("report", "html", "-o", "x.html")])
def test_missing_database_is_a_clear_error(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--db", "nope.db", *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("error: no points database at nope.db; create it with points init")
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "x.html").exists()


def test_bad_options_are_usage_errors(demo, tmp_path):
    demo("balances", "--as-of", "2026-13-01", code=2)
    demo("balances", "--min", "-5", code=2)
    demo("balances", "--kind", "gold", code=2)
    out = demo("report", "html", "-o", str(tmp_path / "no" / "such" / "folder.html"), code=1)
    assert out.output == f"error: {tmp_path / 'no' / 'such'}: no such folder for folder.html\n"
