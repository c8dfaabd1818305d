"""verify, pass 1: the entries hash chain and each entry's own rules.

One query walks the entries in seq order, each joined to its postings. For
each entry SQLite builds the bytes that are hashed -- prev_hash followed by the
canonical text of the entry and its postings (ledger.hashing) -- and checks, in
the same aggregate, the rules that need no other entry: idx 0..n-1, zero sum
per kind, member credits with expires (>= effective) and no lot, member debits
naming a lot, no expires/lot elsewhere, `reverses` naming an earlier entry.
Python does one sha256 per entry and compares it with the stored hash and
with the next entry's prev_hash.

The SQL text is only a fast path. It is NULL when a rule fails, and then (or
when its hash does not match, or SQLite raises on a cell, e.g. a BLOB or an
integer overflow) the entry is checked again in Python with the reference
encoder (ledger.hashing.entry_canonical), which decides and names the problem.
A match cannot hide a changed cell: json_object() keeps every text and integer
distinct (a text "5" is quoted, an integer 5 is not, a REAL has a '.' or 'e',
a BLOB raises), so equal bytes mean the stored cells are the ones that were
hashed. The order of the postings in the text (the (entry, idx) index order)
does not matter for that either: a wrong order only sends the entry to Python.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import apsw

from points.ledger.accounts import parse_account
from points.ledger.errors import InvalidAccount
from points.ledger.hashing import GENESIS, entry_canonical
from points.ledger.kinds import KIND_NAMES

_sha256 = hashlib.sha256

Add = Callable[[int, str], None]  # (seq, message): one problem about entry `seq`

_KINDS_SQL = ", ".join(f"'{k}'" for k in KIND_NAMES)

# The rules of one entry, as an aggregate over its postings (p) joined to it (e).
# Zero sum per kind: the total and every kind but the first sum to zero, and
# every kind is a known one, so the first kind sums to zero too.
_ENTRY_RULES = " AND ".join([
    "(reverses IS NULL OR (typeof(reverses) = 'integer' AND reverses BETWEEN 1 AND seq - 1))",
    "min(idx) = 0 AND max(idx) = count(p.id) - 1",
    "sum(amount) = 0",
    *(f"sum(iif(kind = '{k}', amount, 0)) = 0" for k in KIND_NAMES[1:]),
    f"""NOT max(kind NOT IN ({_KINDS_SQL}) OR typeof(amount) != 'integer'
        OR CASE WHEN account < 'member:' OR account >= 'member;'
                THEN expires IS NOT NULL OR lot IS NOT NULL
                WHEN amount > 0 THEN expires IS NULL OR lot IS NOT NULL OR expires < e.effective
                ELSE lot IS NULL END)""",
])

# prev_hash || canonical(entry), as UTF-8 bytes. json_object() writes compact
# JSON with the keys in the order given -- the sorted order of ledger.hashing --
# and quotes text exactly as json.dumps(ensure_ascii=False); the postings array
# (a JSON value of the same query) is embedded as is.
def _hashed_bytes(postings: str) -> str:
    return (
        "CAST(e.prev_hash || json_object('campaign', campaign, 'effective', effective,"
        " 'events', events, 'key', key, 'memo', memo, 'postings', " + postings + ","
        " 'prev_hash', e.prev_hash, 'recorded', recorded, 'reverses', reverses, 'rule', rule,"
        " 'rules_hash', rules_hash, 'seq', seq, 'step', step) AS BLOB)")


_POSTINGS = ("json_group_array(json_object('account', account, 'amount', amount, 'entry', entry,"
             " 'expires', expires, 'id', p.id, 'idx', idx, 'kind', kind, 'lot', lot))")

CHAIN_SQL = f"""
SELECT e.seq, e.prev_hash, e.hash, count(p.id),
  CASE WHEN count(p.id) = 0 THEN {_hashed_bytes("json_array()")}
       WHEN {_ENTRY_RULES} THEN {_hashed_bytes(_POSTINGS)}
  END
