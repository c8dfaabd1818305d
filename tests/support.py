"""Helpers shared by the tests: a fresh database, events in, the real rules, a run."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import attrs

from points.dsl.loader import RuleSet, load_rules
from points.engine.workflow import Runner, RunReport
from points.ledger import db, events, operations
from points.ledger.accounts import FUNDING
from points.ledger.journal import Journal
from points.ledger.model import Entry

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"


def grant(journal: Journal, member: str, kind: str, amount: int, expires: dt.date,
          effective: dt.date, *, key: str, source: str = FUNDING, **fields) -> Entry:
    """A grant by the path the run engine takes: `operations.grant` (what the member owes
    of that kind paid back first, here read from the journal), then `Journal.append`."""
    owed = journal.receivable(member)[kind]
    return journal.append([operations.grant(
        key=key, effective=effective, source=source, member=member, kind=kind, amount=amount,
        owed=owed, expires=expires, **fields)])[0]


@functools.cache
def real_rules() -> RuleSet:
    """The shipped rules/ folder, parsed, checked and compiled once per test session."""
    return load_rules(RULES)


@attrs.define
class World:
    """A points database with its journal, for one test."""

    conn: object
    journal: Journal
    path: Path

    def add(self, *records: dict, catalogue=None) -> None:
        """Import events (dicts in the JSONL contract; `catalogue`: a rules folder's event
        declarations, default the bundled ones); fails the test on any bad event."""
        report = events.import_records(self.conn, [(f"test:{i}", r) for i, r in enumerate(records, 1)],
                                       catalogue=catalogue)
        assert not report.errors, report.errors

    def run(self, until: str | dt.date, rules: RuleSet | None = None) -> RunReport:
        if isinstance(until, str):
            until = dt.date.fromisoformat(until)
        return Runner(self.conn, rules or real_rules(), until).run()

    def balance(self, member: str, as_of: str | None = None) -> dict[str, int]:
        return self.journal.balance(member, dt.date.fromisoformat(as_of) if as_of else None)

    def awards(self, campaign: str, member: str | None = None) -> list[tuple]:
        """(effective, key prefix, member, points) of every award/reversal of a campaign."""
        out = []
        for e in self.journal.entries(campaign=campaign):
            if not e.postings:
                continue
            pts = sum(p.amount for p in e.postings if p.account.split(":")[0] in ("member", "receivable"))
            who = e.memo.get("member") if isinstance(e.memo, dict) else None
            if member is None or who == member:
                out.append((e.effective.isoformat(), e.key.split(":")[0], who, pts))
        return out

    def paid(self, campaign: str, member: str) -> int:
        """Net points a member got from a campaign (grants minus reversals)."""
        return sum(p for *_, who, p in self.awards(campaign, member) if who == member)


def new_world(tmp_path: Path) -> World:
    tmp_path.mkdir(parents=True, exist_ok=True)  # ledger.db.connect creates no folder
    path = tmp_path / "points.db"
    conn = db.connect(path)
    return World(conn, Journal(conn), path)


def journal_projection(world: World, campaign: str, members=(), *, expiries: bool = False) -> list[dict]:
    """A stable view of a campaign's entries for snapshots (no seqs or hashes, which
    change with every rules file): the campaign's entries, those touching `members`'
    accounts and, with `expiries`, every expiry entry."""
    out = []
    for e in world.journal.entries():
        if e.key.startswith("run:"):
            continue
        touches = any(p.account.split(":")[1] in members
                      for p in e.postings if p.account.startswith("member:"))
        if not (e.campaign == campaign or touches or (expiries and e.key.startswith("expire:"))):
            continue
        item = {
            "effective": e.effective.isoformat(),
            "key": e.key,
            "postings": [(p.account, p.kind, p.amount, p.expires.isoformat() if p.expires else None)
                         for p in e.postings],
        }
        if e.reverses is not None:
            item["reverses"] = world.journal.entry(e.reverses).key
        if e.key.startswith("draw:"):
            item["winners"] = e.memo["winners"]
        out.append(item)
    return out


def rules_from_text(tmp_path: Path, text: str, name: str = "c.rules") -> RuleSet:
    """A rules folder in tmp_path holding one file with `text`, loaded (checked and compiled)."""
    folder = tmp_path / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return load_rules(folder)


def card_payment(id_: str, member: str, amount: int, at: str, merchant: str = "x") -> dict:
    """A `card_payment` event as a JSON object (merchant `x` is in no table)."""
    return {"id": id_, "type": "card_payment", "member": member, "at": at, "amount": amount,
            "merchant": merchant}
