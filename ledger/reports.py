"""Read-side reports over the whole journal: every member's balances, the trial
balance by account class, and the points liability (outstanding by expiry month,
points issued, reversed, redeemed and expired per month).

Each report is a handful of SQL aggregations over `postings` (joined to `entries`
only when `as_of` asks for the state at the end of a day, Asia/Tokyo). Reports
read; they never write. Payouts per campaign and period are in `ledger/payouts.py`.

Account classes (see ledger/accounts.py): `members` (member:*:kind, what the issuer
owes), `receivables` (receivable:*:kind, negative while a member owes), `budgets`
(campaign:*:budget), `funding`, `redeemed`, `expired` (the system accounts). Every
entry sums to zero per kind, so the classes do too.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterator

import attrs

from points.ledger.kinds import KIND_NAMES

# The trial balance's classes, in the order they are shown: (class, account pattern, label).
CLASSES = (
    ("members", "member:*:KIND", "member balances"),
    ("receivables", "receivable:*:KIND", "receivables"),
    ("budgets", "campaign:*:budget", "campaign budgets"),
    ("funding", "system:funding", "funding"),
    ("redeemed", "system:redeemed", "redeemed"),
    ("expired", "system:expired", "expired"),
)

_CLASS_SQL = (
    "CASE WHEN p.account LIKE 'member:%' THEN 'members'"
    " WHEN p.account LIKE 'receivable:%' THEN 'receivables'"
    " WHEN p.account LIKE 'campaign:%' THEN 'budgets'"
    " ELSE substr(p.account, 8) END"
)

# Member id of a member:<id>:<kind> or receivable:<id>:<kind> account (ids hold no ':').
MEMBER_SQL = (
    "CASE WHEN p.account LIKE 'member:%'"
    " THEN substr(p.account, 8, length(p.account) - 8 - length(p.kind))"
    " ELSE substr(p.account, 12, length(p.account) - 12 - length(p.kind)) END"
)


def zero() -> dict[str, int]:
    return dict.fromkeys(KIND_NAMES, 0)


def _as_of(sql_where: list[str], params: list, as_of: dt.date | None) -> str:
    """The join to `entries` and the day condition, when the report is as of a day."""
    if as_of is None:
        return ""
    sql_where.append("e.effective <= ?")
    params.append(as_of.isoformat())
    return " JOIN entries e ON e.seq = p.entry"


# ---------------------------------------------------------------- balances


@attrs.frozen
class MemberBalance:
    """A member's points per kind and what they owe back per kind (positive)."""

    member: str
    balances: dict[str, int]
    owed: dict[str, int]

    @property
    def owed_total(self) -> int:
        return sum(self.owed.values())


@attrs.frozen
class Balances:
    """Every member with an account in the journal (filtered), and their totals."""

    as_of: dt.date | None
    members: tuple[MemberBalance, ...]
    totals: dict[str, int]
    owed: dict[str, int]


def member_balances(conn, as_of: dt.date | None = None, *, kind: str | None = None,
                    min_points: int | None = None) -> Balances:
    """Balances of every member at the end of `as_of`, sorted by member id.

    A member is listed once they have any member or receivable posting by then
    (so also at zero after their points expired). `kind`: only members holding or
    owing that kind. `min_points`: only members with at least that many points
    (of `kind` if given, else of any one kind). Totals are over the listed members.
    """
    where = ["(p.account LIKE 'member:%' OR p.account LIKE 'receivable:%')"]
    params: list = []
    join = _as_of(where, params, as_of)
    per: dict[str, tuple[dict, dict]] = {}
    for account_type, member, k, total in conn.execute(
            f"SELECT substr(p.account, 1, 1), {MEMBER_SQL}, p.kind, SUM(p.amount) FROM postings p{join}"
            f" WHERE {' AND '.join(where)} GROUP BY p.account", params):
        bal, owed = per.get(member) or per.setdefault(member, (zero(), zero()))
        if account_type == "m":
            bal[k] += total
        else:
            owed[k] -= total
    out = []
    totals, owed_totals = zero(), zero()
    for member in sorted(per):
        bal, owed = per[member]
        if kind is not None and not (bal[kind] or owed[kind]):
            continue
        if min_points is not None:
            held = [bal[kind]] if kind is not None else list(bal.values())
            if max(held) < min_points:
                continue
        out.append(MemberBalance(member, bal, owed))
        for k in KIND_NAMES:
            totals[k] += bal[k]
            owed_totals[k] += owed[k]
    return Balances(as_of, tuple(out), totals, owed_totals)


# ---------------------------------------------------------------- trial balance


