"""Payouts per campaign and period, read from the journal alone.

An award entry (key `award:...`) and its reversals (`reverse:...`, `reverses` set)
carry the campaign, and in their memo the period and the award; a lottery's draw
entry (`draw:<campaign>:<period>:<award>`) lists its winners; a budget is funded
once (`fund:<campaign>:<kind>`). From these, per campaign, period and kind:

    gross     points credited to members (member and receivable accounts) by awards
    reversed  points taken back by reversals of those awards
    net       gross - reversed (what `points campaigns` calls paid)
    members   members with a positive net award in that period and kind
    winners   lottery winners drawn in that period for awards of that kind
    budget    the campaign's funded budget; budget_left what was left of it after
              this period's payments and reversals (periods in date order)

`award_totals` gives each member's net award per campaign (the distribution).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import attrs

from points.ledger.kinds import KIND_NAMES
from points.ledger.reports import MEMBER_SQL

# The period of an award or reversal entry: its memo's, else its step's first part.
_PERIOD_SQL = ("COALESCE(json_extract(e.memo, '$.period'),"
               " substr(e.step, 1, instr(e.step || ':', ':') - 1))")


@attrs.frozen
class PayoutRow:
    """Points of one kind a campaign paid in one period."""

    campaign: str
    period: str
    kind: str
    first_day: str  # the first effective day of the period's entries
    gross: int
    reversed: int
    members: int
    winners: int | None  # None: no lottery paid this kind in this period
    budget: int | None  # None: the campaign has no budget (of this kind)
    budget_left: int | None

    @property
    def net(self) -> int:
        return self.gross - self.reversed


@attrs.frozen
class CampaignPayout:
    """A campaign's periods and its totals (members: with a positive net over all)."""

    campaign: str
    rows: tuple[PayoutRow, ...]
    budget_kind: str | None
    budget: int | None
    budget_left: int | None
    members: int

    def total(self, field: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.kind] = out.get(r.kind, 0) + getattr(r, field)
        return out


def campaign_names(conn, as_of: dt.date | None = None) -> list[str]:
    day = (as_of or dt.date.max).isoformat()
    return [c for (c,) in conn.execute(
        "SELECT DISTINCT campaign FROM entries WHERE campaign IS NOT NULL AND effective <= ?"
        " ORDER BY campaign", (day,))]


def payouts(conn, as_of: dt.date | None = None, campaign: str | None = None) -> list[CampaignPayout]:
    """Every campaign with entries by the end of `as_of` (or just `campaign`), by name."""
    day = (as_of or dt.date.max).isoformat()
    names = campaign_names(conn, as_of)
    if campaign is not None:
        names = [c for c in names if c == campaign]
    out = []
    for name in names:
        out.append(_campaign(conn, name, day))
    return out


