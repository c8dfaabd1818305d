"""Exporters of the journal: JSON Lines, CSV and a beancount ledger.

Each writer streams the journal in seq order to a text file object, so memory
stays bounded by one entry whatever the size of the journal (the beancount
writer makes one extra grouped query first, to open every account).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from typing import Any, Iterable, TextIO

from points.ledger.journal import Journal
from points.ledger.model import Entry

# ---------------------------------------------------------------- jsonl / csv


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_dict(e: Entry) -> dict:
    return {
        "seq": e.seq, "key": e.key, "effective": e.effective.isoformat(), "recorded": e.recorded,
        "campaign": e.campaign, "rule": e.rule, "rules_hash": e.rules_hash, "step": e.step,
        "events": list(e.events), "reverses": e.reverses, "memo": e.memo,
        "prev_hash": e.prev_hash, "hash": e.hash,
        "postings": [{"id": p.id, "idx": i, "account": p.account, "kind": p.kind, "amount": p.amount,
                      "expires": p.expires.isoformat() if p.expires else None, "lot": p.lot}
                     for i, p in enumerate(e.postings)],
    }


def write_jsonl(conn, out: TextIO) -> int:
    """One JSON object per entry (with its postings), in seq order. Returns the count."""
    n = 0
    for e in Journal(conn).entries():
        out.write(_compact(entry_dict(e)) + "\n")
        n += 1
    return n


CSV_COLUMNS = ("seq", "key", "effective", "recorded", "campaign", "rule", "rules_hash", "step",
               "events", "reverses", "memo", "prev_hash", "hash",
               "posting_id", "idx", "account", "kind", "amount", "expires", "lot")


def write_csv(conn, out: TextIO) -> int:
    """One row per posting with its entry's columns (an entry without postings: one row
    with empty posting columns). Returns the number of rows."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    n = 0
    for e in Journal(conn).entries():
        head = [e.seq, e.key, e.effective.isoformat(), e.recorded, e.campaign or "", e.rule or "",
                e.rules_hash or "", e.step or "", _compact(list(e.events)),
                "" if e.reverses is None else e.reverses, _compact(e.memo), e.prev_hash, e.hash]
        if not e.postings:
            w.writerow(head + [""] * 6)
            n += 1
        for i, p in enumerate(e.postings):
            w.writerow(head + [p.id, i, p.account, p.kind, p.amount,
                               p.expires.isoformat() if p.expires else "",
                               "" if p.lot is None else p.lot])
            n += 1
    return n


# ---------------------------------------------------------------- beancount

COMMODITIES = {"basic": "PTBASIC", "limited": "PTLIMITED", "charge_only": "PTCHARGE"}
_KIND_COMPONENT = {"basic": "Basic", "limited": "Limited", "charge_only": "Charge-Only"}
_SYSTEM = {"funding": "Expenses:System:Funding", "redeemed": "Income:System:Redeemed",
           "expired": "Income:System:Expired"}
_BAD = re.compile(r"[^A-Za-z0-9-]")


def _component(text: str) -> str:
    """A string -> a beancount account component: [A-Z0-9][A-Za-z0-9-]*.

    Only the first letter is capitalised when nothing else has to change
    ('yearend-2025' -> 'Yearend-2025'); otherwise the invalid characters
    become '-' and a short hash of the original keeps the name unique.
    """
    clean = _BAD.sub("-", text)
    if clean[:1].islower():
        clean = clean[0].upper() + clean[1:]
    trivial = clean == text[:1].upper() + text[1:]
    if not clean[:1].isalnum():
        clean = "X" + clean
    if not trivial:
        clean = f"{clean}-{_short_hash(text)}"
    return clean


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class AccountNames:
    """Ledger account names -> beancount names, injective over the accounts given."""

    def __init__(self, accounts: Iterable[str]) -> None:
        ids: dict[tuple[str, str], str] = {}
        taken: dict[tuple[str, str], list[str]] = {}
        for account in accounts:
            parts = account.split(":")
            if parts[0] in ("member", "receivable", "campaign"):
                space = "campaign" if parts[0] == "campaign" else "member"
                if (space, parts[1]) not in ids:
                    name = _component(parts[1])
                    ids[(space, parts[1])] = name
                    taken.setdefault((space, name), []).append(parts[1])
        for (space, name), originals in taken.items():
            if len(originals) > 1:  # e.g. 'w1' and 'W1': both get their own hash
                for o in originals:
                    ids[(space, o)] = f"{name}-{_short_hash(o)}"
        self._ids = ids

    def __call__(self, account: str) -> str:
        parts = account.split(":")
        kind = parts[0]
        if kind == "member":
            return f"Liabilities:Members:{self._ids[('member', parts[1])]}:{_KIND_COMPONENT[parts[2]]}"
        if kind == "receivable":
            return f"Assets:Receivable:{self._ids[('member', parts[1])]}:{_KIND_COMPONENT[parts[2]]}"
        if kind == "campaign":
            return f"Equity:Campaigns:{self._ids[('campaign', parts[1])]}:Budget"
        if kind == "system" and parts[1] in _SYSTEM:
            return _SYSTEM[parts[1]]
        return "Equity:Other:" + _component(account)


