"""What a campaign period has already paid each member, read from the journal."""

from __future__ import annotations

import datetime as dt
import json
from typing import Iterable

from points.ledger.accounts import member_account, receivable_account

__all__ = ["PaidHistory"]


class PaidHistory:
    """What a campaign period has paid each member per award, as of a checkpoint's date.

    Read from the journal in member order, beside the evaluation (which yields its
    members in the same order), so memory holds one member's entries at a time
    instead of the whole period's. Entries of earlier runs dated after the checkpoint
    do not count yet (a run visits its checkpoints in date order). `members`: read only
    the entries of these members (through the postings' account index, so a late
    checkpoint for a few members does not scan the whole period); `award`: only that award.
    """

    def __init__(self, conn, campaign: str, period_id: str, day: dt.date,
                 members: Iterable[str] | None = None, kinds: Iterable[str] = (),
                 award: str | None = None):
        self.prefix = f"{period_id}:"
        params = {"campaign": campaign, "lo": self.prefix, "hi": period_id + ";",
                  "day": day.isoformat(), "step": self.prefix + (award or "")}
        steps = "e.step = :step" if award else "e.step >= :lo AND e.step < :hi"
        if members is None:
            which = "e.campaign = :campaign"
        else:  # `+e.campaign`: never drive this by the campaign index
            params["accounts"] = json.dumps(sorted(
                account(m, k) for m in members for k in set(kinds)
                for account in (member_account, receivable_account)))
            which = ("e.seq IN (SELECT p.entry FROM postings p WHERE p.account IN "
                     "(SELECT value FROM json_each(:accounts))) AND +e.campaign = :campaign")
        # Ordered by member, then as the entries took effect; the ORDER BY sorts the whole
        # result before the first row, so entries this checkpoint appends are not seen.
        self.rows = conn.execute(
            "SELECT json_extract(e.memo, '$.member') AS who, e.effective, e.seq, e.step, e.reverses, "
            "COALESCE((SELECT SUM(p.amount) FROM postings p WHERE p.entry = e.seq "
            " AND (p.account >= 'member:' AND p.account < 'member;' "
            "   OR p.account >= 'receivable:' AND p.account < 'receivable;')), 0) "
            f"FROM entries e WHERE {which} AND {steps} "
            "AND e.effective <= :day AND substr(e.step, -5) <> ':draw' "
            "AND substr(e.step, -8) <> ':refused' ORDER BY who, e.effective, e.seq", params)
        self.row = next(self.rows, None)

    def load(self, member: str, paid: dict, grants: dict) -> None:
        """Add `member`'s entries to `paid` ((award, member) -> points) and `grants`
        ((award, member) -> [[seq, points left]], oldest first). Members must be asked
        for in ascending order; the entries of members skipped over are dropped."""
        row, rows, cut = self.row, self.rows, len(self.prefix)
        while row is not None and (row[0] is None or row[0] < member):
            row = next(rows, None)
        while row is not None and row[0] == member:
            _, _, seq, step, reverses, net = row
            key = (step[cut:], member)
            paid[key] = paid.get(key, 0) + net
            if reverses is None and net > 0:
                grants.setdefault(key, []).append([seq, net])
            elif reverses is not None:
                for g in grants.get(key, ()):
                    if g[0] == reverses:
                        g[1] += net
            row = next(rows, None)
        self.row = row

    def close(self) -> None:
        self.rows.close()

