"""verify, passes 2-5: what needs more than one entry -- accounts, lots, running
balances -- and postings that belong to no entry.

Each pass is one SQL aggregate that streams over an index and returns only
the suspects (an account name, a lot, a budget); Python then looks at each
suspect's postings in seq order and names the entries that break a rule.
The aggregates may flag more than the rules forbid (they are filters), never
less. Nothing is held per lot or per account, so memory does not grow with the
journal. verify runs every pass in one read transaction (one snapshot).
"""

from __future__ import annotations

from typing import Callable

import apsw

from points.ledger.accounts import parse_account
from points.ledger.errors import InvalidAccount
from points.ledger.kinds import KIND_NAMES

Add = Callable[[int, str], None]  # (seq, message), see ledger.verify_chain

_KINDS_SQL = ", ".join(f"'{k}'" for k in KIND_NAMES)

# ---------------------------------------------------------------- accounts

def check_accounts(conn: apsw.Connection, add: Add) -> None:
    """Every posting names a valid account and kind, and a member or receivable
    account's own kind. Each distinct (account, kind) is checked once, from the
    (account, kind) index; the postings of a bad one are then named."""
    for account, kind in conn.execute("SELECT DISTINCT account, kind FROM postings"):
        what = _account_problem(account, kind)
        if what is None:
            continue
        for seq, pid in conn.execute(
                "SELECT entry, id FROM postings WHERE account = ? AND kind = ?"
                " ORDER BY entry, id", (account, kind)):
            add(seq, f"entry {seq}: posting {pid}: {what}")


_KINDS = frozenset(KIND_NAMES)
_OWNED = ("member", "receivable")


def _account_problem(account: object, kind: object) -> str | None:
    """What is wrong with a posting of `kind` on `account` (None: nothing)."""
    if type(account) is str and kind in _KINDS:
        # The common case, decided as parse_account would: <member|receivable>:<id>:<kind>
        # with an id of 1-64 characters, no ':' (split) and no whitespace (str.split()
        # and the regex's \s agree). No cache: there is one call per account.
        parts = account.split(":")
        if len(parts) == 3 and parts[2] == kind and parts[0] in _OWNED:
            owner = parts[1]
            if 0 < len(owner) <= 64 and owner.split() == [owner]:
                return None
    try:
        parsed = parse_account(account)  # type: ignore[arg-type]
    except (InvalidAccount, TypeError):
        return f"invalid account {account!r}"
    if kind not in _KINDS:
        return f"unknown kind {kind!r}"
    if parsed.kind is not None and parsed.kind != kind:
        return f"kind {kind} on account {account}"
    return None


# ---------------------------------------------------------------- lots

# Per lot (the member credit its draws name): flagged unless the credit exists,
# is a member credit written before every draw (a draw in the credit's own
# entry is left to Python), every draw is a debit of the credit's account and
# kind without expires, effective between the credit's effective date and its
# expiry, and the draws do not exceed the credit. Draws are <= 0, so the
# remaining amount only falls: their total is enough to know it never went
# below zero. The draws are read in table order and grouped by a sort (the
# lot index would fetch each row at random), then each lot's credit is looked
# up once. total() cannot overflow; amounts beyond 2**52, where its float
# could round, are flagged.
_SUSPECT_LOTS = """
SELECT g.lot FROM (
  SELECT d.lot AS lot, min(d.entry) AS first_draw, total(d.amount) AS drawn,
         min(de.effective) AS first_day, max(de.effective) AS last_day,
         min(d.account) AS account_lo, max(d.account) AS account_hi,
         min(d.kind) AS kind_lo, max(d.kind) AS kind_hi,
         max(d.expires IS NOT NULL OR typeof(d.amount) != 'integer' OR d.amount > 0
             OR d.amount < -4503599627370496) AS odd
  FROM postings d NOT INDEXED JOIN entries de ON de.seq = d.entry
  WHERE d.lot IS NOT NULL GROUP BY d.lot) AS g
  LEFT JOIN postings c ON c.id = g.lot
  LEFT JOIN entries ce ON ce.seq = c.entry
WHERE odd OR c.id IS NULL OR ce.seq IS NULL OR c.account NOT GLOB 'member:*'
   OR typeof(c.amount) != 'integer' OR c.amount <= 0 OR c.amount > 4503599627370496
   OR c.expires IS NULL OR c.lot IS NOT NULL OR first_draw <= c.entry
   OR account_lo != c.account OR account_hi != c.account
   OR kind_lo != c.kind OR kind_hi != c.kind
   OR first_day < ce.effective OR last_day > c.expires OR c.amount + drawn < 0
"""


def check_lots(conn: apsw.Connection, add: Add) -> None:
    """Member debits draw from a known lot of the same account and kind, open on
    the debit's effective date, and no lot goes below zero."""
    for (lot,) in conn.execute(_SUSPECT_LOTS).fetchall():
        _check_lot(conn, lot, add)


