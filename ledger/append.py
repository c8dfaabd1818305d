"""The batch writer behind `Journal.append` and `Journal.append_seqs`.

One pass over the batch validates each entry (accounts, kinds, amounts, zero sum
per kind, expires on member credits, lots on member debits) and builds its rows,
its canonical text (the same text as `hashing.entry_canonical`, built directly:
the layout is fixed and the keys are already in sorted order), its hash and,
when asked, the Entry returned for it. The checks that need the stored state --
the lots drawn from, the budgets and receivables moved -- then run in entry
order over only the postings concerned. Nothing is written until every check
has passed; the rows go in with two `executemany` calls inside the caller's
transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from json.encoder import encode_basestring as _jstr
from typing import Any, Iterable

from points.ledger import kinds
from points.ledger.accounts import parse_account
from points.ledger.errors import (
    BudgetExceeded,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidAccount,
    InvalidEntry,
    UnbalancedEntry,
)
from points.ledger.hashing import GENESIS, canonical
from points.ledger.lots import REMAINING
from points.ledger.model import Entry, NewEntry, Posting

_KIND_NAMES = frozenset(kinds.KIND_NAMES)

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


def _recorded(recorded: str | dt.date | None, effective: dt.date) -> str:
    if recorded is None:
        return effective.isoformat()
    if isinstance(recorded, dt.date):
        return recorded.isoformat()
    if not isinstance(recorded, str) or not recorded:
        raise InvalidEntry(f"recorded must be a date or a non-empty string, not {recorded!r}")
    return recorded


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


def write_batch(journal, entries: list[NewEntry], build: bool) -> list:
    """Validate, check and write a batch (see the module docstring); returns, per entry,
    its Entry if `build` else its seq (the stored one for an idempotent no-op).

    `journal` gives the connection, `entries_where` (stored entries), `current_balances` and
    `remember_balance` (the balance cache of budgets and receivables)."""
    conn = journal.conn
    keys = []
    for e in entries:
        if type(e) is not NewEntry and not isinstance(e, NewEntry):
            raise InvalidEntry(f"append takes NewEntry values, not {type(e).__name__}")
        k = e.key
        if type(k) is not str or not k:
            if not isinstance(k, str) or not k:
                raise InvalidEntry(f"idempotency key must be a non-empty string, not {k!r}")
        keys.append(k)
    existing = _existing(journal, keys)
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
    memo_of = memo_json
    for e in entries:
        key = e.key
        if key in existing or key in seen:
            _check_same(e, existing, seen)
            add_out((key,))
            continue
        seen[key] = e
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
                        check_date(f"entry {key!r}, posting {idx}: expires", expires)
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

    balances = (_check_state(journal, checks, posting_rows, entry_rows, stored_pid)
                if checks else {})
    if posting_rows:
        conn.executemany(_INSERT_POSTING, posting_rows)
    if entry_rows:
        conn.executemany(_INSERT_ENTRY, entry_rows)
    for pair, bal in balances.items():
        journal.remember_balance(pair, (bal, pid))
    if len(entry_rows) == len(out):
        return out
    # Idempotent no-ops: the stored entry, or the one written earlier in this batch.
    if build:
        written = {x.key: x for x in out if type(x) is Entry}
        return [x if type(x) is Entry else existing.get(x[0]) or written[x[0]] for x in out]
    seqs = {row[1]: row[0] for row in entry_rows}
    return [x if type(x) is int else
            existing[x[0]].seq if x[0] in existing else seqs[x[0]] for x in out]

def _existing(journal, keys: list[str]) -> dict[str, Entry]:
    """The stored entries of those keys (usually none: one index probe per key)."""
    found = [k for (k,) in journal.conn.execute(
        "SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?))",
        (json.dumps(keys),))]
    if not found:
        return {}
    return {x.key: x for x in journal.entries_where("e.key IN (SELECT value FROM json_each(?))",
                                          (json.dumps(found),))}

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

def _check_state(journal, checks: list[tuple], posting_rows: list[tuple], entry_rows: list[tuple],
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
        for lid, account, kind, expires, eff, rem in journal.conn.execute(
            "SELECT p.id, p.account, p.kind, p.expires, e.effective, " + REMAINING +
            " FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE p.id IN (SELECT value FROM json_each(?)) AND p.amount > 0",
            (json.dumps(stored_refs),),
        ):
            lots[lid] = [account, kind, expires, eff, rem]
    checked = {pair for c in checks if c[3] for pair, _amount in c[3]}
    balances = journal.current_balances(sorted(checked)) if checked else {}
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

def memo_json(e: NewEntry) -> str:
    memo = e.memo
    if memo is None:
        return "{}"
    try:
        return canonical(memo)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEntry(f"entry {e.key!r}: memo is not JSON-serialisable: {exc}") from None
