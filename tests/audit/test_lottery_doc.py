"""docs/lottery.md is enough to redo every draw: this file follows the page only (it
imports nothing of the engine's lottery) and must agree with the journal."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import pytest

from points.dsl.loader import load_rules
from points.engine.workflow import Runner
from points.ledger import db
from points.ledger.events import import_files

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "lottery.md").read_text(encoding="utf-8")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def redo(campaign: str, period: str, award: str, day: str, candidates: list[str], seed=None):
    """The draw as docs/lottery.md specifies it: (digest, seed, order)."""
    digest = sha("\n".join(sorted(candidates)))
    seed = seed or sha(f"{campaign}|{period}|{award}|{day}|{digest}")
    order = sorted(candidates, key=lambda m: (sha(f"{seed}|{m}"), m))
    return digest, seed, order


def worked_example() -> dict:
    section = DOC.split("## Worked example", 1)[1]
    hexes = re.findall(r"^    ([0-9a-f]{64})$", section, re.M)
    rows = re.findall(r"^\| (\d+) \| (\S+) \| ([0-9a-f]{64}) \|$", section, re.M)
    members = re.search(r"^    (W\d+(?: W\d+)+)$", section, re.M).group(1).split()
    return {"members": members, "digest": hexes[0], "seed": hexes[1],
            "order": [m for _, m, _ in rows], "ranks": {m: r for _, m, r in rows}}


def test_the_worked_example_is_self_consistent():
    ex = worked_example()
    digest, seed, order = redo("yearend-2025", "main", "prize", "2026-02-05", ex["members"])
    assert (digest, seed, order) == (ex["digest"], ex["seed"], ex["order"])
    assert all(sha(f"{seed}|{m}") == r for m, r in ex["ranks"].items())


@pytest.fixture(scope="module")
def draws(tmp_path_factory):
    conn = db.connect(tmp_path_factory.mktemp("lottery") / "points.db")
    assert not import_files(conn, [ROOT / "rules" / "samples" / "events.jsonl"]).errors
    Runner(conn, load_rules(ROOT / "rules"), dt.date(2026, 11, 30)).run()
    out = [(key, effective, json.loads(memo)) for key, effective, memo in conn.execute(
        "SELECT key, effective, memo FROM entries WHERE key LIKE 'draw:%' ORDER BY seq")]
    conn.close()
    return out


def test_every_sample_draw_is_redone_from_the_page(draws):
    assert len(draws) >= 3
    for key, effective, memo in draws:
        _, campaign, period, award = key.split(":")
        digest, seed, order = redo(campaign, period, award, effective, memo["order"])
        assert memo["candidates"] == len(order)
        assert memo["candidates_digest"] == digest, key
        assert memo["seed"] == seed, key
        assert memo["order"] == order, key
        fixed = re.fullmatch(r"(\d+) winners", memo["rule"])
        if fixed:
            assert memo["winners"] == order[:int(fixed.group(1))], key
        else:  # within budget: a prefix of the draw order
            assert memo["winners"] == order[:len(memo["winners"])], key


def test_the_worked_example_is_the_journals_draw(draws):
    ex = worked_example()
    (memo,) = [m for key, day, m in draws if key == "draw:yearend-2025:main:prize" and day == "2026-02-05"]
    assert sorted(memo["order"]) == ex["members"]
    assert (memo["candidates_digest"], memo["seed"], memo["order"]) == (ex["digest"], ex["seed"], ex["order"])
