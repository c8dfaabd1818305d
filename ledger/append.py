"""The batch writer behind `Journal.append` and `Journal.append_seqs`.

`write_batch` runs these steps; nothing is written until every check has passed:

1. `_keys`, `_existing`: the batch is NewEntry values with string keys; find the
   stored entries of those keys (an idempotent repeat is a no-op, see `_check_same`).
2. `_chain_head`: where the hash chain and the posting ids resume.
3. `_encode`: one pass over the batch -- the journal's hot path -- checks each entry
   on its own (fields, accounts, kinds, amounts, zero sum per kind, expires on member
   credits, lots on member debits) and builds its rows, its canonical text and its
   hash; the checks that need the stored state are only collected here.
4. `append_state.check_state`: in entry order, the lots drawn from and the budgets and
   receivables moved, against the stored state, over only the postings concerned.
5. `_insert`: two `executemany` calls inside the caller's transaction; then
   `_results` answers each entry (the stored one for a no-op).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from json.encoder import encode_basestring as _jstr
from typing import Any, NoReturn

import attrs

from points.ledger import kinds
from points.ledger.accounts import parse_account
from points.ledger.errors import (
    IdempotencyConflict,
    InvalidAccount,
    InvalidEntry,
    UnbalancedEntry,
)
from points.ledger.append_state import check_state
from points.ledger.hashing import GENESIS, canonical
from points.ledger.model import Entry, Memo, NewEntry, Posting

_KIND_NAMES = frozenset(kinds.KIND_NAMES)
# Point kind -> its JSON text in the canonical encoding (also the set of valid kinds).
_KIND_JSON = {k: _jstr(k) for k in kinds.KIND_NAMES}

# Valid account name -> (type letter, kind or None); bounded, cleared when full:
# large enough for the accounts of one busy batch, small enough that memory does
# not grow with every member a long run ever touches (sizes: docs/benchmarks.md).
_ACCOUNT_CACHE_MAX = 100_000
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
    if len(_ACCOUNTS) > _ACCOUNT_CACHE_MAX:
        _ACCOUNTS.clear()
    _ACCOUNTS[account] = info
    return info


def _account_info_of(key: str, idx: int, account: Any) -> tuple[str, str | None]:
    """account_info, with the entry and posting named in the error."""
    try:
        return account_info(account)
    except InvalidAccount as exc:
        raise InvalidAccount(f"entry {key!r}, posting {idx}: {exc}") from None
    except TypeError:  # unhashable
        raise InvalidAccount(f"entry {key!r}, posting {idx}: account must be a"
                             f" string, not {type(account).__name__}") from None


_INSERT_POSTING = (
    "INSERT INTO postings(id, entry, idx, account, kind, amount, expires, lot)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
_INSERT_ENTRY = (
    "INSERT INTO entries(seq, key, effective, recorded, campaign, rule, rules_hash, step,"
    " events, reverses, memo, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def check_date(what: str, value: Any) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise InvalidEntry(f"{what} must be a datetime.date, not {value!r}")
    return value


@attrs.frozen
class _Encoded:
    """What `_encode` built for a batch, before anything is written."""

    posting_rows: list[tuple]  # in id order, ids stored_pid + 1 .. last_pid
    entry_rows: list[tuple]    # in seq order, with their hashes
    # Per entry: its Entry (build) or seq, or (key,) for an idempotent no-op.
    out: list
    # (key, effective text, draws or None, budget moves or None) of the entries that
    # draw from lots or move a budget or receivable: append_state.check_state's work.
    checks: list[tuple]
    stored_pid: int
    last_pid: int


def write_batch(journal, entries: list[NewEntry], build: bool) -> list:
    """Validate, check and write a batch (see the module docstring); returns, per entry,
    its Entry if `build` else its seq (the stored one for an idempotent no-op).

    `journal` gives the connection, `entries_where` (stored entries), `current_balances` and
    `remember_balance` (the balance cache of budgets and receivables)."""
    existing = _existing(journal, _keys(entries))
    batch = _encode(entries, existing, _chain_head(journal.conn), build)
    balances = (check_state(journal, batch.checks, batch.posting_rows, batch.entry_rows,
                            batch.stored_pid) if batch.checks else {})
    _insert(journal.conn, batch)
    for pair, bal in balances.items():
        journal.remember_balance(pair, (bal, batch.last_pid))
    return _results(batch, existing, build)


def _keys(entries: list[NewEntry]) -> list[str]:
    """The idempotency keys, once every item is known to be a NewEntry with a key."""
    keys = []
    for e in entries:
        if type(e) is not NewEntry and not isinstance(e, NewEntry):
            raise InvalidEntry(f"append takes NewEntry values, not {type(e).__name__}")
        k = e.key
        if type(k) is not str or not k:
            if not isinstance(k, str) or not k:
                raise InvalidEntry(f"idempotency key must be a non-empty string, not {k!r}")
        keys.append(k)
    return keys


def _existing(journal, keys: list[str]) -> dict[str, Entry]:
    """The stored entries of those keys (usually none: one index probe per key)."""
    found = [k for (k,) in journal.conn.execute(
        "SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?))",
        (json.dumps(keys),))]
    if not found:
        return {}
    return {x.key: x for x in journal.entries_where("e.key IN (SELECT value FROM json_each(?))",
                                                    (json.dumps(found),))}


def _chain_head(conn) -> tuple[int, str, int]:
    """(last seq, its hash, last posting id): where this batch continues the journal."""
    row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = row if row is not None else (0, GENESIS)
    return seq, prev_hash, conn.execute("SELECT MAX(id) FROM postings").fetchone()[0] or 0


def _encode(entries: list[NewEntry], existing: dict[str, Entry], head: tuple[int, str, int],
            build: bool) -> _Encoded:
    """Check every entry on its own and build its rows and hash, continuing from `head`.

    One loop over the entries and their postings in one function, each value tested
    inline: a call per entry (for its fields, its postings, its hash through
    hashing.fast_canonical) was tried and cost measurable time (docs/benchmarks.md).
    So the messages are what is split out: the `_check_*` / `_bad_*` functions below,
    called only when an inline test fails. The canonical text is hashing.entry_canonical's,
    written out (keys in sorted order, the layout fixed); tests/ledger/test_append_batch.py
    pins it to the reference encoder. Collected for `append_state.check_state`: the
    member debits (idx, id, lot, account, kind, amount) as `draws`, the budget and
    receivable postings ((account, kind), amount) as `moves`."""
    seq, prev_hash, pid = head
    stored_pid = pid
    posting_rows: list[tuple] = []
    entry_rows: list[tuple] = []
    out: list = []
    checks: list[tuple] = []
    seen: dict[str, NewEntry] = {}
    # date -> ISO text, shared by effective and expires dates (few distinct per batch)
    dates: dict[dt.date, str] = {}
    accounts = _ACCOUNTS
    kind_json = _KIND_JSON
    jstr = _jstr
    sha256 = hashlib.sha256
    add_prow = posting_rows.append
    for e in entries:
        key = e.key
        if key in existing or key in seen:
            _check_same(e, existing, seen)
            out.append((key,))
            continue
        seen[key] = e
        # the entry's own fields
        effective = e.effective
        if type(effective) is not dt.date:
            check_date(f"entry {key!r}: effective", effective)
        eff = dates.get(effective)
        if eff is None:
            eff = dates[effective] = effective.isoformat()
        campaign, rule, rules_hash, step = e.campaign, e.rule, e.rules_hash, e.step
        if not ((campaign is None or type(campaign) is str)
                and (rule is None or type(rule) is str)
                and (rules_hash is None or type(rules_hash) is str)
                and (step is None or type(step) is str)):
            _check_texts(key, campaign, rule, rules_hash, step)
        rev = e.reverses
        if rev is not None and (not isinstance(rev, int) or rev <= 0):
            raise InvalidEntry(f"entry {key!r}: reverses must be an entry seq")
        memo = e.memo
        if memo is None:
            memo_text = "{}"
        elif type(memo) is Memo:  # its canonical text already written (operations.grant_maker)
            memo_text = memo.text
        else:
            memo_text = memo_json(e)
        seq += 1

        # its postings (none: a record only -- a lottery draw, a refused redemption,
        # a run marker -- hash-chained like every other entry)
        frags = []  # each posting's canonical text
        built = [] if build else None
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
            if kind_text is None or (akind is not None and akind != kind):
                _bad_kind(key, idx, account, kind)
            if type(amount) is not int or amount == 0:
                _check_amount(key, idx, amount)
            sums[kind] = sums.get(kind, 0) + amount
            expires_text = None
            if t == "m":
                if amount > 0:  # a credit opens a lot
                    if type(expires) is not dt.date or expires < effective or lot is not None:
                        _check_credit(key, idx, account, expires, lot, effective)
                    expires_text = dates.get(expires)
                    if expires_text is None:
                        expires_text = dates[expires] = expires.isoformat()
                    frags.append(
                        f'{{"account":{jstr(account)},"amount":{amount},"entry":{seq},'
                        f'"expires":"{expires_text}","id":{pid},"idx":{idx},'
                        f'"kind":{kind_text},"lot":null}}')
                else:  # a debit draws from one
                    if type(lot) is not int or expires is not None:
                        _check_debit(key, idx, account, expires, lot)
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
                built.append(Posting(account, kind, amount, expires, lot, pid))
        for total in sums.values():
            if total != 0:
                _unbalanced(key, sums)

        # the rest of its row, then its hash (hashing.entry_canonical's text)
        events = e.events
        try:
            events_text = "[" + ",".join(map(jstr, events)) + "]"
        except TypeError:
            _bad_events(key, events)
        recorded = e.recorded
        if recorded is None:
            recorded = eff
        elif type(recorded) is not str or not recorded:
            recorded = _recorded(recorded, effective)
        if draws is not None or moves is not None:
            checks.append((key, eff, draws, moves))
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
        entry_rows.append((seq, key, eff, recorded, campaign, rule, rules_hash, step,
                           events_text, rev, memo_text, prev_hash, h))
        if build:
            out.append(Entry(seq, key, effective, recorded, campaign, rule, rules_hash, step,
                             events, rev, {} if e.memo is None else json.loads(memo_text),
                             prev_hash, h, tuple(built)))
        else:
            out.append(seq)
        prev_hash = h
    return _Encoded(posting_rows, entry_rows, out, checks, stored_pid, pid)


# The messages of `_encode`, called only when its inline test fails: each raises the
# first problem in a fixed order, or returns when the value is an accepted subclass.

def _check_texts(key: str, campaign: Any, rule: Any, rules_hash: Any, step: Any) -> None:
    for what, v in (("campaign", campaign), ("rule", rule), ("rules_hash", rules_hash),
                    ("step", step)):
        if v is not None and type(v) is not str and not isinstance(v, str):
            raise InvalidEntry(f"entry {key!r}: {what} must be a string or None")


def _bad_kind(key: str, idx: int, account: str, kind: Any) -> NoReturn:
    if kind not in _KIND_JSON:
        raise InvalidEntry(f"entry {key!r}, posting {idx}: unknown point kind {kind!r}")
    raise InvalidEntry(f"entry {key!r}, posting {idx}: kind {kind!r} on account {account}")


def _check_amount(key: str, idx: int, amount: Any) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise InvalidEntry(f"entry {key!r}, posting {idx}: amount must be a non-zero integer,"
                           f" not {amount!r}")


def _check_credit(key: str, idx: int, account: str, expires: Any, lot: Any,
                  effective: dt.date) -> None:
    where = f"entry {key!r}, posting {idx}"
    if expires is None:
        raise InvalidEntry(f"{where}: a credit to {account} must carry expires (it opens a lot)")
    check_date(f"{where}: expires", expires)
    if expires < effective:
        raise InvalidEntry(f"{where}: lot expires {expires} before the entry's effective"
                           f" date {effective}")
    if lot is not None:
        raise InvalidEntry(f"{where}: a credit has no lot")


def _check_debit(key: str, idx: int, account: str, expires: Any, lot: Any) -> None:
    where = f"entry {key!r}, posting {idx}"
    if lot is None or not isinstance(lot, int) or isinstance(lot, bool):
        raise InvalidEntry(f"{where}: a debit of {account} must name the lot (posting id)"
                           " it draws from")
    if expires is not None:
        raise InvalidEntry(f"{where}: a debit has no expires")


def _unbalanced(key: str, sums: dict[str, int]) -> NoReturn:
    bad = {k: s for k, s in sums.items() if s != 0}
    detail = ", ".join(f"{k} {s:+d}" for k, s in sorted(bad.items()))
    raise UnbalancedEntry(f"entry {key!r} does not sum to zero per kind: {detail}")


def _bad_events(key: str, events: tuple) -> NoReturn:
    bad = next(ev for ev in events if not isinstance(ev, str))
    raise InvalidEntry(f"entry {key!r}: event ids must be strings, not {bad!r}") from None


def _recorded(recorded: str | dt.date | None, effective: dt.date) -> str:
    if recorded is None:
        return effective.isoformat()
    if isinstance(recorded, dt.date):
        return recorded.isoformat()
    if not isinstance(recorded, str) or not recorded:
        raise InvalidEntry(f"recorded must be a date or a non-empty string, not {recorded!r}")
    return recorded


def memo_json(e: NewEntry) -> str:
    memo = e.memo
    if memo is None:
        return "{}"
    try:
        return canonical(memo)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEntry(f"entry {e.key!r}: memo is not JSON-serialisable: {exc}") from None


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


def _check_same(e: NewEntry, existing: dict[str, Entry], seen: dict[str, NewEntry]) -> None:
    """A key already used (stored, or earlier in the batch) must carry the same content."""
    key = e.key
    text = memo_json(e)
    if key in existing:
        same = _entry_content(existing[key]) == _new_content(e, text)
    else:
        first = seen[key]
        same = _new_content(first, memo_json(first)) == _new_content(e, text)
    if not same:
        where = f"entry {existing[key].seq}" if key in existing else "this batch"
        raise IdempotencyConflict(
            f"key {key!r} is already used by {where} with different content")


def _insert(conn, batch: _Encoded) -> None:
    """The batch's rows, postings first: an entry row's zero-sum trigger reads its postings,
    and a posting of an entry already written is refused."""
    if batch.posting_rows:
        conn.executemany(_INSERT_POSTING, batch.posting_rows)
    if batch.entry_rows:
        conn.executemany(_INSERT_ENTRY, batch.entry_rows)


def _results(batch: _Encoded, existing: dict[str, Entry], build: bool) -> list:
    """Per entry, its Entry or seq; an idempotent no-op gets the stored entry, or the
    one written earlier in this batch."""
    out = batch.out
    if len(batch.entry_rows) == len(out):
        return out
    if build:
        written = {x.key: x for x in out if type(x) is Entry}
        return [x if type(x) is Entry else existing.get(x[0]) or written[x[0]] for x in out]
    seqs = {row[1]: row[0] for row in batch.entry_rows}
    return [x if type(x) is int else
            existing[x[0]].seq if x[0] in existing else seqs[x[0]] for x in out]