def _bstr(text: Any) -> str:
    """A beancount string literal."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{s}"'


def describe(e: Entry) -> str:
    """A one-line narration of an entry."""
    memo = e.memo if isinstance(e.memo, dict) else {}
    prefix = e.key.split(":", 1)[0]
    who = memo.get("member")
    if prefix == "fund":
        return f"fund the budget of {e.campaign}"
    if prefix == "award":
        return f"award {memo.get('award')} to {who}: {memo.get('label') or memo.get('award')}"
    if prefix == "reverse":
        return f"reversal of entry {e.reverses} (award {memo.get('award')} of {who})"
    if prefix == "refused":
        return f"award {memo.get('award')} to {who} refused: {memo.get('refused')}"
    if prefix == "draw":
        return f"lottery draw {memo.get('award')}: {len(memo.get('winners', ()))} winners"
    if prefix == "redeem":
        if memo.get("refused"):
            return f"redemption refused: {memo['refused']}"
        return f"redemption ({memo.get('use')})"
    if prefix == "expire":
        return f"expiry of {e.key.split(':')[1]}'s lots"
    if prefix == "run":
        return f"run until {memo.get('until')}"
    return e.key


# The journal counts a member's points as positive (what the member holds); beancount
# books from the issuer's side, where what it owes is a credit (negative) on a liability.
# Every posting is written with its sign flipped (entries still sum to zero): member
# points are negative Liabilities, receivables positive Assets, points issued positive
# Expenses (funding), a budget a negative Equity reserve, redeemed and expired points
# negative Income.
BEANCOUNT_SIGN = -1


def _meta(key: str, value: Any) -> str:
    return f"  {key}: {_bstr(value)}\n"


def entry_metadata(e: Entry) -> str:
    """The evidence of an entry as beancount metadata: source events, rules, lottery."""
    memo = e.memo if isinstance(e.memo, dict) else {}
    out = []
    if e.events:
        out.append(_meta("events", ",".join(e.events)))
    if e.rule:
        out.append(_meta("rule", e.rule))
    if e.rules_hash:
        out.append(_meta("rules-hash", e.rules_hash))
    if "seed" in memo:  # a lottery draw
        out += [_meta("lottery-seed", memo["seed"]),
                _meta("candidates-digest", memo.get("candidates_digest", "")),
                _meta("draw-order", ",".join(memo.get("order", ()))),
                _meta("winners", ",".join(memo.get("winners", ())))]
    if e.step == "run":
        out.append(_meta("ruleset", memo.get("ruleset", "")))
    if e.step == "amend":
        out += [_meta("reason", memo.get("reason", "")), _meta("by", memo.get("by", "")),
                _meta("at", memo.get("at", ""))]
    return "".join(out)


def write_beancount(conn, out: TextIO) -> int:
    """A beancount ledger of the journal; returns the number of transactions."""
    rows = list(conn.execute(
        "SELECT p.account, p.kind, MIN(e.effective) FROM postings p JOIN entries e ON e.seq = p.entry"
        " GROUP BY p.account, p.kind ORDER BY p.account, p.kind"))
    names = AccountNames(r[0] for r in rows)
    first = conn.execute("SELECT MIN(effective) FROM entries").fetchone()[0] or "1970-01-01"
    out.write(";; points ledger journal, exported by `points export --format beancount`\n")
    out.write(";; amounts are points; one commodity per point kind; entries sum to zero per kind\n")
    out.write(";; signs from the issuer's side: member points are liabilities (negative)\n\n")
    for kind, commodity in COMMODITIES.items():
        out.write(f"{first} commodity {commodity}\n  name: {_bstr(kind)}\n")
    out.write("\n")
    opened: dict[str, tuple[str, set[str]]] = {}
    for account, kind, since in rows:
        name = names(account)
        day, kinds = opened.get(name, (since, set()))
        kinds.add(COMMODITIES[kind])
        opened[name] = (min(day, since), kinds)
    for name, (since, kinds) in opened.items():
        out.write(f"{since} open {name} {','.join(sorted(kinds))}\n")
    n = 0
    for e in Journal(conn).entries():
        out.write("\n")
        payee = f"{_bstr(e.campaign)} " if e.campaign else ""
        out.write(f"{e.effective.isoformat()} * {payee}{_bstr(describe(e))}\n")
        out.write(f"  seq: {e.seq}\n  key: {_bstr(e.key)}\n  hash: {_bstr(e.hash)}\n")
        out.write(f"  prev-hash: {_bstr(e.prev_hash)}\n")
        if e.step:
            out.write(f"  step: {_bstr(e.step)}\n")
        if e.reverses is not None:
            out.write(f"  reverses: {e.reverses}\n")
        out.write(entry_metadata(e))
        for p in e.postings:
            out.write(f"  {names(p.account)}  {BEANCOUNT_SIGN * p.amount} {COMMODITIES[p.kind]}\n")
            if p.expires is not None:
                out.write(f"    expires: {p.expires.isoformat()}\n")
            if p.lot is not None:
                out.write(f"    lot: {p.lot}\n")
        n += 1
    return n


# ---------------------------------------------------------------- bundle


def write_bundle(conn, target) -> None:
    """A self-contained copy of the database (events, journal, recorded rules sets) at
    `target`, made by SQLite from one consistent snapshot (VACUUM INTO); `points --db
    FILE verify` (or `points verify --bundle FILE`) checks it anywhere."""
    conn.execute("VACUUM INTO ?", (str(target),))
