"""Rules as recorded data: the acceptance story of an auditor who receives only the
database, after campaigns were added and terms amended (issue 12)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner

from points.cli.main import cli
from points.ledger import db

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SAMPLES = RULES / "samples" / "events.jsonl"
HEAD = re.compile(r"^head: entry (\d+) sha256 ([0-9a-f]{64})$", re.M)


class Points:
    def __init__(self, folder: Path, monkeypatch) -> None:
        self.folder = folder
        monkeypatch.chdir(folder)
        self.runner = CliRunner()

    def __call__(self, *args, db: str = "points.db"):
        return self.runner.invoke(cli, ["--db", db, *map(str, args)], catch_exceptions=False)


def rules_copy(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(RULES / name, folder / name)
    shutil.copytree(RULES / "data", folder / "data", ignore=shutil.ignore_patterns("__init__.py"))
    return folder


def set_row(csv: Path, merchant: str, new_row: str) -> None:
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    lines = [new_row + "\n" if line.startswith(merchant + ",") else line for line in lines]
    csv.write_text("".join(lines), encoding="utf-8")


def head_of(output: str) -> tuple[int, str]:
    m = HEAD.search(output)
    assert m, output
    return int(m.group(1)), m.group(2)


def delete_after(path: Path, seq: int) -> None:
    """What a forger with write access does: drop the triggers, delete the tail."""
    conn = apsw.Connection(str(path))
    for t in ("entries_no_delete", "postings_no_delete"):
        conn.execute(f"DROP TRIGGER {t}")
    conn.execute("DELETE FROM postings WHERE entry > ?", (seq,))
    conn.execute("DELETE FROM entries WHERE seq > ?", (seq,))
    db.restore_triggers(conn)  # and puts them back: only the anchored head can tell
    conn.close()
    db.connect(path).close()  # and put the triggers back (verify's schema check would see them gone)


@pytest.fixture
def story(tmp_path, monkeypatch):
    """Run with three campaigns; add a campaign file; run later; amend a table."""
    work = tmp_path / "work"
    work.mkdir()
    p = Points(work, monkeypatch)
    rules = rules_copy(tmp_path / "ops" / "rules", "yearend-2024.rules", "yearend-2025.rules",
                       "jwest-card.rules")
    assert p("init").exit_code == 0
    assert p("import", SAMPLES).exit_code == 0
    first = p("run", "--until", "2026-03-31", "--rules", rules)
    assert first.exit_code == 0, first.output
    shutil.copy(RULES / "wesmo-stamp-rally-2026.rules", rules)
    added = p("run", "--until", "2026-06-30", "--rules", rules)
    assert added.exit_code == 0, added.output
    assert "wesmo-stamp-rally-2026" in added.output
    before_amend = p("verify")
    set_row(rules / "data" / "jwest_merchants.csv", "other", "other,Any non-preferred merchant,,other,2,2")
    refused = p("run", "--until", "2026-07-31", "--rules", rules)
    amended = p("run", "--until", "2026-07-31", "--rules", rules, "--amend", "non-preferred merchants 2x")
    shutil.rmtree(tmp_path / "ops")  # no rules folder anywhere from here on
    return dict(p=p, tmp=tmp_path, refused=refused, amended=amended, before_amend=before_amend)


def test_the_auditors_story(story):
    p, tmp = story["p"], story["tmp"]
    assert story["before_amend"].exit_code == 0, story["before_amend"].output
    # changing a table of a campaign that paid: refused, naming the table and both hashes
    refused = story["refused"]
    assert refused.exit_code == 1
    assert "jwest-card" in refused.output and "data/jwest_merchants.csv" in refused.output
    assert len(re.findall(r"\b[0-9a-f]{64}\b", refused.output)) == 2 and "--amend" in refused.output
    assert story["amended"].exit_code == 0, story["amended"].output

    ok = p("verify")
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ok: ")
    seq, head = head_of(ok.output)
    data = json.loads(p("verify", "--json").output)
    assert data["head"]["entry"] == seq and data["head"]["sha256"] == head
    assert data["checked"]["runs_replayed"] == 3
    assert data["checked"]["entries_rederived"] == data["entries"] == seq
    assert [r["amendment"] is not None for r in data["runs"]] == [False, False, True]
    assert p("verify", "--expect-head", head).exit_code == 0

    # deleting the last run (its entries and its marker) behind the triggers
    copy = tmp / "work" / "copy.db"
    assert p("export", "--format", "bundle", "-o", copy).exit_code == 0  # whole (WAL included)
    delete_after(copy, data["runs"][1]["entry"])
    cut = p("verify", db="copy.db")
    # the chain left is self-consistent, but the run's end was recorded beside it...
    assert cut.exit_code == 1, cut.output
    assert "a run finished with its marker at entry" in cut.output
    caught = p("verify", "--expect-head", head, db="copy.db")
    assert caught.exit_code == 1  # ...and it does not hold the head published before
    assert f"expected head {head} is not on the journal's chain" in caught.output

    # a rules folder with one changed table row, compared with the latest run's rules
    changed = rules_copy(tmp / "audit" / "rules", "yearend-2024.rules", "yearend-2025.rules",
                         "jwest-card.rules", "wesmo-stamp-rally-2026.rules")
    set_row(changed / "data" / "jwest_merchants.csv", "other", "other,Any non-preferred merchant,,other,2,2")
    assert p("verify", "--rules", changed).exit_code == 0  # same as the amended run's
    lines = (changed / "data" / "blue_tag_stores.csv").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1] + "x"
    (changed / "data" / "blue_tag_stores.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    differs = p("verify", "--rules", changed)
    assert differs.exit_code == 1
    problems = [line for line in differs.output.splitlines() if "differs from the latest run" in line]
    assert len(problems) == 2, differs.output  # the FAILED line and the list
    assert "table data/blue_tag_stores.csv" in problems[0]
    assert "line 2:" in problems[0]
    assert len(re.findall(r"\b[0-9a-f]{64}\b", problems[0])) == 2


def test_an_amendment_is_recorded_and_its_adjustments_link_to_it(story):
    conn = db.connect(story["tmp"] / "work" / "points.db", readonly=True)
    (seq, memo), = [(s, json.loads(m)) for s, m in conn.execute(
        "SELECT seq, memo FROM entries WHERE step = 'amend'")]
    assert memo["reason"] == "non-preferred merchants 2x" and memo["by"] and memo["at"].endswith("Z")
    (change,) = memo["changes"]
    assert change["campaign"] == "jwest-card" and change["path"] == "data/jwest_merchants.csv"
    assert re.fullmatch(r"[0-9a-f]{64}", change["before"]) and change["before"] != change["after"]
    adjustments = conn.execute("SELECT key, campaign FROM entries WHERE key LIKE ?",
                               (f"%~amend{seq}",)).fetchall()
    assert adjustments and {c for _, c in adjustments} == {"jwest-card"}
    # 2x instead of 1x at non-preferred merchants: every adjustment is a grant, none a reversal
    assert all(k.startswith("award:") for k, _ in adjustments)
    (marker,) = [json.loads(m) for (m,) in conn.execute(
        "SELECT memo FROM entries WHERE step = 'run' ORDER BY seq DESC LIMIT 1")]
    assert marker["amendment"] == seq
    assert marker["campaigns"]["jwest-card"]["data/jwest_merchants.csv"] == change["after"]
    member = conn.execute("SELECT json_extract(memo, '$.member') FROM entries WHERE key LIKE ?",
                          (f"%~amend{seq}",)).fetchone()[0]
    conn.close()
    trace = json.loads(story["p"]("explain", member, "jwest-card", "--json").output)
    assert trace["rules"]["tables"]["data/jwest_merchants.csv"] == change["after"]
    assert any(e["amendment"] == seq for e in trace["entries"])


def test_changing_a_rules_file_of_a_campaign_that_paid_is_refused(tmp_path, monkeypatch):
    p = Points(tmp_path, monkeypatch)
    rules = rules_copy(tmp_path / "rules", "yearend-2025.rules")
    p("init"), p("import", SAMPLES)
    assert p("run", "--until", "2026-03-31").exit_code == 0
    f = rules / "yearend-2025.rules"
    old = f.read_bytes()
    f.write_bytes(old + b"\n# a comment is a change of the file too\n")
    refused = p("run", "--until", "2026-04-30")
    assert refused.exit_code == 1
    assert "yearend-2025.rules changed" in refused.output
    conn = db.connect(tmp_path / "points.db", readonly=True)
    assert conn.execute("SELECT COUNT(*) FROM entries WHERE step = 'run'").fetchone()[0] == 1
    conn.close()
    f.write_bytes(old)  # back to the recorded terms: accepted again
    assert p("run", "--until", "2026-04-30").exit_code == 0
    assert p("verify").exit_code == 0


def test_an_amendment_that_lowers_awards_posts_linked_reversals_and_verifies(tmp_path, monkeypatch):
    p = Points(tmp_path, monkeypatch)
    rules = rules_copy(tmp_path / "rules", "yearend-2025.rules")
    p("init"), p("import", SAMPLES)
    assert p("run", "--until", "2026-03-31").exit_code == 0
    f = rules / "yearend-2025.rules"
    f.write_text(f.read_text(encoding="utf-8").replace("min(spend, cap)", "min(spend, 5_000)"),
                 encoding="utf-8")
    amended = p("run", "--until", "2026-03-31", "--amend", "prize capped at 5,000 (erratum)")
    assert amended.exit_code == 0, amended.output
    conn = db.connect(tmp_path / "points.db", readonly=True)
    (amend_seq,) = conn.execute("SELECT seq FROM entries WHERE step = 'amend'").fetchone()
    rows = conn.execute("SELECT key, reverses FROM entries WHERE key LIKE ?", (f"%~amend{amend_seq}%",)).fetchall()
    assert rows and all(k.startswith("reverse:") and r is not None for k, r in rows)
    # every winner now holds at most 5,000 from the campaign
    net = conn.execute(
        "SELECT json_extract(e.memo, '$.member'), SUM(p.amount) FROM entries e JOIN postings p ON p.entry = e.seq"
        " WHERE e.campaign = 'yearend-2025' AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%')"
        " GROUP BY 1").fetchall()
    assert net and max(v for _, v in net) == 5000
    conn.close()
    ok = p("verify")
    assert ok.exit_code == 0, ok.output
    conn = db.connect(tmp_path / "points.db", readonly=True)
    (member,) = conn.execute("SELECT json_extract(memo, '$.member') FROM entries WHERE key LIKE ?"
                             " ORDER BY seq LIMIT 1", (f"reverse:%~amend{amend_seq}",)).fetchone()
    conn.close()
    text = p("explain", member, "yearend-2025").output
    assert f"amendment entry {amend_seq}" in text
    assert "caused by a recomputation with no undoing event (the rules amendment)" in text
