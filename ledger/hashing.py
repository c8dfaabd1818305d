"""Canonical encoding and the entries hash chain.

    hash = sha256(prev_hash || canonical(entry))

canonical(entry) is compact, sorted-key JSON (UTF-8, not ASCII-escaped) of
every stored column of the entry except `hash` -- `events` and `memo` as the
JSON text that is stored -- plus "postings": the list of its postings, in idx
order, each with every stored column (id, entry, idx, account, kind, amount,
expires, lot). The first entry's prev_hash is GENESIS (64 zeros).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

GENESIS = "0" * 64

ENTRY_COLUMNS = (
    "seq", "key", "effective", "recorded", "campaign", "rule", "rules_hash", "step",
    "events", "reverses", "memo", "prev_hash",
)
POSTING_COLUMNS = ("id", "entry", "idx", "account", "kind", "amount", "expires", "lot")

_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode
_sha256 = hashlib.sha256


def canonical(value: Any) -> str:
    """Compact, sorted-key, non-ASCII-escaped JSON."""
    return _dumps(value)


def entry_canonical(entry_row: Sequence, posting_rows: Sequence[Sequence]) -> str:
    """canonical() of an entry row (ENTRY_COLUMNS order, no hash) and its posting rows."""
    obj = dict(zip(ENTRY_COLUMNS, entry_row))
    obj["postings"] = [dict(zip(POSTING_COLUMNS, p)) for p in posting_rows]
    return _dumps(obj)


def chain_hash(prev_hash: str, canonical_text: str) -> str:
    return _sha256((prev_hash + canonical_text).encode()).hexdigest()


def entry_hash(entry_row: Sequence, posting_rows: Sequence[Sequence]) -> str:
    """The hash of an entry; entry_row[-1] must be its prev_hash."""
    return chain_hash(entry_row[-1], entry_canonical(entry_row, posting_rows))


# ---------------------------------------------------------------- fast path
# The same text as entry_canonical(), built directly (the layout is fixed and
# the keys are already in sorted order). Used by Journal.append; verify builds
# the same text in SQL (ledger/verify_chain.py). Tests check both against
# entry_canonical().

from json.encoder import encode_basestring as _str  # noqa: E402  (C, keeps non-ASCII)


def fast_canonical(entry_row: Sequence, posting_rows: Sequence[Sequence]) -> str:
    """Stored columns have fixed types (TEXT columns hold str, INTEGER columns int), so
    most values are formatted directly; any other value can only give a different text
    (or raise TypeError), never the text of the original row."""
    (seq, key, effective, recorded, campaign, rule, rules_hash, step, events, reverses, memo,
     prev_hash) = entry_row
    s = _str
    parts = [
        f'{{"account":{s(account)},"amount":{amount},"entry":{entry},'
        f'"expires":{"null" if expires is None else s(expires)},"id":{pid},"idx":{idx},'
        f'"kind":{s(kind)},"lot":{"null" if lot is None else lot}}}'
        for pid, entry, idx, account, kind, amount, expires, lot in posting_rows
    ]
    return (
        f'{{"campaign":{"null" if campaign is None else s(campaign)},"effective":{s(effective)},'
        f'"events":{s(events)},"key":{s(key)},"memo":{s(memo)},"postings":[{",".join(parts)}],'
        f'"prev_hash":{s(prev_hash)},"recorded":{s(recorded)},'
        f'"reverses":{"null" if reverses is None else reverses},'
        f'"rule":{"null" if rule is None else s(rule)},'
        f'"rules_hash":{"null" if rules_hash is None else s(rules_hash)},"seq":{seq},'
        f'"step":{"null" if step is None else s(step)}}}'
    )