def _campaign(conn, name: str, day: str) -> CampaignPayout:
    # (period, kind, award) -> [gross, reversed]; member -> net; (period, kind) -> members
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    paid_members: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    member_net: dict[str, int] = defaultdict(int)
    award_kind: dict[tuple[str, str], str] = {}
    first: dict[str, str] = {}
    for period, award, kind, rev, member, n, d in conn.execute(
            f"SELECT {_PERIOD_SQL} AS period, json_extract(e.memo, '$.award') AS award, p.kind,"
            f" e.reverses IS NOT NULL AS rev, {MEMBER_SQL} AS member, SUM(p.amount), MIN(e.effective)"
            " FROM entries e JOIN postings p ON p.entry = e.seq"
            " WHERE e.campaign = ? AND e.effective <= ?"
            " AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%')"
            " GROUP BY period, award, p.kind, rev, member", (name, day)):
        cell = cells[(period, kind)]
        if rev:
            cell[1] -= n
        else:
            cell[0] += n
        paid_members[(period, kind)][member] += n
        member_net[member] += n
        award_kind[(period, award)] = kind
        first[period] = min(first.get(period, d), d)
    winners: dict[tuple[str, str], int] = defaultdict(int)
    prefix = f"draw:{name}:"
    for key, memo, d in conn.execute(
            "SELECT key, memo, effective FROM entries WHERE campaign = ? AND key LIKE 'draw:%'"
            " AND effective <= ?", (name, day)):
        period, award = key[len(prefix):].rsplit(":", 1)
        kind = award_kind.get((period, award))
        if kind is None:  # a draw whose winners got nothing (yet): count it under no kind
            continue
        winners[(period, kind)] += len(json.loads(memo).get("winners", ()))
        first[period] = min(first.get(period, d), d)
    # Budget: funded amount, and what each period took from it (net of reversals).
    budget_kind = budget = None
    for kind, n in conn.execute(
            "SELECT p.kind, SUM(p.amount) FROM entries e JOIN postings p ON p.entry = e.seq"
            " WHERE e.key LIKE 'fund:%' AND e.campaign = ? AND e.effective <= ?"
            " AND p.account = ? GROUP BY p.kind", (name, day, f"campaign:{name}:budget")):
        budget_kind, budget = kind, n
    used: dict[str, int] = defaultdict(int)
    if budget is not None:
        for period, n in conn.execute(
                f"SELECT {_PERIOD_SQL} AS period, SUM(p.amount) FROM entries e"
                " JOIN postings p ON p.entry = e.seq WHERE e.campaign = ? AND e.effective <= ?"
                " AND p.account = ? AND e.key NOT LIKE 'fund:%' GROUP BY period",
                (name, day, f"campaign:{name}:budget")):
            used[period] -= n
    rank = {k: i for i, k in enumerate(KIND_NAMES)}
    rows = []
    left = budget
    for period in sorted(first, key=lambda p: (first[p], p)):
        if left is not None:
            left -= used.get(period, 0)
        for kind in sorted({k for (p, k) in cells if p == period}, key=rank.__getitem__):
            gross, reversed_ = cells[(period, kind)]
            members = sum(1 for v in paid_members[(period, kind)].values() if v > 0)
            won = winners.get((period, kind))
            own = kind == budget_kind
            rows.append(PayoutRow(name, period, kind, first[period], gross, reversed_, members,
                                  won, budget if own else None, left if own else None))
    left_total = None if budget is None else budget - sum(used.values())
    return CampaignPayout(name, tuple(rows), budget_kind, budget, left_total,
                          sum(1 for v in member_net.values() if v > 0))


def award_totals(conn, as_of: dt.date | None = None) -> dict[str, list[int]]:
    """Campaign -> each member's net award (all kinds), members with a positive net only."""
    day = (as_of or dt.date.max).isoformat()
    out: dict[str, list[int]] = defaultdict(list)
    for campaign, n in conn.execute(
            f"SELECT e.campaign, SUM(p.amount) AS n FROM entries e JOIN postings p ON p.entry = e.seq"
            " WHERE e.campaign IS NOT NULL AND e.effective <= ?"
            " AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%')"
            f" GROUP BY e.campaign, {MEMBER_SQL} HAVING n > 0 ORDER BY e.campaign, n", (day,)):
        out[campaign].append(n)
    return dict(out)


def budget_burn(conn, as_of: dt.date | None = None) -> dict[str, list[tuple[str, int]]]:
    """Campaign -> [(day, budget left at the end of that day)] for every budgeted campaign."""
    day = (as_of or dt.date.max).isoformat()
    out: dict[str, list[tuple[str, int]]] = defaultdict(list)
    running: dict[str, int] = defaultdict(int)
    for account, d, n in conn.execute(
            "SELECT p.account, e.effective, SUM(p.amount) FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE p.account LIKE 'campaign:%' AND e.effective <= ?"
            " GROUP BY p.account, e.effective ORDER BY p.account, e.effective", (day,)):
        name = account.split(":")[1]
        running[name] += n
        out[name].append((d, running[name]))
    return dict(out)
