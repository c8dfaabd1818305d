"""The ledger's rules, each in one place: the entry of a budget funding, a grant, a
redemption, an expiry and a reversal, built from the state the caller has read.

These are pure functions (no connection, no I/O). `Journal` reads the state for one
request and appends what they build; the run engine (`points.engine.settlement`)
keeps the state of a whole checkpoint in memory -- receivables owed, budget left --
and appends thousands of grants in one batch. Both build every entry here, so a rule
has one owner whichever path writes it; `Journal.append` then checks the result
against the stored state (lots never overdrawn, budgets never below zero,
receivables never positive).
"""

from __future__ import annotations

import datetime as dt
from json.encoder import encode_basestring as _jstr
from typing import Any, Callable, Iterable, Sequence

from points.ledger import kinds
from points.ledger.accounts import (
    EXPIRED,
    FUNDING,
    REDEEMED,
    budget_account,
    member_account,
    receivable_account,
)
from points.ledger.errors import InsufficientPoints, InvalidAccount, InvalidEntry
from points.ledger.hashing import canonical
from points.ledger.model import Entry, Memo, NewEntry, Posting

__all__ = ["budget_shortfall", "check_points", "expiry", "fund", "grant", "grant_maker", "payoff", "redemption",
           "reversal", "reversal_parts", "spend_order"]

_RANK = kinds.RANK


