"""The journal: append entries (one transaction per batch), lots, balances.

`Journal.append` (and `append_seqs`, the same without building the returned
Entry objects) is the only writer. It validates a batch in Python (accounts,
kinds, zero sum per kind, expires on member credits, lots on member debits,
lots never overdrawn, budgets never below zero, receivables never positive),
assigns seqs and posting ids, chains the hashes and writes everything with two
`executemany` calls inside one transaction. The database triggers re-check
zero sum and append-only.

The operations (fund_budget, grant, redeem, expire, reverse) read the state
they need, build the entry and append it inside the same transaction. Their
idempotency is by key: a re-run with the same request returns the stored
entry; a different request under the same key raises IdempotencyConflict.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import datetime as dt
import json
import weakref
from typing import Any, Iterable, Iterator, Sequence

import apsw

from ledger import db, kinds
from ledger.accounts import (
    EXPIRED,
    FUNDING,
    REDEEMED,
    budget_account,
    member_account,
    parse_account,
    receivable_account,
    valid_id,
)
from ledger.errors import (
    BudgetExceeded,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidAccount,
    InvalidEntry,
    LedgerError,
    UnbalancedEntry,
)
from json.encoder import encode_basestring as _jstr

from ledger.hashing import GENESIS, canonical
from ledger.model import Entry, Lot, NewEntry, Posting

_FAR = "9999-12-31"
_KIND_NAMES = frozenset(kinds.KIND_NAMES)
_RANK = kinds.RANK

# Valid account name -> (type letter, kind or None); bounded, cleared when full.
_ACCOUNTS: dict[str, tuple[str, str | None]] = {}


def account_info(account: Any) -> tuple[str, str | None]:
    """(type letter 'm'/'r'/'c'/'s', kind or None) of a valid account name, cached.

    Raises InvalidAccount (or TypeError for an unhashable value) like parse_account.
    """
    info = _ACCOUNTS.get(account)
    if info is not None:
        return info
    info = None
    if type(account) is str:
        parts = account.split(":")
        # The common case, checked here as parse_account would (1-64 characters,
        # no whitespace -- str.split() and the regex's \s agree -- no ':').
        if len(parts) == 3 and parts[2] in _KIND_NAMES and parts[0] in ("member", "receivable"):
            m = parts[1]
            if 0 < len(m) <= 64 and m.split() == [m]:
                info = (parts[0][0], parts[2])
    if info is None:
        acct = parse_account(account)
        info = (acct.type[0], acct.kind)
        if type(account) is not str:
            return info
    if len(_ACCOUNTS) > 2_000_000:
        _ACCOUNTS.clear()
    _ACCOUNTS[account] = info
    return info


# Point kind -> its JSON text in the canonical encoding (also the set of valid kinds).
_KIND_JSON = {k: _jstr(k) for k in kinds.KIND_NAMES}


def _account_info_of(key: str, idx: int, account: Any) -> tuple[str, str | None]:
    """account_info, with the entry and posting named in the error."""
    try:
        return account_info(account)
    except InvalidAccount as exc:
        raise InvalidAccount(f"entry {key!r}, posting {idx}: {exc}") from None
    except TypeError:  # unhashable
        raise InvalidAccount(f"entry {key!r}, posting {idx}: account must be a"
                             f" string, not {type(account).__name__}") from None


# Per-connection cache of budget and receivable balances:
# (account, kind) -> (balance, last posting id included). Refreshed
# incrementally (postings with a larger id), stored only after a commit of a
# transaction this module opened. `verify` checks it against the postings.
_CACHES: "weakref.WeakKeyDictionary[apsw.Connection, dict]" = weakref.WeakKeyDictionary()


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
_INSERT_POSTING = (
    "INSERT INTO postings(id, entry, idx, account, kind, amount, expires, lot)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
_INSERT_ENTRY = (
    "INSERT INTO entries(seq, key, effective, recorded, campaign, rule, rules_hash, step,"
    " events, reverses, memo, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_REMAINING = "p.amount + COALESCE((SELECT SUM(d.amount) FROM postings d WHERE d.lot = p.id), 0)"


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _check_date(what: str, value: Any) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise InvalidEntry(f"{what} must be a datetime.date, not {value!r}")
    return value


def _check_points(what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidEntry(f"{what} must be a positive integer, not {value!r}")
    return value


def _recorded(recorded: str | dt.date | None, effective: dt.date) -> str:
    if recorded is None:
        return effective.isoformat()
    if isinstance(recorded, dt.date):
        return recorded.isoformat()
    if not isinstance(recorded, str) or not recorded:
        raise InvalidEntry(f"recorded must be a date or a non-empty string, not {recorded!r}")
    return recorded


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


def _content(effective, campaign, rule, rules_hash, step, events, reverses, memo_text, postings):
    return (
        effective, campaign, rule, rules_hash, step, tuple(events), reverses, memo_text,
        tuple((p.account, p.kind, p.amount, p.expires, p.lot) for p in postings),
    )


def _entry_content(e: Entry):
    return _content(e.effective, e.campaign, e.rule, e.rules_hash, e.step, e.events,
                    e.reverses, canonical(e.memo), e.postings)


def _new_content(e: NewEntry, memo_text: str):
    return _content(e.effective, e.campaign, e.rule, e.rules_hash, e.step, e.events,
                    e.reverses, memo_text, e.postings)


class Journal:
    """Appends to and reads the journal of one apsw connection."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._pending: dict | None = None  # cache updates of the open transaction
        with contextlib.suppress(apsw.Error):
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: big batches stay in memory

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

    def _cached_balances(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
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
            self._store(key, (bal + s, m if m is not None else upto))
        return out

    def _store(self, key, value) -> None:
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
        # The batch allocates many small objects that all stay alive until the
        # end: cyclic GC passes over a growing heap would only cost time.
        gc_on = gc.isenabled()
        if gc_on:
            gc.disable()
        try:
            with self._txn():
                return self._append(entries, build)
        finally:
            if gc_on:
                gc.enable()

    def _append(self, entries: list[NewEntry], build: bool) -> list:
        """One pass over the batch validates each entry and builds its rows, its
        canonical text, its hash and (if `build`) the Entry returned for it, else
        its seq. The checks that
        need the stored state -- lots drawn from, budget and receivable balances --
        come after, in entry order, over only the postings concerned; nothing is
        written until every check has passed."""
        conn = self.conn
        keys = []
        for e in entries:
            if type(e) is not NewEntry and not isinstance(e, NewEntry):
                raise InvalidEntry(f"append takes NewEntry values, not {type(e).__name__}")
            k = e.key
            if type(k) is not str or not k:
                if not isinstance(k, str) or not k:
                    raise InvalidEntry(f"idempotency key must be a non-empty string, not {k!r}")
            keys.append(k)
        existing = self._existing(keys)
        row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev_hash = row if row is not None else (0, GENESIS)
        pid = stored_pid = conn.execute("SELECT MAX(id) FROM postings").fetchone()[0] or 0

        posting_rows: list[tuple] = []
        entry_rows: list[tuple] = []
        out: list[Entry | tuple] = []
        seen: dict[str, NewEntry] = {}
        # Deferred checks: (key, effective text, draws or None, budget moves or None) of
        # the entries that draw from lots or move a budget or receivable.
        checks: list[tuple] = []
        dates: dict[dt.date, str] = {}
        accounts = _ACCOUNTS
        kind_json = _KIND_JSON
        jstr = _jstr
        sha256 = hashlib.sha256
        add_prow = posting_rows.append
        add_erow = entry_rows.append
        add_out = out.append
        memo_of = self._memo_text
        for e in entries:
            key = e.key
            if key in existing or key in seen:
                self._check_same(e, existing, seen)
                add_out((key,))
                continue
            seen[key] = e
            effective = e.effective
            if type(effective) is not dt.date:
                _check_date(f"entry {key!r}: effective", effective)
            eff = dates.get(effective)
            if eff is None:
                eff = dates[effective] = effective.isoformat()
            campaign, rule, rules_hash, step = e.campaign, e.rule, e.rules_hash, e.step
            if not ((campaign is None or type(campaign) is str)
                    and (rule is None or type(rule) is str)
                    and (rules_hash is None or type(rules_hash) is str)
                    and (step is None or type(step) is str)):
                for what, v in (("campaign", campaign), ("rule", rule),
                                ("rules_hash", rules_hash), ("step", step)):
                    if v is not None and type(v) is not str and not isinstance(v, str):
                        raise InvalidEntry(f"entry {key!r}: {what} must be a string or None")
            rev = e.reverses
            if rev is not None and (not isinstance(rev, int) or rev <= 0):
                raise InvalidEntry(f"entry {key!r}: reverses must be an entry seq")
            memo = e.memo
            memo_text = "{}" if memo is None else memo_of(e)

            seq += 1
            # An entry without postings is a record only (a lottery draw, a refused
            # redemption, a run marker): it is hash-chained like every other entry.
            frags = []
            new_postings = []
            sums: dict[str, int] = {}
            draws = moves = None
            for idx, p in enumerate(e.postings):
                if type(p) is not Posting and not isinstance(p, Posting):
                    raise InvalidEntry(f"entry {key!r}: posting {idx} is not a Posting")
                pid += 1
                account, kind, amount, expires, lot = p.account, p.kind, p.amount, p.expires, p.lot
                info = accounts.get(account) if type(account) is str else None
                if info is None:
                    info = _account_info_of(key, idx, account)
                t, akind = info
                kind_text = kind_json.get(kind)
                if kind_text is None:
                    raise InvalidEntry(f"entry {key!r}, posting {idx}: unknown point kind {kind!r}")
                if akind is not None and akind != kind:
                    raise InvalidEntry(
                        f"entry {key!r}, posting {idx}: kind {kind!r} on account {account}")
                if type(amount) is not int or amount == 0:
                    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
                        raise InvalidEntry(
                            f"entry {key!r}, posting {idx}: amount must be a non-zero integer,"
                            f" not {amount!r}")
                sums[kind] = sums.get(kind, 0) + amount
                expires_text = None
                if t == "m":
                    if amount > 0:
                        if expires is None:
                            raise InvalidEntry(
                                f"entry {key!r}, posting {idx}: a credit to {account} must carry"
                                " expires (it opens a lot)")
                        if type(expires) is not dt.date:
                            _check_date(f"entry {key!r}, posting {idx}: expires", expires)
                        if expires < effective:
                            raise InvalidEntry(
                                f"entry {key!r}, posting {idx}: lot expires {expires} before the"
                                f" entry's effective date {effective}")
                        if lot is not None:
                            raise InvalidEntry(f"entry {key!r}, posting {idx}: a credit has no lot")
                        expires_text = dates.get(expires)
                        if expires_text is None:
                            expires_text = dates[expires] = expires.isoformat()
                        frags.append(
                            f'{{"account":{jstr(account)},"amount":{amount},"entry":{seq},'
                            f'"expires":"{expires_text}","id":{pid},"idx":{idx},'
                            f'"kind":{kind_text},"lot":null}}')
                    else:
                        if lot is None or type(lot) is not int:
                            if lot is None or not isinstance(lot, int) or isinstance(lot, bool):
                                raise InvalidEntry(
                                    f"entry {key!r}, posting {idx}: a debit of {account} must name"
                                    " the lot (posting id) it draws from")
                        if expires is not None:
                            raise InvalidEntry(f"entry {key!r}, posting {idx}: a debit has no expires")
                        if draws is None:
                            draws = []
                        draws.append((idx, pid, lot, account, kind, amount))
                        frags.append(
                            f'{{"account":{jstr(account)},"amount":{amount},"entry":{seq},'
                            f'"expires":null,"id":{pid},"idx":{idx},"kind":{kind_text},"lot":{lot}}}')
                else:
                    if expires is not None or lot is not None:
                        raise InvalidEntry(
                            f"entry {key!r}, posting {idx}: only member accounts have expires/lot")
                    if t != "s":  # a budget or a receivable: its running balance is checked
                        if moves is None:
                            moves = []
                        moves.append(((account, kind), amount))
                    frags.append(
                        f'{{"account":{jstr(account)},"amount":{amount},"entry":{seq},'
                        f'"expires":null,"id":{pid},"idx":{idx},"kind":{kind_text},"lot":null}}')
                add_prow((pid, seq, idx, account, kind, amount, expires_text, lot))
                if build:
                    new_postings.append(Posting(account, kind, amount, expires, lot, pid))
            for total in sums.values():
                if total != 0:
                    bad = {k: s for k, s in sums.items() if s != 0}
                    detail = ", ".join(f"{k} {s:+d}" for k, s in sorted(bad.items()))
                    raise UnbalancedEntry(f"entry {key!r} does not sum to zero per kind: {detail}")
            events = e.events
            try:
                events_text = "[" + ",".join(map(jstr, events)) + "]"
            except TypeError:
                bad = next(ev for ev in events if not isinstance(ev, str))
                raise InvalidEntry(f"entry {key!r}: event ids must be strings, not {bad!r}") from None
            recorded = e.recorded
            if recorded is None:
                recorded = eff
            elif type(recorded) is not str or not recorded:
                recorded = _recorded(recorded, effective)
            if draws is not None or moves is not None:
                checks.append((key, eff, draws, moves))

            # canonical text: the same as hashing.entry_canonical (keys in sorted order)
            h = sha256((
                f'{prev_hash}{{"campaign":{"null" if campaign is None else jstr(campaign)},'
                f'"effective":"{eff}","events":{jstr(events_text)},"key":{jstr(key)},'
                f'"memo":{jstr(memo_text)},"postings":[{",".join(frags)}],'
                f'"prev_hash":"{prev_hash}","recorded":{jstr(recorded)},'
                f'"reverses":{"null" if rev is None else rev},'
                f'"rule":{"null" if rule is None else jstr(rule)},'
                f'"rules_hash":{"null" if rules_hash is None else jstr(rules_hash)},"seq":{seq},'
                f'"step":{"null" if step is None else jstr(step)}}}'
            ).encode()).hexdigest()
            add_erow((seq, key, eff, recorded, campaign, rule, rules_hash, step,
                      events_text, rev, memo_text, prev_hash, h))
            if build:
                add_out(Entry(seq, key, effective, recorded, campaign, rule, rules_hash, step,
                              events, rev, {} if memo is None else json.loads(memo_text),
                              prev_hash, h, tuple(new_postings)))
            else:
                add_out(seq)
            prev_hash = h

        balances = (self._check_state(checks, posting_rows, entry_rows, stored_pid)
                    if checks else {})
        if posting_rows:
            conn.executemany(_INSERT_POSTING, posting_rows)
        if entry_rows:
            conn.executemany(_INSERT_ENTRY, entry_rows)
        for pair, bal in balances.items():
            self._store(pair, (bal, pid))
        if len(entry_rows) == len(out):
            return out
        # Idempotent no-ops: the stored entry, or the one written earlier in this batch.
        if build:
            written = {x.key: x for x in out if type(x) is Entry}
            return [x if type(x) is Entry else existing.get(x[0]) or written[x[0]] for x in out]
        seqs = {row[1]: row[0] for row in entry_rows}
        return [x if type(x) is int else
                existing[x[0]].seq if x[0] in existing else seqs[x[0]] for x in out]

    def _existing(self, keys: list[str]) -> dict[str, Entry]:
        """The stored entries of those keys (usually none: one index probe per key)."""
        found = [k for (k,) in self.conn.execute(
            "SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?))",
            (json.dumps(keys),))]
        if not found:
            return {}
        return {x.key: x for x in self._load("e.key IN (SELECT value FROM json_each(?))",
                                              (json.dumps(found),))}

    def _check_same(self, e: NewEntry, existing: dict[str, Entry], seen: dict[str, NewEntry]) -> None:
        """A key already used (stored, or earlier in the batch) must carry the same content."""
        key = e.key
        memo_text = self._memo_text(e)
        if key in existing:
            same = _entry_content(existing[key]) == _new_content(e, memo_text)
        else:
            first = seen[key]
            same = _new_content(first, self._memo_text(first)) == _new_content(e, memo_text)
        if not same:
            where = f"entry {existing[key].seq}" if key in existing else "this batch"
            raise IdempotencyConflict(
                f"key {key!r} is already used by {where} with different content")

    def _check_state(self, checks: list[tuple], posting_rows: list[tuple], entry_rows: list[tuple],
                     stored_pid: int) -> dict[tuple[str, str], int]:
        """Check, in entry order, the lots drawn from (right account and kind, spendable on
        the entry's date, never overdrawn) and the budgets and receivables moved (never
        below / above zero). Returns the balances after the batch.

        A lot opened by this batch is found by its id among the batch's posting rows
        (ids are consecutive from stored_pid + 1); it can be drawn from only by a
        later posting, as if the batch had been appended one entry at a time."""
        stored_refs = sorted({d[2] for c in checks if c[2] for d in c[2] if d[2] <= stored_pid})
        # lot id -> [account, kind, expires, lot's effective, remaining]
        lots: dict[int, list] = {}
        if stored_refs:
            for lid, account, kind, expires, eff, rem in self.conn.execute(
                "SELECT p.id, p.account, p.kind, p.expires, e.effective, " + _REMAINING +
                " FROM postings p JOIN entries e ON e.seq = p.entry"
                " WHERE p.id IN (SELECT value FROM json_each(?)) AND p.amount > 0",
                (json.dumps(stored_refs),),
            ):
                lots[lid] = [account, kind, expires, eff, rem]
        checked = {pair for c in checks if c[3] for pair, _amount in c[3]}
        balances = self._cached_balances(sorted(checked)) if checked else {}
        for key, eff, draws, moves in checks:
            for idx, draw_pid, lot_id, account, kind, amount in draws or ():
                lot = lots.get(lot_id)
                if lot is None and stored_pid < lot_id < draw_pid:  # opened earlier in this batch
                    _id, seq, _idx, l_account, l_kind, l_amount, l_expires, _lot = \
                        posting_rows[lot_id - stored_pid - 1]
                    if l_expires is not None:  # a member credit (only those carry expires)
                        lot = lots[lot_id] = [l_account, l_kind, l_expires,
                                              entry_rows[seq - entry_rows[0][0]][2], l_amount]
                if lot is None or lot[0] != account or lot[1] != kind:
                    raise InvalidEntry(
                        f"entry {key!r}: posting {idx} draws from lot {lot_id}, which is not"
                        f" a lot of {account} ({kind})")
                if not (lot[3] <= eff <= lot[2]):
                    raise InvalidEntry(
                        f"entry {key!r}: lot {lot_id} (from {lot[3]}, expires {lot[2]}) is not"
                        f" spendable on {eff}")
                lot[4] += amount
                if lot[4] < 0:
                    raise InsufficientPoints(
                        f"entry {key!r}: lot {lot_id} of {account} has {lot[4] - amount}"
                        f" points left, {-amount} requested")
            if moves is None:
                continue
            if len(moves) == 1:  # the usual grant: one budget debited
                pair = moves[0][0]
                balances[pair] += moves[0][1]
                touched: Iterable = (pair,)
            else:
                for pair, amount in moves:
                    balances[pair] += amount
                touched = dict.fromkeys(pair for pair, _amount in moves)
            for pair in touched:
                bal = balances[pair]
                account = pair[0]
                if account[0] == "c" and bal < 0:
                    delta = sum(amount for q, amount in moves if q == pair)
                    raise BudgetExceeded(
                        f"entry {key!r}: budget {account} has {bal - delta} {pair[1]}"
                        f" points left, the entry needs {-delta}")
                if account[0] == "r" and bal > 0:
                    raise InvalidEntry(
                        f"entry {key!r}: receivable {account} would be positive ({bal})")
        return balances

    @staticmethod
    def _memo_text(e: NewEntry) -> str:
        memo = e.memo
        if memo is None:
            return "{}"
        try:
            return canonical(memo)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidEntry(f"entry {e.key!r}: memo is not JSON-serialisable: {exc}") from None

    # ------------------------------------------------------------------ reads

    def _load(self, where: str, params: Sequence = ()) -> list[Entry]:
        sql = f"{_ENTRY_SELECT} WHERE {where} ORDER BY e.seq, p.idx"
        return list(_rows_to_entries(self.conn.execute(sql, params)))

    def entry(self, seq: int) -> Entry | None:
        found = self._load("e.seq = ?", (seq,))
        return found[0] if found else None

    def entry_by_key(self, key: str) -> Entry | None:
        found = self._load("e.key = ?", (key,))
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
            "SELECT p.id, p.kind, p.amount, p.expires, p.entry, p.amount + COALESCE(("
            "  SELECT SUM(d.amount) FROM postings d JOIN entries de ON de.seq = d.entry"
            "  WHERE d.lot = p.id AND de.effective <= ?), 0)"
            " FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE p.account IN (?,?,?) AND p.amount > 0 AND e.effective <= ?",
            (day, *accts, day),
        ):
            if rem > 0:
                out.append(Lot(lid, member, kind, amount, rem, dt.date.fromisoformat(expires), seq))
        out.sort(key=lambda l: (l.expires, _RANK[l.kind], l.id))
        return out

    def _spendable(self, member: str, kind_names: Sequence[str], day: str) -> list[list]:
        """[id, kind, expires, remaining] of lots spendable on `day` (not expired, remaining > 0)."""
        accts = [f"member:{member}:{k}" for k in kind_names]
        rows = self.conn.execute(
            "SELECT p.id, p.kind, p.expires, " + _REMAINING +
            " FROM postings p JOIN entries e ON e.seq = p.entry"
            f" WHERE p.account IN ({','.join('?' * len(accts))}) AND p.amount > 0"
            " AND p.expires >= ? AND e.effective <= ?",
            (*accts, day, day),
        ).fetchall()
        return [list(r) for r in rows if r[3] > 0]

    # ------------------------------------------------------------------ operations

    def fund_budget(self, campaign: str, kind: str, amount: int, effective: dt.date,
                    recorded: str | dt.date | None = None) -> Entry:
        """Fund `campaign:<campaign>:budget` from system:funding, once per campaign and kind."""
        budget = budget_account(campaign)
        kinds.check_kind(kind)
        _check_points("budget amount", amount)
        entry = NewEntry(
            key=f"fund:{campaign}:{kind}", effective=effective, recorded=recorded,
            campaign=campaign, step="fund",
            postings=(Posting(FUNDING, kind, -amount), Posting(budget, kind, amount)),
        )
        return self.append([entry])[0]

    def grant(self, member: str, kind: str, amount: int, expires: dt.date, effective: dt.date,
              *, key: str, source: str, campaign: str | None = None, rule: str | None = None,
              rules_hash: str | None = None, step: str | None = None, events: Iterable[str] = (),
              memo: Any = None, recorded: str | dt.date | None = None) -> Entry:
        """Credit `amount` points of `kind` to the member from `source`.

        Any receivable of that kind is paid first; the rest opens a lot that
        expires on `expires`. BudgetExceeded if a budget source cannot pay.
        """
        macct = member_account(member, kind)
        racct = receivable_account(member, kind)
        src = parse_account(source)
        if not (src.is_budget or source == FUNDING):
            raise InvalidAccount(f"grant source must be a campaign budget or {FUNDING}, not {source!r}")
        _check_points("grant amount", amount)
        _check_date("effective", effective)
        _check_date("expires", expires)
        events = tuple(events)
        with self._txn():
            old = self.entry_by_key(key)
            if old is not None:
                want = (source, -amount, member, kind, effective, campaign, rule, rules_hash, step,
                        events, canonical(memo if memo is not None else {}))
                got = _grant_signature(old)
                lot_ok = all(p.expires == expires for p in old.postings if p.account == macct)
                if got != want or not lot_ok:
                    raise IdempotencyConflict(
                        f"key {key!r} is already used by entry {old.seq} with a different grant")
                return old
            owed = -self._cached_balances([(racct, kind)])[(racct, kind)]
            pay = min(max(owed, 0), amount)
            postings = [Posting(source, kind, -amount)]
            if pay:
                postings.append(Posting(racct, kind, pay))
            if amount - pay:
                postings.append(Posting(macct, kind, amount - pay, expires=expires))
            entry = NewEntry(key=key, effective=effective, postings=postings, recorded=recorded,
                             campaign=campaign, rule=rule, rules_hash=rules_hash, step=step,
                             events=events, memo=memo)
            return self.append([entry])[0]

    def redeem(self, member: str, points: int, use: str, effective: dt.date, *, key: str,
               events: Iterable[str] = (), recorded: str | dt.date | None = None) -> Entry:
        """Spend `points` for `use`: earliest-expiring lots first among the kinds the use
        allows (ties: more restricted kind, then older lot). InsufficientPoints if short."""
        if not valid_id(member):
            raise InvalidAccount(f"invalid member id {member!r}")
        kinds.check_use(use)
        _check_points("points to redeem", points)
        _check_date("effective", effective)
        events = tuple(events)
        allowed = kinds.kinds_for_use(use)
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
            day = effective.isoformat()
            lots = self._spendable(member, allowed, day)
            have = sum(l[3] for l in lots)
            if have < points:
                per = {k: 0 for k in allowed}
                for l in lots:
                    per[l[1]] += l[3]
                detail = ", ".join(f"{k} {v}" for k, v in per.items())
                raise InsufficientPoints(
                    f"member {member} has {have} points spendable for {use} on {day} ({detail}),"
                    f" {points} requested"
                )
            lots.sort(key=lambda l: (l[2], _RANK[l[1]], l[0]))
            postings, per_kind, left = [], {}, points
            for lid, kind, _exp, rem in lots:
                take = min(rem, left)
                postings.append(Posting(f"member:{member}:{kind}", kind, -take, lot=lid))
                per_kind[kind] = per_kind.get(kind, 0) + take
                left -= take
                if not left:
                    break
            for kind in kinds.RESTRICTION_ORDER:
                if kind in per_kind:
                    postings.append(Posting(REDEEMED, kind, per_kind[kind]))
            entry = NewEntry(key=key, effective=effective, postings=postings, recorded=recorded,
                             events=events, memo={"use": use})
            return self.append([entry])[0]

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
            groups: dict[tuple[str, str], list] = {}
            where, params = "p.expires <= ?", [as_of.isoformat()]
            if since is not None:
                where += " AND p.expires > ?"
                params.append(since.isoformat())
            for lid, account, kind, expires, rem in self.conn.execute(
                "SELECT p.id, p.account, p.kind, p.expires, " + _REMAINING +
                f" FROM postings p WHERE p.expires IS NOT NULL AND {where} AND p.amount > 0",
                params,
            ):
                if rem > 0:
                    member = account.split(":")[1]
                    groups.setdefault((expires, member), []).append((_RANK[kind], lid, account, kind, rem))
            if not groups:
                return 0, 0
            wanted = [f"expire:{m}:{d}" for d, m in groups]
            taken = {k for (k,) in self.conn.execute(
                "SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),))}
            for base in list(taken):  # rare: a lot that arrived after its expiry already ran
                taken.update(k for (k,) in self.conn.execute(
                    "SELECT key FROM entries WHERE key > ? AND key < ?", (base + ":", base + ";")))
            batch = []
            for (day, member), items in sorted(groups.items()):
                items.sort()
                key = base = f"expire:{member}:{day}"
                n = 1
                while key in taken:
                    n += 1
                    key = f"{base}:{n}"
                postings, per_kind = [], {}
                for _rank, lid, account, kind, rem in items:
                    postings.append(Posting(account, kind, -rem, lot=lid))
                    per_kind[kind] = per_kind.get(kind, 0) + rem
                for kind in kinds.RESTRICTION_ORDER:
                    if kind in per_kind:
                        postings.append(Posting(EXPIRED, kind, per_kind[kind]))
                d = dt.date.fromisoformat(day)
                batch.append(NewEntry(key=key, effective=d, postings=postings,
                                      recorded=recorded if recorded is not None else as_of,
                                      step="expire"))
                n_entries += 1
                n_points += sum(per_kind.values())
                if len(batch) >= chunk:
                    self._expire_chunk(batch, collect)
                    batch = []
            if batch:
                self._expire_chunk(batch, collect)
        return n_entries, n_points

    def _expire_chunk(self, batch: list[NewEntry], collect: list | None) -> None:
        if collect is not None:
            collect.extend(self.append(batch))
        else:  # only counted: no Entry objects to build
            self.append_seqs(batch)

    def reverse(self, entry_seq: int, amount: int, effective: dt.date, *, key: str,
                events: Iterable[str] = (), memo: Any = None,
                recorded: str | dt.date | None = None) -> Entry:
        """Take `amount` of the member credit of entry `entry_seq` back to its source.

        The member pays from the original lot first, then other lots of that
        kind by earliest expiry; what is no longer there becomes a receivable.
        """
        _check_points("amount to reverse", amount)
        _check_date("effective", effective)
        events = tuple(events)
        with self._txn():
            orig = self.entry(entry_seq)
            if orig is None:
                raise LedgerError(f"cannot reverse entry {entry_seq}: no such entry")
            credits = [p for p in orig.postings if p.amount > 0
                       and p.account.split(":")[0] in ("member", "receivable")]
            sources = {p.account for p in orig.postings if p.amount < 0
                       and p.account.split(":")[0] not in ("member", "receivable")}
            owners = {(p.account.split(":")[1], p.kind) for p in credits}
            if not credits or len(owners) != 1 or len(sources) != 1:
                raise InvalidEntry(
                    f"cannot reverse entry {entry_seq}: it is not a grant to one member and kind")
            (member, kind), (source,) = owners.pop(), sources
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
                " WHERE e.reverses = ? AND p.account = ? AND p.amount > 0",
                (entry_seq, source)).fetchone()[0]
            if amount > credited - taken:
                raise InvalidEntry(
                    f"cannot reverse {amount} points of entry {entry_seq}: it credited {credited},"
                    f" earlier reversals took {taken}, {credited - taken} left")
            own = {p.id for p in credits if p.account.startswith("member:")}
            lots = self._spendable(member, (kind,), effective.isoformat())
            lots.sort(key=lambda l: (l[0] not in own, l[2], l[0]))
            postings = [Posting(source, kind, amount)]
            left = amount
            for lid, _kind, _exp, rem in lots:
                if not left:
                    break
                take = min(rem, left)
                postings.append(Posting(member_account(member, kind), kind, -take, lot=lid))
                left -= take
            if left:
                postings.append(Posting(receivable_account(member, kind), kind, -left))
            entry = NewEntry(key=key, effective=effective, postings=postings, recorded=recorded,
                             campaign=orig.campaign, rule=orig.rule, rules_hash=orig.rules_hash,
                             step=orig.step, events=events, reverses=entry_seq, memo=memo)
            return self.append([entry])[0]


def _grant_signature(e: Entry):
    debits = [p for p in e.postings if p.amount < 0]
    credits = [p for p in e.postings if p.amount > 0]
    source = debits[0].account if len(debits) == 1 else None
    owners = {(p.account.split(":")[1], p.kind) for p in credits}
    member, kind = owners.pop() if len(owners) == 1 else (None, None)
    return (source, debits[0].amount if len(debits) == 1 else None, member, kind, e.effective,
            e.campaign, e.rule, e.rules_hash, e.step, e.events, canonical(e.memo))
