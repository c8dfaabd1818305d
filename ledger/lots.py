"""What is left of a lot, the one place its SQL is written.

A lot is a member credit (a posting with `expires`); every debit drawn from it
names it in `lot`. So what is left of lot `p` is its amount plus those debits --
over the whole journal (`REMAINING`), or as of the end of a day (`REMAINING_AS_OF`,
its one `?` bound to that day). The journal, the batch writer and the reports
put these fragments in their own queries over `postings p`.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["REMAINING", "REMAINING_AS_OF", "expiring_points", "spendable"]

REMAINING = "p.amount + COALESCE((SELECT SUM(d.amount) FROM postings d WHERE d.lot = p.id), 0)"

REMAINING_AS_OF = (
    "p.amount + COALESCE(("
    "  SELECT SUM(d.amount) FROM postings d JOIN entries de ON de.seq = d.entry"
    "  WHERE d.lot = p.id AND de.effective <= ?), 0)")


def expiring_points(conn, campaign: str, after: dt.date, upto: dt.date) -> int:
    """Points still left in the lots a campaign granted that expire after `after`, up to
    and including `upto`."""
    return conn.execute(
        f"SELECT COALESCE(SUM({REMAINING}), 0) FROM postings p JOIN entries e ON e.seq = p.entry"
        " WHERE e.campaign = ? AND p.expires IS NOT NULL AND p.amount > 0"
        " AND p.expires > ? AND p.expires <= ?",
        (campaign, after.isoformat(), upto.isoformat())).fetchone()[0]


def spendable(conn, member: str, kind_names, day: str) -> list[list]:
    """[id, kind, expires, remaining] of the member's lots of those kinds spendable on
    `day` (granted by then, not expired, something left)."""
    accts = [f"member:{member}:{k}" for k in kind_names]
    rows = conn.execute(
        "SELECT p.id, p.kind, p.expires, " + REMAINING +
        " FROM postings p JOIN entries e ON e.seq = p.entry"
        f" WHERE p.account IN ({','.join('?' * len(accts))}) AND p.amount > 0"
        " AND p.expires >= ? AND e.effective <= ?",
        (*accts, day, day),
    ).fetchall()
    return [list(r) for r in rows if r[3] > 0]