def _check_lot(conn: apsw.Connection, lot: int, add: Add) -> None:
    """One lot in seq order, with the rules of a member debit (as Journal writes them)."""
    credit = conn.execute(
        "SELECT c.id, c.entry, c.account, c.kind, c.amount, ce.effective, c.expires"
        " FROM postings c JOIN entries ce ON ce.seq = c.entry WHERE c.id = ?", (lot,)).fetchone()
    if credit is not None:
        cid, centry, caccount, ckind, remaining, opened, expires = credit
        if not (_is_member(caccount) and ckind in KIND_NAMES and type(remaining) is int
                and remaining > 0):
            credit = None
    for seq, pid, account, kind, amount, dexpires, eff in conn.execute(
            "SELECT d.entry, d.id, d.account, d.kind, d.amount, d.expires, de.effective"
            " FROM postings d JOIN entries de ON de.seq = d.entry"
            " WHERE d.lot = ? ORDER BY d.entry, d.id", (lot,)):
        if not (_is_member(account) and type(amount) is int and amount <= 0):
            continue  # not a member debit: ledger.verify_chain reports the lot on it
        if credit is None or dexpires is not None or (centry, cid) >= (seq, pid):
            add(seq, f"entry {seq}: posting {pid}: member debit does not name a known lot"
                     f" ({lot!r})")
        elif caccount != account or ckind != kind:
            add(seq, f"entry {seq}: posting {pid}: draws from lot {lot} of another account"
                     " or kind")
        else:
            if not (opened <= eff <= expires):
                add(seq, f"entry {seq}: posting {pid}: lot {lot} not open on {eff}")
            remaining += amount
            if remaining < 0:
                add(seq, f"entry {seq}: lot {lot} goes below zero ({remaining})")


def _is_member(account: object) -> bool:
    try:
        return parse_account(account).type == "member"  # type: ignore[arg-type]
    except (InvalidAccount, TypeError):
        return False


# ---------------------------------------------------------------- running balances

# A budget must never be below zero and a receivable never above zero after
# any entry, in seq order. With sign = 1 for budgets and -1 for receivables,
# the signed balance must stay >= 0. Per account and kind: let e0 be the first
# entry with a signed debit, D the sum of all signed debits and F some signed
# credits of entries <= e0. Before e0 the balance only rose from zero; from e0
# on it is at least F + D. So F + D >= 0 proves the account fine without
# ordering its postings; the others are walked in Python. F is taken from the
# postings with ids up to e0's (usually the funding entry), a short index range.
# total() cannot overflow; amounts beyond 2**52, where its float could round,
# are flagged.
_SUSPECT_BALANCES = """
SELECT account, kind FROM (
  SELECT account, kind, min(iif(amount * :sign < 0, entry, NULL)) AS e0,
         total(min(amount * :sign, 0)) AS debits,
         max(typeof(amount) != 'integer'
             OR amount NOT BETWEEN -4503599627370496 AND 4503599627370496) AS odd
  FROM postings WHERE account >= :lo AND account < :hi
  GROUP BY account, kind) AS a
WHERE odd OR e0 IS NOT NULL AND debits + (
  SELECT total(amount * :sign) FROM postings p
  WHERE p.account = a.account AND p.kind = a.kind
    AND p.id <= (SELECT max(id) FROM postings WHERE entry = a.e0)
    AND amount * :sign > 0 AND entry <= a.e0) < 0
"""

_BALANCES = (  # what, first account name, name after the last, sign of a credit
    ("budget", "campaign:", "campaign;", 1),
    ("receivable", "receivable:", "receivable;", -1),
)


def check_running_balances(conn: apsw.Connection, add: Add) -> None:
    """No budget below zero and no receivable above zero after any entry."""
    for what, lo, hi, sign in _BALANCES:
        for account, kind in conn.execute(
                _SUSPECT_BALANCES, {"sign": sign, "lo": lo, "hi": hi}).fetchall():
            balance = 0
            previous = None
            for seq, amount in conn.execute(
                    "SELECT entry, amount FROM postings WHERE account = ? AND kind = ?"
                    " ORDER BY entry, id", (account, kind)):
                if seq != previous:
                    _report_balance(add, what, account, kind, previous, balance, sign)
                    previous = seq
                if type(amount) is int:
                    balance += amount
            _report_balance(add, what, account, kind, previous, balance, sign)


def _report_balance(add: Add, what: str, account, kind, seq, balance: int, sign: int) -> None:
    if seq is not None and balance * sign < 0:
        side = "below zero" if sign > 0 else "positive"
        add(seq, f"entry {seq}: {what} {account} ({kind}) {side} ({balance})")


# ---------------------------------------------------------------- orphans

def check_orphans(conn: apsw.Connection, add: Add, owned: int) -> int:
    """Postings whose entry does not exist, given the number of postings the
    chain pass found in entries; returns the number of postings."""
    (total,) = conn.execute("SELECT count(*) FROM postings").fetchone()
    if total != owned:
        for pid, seq in conn.execute(
                "SELECT id, entry FROM postings p WHERE NOT EXISTS"
                " (SELECT 1 FROM entries WHERE seq = p.entry) ORDER BY entry, id"):
            add(seq, f"entry {seq}: posting {pid} belongs to no entry")
    return total
