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
import apsw
import attrs

from ledger.accounts import parse_account
from ledger.errors import InvalidAccount
from ledger.hashing import GENESIS, fast_canonical
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


def _account_type(account: object) -> str | None:
    """'m', 'r', 'c' or 's' for a valid account name, None if invalid."""
    try:
        return parse_account(account).type[0]  # type: ignore[arg-type]
    except InvalidAccount:
        return None


def _verify_entries(conn: apsw.Connection, bad: _Problems) -> tuple[int, int]:
    add = bad.add
    canon = fast_canonical
    kinds_ok = frozenset(KIND_NAMES)
    types: dict[str, str | None] = {}  # account -> type letter
    lots: dict[int, list] = {}  # lot id -> [account, kind, expires, remaining]
    running: dict[tuple[str, str], int] = {}  # budget and receivable balances

    pcur = conn.execute(
        "SELECT id, entry, idx, account, kind, amount, expires, lot FROM postings ORDER BY id")
    prow = next(pcur, None)
    expected = 1
    chain = GENESIS
    n_entries = n_postings = 0
    last_pid = 0

    for erow in conn.execute(
        "SELECT seq, key, effective, recorded, campaign, rule, rules_hash, step, events,"
        " reverses, memo, prev_hash, hash FROM entries ORDER BY seq"
    ):
        n_entries += 1
        seq = erow[0]
        where = f"entry {seq}"
        if seq != expected:
            add(f"{where}: seq not contiguous (expected {expected})")
        expected = seq + 1
        eff = erow[2]

        plist = []
        while prow is not None and prow[1] <= seq:
            if prow[1] == seq:
                plist.append(prow)
            else:
                add(f"entry {prow[1]}: posting {prow[0]} belongs to no entry in seq order")
            if prow[0] <= last_pid:
                add(f"{where}: posting ids not increasing at {prow[0]}")
            last_pid = prow[0]
            prow = next(pcur, None)
        n_postings += len(plist)

        # Hash chain.
        if erow[11] != chain:
            add(f"{where}: prev_hash does not match the hash of the previous entry")
        try:
            h = _sha256((erow[11] + canon(erow[:12], plist)).encode()).hexdigest()
        except (TypeError, ValueError, AttributeError) as exc:
            h = None
            add(f"{where}: cannot encode ({exc})")
        if h != erow[12]:
            add(f"{where}: hash mismatch")
        chain = erow[12]

        if erow[9] is not None and not (isinstance(erow[9], int) and 0 < erow[9] < seq):
            add(f"{where}: reverses {erow[9]!r} is not an earlier entry")
        if not plist:  # a record-only entry (lottery draw, refusal, run marker)
            continue

        sums: dict[str, int] = {}
        touched = None
        for i, (pid, _e, idx, account, kind, amount, expires, lot) in enumerate(plist):
            if idx != i:
                add(f"{where}: posting {pid} has idx {idx}, expected {i}")
            t = types.get(account, "")
            if t == "":
                t = types[account] = _account_type(account)
            if t is None:
                add(f"{where}: posting {pid}: invalid account {account!r}")
                continue
            if kind not in kinds_ok:
                add(f"{where}: posting {pid}: unknown kind {kind!r}")
                continue
            if type(amount) is not int:
                add(f"{where}: posting {pid}: amount {amount!r} is not an integer")
                continue
            sums[kind] = sums.get(kind, 0) + amount
            if t == "m":
                if not account.endswith(kind):
                    add(f"{where}: posting {pid}: kind {kind} on account {account}")
                if amount > 0:
                    if expires is None or lot is not None:
                        add(f"{where}: posting {pid}: member credit without expires (or with lot)")
                    elif not (isinstance(expires, str) and expires >= eff):
                        add(f"{where}: posting {pid}: lot expires {expires!r} before {eff}")
                    lots[pid] = [account, kind, expires, amount, eff]
                else:
                    info = lots.get(lot) if lot is not None else None
                    if info is None or expires is not None:
                        add(f"{where}: posting {pid}: member debit does not name a known lot"
                            f" ({lot!r})")
                    elif info[0] != account or info[1] != kind:
                        add(f"{where}: posting {pid}: draws from lot {lot} of another account"
                            " or kind")
                    else:
                        if not (info[4] <= eff <= info[2]):
                            add(f"{where}: posting {pid}: lot {lot} not open on {eff}")
                        info[3] += amount
                        if info[3] < 0:
                            add(f"{where}: lot {lot} goes below zero ({info[3]})")
            else:
                if expires is not None or lot is not None:
                    add(f"{where}: posting {pid}: expires/lot on non-member account {account}")
                if t == "c" or t == "r":
                    key = (account, kind)
                    running[key] = running.get(key, 0) + amount
                    if touched is None:
                        touched = [key]
                    else:
                        touched.append(key)
        for kind, s in sums.items():
            if s:
                add(f"{where}: does not sum to zero for {kind} ({s:+d})")
        if touched:
            for key in touched:
                v = running[key]
                if key[0][0] == "c" and v < 0:
                    add(f"{where}: budget {key[0]} ({key[1]}) below zero ({v})")
                elif key[0][0] == "r" and v > 0:
                    add(f"{where}: receivable {key[0]} ({key[1]}) positive ({v})")

    while prow is not None:
        add(f"entry {prow[1]}: posting {prow[0]} belongs to no entry")
        prow = next(pcur, None)
    return n_entries, n_postings


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
    for seq, eid, body, prev_hash, h in conn.execute(
        "SELECT seq, id, body, prev_hash, hash FROM events ORDER BY seq"
    ):
        n += 1
        if prev_hash != chain:
            own.add(f"event {seq} ({eid}): prev_hash does not match the previous event")
        if event_hash(prev_hash, body) != h:
            own.add(f"event {seq} ({eid}): hash mismatch")
        chain = h
        expected = seq
    del expected
    return n


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