def check_points(what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidEntry(f"{what} must be a positive integer, not {value!r}")
    return value


def fund(campaign: str, kind: str, amount: int, effective: dt.date,
         recorded: str | dt.date | None = None) -> NewEntry:
    """A campaign's budget, paid in from system:funding; one per campaign and kind."""
    budget = budget_account(campaign)
    kinds.check_kind(kind)
    check_points("budget amount", amount)
    return NewEntry(
        key=f"fund:{campaign}:{kind}", effective=effective, recorded=recorded,
        campaign=campaign, step="fund",
        postings=(Posting(FUNDING, kind, -amount), Posting(budget, kind, amount)),
    )


def payoff(owed: int, amount: int) -> int:
    """How much of a grant of `amount` pays back what the member owes (a receivable)."""
    return min(max(owed, 0), amount)


def budget_shortfall(campaign: str, kind: str, left: int, amount: int) -> str | None:
    """Why a grant of `amount` from a budget with `left` points is refused (None: it fits).
    A budget pays a grant whole or not at all."""
    if amount <= left:
        return None
    return f"budget of {campaign} has {left} {kind} points left, {amount} needed"


def grant(*, key: str, effective: dt.date, source: str, member: str, kind: str, amount: int,
          owed: int, expires: dt.date | None, recorded: str | dt.date | None = None,
          campaign: str | None = None, rule: str | None = None, rules_hash: str | None = None,
          step: str | None = None, events: Iterable[str] = (), memo: Any = None) -> NewEntry:
    """Credit `amount` points of `kind` to `member` from `source` (a budget or system:funding).

    What the member owes of that kind (`owed`) is paid back first; the rest opens a lot
    expiring on `expires` (which may be None only when nothing is left for a lot).
    """
    if not (source == FUNDING or source.startswith("campaign:")):
        raise InvalidAccount(f"grant source must be a campaign budget or {FUNDING}, not {source!r}")
    check_points("grant amount", amount)
    paid_back = payoff(owed, amount)
    postings = [Posting(source, kind, -amount)]
    if paid_back:
        postings.append(Posting(receivable_account(member, kind), kind, paid_back))
    if amount > paid_back:
        postings.append(Posting(member_account(member, kind), kind, amount - paid_back,
                                expires=expires))
    return NewEntry(key=key, effective=effective, postings=postings, recorded=recorded,
                    campaign=campaign, rule=rule, rules_hash=rules_hash, step=step,
                    events=events, memo=memo)


# Memo values whose canonical text is written directly (json's own spelling of each).
_PLAIN = (str, int, type(None))


def grant_maker(*, effective: dt.date, source: str, kind: str, recorded: str | dt.date | None = None,
                campaign: str | None = None, rule: str | None = None, rules_hash: str | None = None,
                step: str | None = None, memo: dict) -> Callable[..., NewEntry]:
    """`grant` for the many members of one award at one date (a settlement's checkpoint):
    what is the same for all of them is checked and prepared once. Returns
    `make(key, member, amount, owed, expires, events, target)`, the entry `grant` builds
    with the same arguments and memo `{**memo, "member": member, "target": target}`
    (a `Memo` carrying its canonical text, spelled here as `hashing.canonical` spells it)."""
    if not (source == FUNDING or source.startswith("campaign:")):
        raise InvalidAccount(f"grant source must be a campaign budget or {FUNDING}, not {source!r}")
    fixed = {k: v for k, v in memo.items() if k not in ("member", "target")}
    # The canonical text around the two varying values: keys sorted, `member` before `target`.
    plain = all(type(k) is str and type(v) in _PLAIN for k, v in fixed.items())
    cut = [""]
    for n, name in enumerate(sorted({*fixed, "member", "target"})):
        cut[-1] += ("{" if n == 0 else ",") + _jstr(name) + ":"
        if name in ("member", "target"):
            cut.append("")
        else:
            cut[-1] += canonical(fixed[name]) if plain else ""
    head, mid, tail = cut[0], cut[1], cut[2] + "}"
    int_ = int

    def make(key: str, member: str, amount: int, owed: int, expires: dt.date | None,
             events: Iterable[str], target: Any) -> NewEntry:
        if type(amount) is not int_ or amount <= 0:
            check_points("grant amount", amount)
        paid_back = payoff(owed, amount) if owed else 0
        if paid_back:
            postings: tuple = (Posting(source, kind, -amount),
                               Posting(receivable_account(member, kind), kind, paid_back))
            if amount > paid_back:
                postings += (Posting(member_account(member, kind), kind, amount - paid_back, expires),)
        else:
            postings = (Posting(source, kind, -amount), Posting(member_account(member, kind), kind, amount, expires))
        if plain and type(member) is str and type(target) is int_:
            m = Memo(fixed, member=member, target=target)
            m.text = f"{head}{_jstr(member)}{mid}{target!r}{tail}"
        else:
            m = {**fixed, "member": member, "target": target}
        return NewEntry(key, effective, postings, recorded, campaign, rule, rules_hash, step, events, None, m)
    return make


def spend_order(lot: Sequence) -> tuple:
    """Which lot a redemption spends first, for a lot [id, kind, expires, remaining]:
    the earliest expiry, then the more restricted kind, then the older lot."""
    return (lot[2], _RANK[lot[1]], lot[0])


def redemption(*, key: str, member: str, points: int, use: str, lots: list[list],
               effective: dt.date, events: Iterable[str] = (),
               recorded: str | dt.date | None = None) -> NewEntry:
    """Spend `points` for `use` from `lots` ([id, kind, expires, remaining], the member's
    lots spendable that day of the kinds the use allows) in `spend_order`.
    InsufficientPoints if they hold less than `points`."""
    have = sum(l[3] for l in lots)
    if have < points:
        per = {k: 0 for k in kinds.kinds_for_use(use)}
        for l in lots:
            per[l[1]] += l[3]
        detail = ", ".join(f"{k} {v}" for k, v in per.items())
        raise InsufficientPoints(
            f"member {member} has {have} points spendable for {use} on {effective.isoformat()}"
            f" ({detail}), {points} requested")
    postings, per_kind, left = [], {}, points
    for lid, kind, _exp, rem in sorted(lots, key=spend_order):
        take = min(rem, left)
        postings.append(Posting(f"member:{member}:{kind}", kind, -take, lot=lid))
        per_kind[kind] = per_kind.get(kind, 0) + take
        left -= take
        if not left:
            break
    for kind in kinds.RESTRICTION_ORDER:
        if kind in per_kind:
            postings.append(Posting(REDEEMED, kind, per_kind[kind]))
    return NewEntry(key=key, effective=effective, postings=postings, recorded=recorded,
                    events=events, memo={"use": use})


def expiry(*, key: str, effective: dt.date, lots: list[tuple], recorded: str | dt.date) -> tuple[NewEntry, int]:
    """What is left of one member's lots expiring on `effective`, moved to system:expired:
    (the entry, points expired). `lots`: (account, kind, lot id, remaining), in the
    order the postings are written."""
    postings, per_kind = [], {}
    for account, kind, lid, rem in lots:
        postings.append(Posting(account, kind, -rem, lot=lid))
        per_kind[kind] = per_kind.get(kind, 0) + rem
    for kind in kinds.RESTRICTION_ORDER:
        if kind in per_kind:
            postings.append(Posting(EXPIRED, kind, per_kind[kind]))
    return (NewEntry(key=key, effective=effective, postings=postings, recorded=recorded,
                     step="expire"), sum(per_kind.values()))


def reversal_parts(orig: Entry) -> tuple[str, str, str, list[Posting]]:
    """(member, kind, source, credits) of a grant to be reversed; InvalidEntry if the
    entry is not a grant to one member and kind from one source."""
    credits = [p for p in orig.postings if p.amount > 0
               and p.account.split(":")[0] in ("member", "receivable")]
    sources = {p.account for p in orig.postings if p.amount < 0
               and p.account.split(":")[0] not in ("member", "receivable")}
    owners = {(p.account.split(":")[1], p.kind) for p in credits}
    if not credits or len(owners) != 1 or len(sources) != 1:
        raise InvalidEntry(
            f"cannot reverse entry {orig.seq}: it is not a grant to one member and kind")
    (member, kind), (source,) = owners.pop(), sources
    return member, kind, source, credits


def reversal(orig: Entry, amount: int, lots: list[list], effective: dt.date, *, key: str,
             events: Iterable[str] = (), memo: Any = None,
             recorded: str | dt.date | None = None, rules_hash: str | None = None) -> NewEntry:
    """Take `amount` of grant `orig` back to its source. The member pays from the
    grant's own lot first, then from its other `lots` of that kind ([id, kind, expires,
    remaining], spendable that day) by earliest expiry; what is no longer there becomes
    a receivable, paid back by the member's next grant of that kind. `rules_hash`: of
    the rules that decided the reversal (after an amendment, not the grant's); default
    the grant's."""
    member, kind, source, credits = reversal_parts(orig)
    own = {p.id for p in credits if p.account.startswith("member:")}
    postings = [Posting(source, kind, amount)]
    left = amount
    for lid, _kind, _exp, rem in sorted(lots, key=lambda l: (l[0] not in own, l[2], l[0])):
        if not left:
            break
        take = min(rem, left)
        postings.append(Posting(member_account(member, kind), kind, -take, lot=lid))
        left -= take
    if left:
        postings.append(Posting(receivable_account(member, kind), kind, -left))
    return NewEntry(key=key, effective=effective, postings=postings, recorded=recorded,
                    campaign=orig.campaign, rule=orig.rule,
                    rules_hash=rules_hash if rules_hash is not None else orig.rules_hash,
                    step=orig.step, events=events, reverses=orig.seq, memo=memo)