FROM entries e LEFT JOIN postings p ON p.entry = e.seq
WHERE e.seq > ? AND e.seq <= ?
GROUP BY e.seq ORDER BY e.seq
"""


class ChainState:
    """Where the walk is: the next expected seq and the hash the next prev_hash must equal."""

    def __init__(self, expected: int = 1, chain: str = GENESIS) -> None:
        self.expected = expected
        self.chain = chain
        self.entries = 0
        self.postings = 0  # postings of the entries walked


def check_chain(conn: apsw.Connection, add: Add, state: ChainState,
                after: int = 0, upto: int = 2**63 - 1) -> None:
    """Walk the entries with after < seq <= upto, in seq order, from `state`.

    If SQLite raises on some entry's cells (a BLOB, an integer overflow), that
    entry goes to check_entry and the walk resumes after it.
    """
    sha256 = _sha256
    # Locals in the loop (once per entry); written back to `state` at the end.
    expected, chain, n_entries, n_postings = state.expected, state.chain, 0, 0
    start = after
    unencodable = None  # the entry SQLite raised on, with its text None
    checking = False  # an error inside check_entry is not about encoding: raised
    while True:
        try:
            rows = conn.execute(CHAIN_SQL, (start, upto)) if unencodable is None else [unencodable]
            for seq, prev_hash, stored_hash, n, text in rows:
                n_entries += 1
                n_postings += n
                if seq != expected:
                    add(seq, f"entry {seq}: seq not contiguous (expected {expected})")
                expected = seq + 1
                if prev_hash != chain:
                    add(seq, f"entry {seq}: prev_hash does not match the hash of the previous entry")
                if text is None or sha256(text).hexdigest() != stored_hash:
                    checking = True
                    check_entry(conn, seq, add)
                    checking = False
                chain = stored_hash
            if unencodable is None:
                break
            unencodable = None
        except apsw.Error:
            if checking:
                raise
            # SQLite raised on the next entry: check it alone, then go on after it.
            row = conn.execute(
                "SELECT seq, prev_hash, hash, (SELECT count(*) FROM postings WHERE entry = seq)"
                " FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT 1",
                (expected, upto)).fetchone()
            if row is None:
                raise
            unencodable = (*row, None)
            start = row[0]
    state.expected, state.chain = expected, chain
    state.entries += n_entries
    state.postings += n_postings


_ENTRY_ROW = ("SELECT seq, key, effective, recorded, campaign, rule, rules_hash, step, events,"
              " reverses, memo, prev_hash, hash FROM entries WHERE seq = ?")
_POSTING_ROWS = ("SELECT id, entry, idx, account, kind, amount, expires, lot FROM postings"
                 " WHERE entry = ? ORDER BY id")
_INT_OR_NONE = (int, type(None))


def check_entry(conn: apsw.Connection, seq: int, add: Add) -> None:
    """One entry with the reference encoder and in Python: its hash and its own rules.

    Accounts and kinds are reported by the accounts pass, lots by the lots pass.
    """
    erow = conn.execute(_ENTRY_ROW, (seq,)).fetchone()
    plist = conn.execute(_POSTING_ROWS, (seq,)).fetchall()
    eff, reverses, stored_hash = erow[2], erow[9], erow[12]
    try:
        if type(reverses) not in _INT_OR_NONE:
            raise TypeError("reverses not an integer")
        h = _sha256((erow[11] + entry_canonical(erow[:12], plist)).encode()).hexdigest()
    except (TypeError, ValueError, AttributeError, UnicodeEncodeError) as exc:
        h = None
        add(seq, f"entry {seq}: cannot encode ({exc})")
    if h != stored_hash:
        add(seq, f"entry {seq}: hash mismatch")
    if reverses is not None and not (type(reverses) is int and 0 < reverses < seq):
        add(seq, f"entry {seq}: reverses {reverses!r} is not an earlier entry")

    sums: dict[str, int] = {}
    for i, (pid, _e, idx, account, kind, amount, expires, lot) in enumerate(plist):
        if idx != i:
            add(seq, f"entry {seq}: posting {pid} has idx {idx}, expected {i}")
        if kind not in KIND_NAMES:
            continue
        if type(amount) is not int:
            add(seq, f"entry {seq}: posting {pid}: amount {amount!r} is not an integer")
            continue
        sums[kind] = sums.get(kind, 0) + amount
        try:
            member = parse_account(account).type == "member"
        except (InvalidAccount, TypeError):
            continue
        if member and amount > 0:
            if expires is None or lot is not None:
                add(seq, f"entry {seq}: posting {pid}: member credit without expires (or with lot)")
            elif not (type(expires) is str and type(eff) is str and expires >= eff):
                add(seq, f"entry {seq}: posting {pid}: lot expires {expires!r} before {eff}")
        elif member:
            if lot is None:
                add(seq, f"entry {seq}: posting {pid}: member debit does not name a known lot"
                         " (None)")
        elif expires is not None or lot is not None:
            add(seq, f"entry {seq}: posting {pid}: expires/lot on non-member account {account}")
    for kind, total in sums.items():
        if total:
            add(seq, f"entry {seq}: does not sum to zero for {kind} ({total:+d})")
