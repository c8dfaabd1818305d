"""explain, redone by a third party: events counted and left out (with the condition),
rules and hashes, the lottery in full, what was computed when paid, reversal causes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from points.cli.main import cli
from points.dsl.loader import load_rules
from points.engine.explain import explain
from points.engine.workflow import Runner
from points.ledger import db
from points.ledger.events import import_files

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
UNTIL = dt.date(2026, 7, 31)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    path = tmp_path_factory.mktemp("explain") / "points.db"
    conn = db.connect(path)
    assert not import_files(conn, [RULES / "samples" / "events.jsonl"]).errors
    rules = load_rules(RULES)
    Runner(conn, rules, UNTIL).run()
    yield conn, rules, path
    conn.close()


def stream(trace, name="booking", period=0):
    return trace["periods"][period]["streams"][name]


def test_a_refund_leaves_its_booking_out_and_causes_the_reversal(ran):
    conn, rules, _ = ran
    t = explain(conn, rules, "W0107", "yearend-2025")
    s = stream(t)
    assert [e["id"] for e in s["counted"]] == ["W0107-01"]
    (left,) = s["left_out"]
    assert left["id"] == "W0107-02" and left["undone_by"] == ["W0107-03"]
    assert left["left_out_by"].startswith("undone by refund W0107-03")
    (reversal,) = [e for e in t["entries"] if e["what"] == "reverse"]
    assert [(c["id"], c["type"], c["undoes"]) for c in reversal["caused_by"]] == [("W0107-03", "refund", "W0107-02")]
    (award,) = t["periods"][0]["awards"]
    assert [h["target"] for h in award["computed_when_paid"]] == [30000, 12000]
    assert award["computed_now"] == 12000 and award["differs_from_paid"] is False


def test_a_filter_conjunct_names_what_left_an_event_out(ran):
    conn, rules, _ = ran
    s = stream(explain(conn, rules, "W0105", "yearend-2025"))
    assert s["counted"] == [] and s["left_out_total"] == 2
    assert {e["left_out_by"] for e in s["left_out"]} == {'condition `segments has "sanyo"` is false'}
    later = stream(explain(conn, rules, "W0107", "yearend-2025", as_of=dt.date(2025, 12, 1)))
    assert {e["left_out_by"] for e in later["left_out"]} == {"dated after 2025-12-01"}


def test_the_lottery_and_the_rules_in_full(ran):
    conn, rules, _ = ran
    t = explain(conn, rules, "W0107", "yearend-2025")
    lot = t["periods"][0]["awards"][0]["lottery"]
    (memo,) = [json.loads(m) for (m,) in conn.execute(
        "SELECT memo FROM entries WHERE key = 'draw:yearend-2025:main:prize'")]
    assert (lot["seed"], lot["candidates_digest"]) == (memo["seed"], memo["candidates_digest"])
    assert re.fullmatch(r"[0-9a-f]{64}", lot["seed"]) and lot["position"] == memo["order"].index("W0107") + 1
    assert lot["draw_date"] == "2026-02-05"
    assert t["rules"]["sha256"] == rules.campaign("yearend-2025").rules_hash
    text = __import__("points.engine.explain", fromlist=["render"]).render(t)
    assert lot["seed"] in text and lot["candidates_digest"] in text  # never cut short


@pytest.mark.parametrize("campaign", ["yearend-2024", "yearend-2025", "jwest-card", "mynapoint-icoca",
                                      "wesmo-stamp-rally-2026"])
def test_counted_events_are_the_ones_the_run_paid_for(ran, campaign):
    """Two independent paths: the run's id list (main query) and explain's per-event
    test (the run's predicate with the probes) name the same events on the pay date."""
    conn, rules, _ = ran
    rows = conn.execute(
        "SELECT json_extract(memo, '$.member'), effective, events, json_extract(memo, '$.period')"
        " FROM entries WHERE campaign = ? AND key LIKE 'award:%' ORDER BY seq", (campaign,)).fetchall()
    assert rows
    for member, effective, events, period in rows[:12]:
        t = explain(conn, rules, member, campaign, as_of=dt.date.fromisoformat(effective))
        (p,) = [p for p in t["periods"] if p["period"] == period]
        counted = {e["id"] for s in p["streams"].values() for e in s["counted"]}
        assert counted >= set(json.loads(events)), (member, effective)
        assert set(json.loads(events)) >= counted - {e["id"] for e in p["streams"].get("campaign entry", {}).get("counted", [])}


def test_explain_uses_the_recorded_rules_without_a_folder(ran, tmp_path, monkeypatch):
    _, _, path = ran
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--db", str(path), "explain", "W0107", "yearend-2025", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    assert trace["rules"]["origin"].startswith("recorded by run entry")
    text = CliRunner().invoke(cli, ["--db", str(path), "explain", "W0107", "yearend-2025"]).output
    assert "caused by refund W0107-03" in text and "- W0107-02" in text


def test_per_tier_and_per_day_breakdowns_add_up(ran):
    conn, rules, _ = ran
    rows = conn.execute("SELECT DISTINCT json_extract(memo, '$.member') FROM entries"
                        " WHERE campaign = 'jwest-card' AND key LIKE 'award:%'").fetchall()
    checked = 0
    for (member,) in rows:
        for p in explain(conn, rules, member, "jwest-card")["periods"]:
            (tiers,) = p["tiers"]
            assert tiers["expression"].startswith("sum over purchase by multiplier")
            assert sum(t["value"] for t in tiers["tiers"]) == p["values"]["bonus"]
            streams = [p["streams"]["purchase"], p["streams"]["cashback"]]  # total = both sums
            assert sum(d["amount"] for s in streams for d in s["by_day"]) == p["values"]["total"]
            assert all(sum(d["events"] for d in s["by_day"]) == len(s["counted"]) for s in streams)
            checked += bool(tiers["tiers"])
    assert checked >= 3
