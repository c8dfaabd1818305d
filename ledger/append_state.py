"""The batch writer's checks against the stored state (ledger/append.py step 4).

`append._encode` checks each entry on its own and collects, for the entries that
draw from lots or move a budget or receivable, what those postings do. Here they
are checked in entry order against the journal as stored plus the batch so far:
one query for the stored lots drawn from, one cached read of the balances moved.
"""

from __future__ import annotations

import json
from typing import Iterable

from points.ledger.errors import BudgetExceeded, InsufficientPoints, InvalidEntry
from points.ledger.lots import REMAINING

__all__ = ["check_state"]


def check_state(journal, checks: list[tuple], posting_rows: list[tuple], entry_rows: list[tuple],
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
