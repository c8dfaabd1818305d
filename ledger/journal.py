"""The journal: append entries (one transaction per batch), lots, balances.

`Journal.append` (and `append_seqs`, the same without building the returned
Entry objects) is the only writer: inside one transaction, `ledger.append`
validates the batch in Python (accounts, kinds, zero sum per kind, expires on
member credits, lots on member debits, lots never overdrawn, budgets never
below zero, receivables never positive), assigns seqs and posting ids, chains
the hashes and writes everything with two `executemany` calls. The database
triggers re-check zero sum and append-only.

The operations (fund_budget, redeem, expire, reverse) read the state they
need, build the entry with `ledger.operations` and append it inside the same
transaction. Their idempotency is by key: a re-run with the same request
returns the stored entry; a different request under the same key raises
IdempotencyConflict. A grant has no method here: the run engine builds grants
with `operations.grant` from the state it keeps for a whole checkpoint and
appends them in batches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import weakref
from typing import Any, Iterable, Iterator, Sequence

import apsw

from points.ledger import db, kinds
from points.ledger import operations
from points.ledger.accounts import member_account, parse_account, receivable_account, valid_id
from points.ledger.append import check_date as _check_date
from points.ledger.append import write_batch
from points.ledger.errors import IdempotencyConflict, InvalidAccount, InvalidEntry, LedgerError
from points.ledger.hashing import GENESIS, canonical
from points.ledger.lots import REMAINING, REMAINING_AS_OF, spendable
from points.ledger.model import Entry, Lot, NewEntry, Posting
from points.ledger.operations import check_points

_FAR = "9999-12-31"
_KIND_NAMES = frozenset(kinds.KIND_NAMES)
_RANK = kinds.RANK

# Per-connection cache of budget and receivable balances:
# (account, kind) -> (balance, last posting id included). Refreshed
# incrementally (postings with a larger id), stored only after a commit of a
# transaction this module opened. `verify` checks it against the postings.
_CACHES: "weakref.WeakKeyDictionary[apsw.Connection, dict]" = weakref.WeakKeyDictionary()


def cached_balances(conn: apsw.Connection) -> dict[tuple[str, str], tuple[int, int]]:
    """A copy of the connection's balance cache ({} if it has none), for `verify`."""
    return dict(_CACHES.get(conn) or {})


def balance_cache(conn: apsw.Connection) -> dict[tuple[str, str], tuple[int, int]]:
    cache = _CACHES.get(conn)
    if cache is None:
        cache = _CACHES[conn] = {}
    return cache


_ENTRY_SELECT = (
    "SELECT e.seq, e.key, e.effective, e.recorded, e.campaign, e.rule, e.rules_hash, e.step,"
    " e.events, e.reverses, e.memo, e.prev_hash, e.hash,"
    " p.id, p.account, p.kind, p.amount, p.expires, p.lot"
    " FROM entries e LEFT JOIN postings p ON p.entry = e.seq"
)


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _rows_to_entries(rows: Iterable[Sequence]) -> Iterator[Entry]:
    """Group joined entry+posting rows (ordered by seq, idx) into Entry objects."""
    current = None
    postings: list[Posting] = []
    for r in rows:
        if current is None or r[0] != current[0]:
            if current is not None:
                yield _make_entry(current, postings)
            current = r
            postings = []
        if r[13] is not None:  # entries without postings come back with NULL columns
            postings.append(Posting(r[14], r[15], r[16], _date(r[17]), r[18], r[13]))
    if current is not None:
        yield _make_entry(current, postings)


def _make_entry(r: Sequence, postings: list[Posting]) -> Entry:
    return Entry(
        r[0], r[1], dt.date.fromisoformat(r[2]), r[3], r[4], r[5], r[6], r[7],
        tuple(json.loads(r[8])), r[9], json.loads(r[10]), r[11], r[12], tuple(postings),
    )


def _check_redemption(member: str, points: int, use: str, effective: dt.date) -> None:
    if not valid_id(member):
        raise InvalidAccount(f"invalid member id {member!r}")
    kinds.check_use(use)
    check_points("points to redeem", points)
    _check_date("effective", effective)


