"""Re-derive and check everything the journal promises, in one streaming pass.

Entries are read with one query ordered by seq and postings with one query
ordered by id (ids are assigned in (entry, idx) order), merged in Python; no
per-row queries. Works on a read-only connection.

Checks, per entry in seq order: seqs contiguous from 1; prev_hash equals the
previous entry's hash and hash equals sha256(prev_hash || canonical(entry));
postings exist, belong to existing entries and have idx 0..n-1; accounts and
kinds valid; every entry sums to zero per kind; member credits carry expires
(>= effective), member debits name a lot of the same account and kind that was
open on the effective date, and no lot goes below zero; budgets never go below
zero and receivables never above zero (in seq order); `reverses` names an
earlier entry. Then the events chain (if ledger.events is available) and the
per-connection balance cache of ledger.journal.
"""

from __future__ import annotations

import hashlib
from itertools import groupby
from operator import itemgetter

import apsw
import attrs

from ledger.errors import InvalidAccount
from ledger.hashing import GENESIS, entry_canonical, fast_canonical
from ledger.journal import _ACCOUNTS, account_info
from ledger.kinds import KIND_NAMES

MAX_PROBLEMS = 1000

_sha256 = hashlib.sha256


@attrs.define
class VerifyReport:
    ok: bool
    checked_entries: int
    checked_postings: int
    checked_events: int
    problems: list[str]
    first_bad: str | None


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0
        self.first: str | None = None

    def add(self, text: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = text
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(text)


def verify(conn: apsw.Connection) -> VerifyReport:
    """Check the journal (and events chain, and balance cache); never writes."""
    bad = _Problems()
    n_entries, n_postings = _verify_entries(conn, bad)
    n_events = verify_events(conn, bad)
    _verify_cache(conn, bad)
    problems = list(bad.items)
    if bad.count > len(problems):
        problems.append(f"... and {bad.count - len(problems)} more problems")
    return VerifyReport(
        ok=bad.count == 0,
        checked_entries=n_entries,
        checked_postings=n_postings,
        checked_events=n_events,
        problems=problems,
        first_bad=bad.first,
    )


def _verify_entries(conn: apsw.Connection, bad: _Problems) -> tuple[int, int]:
    add = bad.add
    sha256 = _sha256
    kinds_ok = frozenset(KIND_NAMES)
    accounts = _ACCOUNTS  # valid account -> (type letter, kind or None), shared cache
    lots: dict[int, list] = {}  # lot id -> [account, kind, expires, remaining, effective]
    running: dict[tuple[str, str], int] = {}  # budget and receivable balances

    # Postings grouped by entry, in id order (ids are assigned in (entry, idx) order).
    groups = groupby(conn.execute(
        "SELECT id, entry, idx, account, kind, amount, expires, lot FROM postings ORDER BY id"),
        _ENTRY_OF)
    group = next(groups, None)
    expected = 1
    chain = GENESIS
    n_entries = n_postings = 0
    no_postings: tuple = ()

    for erow in conn.execute(
        "SELECT seq, key, effective, recorded, campaign, rule, rules_hash, step, events,"
        " reverses, memo, prev_hash, hash FROM entries ORDER BY seq"
    ):
        (seq, key, eff, recorded, campaign, rule, rules_hash, step, events, reverses, memo,
         prev_hash, stored_hash) = erow
        n_entries += 1
        if seq != expected:
            add(f"entry {seq}: seq not contiguous (expected {expected})")
        expected = seq + 1 if type(seq) is int else expected + 1

        plist = no_postings
        while group is not None:
            gseq = group[0]
            if gseq == seq:
                plist = list(group[1])
                group = next(groups, None)
                break
            if gseq is not None and type(gseq) is type(seq) and gseq > seq:
                break
            for prow in group[1]:
                add(f"entry {prow[1]}: posting {prow[0]} belongs to no entry in seq order")
            group = next(groups, None)
        n_postings += len(plist)

        # Hash chain: sha256(prev_hash || canonical(entry)), see ledger.hashing.
        if prev_hash != chain:
            add(f"entry {seq}: prev_hash does not match the hash of the previous entry")
        try:
            if type(seq) is not int or type(reverses) not in _INT_OR_NONE:
                raise TypeError("seq/reverses not integers")
            text = prev_hash + fast_canonical(erow[:12], plist)
            h = sha256(text.encode()).hexdigest()
            if h != stored_hash:  # confirm with the reference encoder
                h = _slow_hash(erow, plist)
        except (TypeError, ValueError, AttributeError, UnicodeEncodeError) as exc:
            h = None
            add(f"entry {seq}: cannot encode ({exc})")
        if h != stored_hash:
            add(f"entry {seq}: hash mismatch")
        chain = stored_hash

        if reverses is not None and not (type(reverses) is int and 0 < reverses < seq):
            add(f"entry {seq}: reverses {reverses!r} is not an earlier entry")
        if not plist:  # a record-only entry (lottery draw, refusal, run marker)
            continue

        sums: dict[str, int] = {}
        touched = None
        i = 0
        for pid, _e, idx, account, kind, amount, expires, lot in plist:
            if idx != i:
                add(f"entry {seq}: posting {pid} has idx {idx}, expected {i}")
            i += 1
            info = accounts.get(account) if type(account) is str else None
            if info is None:
                try:
                    info = account_info(account)
                except (InvalidAccount, TypeError):
                    add(f"entry {seq}: posting {pid}: invalid account {account!r}")
                    continue
            if kind not in kinds_ok:
                add(f"entry {seq}: posting {pid}: unknown kind {kind!r}")
                continue
            if type(amount) is not int:
                add(f"entry {seq}: posting {pid}: amount {amount!r} is not an integer")
                continue
            sums[kind] = sums.get(kind, 0) + amount
            t = info[0]
            if t == "m":
                if info[1] != kind:
                    add(f"entry {seq}: posting {pid}: kind {kind} on account {account}")
                if amount > 0:
                    if expires is None or lot is not None:
                        add(f"entry {seq}: posting {pid}: member credit without expires"
                            " (or with lot)")
                    elif not (type(expires) is str and expires >= eff):
                        add(f"entry {seq}: posting {pid}: lot expires {expires!r} before {eff}")
                    lots[pid] = [account, kind, expires, amount, eff]
                else:
                    linfo = lots.get(lot) if lot is not None else None
                    if linfo is None or expires is not None:
                        add(f"entry {seq}: posting {pid}: member debit does not name a known lot"
                            f" ({lot!r})")
                    elif linfo[0] != account or linfo[1] != kind:
                        add(f"entry {seq}: posting {pid}: draws from lot {lot} of another account"
                            " or kind")
                    else:
                        if not (linfo[4] <= eff <= linfo[2]):
                            add(f"entry {seq}: posting {pid}: lot {lot} not open on {eff}")
                        linfo[3] += amount
                        if linfo[3] < 0:
                            add(f"entry {seq}: lot {lot} goes below zero ({linfo[3]})")
            else:
                if expires is not None or lot is not None:
                    add(f"entry {seq}: posting {pid}: expires/lot on non-member account {account}")
                if t == "c" or t == "r":
                    pair = (account, kind)
                    running[pair] = running.get(pair, 0) + amount
                    if touched is None:
                        touched = [pair]
                    else:
                        touched.append(pair)
        for kind, total in sums.items():
            if total:
                add(f"entry {seq}: does not sum to zero for {kind} ({total:+d})")
        if touched:
            for pair in touched:
                v = running[pair]
                if pair[0][0] == "c" and v < 0:
                    add(f"entry {seq}: budget {pair[0]} ({pair[1]}) below zero ({v})")
                elif pair[0][0] == "r" and v > 0:
                    add(f"entry {seq}: receivable {pair[0]} ({pair[1]}) positive ({v})")

    while group is not None:
        for prow in group[1]:
            add(f"entry {prow[1]}: posting {prow[0]} belongs to no entry")
        group = next(groups, None)
    return n_entries, n_postings


_ENTRY_OF = itemgetter(1)
_INT_OR_NONE = (int, type(None))


def _slow_hash(erow, plist) -> str:
    """The hash through the reference encoder (a mismatch, or unusual cell types)."""
    return _sha256((erow[11] + entry_canonical(erow[:12], plist)).encode()).hexdigest()


def verify_events(conn: apsw.Connection, bad: _Problems | None = None) -> int:
    """Check the events hash chain with ledger.events.event_hash; 0 if not available."""
    try:
        from ledger.events import event_hash  # type: ignore[attr-defined]
    except ImportError:
        return 0
    try:
        from ledger.events import GENESIS_HASH as genesis  # type: ignore[attr-defined]
    except ImportError:
        genesis = GENESIS
    own = bad if bad is not None else _Problems()
    chain = genesis
    n = 0
    expected = None
    for seq, eid, body, source, prev_hash, h in conn.execute(
        "SELECT seq, id, body, source, prev_hash, hash FROM events ORDER BY seq"
    ):
        n += 1
        if prev_hash != chain:
            own.add(f"event {seq} ({eid}): prev_hash does not match the previous event")
        if not isinstance(body, str) or not isinstance(source, str) or event_hash(prev_hash, body, source) != h:
            own.add(f"event {seq} ({eid}): hash mismatch")
        chain = h
        expected = seq
    del expected
    # The other columns are derived from `body` (the hashed truth); one SQL pass
    # finds any row whose columns disagree with it.
    for seq, eid in conn.execute(_EVENT_COLUMNS_DISAGREE):
        own.add(f"event {seq} ({eid}): stored columns disagree with its hashed body")
    return n


_EVENT_COLUMNS_DISAGREE = """
SELECT seq, id FROM events WHERE NOT json_valid(body)
   OR id IS NOT json_extract(body, '$.id')
   OR type IS NOT json_extract(body, '$.type')
   OR member IS NOT json_extract(body, '$.member')
   OR at IS NOT json_extract(body, '$.at')
   OR day IS NOT substr(json_extract(body, '$.at'), 1, 10)
   OR time IS NOT substr(json_extract(body, '$.at'), 12, 8)
   OR weekday IS NOT (CAST(strftime('%w', substr(json_extract(body, '$.at'), 1, 10)) AS INTEGER) + 6) % 7
   OR amount IS NOT json_extract(body, '$.amount')
   OR ref IS NOT json_extract(body, '$.ref')
ORDER BY seq
"""


def _verify_cache(conn: apsw.Connection, bad: _Problems) -> None:
    """Cached budget/receivable balances must equal the postings up to their watermark."""
    from ledger.journal import _CACHES

    cache = _CACHES.get(conn)
    if not cache:
        return
    for (account, kind), (balance, upto) in sorted(cache.items()):
        (truth,) = conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM postings WHERE account = ? AND kind = ? AND id <= ?",
            (account, kind, upto)).fetchone()
        if truth != balance:
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(entry), 0) FROM postings WHERE id <= ?", (upto,)).fetchone()
            bad.add(f"entry {seq}: cached balance of {account} ({kind}) is {balance},"
                    f" postings say {truth}")