@attrs.frozen
class TrialBalance:
    """The sum of every account class per kind; `total` is zero per kind on a sound journal."""

    as_of: dt.date | None
    classes: dict[str, dict[str, int]]  # class -> kind -> sum
    total: dict[str, int]

    @property
    def balanced(self) -> bool:
        return not any(self.total.values())


def trial_balance(conn, as_of: dt.date | None = None) -> TrialBalance:
    where: list[str] = ["1"]
    params: list = []
    join = _as_of(where, params, as_of)
    classes = {name: zero() for name, _, _ in CLASSES}
    total = zero()
    for cls, kind, amount in conn.execute(
            f"SELECT {_CLASS_SQL} AS cls, p.kind, SUM(p.amount) FROM postings p{join}"
            f" WHERE {' AND '.join(where)} GROUP BY cls, p.kind", params):
        classes.setdefault(cls, zero())[kind] += amount
        total[kind] += amount
    return TrialBalance(as_of, classes, total)


# ---------------------------------------------------------------- liability


@attrs.frozen
class MonthFlow:
    """Points of one kind that moved in one month (by effective date), all positive
    but `net`: issued by campaigns or funding, reversed back to them, redeemed,
    expired; net = the change of what members hold (member + receivable accounts)."""

    month: str
    kind: str
    issued: int
    reversed: int
    redeemed: int
    expired: int

    @property
    def net(self) -> int:
        return self.issued - self.reversed - self.redeemed - self.expired


@attrs.frozen
class Liability:
    """What the issuer owes members: outstanding points by kind and expiry month,
    what members owe back (receivables, positive), and the monthly flows."""

    as_of: dt.date | None
    outstanding: dict[tuple[str, str], int]  # (kind, expiry month) -> points
    owed: dict[str, int]
    flows: tuple[MonthFlow, ...]

    def outstanding_by_kind(self) -> dict[str, int]:
        out = zero()
        for (kind, _month), n in self.outstanding.items():
            out[kind] += n
        return out


def liability(conn, as_of: dt.date | None = None) -> Liability:
    # Outstanding: every member credit opens a lot with an expiry; every member debit
    # names its lot. Summing both by the lot's expiry month gives what is left of the
    # lots expiring in each month.
    where = ["p.account LIKE 'member:%'"]
    params: list = []
    join = _as_of(where, params, as_of)
    outstanding: dict[tuple[str, str], int] = {}
    for kind, month, n in conn.execute(
            "SELECT p.kind, substr(COALESCE(p.expires, l.expires), 1, 7) AS month, SUM(p.amount)"
            f" FROM postings p{join} LEFT JOIN postings l ON l.id = p.lot"
            f" WHERE {' AND '.join(where)} GROUP BY p.kind, month ORDER BY month, p.kind", params):
        if n:
            outstanding[(kind, month or "none")] = n
    owed = zero()
    where = ["p.account LIKE 'receivable:%'"]
    params = []
    join = _as_of(where, params, as_of)
    for kind, n in conn.execute(f"SELECT p.kind, SUM(p.amount) FROM postings p{join}"
                                f" WHERE {' AND '.join(where)} GROUP BY p.kind", params):
        owed[kind] = -n
    return Liability(as_of, outstanding, owed, tuple(month_flows(conn, as_of)))


def month_flows(conn, as_of: dt.date | None = None) -> Iterator[MonthFlow]:
    """Per month and kind, read from the issuer and system side of each entry:
    what left campaign budgets and funding (issued; a reversal brings it back), what
    arrived in system:redeemed and system:expired. Funding a budget moves points
    between two issuer accounts and so counts as nothing."""
    params: list = []
    day = ""
    if as_of is not None:
        day = " AND e.effective <= ?"
        params.append(as_of.isoformat())
    acc: dict[tuple[str, str], dict[str, int]] = {}
    for month, kind, cls, rev, n in conn.execute(
            "SELECT substr(e.effective, 1, 7) AS month, p.kind,"
            " CASE WHEN p.account IN ('system:redeemed', 'system:expired') THEN p.account"
            " ELSE 'issuer' END AS cls, e.reverses IS NOT NULL AS rev, SUM(p.amount)"
            " FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE (p.account LIKE 'campaign:%' OR p.account LIKE 'system:%')" + day +
            " GROUP BY month, p.kind, cls, rev", params):
        row = acc.setdefault((month, kind), dict(issued=0, reversed=0, redeemed=0, expired=0))
        if cls == "issuer":
            row["reversed" if rev else "issued"] += n if rev else -n
        else:
            row[cls.split(":")[1]] += n
    rank = {k: i for i, k in enumerate(KIND_NAMES)}
    for (month, kind), row in sorted(acc.items(), key=lambda x: (x[0][0], rank[x[0][1]])):
        if any(row.values()):
            yield MonthFlow(month, kind, **row)