class Journal:
    """Appends to and reads the journal of one apsw connection."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._pending: dict | None = None  # cache updates of the open transaction
        with contextlib.suppress(apsw.Error):
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: big batches stay in memory
            # A big batch dirties thousands of random index pages: with the default (a
            # checkpoint once the WAL passes 1,000 pages, i.e. after every batch) the same
            # hot pages are copied back to the file batch after batch; every ~40 MiB of
            # WAL instead. Durability and crash recovery are those of WAL mode, whatever
            # the interval.
            conn.execute("PRAGMA wal_autocheckpoint=10000")

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _txn(self) -> Iterator[None]:
        """db.transaction, plus: cache updates are kept only if our own COMMIT succeeds."""
        if not self.conn.getautocommit() or self._pending is not None:
            with db.transaction(self.conn):
                yield
            return
        self._pending = {}
        try:
            with db.transaction(self.conn):
                yield
            balance_cache(self.conn).update(self._pending)
        finally:
            self._pending = None

    transaction = _txn  # a caller's steps over several appends: the balance cache keeps what they learn

    def current_balances(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Current balance of each (account, kind), all dates (cache + one query each)."""
        cache = balance_cache(self.conn)
        out = {}
        for key in keys:
            if self._pending is not None and key in self._pending:
                out[key] = self._pending[key][0]
                continue
            bal, upto = cache.get(key, (0, 0))
            s, m = self.conn.execute(
                "SELECT COALESCE(SUM(amount), 0), MAX(id) FROM postings"
                " WHERE account = ? AND kind = ? AND id > ?",
                (key[0], key[1], upto),
            ).fetchone()
            out[key] = bal + s
            self.remember_balance(key, (bal + s, m if m is not None else upto))
        return out

    def remember_balance(self, key, value) -> None:
        if self._pending is not None:
            self._pending[key] = value
        else:  # inside a transaction the caller owns: its fate is unknown
            balance_cache(self.conn).pop(key, None)

    # ------------------------------------------------------------------ append

    def append(self, entries: Iterable[NewEntry]) -> list[Entry]:
        """Write a batch of entries in one transaction (all or nothing).

        An entry whose key is already stored with the same content (recorded
        aside) is not written again: the stored Entry is returned in its place.
        """
        return self._batch(entries, True)

    def append_seqs(self, entries: Iterable[NewEntry]) -> list[int]:
        """`append`, returning only each entry's seq (the stored one for a no-op).

        Same checks, same rows, same hashes; it only skips building the Entry and
        Posting objects -- a third of append's Python time -- for callers that
        need nothing else (a settlement's grants, expiry).
        """
        return self._batch(entries, False)

    def _batch(self, entries: Iterable[NewEntry], build: bool) -> list:
        entries = list(entries)
        if not entries:
            return []
        with db.gc_paused(), self._txn():
            return self._append(entries, build)

    def _append(self, entries: list[NewEntry], build: bool) -> list:
        # a method of its own: the crash tests kill the process inside it
        return write_batch(self, entries, build)

    # ------------------------------------------------------------------ reads

    def entries_where(self, where: str, params: Sequence = ()) -> list[Entry]:
        sql = f"{_ENTRY_SELECT} WHERE {where} ORDER BY e.seq, p.idx"
        return list(_rows_to_entries(self.conn.execute(sql, params)))

    def entry(self, seq: int) -> Entry | None:
        found = self.entries_where("e.seq = ?", (seq,))
        return found[0] if found else None

    def entry_by_key(self, key: str) -> Entry | None:
        found = self.entries_where("e.key = ?", (key,))
        return found[0] if found else None

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last entry; (0, GENESIS) when empty."""
        row = self.conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def entries(self, member: str | None = None, campaign: str | None = None) -> Iterator[Entry]:
        """Entries in seq order; with member: those touching its member/receivable accounts."""
        where, params = ["1"], []
        if member is not None:
            accts = [member_account(member, k) for k in kinds.KIND_NAMES]
            accts += [receivable_account(member, k) for k in kinds.KIND_NAMES]
            where.append("e.seq IN (SELECT entry FROM postings WHERE account IN (%s))"
                         % ",".join("?" * len(accts)))
            params += accts
        if campaign is not None:
            where.append("e.campaign = ?")
            params.append(campaign)
        sql = f"{_ENTRY_SELECT} WHERE {' AND '.join(where)} ORDER BY e.seq, p.idx"
        return _rows_to_entries(self.conn.execute(sql, params))

    def account_balance(self, account: str, kind: str, as_of: dt.date | None = None) -> int:
        parse_account(account)
        kinds.check_kind(kind)
        if as_of is None:
            row = self.conn.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM postings WHERE account = ? AND kind = ?",
                (account, kind)).fetchone()
        else:
            row = self.conn.execute(
                "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN entries e ON e.seq = p.entry"
                " WHERE p.account = ? AND p.kind = ? AND e.effective <= ?",
                (account, kind, _iso(as_of))).fetchone()
        return row[0]

    def _sums(self, prefix: str, member: str, as_of: dt.date | None) -> dict[str, int]:
        if not valid_id(member):
            raise InvalidAccount(f"invalid member id {member!r}")
        accts = [f"{prefix}:{member}:{k}" for k in kinds.KIND_NAMES]
        out = dict.fromkeys(kinds.KIND_NAMES, 0)
        for kind, total in self.conn.execute(
            "SELECT p.kind, SUM(p.amount) FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE p.account IN (?,?,?) AND e.effective <= ? GROUP BY p.kind",
            (*accts, _iso(as_of) or _FAR),
        ):
            out[kind] = total
        return out

    def balance(self, member: str, as_of: dt.date | None = None) -> dict[str, int]:
        """Points owed to the member per kind at the end of `as_of` (every kind present)."""
        return self._sums("member", member, as_of)

    def receivable(self, member: str, as_of: dt.date | None = None) -> dict[str, int]:
        """Points the member owes back per kind (positive numbers)."""
        return {k: -v for k, v in self._sums("receivable", member, as_of).items()}

    def lots(self, member: str, as_of: dt.date | None = None) -> list[Lot]:
        """Lots of the member with something left at the end of `as_of`.

        Ordered by expiry, then more restricted kind, then age. A lot past its
        expiry date stays listed until the expiry entry is posted.
        """
        if not valid_id(member):
            raise InvalidAccount(f"invalid member id {member!r}")
        day = _iso(as_of) or _FAR
        accts = [f"member:{member}:{k}" for k in kinds.KIND_NAMES]
        out = []
        for lid, kind, amount, expires, seq, rem in self.conn.execute(
            "SELECT p.id, p.kind, p.amount, p.expires, p.entry, " + REMAINING_AS_OF +
            " FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE p.account IN (?,?,?) AND p.amount > 0 AND e.effective <= ?",
            (day, *accts, day),
        ):
            if rem > 0:
                out.append(Lot(lid, member, kind, amount, rem, dt.date.fromisoformat(expires), seq))
        out.sort(key=lambda l: (l.expires, _RANK[l.kind], l.id))
        return out

    # ------------------------------------------------------------------ operations

    def fund_budget(self, campaign: str, kind: str, amount: int, effective: dt.date,
                    recorded: str | dt.date | None = None) -> Entry:
        """Fund `campaign:<campaign>:budget` from system:funding, once per campaign and kind."""
        return self.append([operations.fund(campaign, kind, amount, effective, recorded)])[0]

    def redeem(self, member: str, points: int, use: str, effective: dt.date, *, key: str,
               events: Iterable[str] = (), recorded: str | dt.date | None = None) -> Entry:
        """Spend `points` for `use` (see `operations.redemption`). InsufficientPoints if short."""
        _check_redemption(member, points, use, effective)
        events = tuple(events)
        with self._txn():
            old = self.entry_by_key(key)
            if old is not None:
                spent = -sum(p.amount for p in old.postings if p.account.startswith("member:"))
                members = {p.account.split(":")[1] for p in old.postings
                           if p.account.startswith("member:")}
                if (spent, members, old.effective, old.events, old.memo) != (
                        points, {member}, effective, events, {"use": use}):
                    raise IdempotencyConflict(
                        f"key {key!r} is already used by entry {old.seq} with a different redemption")
                return old
            return self.append([self.redemption_entry(member, points, use, effective, key=key,
                                                      events=events, recorded=recorded)])[0]

    def redemption_entry(self, member: str, points: int, use: str, effective: dt.date, *, key: str,
                         events: Iterable[str] = (), recorded: str | dt.date | None = None) -> NewEntry:
        """The entry `redeem` would append (lots as stored now), without the idempotency
        check or the write: the run batches a day's redemptions. InsufficientPoints if short."""
        _check_redemption(member, points, use, effective)
        lots = spendable(self.conn, member, kinds.kinds_for_use(use), effective.isoformat())
        return operations.redemption(key=key, member=member, points=points, use=use, lots=lots,
                                     effective=effective, events=tuple(events), recorded=recorded)

    def expire(self, as_of: dt.date, recorded: str | dt.date | None = None) -> list[Entry]:
        """Move what is left of every lot with expires <= as_of to system:expired.

        One entry per member and expiry date, effective on that date, key
        `expire:<member>:<date>`. Returns the entries written ([] if none).
        """
        out: list[Entry] = []
        self.expire_lots(as_of, recorded, collect=out)
        return out

    def expire_lots(self, as_of: dt.date, recorded: str | dt.date | None = None, *,
                    since: dt.date | None = None, collect: list | None = None,
                    chunk: int = 2_000) -> tuple[int, int]:
        """`expire`, for big days: entries are appended in chunks inside one transaction
        and only counted (entries, points), so memory does not grow with the members.

        `since`: only lots with expires > since (the caller expired everything up to
        it already), so a run that expires day by day reads each lot once.
        """
        _check_date("as_of", as_of)
        n_entries = n_points = 0
        with self._txn():
            where, params = "p.expires <= ?", [as_of.isoformat()]
            if since is not None:
                where += " AND p.expires > ?"
                params.append(since.isoformat())
            # Read in (expires, member) order, one group of lots per (day, member): memory
            # holds one chunk of entries, not every lot of the day (a year's expiry can be
            # every member's). The member is cut out of the account in SQL so the order is
            # Python's order of the (day, member) pairs (BINARY collation: code points).
            rows = self.conn.execute(
                "SELECT p.expires, substr(p.account, 8, instr(substr(p.account, 8), ':') - 1) AS member,"
                " p.id, p.account, p.kind, " + REMAINING +
                f" FROM postings p WHERE p.expires IS NOT NULL AND {where} AND p.amount > 0"
                " ORDER BY p.expires, member", params)
            groups: list[tuple[str, str, list]] = []
            for (day, member), lots in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
                items = [(_RANK[kind], lid, account, kind, rem)
                         for _d, _m, lid, account, kind, rem in lots if rem > 0]
                if not items:
                    continue
                groups.append((day, member, items))
                if len(groups) >= chunk:
                    e, pts = self._expire_groups(groups, recorded, as_of, collect)
                    n_entries, n_points, groups = n_entries + e, n_points + pts, []
            if groups:
                e, pts = self._expire_groups(groups, recorded, as_of, collect)
                n_entries, n_points = n_entries + e, n_points + pts
        return n_entries, n_points

    def _expire_groups(self, groups: list[tuple[str, str, list]], recorded, as_of: dt.date,
                       collect: list | None) -> tuple[int, int]:
        """One chunk of expiry entries, a (day, member) group of lots each, in that order."""
        wanted = [f"expire:{m}:{d}" for d, m, _items in groups]
        taken = {k for (k,) in self.conn.execute(
            "SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),))}
        for base in list(taken):  # rare: a lot that arrived after its expiry already ran
            taken.update(k for (k,) in self.conn.execute(
                "SELECT key FROM entries WHERE key > ? AND key < ?", (base + ":", base + ";")))
        batch, n_points = [], 0
        for day, member, items in groups:
            items.sort()
            key = base = f"expire:{member}:{day}"
            n = 1
            while key in taken:
                n += 1
                key = f"{base}:{n}"
            entry, points = operations.expiry(
                key=key, effective=dt.date.fromisoformat(day),
                lots=[(account, kind, lid, rem) for _rank, lid, account, kind, rem in items],
                recorded=recorded if recorded is not None else as_of)
            batch.append(entry)
            n_points += points
        self._expire_chunk(batch, collect)
        return len(batch), n_points

    def _expire_chunk(self, batch: list[NewEntry], collect: list | None) -> None:
        if collect is not None:
            collect.extend(self.append(batch))
        else:  # only counted: no Entry objects to build
            self.append_seqs(batch)

    def reverse(self, entry_seq: int, amount: int, effective: dt.date, *, key: str,
                events: Iterable[str] = (), memo: Any = None,
                recorded: str | dt.date | None = None, rules_hash: str | None = None) -> Entry:
        """Take `amount` of the member credit of entry `entry_seq` back to its source
        (`rules_hash`: of the rules deciding it, default the original's).

        The member pays from the original lot first, then other lots of that
        kind by earliest expiry; what is no longer there becomes a receivable.
        """
        check_points("amount to reverse", amount)
        _check_date("effective", effective)
        events = tuple(events)
        with self._txn():
            orig = self.entry(entry_seq)
            if orig is None:
                raise LedgerError(f"cannot reverse entry {entry_seq}: no such entry")
            member, kind, source, credits = operations.reversal_parts(orig)
            old = self.entry_by_key(key)
            if old is not None:
                back = sum(p.amount for p in old.postings if p.account == source)
                if (old.reverses, back, old.effective, old.events,
                        canonical(old.memo), kind) != (
                        entry_seq, amount, effective, events,
                        canonical(memo if memo is not None else {}), kind):
                    raise IdempotencyConflict(
                        f"key {key!r} is already used by entry {old.seq} with a different reversal")
                return old
            credited = sum(p.amount for p in credits)
            taken = self.conn.execute(
                "SELECT COALESCE(SUM(p.amount), 0) FROM entries e JOIN postings p ON p.entry = e.seq"
                # `+p.account`: through entry_seq's reversals, not every posting of a budget
                " WHERE e.reverses = ? AND +p.account = ? AND p.amount > 0",
                (entry_seq, source)).fetchone()[0]
            if amount > credited - taken:
                raise InvalidEntry(
                    f"cannot reverse {amount} points of entry {entry_seq}: it credited {credited},"
                    f" earlier reversals took {taken}, {credited - taken} left")
            lots = spendable(self.conn, member, (kind,), effective.isoformat())
            entry = operations.reversal(orig, amount, lots, effective, key=key, events=events,
                                        memo=memo, recorded=recorded, rules_hash=rules_hash)
            return self.append([entry])[0]

