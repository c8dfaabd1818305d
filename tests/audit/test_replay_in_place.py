"""The in-place replay (engine.replay_inplace) settles only a journal that re-derives
exactly; every difference goes to the full replay, which reports it as before."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import apsw
import pytest

from points.dsl.loader import load_rules
from points.engine import replay as replay_module
from points.engine import settlement
from points.engine.audit import audit
from points.engine.workflow import Runner
from points.ledger import db
from points.ledger.events import import_files
from tests.audit.test_runs_in_order import rehash_from

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SAMPLES = RULES / "samples" / "events.jsonl"


@pytest.fixture(scope="module")
def journal(tmp_path_factory) -> Path:
    """Two runs of every bundled campaign over the sample events."""
    path = tmp_path_factory.mktemp("inplace") / "p.db"
    conn = db.connect(path)
    assert not import_files(conn, [SAMPLES]).errors
    rules = load_rules(RULES)
    Runner(conn, rules, dt.date(2026, 3, 31)).run()
    Runner(conn, rules, dt.date(2026, 7, 31)).run()
    conn.close()
    return path


def both_ways(path: Path, monkeypatch) -> tuple[bool, object, object]:
    """(the in-place answer, replay() as verify runs it, the full replay alone)."""
    answers = []
    real = replay_module.replay_in_place

    def spy(*args):
        answers.append(real(*args))
        return answers[-1]

    conn = db.connect(path, readonly=True)
    monkeypatch.setattr(replay_module, "replay_in_place", spy)
    got = replay_module.replay(conn)
    monkeypatch.setattr(replay_module, "replay_in_place", lambda *args: False)
    full = replay_module.replay(conn)
    monkeypatch.setattr(replay_module, "replay_in_place", real)
    conn.close()
    assert len(answers) == 1
    return answers[0], got, full


def test_a_journal_that_re_derives_is_settled_in_place_with_the_full_replay_s_counts(journal, monkeypatch):
    in_place, got, full = both_ways(journal, monkeypatch)
    assert in_place is True
    assert got.problems == full.problems == []
    conn = db.connect(journal, readonly=True)
    (n,) = conn.execute("SELECT COUNT(*) FROM entries").fetchone()
    conn.close()
    assert got.rederived == full.rederived == n
    assert (got.pending, got.pending_rederived, got.runs) == (full.pending, full.pending_rederived, full.runs)


def _award(raw) -> int:
    (seq,) = raw.execute("SELECT MIN(seq) FROM entries WHERE key LIKE 'award:%' AND seq IN"
                         " (SELECT entry FROM postings GROUP BY entry HAVING COUNT(*) = 2)").fetchone()
    return seq


def _posting(raw, seq):
    raw.execute("UPDATE postings SET amount = amount + 10 * (CASE WHEN amount > 0 THEN 1 ELSE -1 END)"
                " WHERE entry = ?", (seq,))
    return "posting 0 amount"


def _memo(raw, seq):
    (memo,) = raw.execute("SELECT memo FROM entries WHERE seq = ?", (seq,)).fetchone()
    data = json.loads(memo)
    data["forged"] = 1
    raw.execute("UPDATE entries SET memo = ? WHERE seq = ?",
                (json.dumps(data, sort_keys=True, separators=(",", ":")), seq))
    return "memo.forged"


def _rule(raw, seq):
    raw.execute("UPDATE entries SET rule = 'other.rules', rules_hash = ? WHERE seq = ?", ("0" * 64, seq))
    return "rule: stored other.rules"


def _missing(raw, seq):
    raw.execute("DELETE FROM postings WHERE entry = ?", (seq,))
    raw.execute("DELETE FROM entries WHERE seq = ?", (seq,))
    return None


SLOW = pytest.mark.slow


@pytest.mark.parametrize("tamper", [pytest.param(_memo, id="memo"),
                                    pytest.param(_posting, id="posting", marks=SLOW),
                                    pytest.param(_rule, id="rule", marks=SLOW),
                                    pytest.param(_missing, id="missing", marks=SLOW)])
def test_a_forged_entry_is_left_to_the_full_replay_which_names_it(journal, tmp_path, monkeypatch, tamper):
    path = tmp_path / "forged.db"
    src = apsw.Connection(str(journal), flags=apsw.SQLITE_OPEN_READONLY)
    with apsw.Connection(str(path)).backup("main", src, "main") as b:
        b.step()
    src.close()
    raw = apsw.Connection(str(path))
    for t in ("entries_no_update", "entries_no_delete", "postings_no_update", "postings_no_delete"):
        raw.execute(f"DROP TRIGGER {t}")
    seq = _award(raw)
    field = tamper(raw, seq)
    if field is not None:
        rehash_from(raw, seq)  # the chain rewritten after it: only the replay can tell
    db.restore_triggers(raw)
    raw.close()

    in_place, got, full = both_ways(path, monkeypatch)
    assert in_place is False
    assert got.problems == full.problems and got.problems
    assert got.rederived == full.rederived
    if field is not None:
        assert got.problems[0].startswith(f"entry {seq}: re-derived entry differs: ")
        assert field in got.problems[0], got.problems[0]
    conn = db.connect(path, readonly=True)
    assert not audit(conn)["ok"]
    conn.close()


@pytest.mark.slow
def test_an_interrupted_run_resumed_later_is_settled_in_place(tmp_path, monkeypatch):
    """A run killed mid-way and resumed by a run with another date: the stop trigger of
    the in-place replay ends the first run where the second one started."""
    rules = load_rules(RULES)
    path = tmp_path / "crash.db"
    conn = db.connect(path)
    assert not import_files(conn, [SAMPLES]).errors
    real_run, calls = settlement.Checkpointer.run, []

    def dies(self):
        calls.append(1)
        if len(calls) == 25:
            raise KeyboardInterrupt
        return real_run(self)

    monkeypatch.setattr(settlement.Checkpointer, "run", dies)
    with pytest.raises(KeyboardInterrupt):
        Runner(conn, rules, dt.date(2026, 6, 30)).run()
    monkeypatch.setattr(settlement.Checkpointer, "run", real_run)
    Runner(conn, rules, dt.date(2026, 11, 30)).run()
    conn.close()
    in_place, got, full = both_ways(path, monkeypatch)
    assert in_place is True
    assert got.problems == full.problems == []
    assert got.rederived == full.rederived > 0
