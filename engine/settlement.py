"""One checkpoint of one campaign period: recompute every award, post the differences.

`Checkpointer` evaluates the period with the events visible at the checkpoint,
draws the lotteries that are due, and writes grants, reversals and refusals in
one batch inside the checkpoint's transaction. It reads what it needs of the run
from a frozen `CheckpointContext` and returns a `CheckpointResult` (figures for
the run's report, the draws it made, whether it opened a lot already past expiry);
`engine.workflow.Runner` builds the one and folds in the other, so this module
does not know the Runner. Every grant is built by `ledger.operations.grant`, the
same rule the journal owns; only the state it reads (receivables owed, budget
left) is kept here for the whole checkpoint, so a checkpoint is one append per batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Callable, Iterable, Mapping

import apsw
import attrs

from points.dsl import ast
from points.dsl.compiler import AwardPlan, MemberEnv, whole
from points.dsl.errors import RunError
from points.dsl.runtime import DivisionByZero
from points.dsl.evaluator import evaluate, source_events
from points.dsl.loader import LoadedCampaign
from points.engine.calendar import Checkpoint, expiry_date, member_pay_date, period_pay_date, relevant_members
from points.engine.lottery import LotteryCandidates, pick_winners
from points.engine.paid import PaidHistory
from points.ledger import operations
from points.ledger.accounts import FUNDING, budget_account
from points.ledger.db import gc_paused
from points.ledger.journal import Journal
from points.ledger.model import NewEntry

__all__ = ["CheckpointContext", "CheckpointResult", "Checkpointer"]


@attrs.frozen
class CheckpointContext:
    """What a checkpoint reads of its run."""

    conn: apsw.Connection
    journal: Journal
    until: dt.date
    watermark: int  # the last event seq the run sees
    recorded: str  # the `recorded` of every entry the run writes
    expired_upto: dt.date | None  # the run has expired every lot up to this day
    draws: Mapping[str, frozenset[str]]  # the period's lotteries already drawn: award -> winners
    awarded: Callable[[str], None]  # notes a member the campaign paid (the run's member tally)
    key_tag: str = ""  # suffix of the entry keys (an amendment's `~amend<seq>`, engine.recorded)


@attrs.frozen
class CheckpointResult:
    """What a checkpoint wrote, for the run to fold into its report and state."""

    grants: int = 0
    points: int = 0
    reversals: int = 0
    reversed_points: int = 0
    draws: Mapping[str, frozenset[str]] = attrs.field(factory=dict)  # drawn here: award -> winners
    winners: int = 0
    refused: tuple = ()  # (member, award, points, reason) of grants a budget could not pay
    stale_lots: bool = False  # a grant opened a lot expiring on or before ctx.expired_upto

    @property
    def entries(self) -> int:
        """Journal entries written (refusals are records the run does not count)."""
        return self.grants + self.reversals + len(self.draws)


class Checkpointer:
    """Recomputes one campaign period at one date and posts the differences."""

    # Grants are appended in batches of this many entries (one validation and hash pass
    # each), all in the checkpoint's one transaction: memory is bounded by the batch.
    BATCH = 5_000

    def __init__(self, ctx: CheckpointContext, lc: LoadedCampaign, cp: Checkpoint):
        self.ctx = ctx
        self.j = ctx.journal
        self.lc = lc
        self.plan = lc.plan
        self.cp = cp
        self.draws = ctx.draws
        # What this checkpoint did (see CheckpointResult).
        self.drawn: dict[str, frozenset[str]] = {}
        self.figures = dict.fromkeys(("grants", "points", "reversals", "reversed_points", "winners"), 0)
        self.refused: list[tuple] = []
        self.stale_lots = False
        # The paid state of the member being settled only (see PaidHistory).
        self.paid: dict[tuple[str, str], int] = {}
        self.grants: dict[tuple[str, str], list] = {}
        budget = self.plan.campaign.budget
        self.budget_kind = budget.kind if budget else None
        # `first come first served` and `pro rata`: the checkpoint's grants from the budget
        # are decided together, after every member is evaluated (settle_deferred).
        self.policy = budget.policy if budget else None
        self.deferring = self.policy in ("first come first served", "pro rata")
        self.deferred: list[tuple] = []
        self.noted: set[str] = set()  # no-pay-date records queued by this checkpoint
        self.arrival = None
        # (the journal's cached balance, read on from the last posting it saw)
        self.budget_left = (self.j.current_balances([(budget_account(lc.name), budget.kind)])[
            (budget_account(lc.name), budget.kind)] if budget else None)
        self.owed = self.load_receivables()
        self.batch: list[NewEntry] = []
        self.pending: list[list] = []  # grant records whose entry seq is known after flush
        self.makers: dict[str, tuple] = {}  # award -> _grant_maker's (make, key head, key tail)

    def load_receivables(self) -> dict[tuple[str, str], int]:
        """Points each member owes back, per kind: later grants pay these first."""
        owed = {}
        for account, kind, total in self.ctx.conn.execute(
                "SELECT account, kind, SUM(amount) FROM postings WHERE account >= 'receivable:' "
                "AND account < 'receivable;' GROUP BY account, kind"):
            if total < 0:
                owed[(account.split(":", 1)[1].rsplit(":", 1)[0], kind)] = -total
        return owed

    def flush(self) -> None:
        """Write the grants built so far in one append (one validation, one hash pass)."""
        if not self.batch:
            return
        # Only the seqs are needed (a later reversal names the grant it corrects).
        for record, seq in zip(self.pending, self.j.append_seqs(self.batch)):
            record[0] = seq
        self.batch, self.pending = [], []

    def run(self) -> CheckpointResult:
        # The cyclic GC would walk the growing batch (an entry, postings and a memo per
        # grant, none of them in a cycle) again and again; Journal.append pauses it the
        # same way while it writes the batch.
        with gc_paused():
            self._run()
        return CheckpointResult(draws=self.drawn, refused=tuple(self.refused),
                                stale_lots=self.stale_lots, **self.figures)

    def _run(self) -> None:
        cp = self.cp
        members = None if cp.everyone else relevant_members(
            self.ctx.conn, self.plan, cp.period, cp.day, self.ctx.until, self.ctx.watermark)
        # Dates that do not depend on the member, computed once per checkpoint (a card
        # cycle grants to every member with the same payment and expiry dates).
        self.fixed_pay = {a.name: period_pay_date(a.pay, self.plan, cp.period)
                          for a in self.plan.awards.values() if not isinstance(a.pay, ast.PayMonthAfter)}
        self.expiries: dict[tuple[str, dt.date], dt.date] = {}
        envs: Iterable[MemberEnv]
        envs = evaluate(self.ctx.conn, self.plan, cp.period, cp.day, self.ctx.watermark,
                        member=None if members is None else list(members))
        lotteries = [a for a in self.plan.awards.values() if a.lottery is not None]
        pending_draw = {a.name: LotteryCandidates(self.ctx.conn) for a in lotteries
                        if a.name not in self.draws and self._due_fixed(a)}
        history = PaidHistory(self.ctx.conn, self.lc.name, cp.period.id, cp.day, members,
                              self.award_kinds())
        for env in envs:
            self.paid.clear()
            self.grants.clear()
            if self.deferring and self.plan.arrival is not None:
                self.arrival = self.plan.arrival(env)
            history.load(env.member, self.paid, self.grants)
            for award in self.plan.awards.values():
                if award.lottery is not None:
                    if award.name in pending_draw:
                        target = self.target(award, env)
                        if target:
                            pending_draw[award.name].add(env.member, target)
                        continue
                    winners = self.draws.get(award.name)
                    if winners is None or env.member not in winners:
                        continue
                self.settle(award, env)
            if len(self.batch) >= self.BATCH:
                self.flush()
        history.close()
        self.settle_deferred()
        for name, candidates in pending_draw.items():
            self.draw(self.plan.awards[name], candidates)
            candidates.drop()
        self.flush()

    def award_kinds(self) -> set[str]:
        return {a.kind for a in self.plan.awards.values()}

    def _due_fixed(self, award: AwardPlan) -> bool:
        d = self.fixed_pay.get(award.name)
        return d is not None and d <= self.cp.day

    def target(self, award: AwardPlan, env: MemberEnv) -> int:
        try:
            if not award.when(env):
                return 0
            amount = whole(award.amount(env))
        except DivisionByZero as exc:
            raise RunError(f"{self.lc.file}: award {award.name} of member {env.member}: {exc}") from None
        if amount is None:
            return 0
        if not isinstance(amount, int):
            raise RunError(
                f"{self.lc.file}: award {award.name} of member {env.member} is {float(amount):g} points, "
                f"not a whole number: round it with floor(), ceil(), trunc() or round()")
        if amount > 2**63 - 1:  # SQLite INTEGER: an error here, not an OverflowError in the writer
            raise RunError(f"{self.lc.file}: award {award.name} of member {env.member} is {amount:,} "
                           "points, beyond the 64-bit range")
        return max(amount, 0)

    def settle(self, award: AwardPlan, env: MemberEnv, pay_date: dt.date | None = None) -> None:
        key = (award.name, env.member)
        paid = self.paid.get(key, 0)
        if pay_date is None:
            if award.name in self.fixed_pay:
                pay_date = self.fixed_pay[award.name]
            else:
                pay_date = member_pay_date(award, self.plan, self.cp.period, env)
        due = pay_date is not None and pay_date <= self.cp.day
        if not due and not paid and not self.grants.get(key):
            if pay_date is None and isinstance(award.pay, ast.PayMonthAfter):
                self.no_pay_date(award, env)
            return
        target = self.target(award, env)
        if pay_date is None:  # was paid, no longer has a payment date: recompute to zero
            target = 0
        delta = target - paid
        if delta > 0:
            self.grant(award, env.member, delta, target, pay_date or self.cp.day, source_events(env))
        elif delta < 0:
            self.take_back(award, env.member, -delta, target, source_events(env))

    def _base_key(self, award: AwardPlan, member: str) -> str:
        # The watermark (last event seen) makes a later correction at the same date a
        # new entry, while a re-run over the same events reuses the same keys. A tag
        # (engine.recorded: `~amend<seq>`) links an amended campaign's adjustments to
        # its amendment.
        return (f"{self.lc.name}:{self.cp.period.id}:{award.name}:{member}:"
                f"{self.cp.day.isoformat()}@{self.ctx.watermark}{self.ctx.key_tag}")

    def _grant_maker(self, award: AwardPlan, source: str) -> tuple:
        """(make, key head, key tail) of this checkpoint's grants of `award`: what every
        member's grant shares is prepared once (operations.grant_maker)."""
        head, _, tail = ("award:" + self._base_key(award, "\0")).partition("\0")
        make = operations.grant_maker(
            effective=self.cp.day, source=source, kind=award.kind, recorded=self.ctx.recorded,
            campaign=self.lc.name, rule=self.lc.file, rules_hash=self.lc.rules_hash,
            step=f"{self.cp.period.id}:{award.name}",
            memo={"award": award.name, "period": self.cp.period.id, "label": award.label})
        return make, head, tail

    def grant(self, award: AwardPlan, member: str, amount: int, target: int, pay_date: dt.date,
              events: tuple[str, ...] = (), *, now: bool = False) -> bool:
        """Queue a grant of `amount` (the budget and receivables are tracked here, so a
        whole checkpoint is one append); refused when a budget cannot pay all of it.
        Under a `first come first served` or `pro rata` budget, a grant from the budget
        waits for `settle_deferred` (unless `now`)."""
        from_budget = award.kind == self.budget_kind
        if from_budget and self.deferring and not now and award.lottery is None:
            self.deferred.append((self.arrival, member, award, amount, target, pay_date, events))
            return True
        source = budget_account(self.lc.name) if from_budget else FUNDING
        if from_budget:
            reason = operations.budget_shortfall(self.lc.name, award.kind, self.budget_left, amount)
            if reason is not None:
                self.refuse(award, member, amount, reason)
                return False
        owed = self.owed.get((member, award.kind), 0) if self.owed else 0
        paid_back = operations.payoff(owed, amount) if owed else 0
        if paid_back:
            self.owed[(member, award.kind)] = owed - paid_back
        expires = None
        if amount > paid_back:  # what is left opens a lot
            expires = self.expiries.get((award.name, pay_date))
            if expires is None:
                expires = self.expiries[(award.name, pay_date)] = expiry_date(award, pay_date)
            if self.ctx.expired_upto is not None and expires <= self.ctx.expired_upto:
                self.stale_lots = True  # the run's next expiry must read every lot again
        maker = self.makers.get(award.name)
        if maker is None:
            maker = self.makers[award.name] = self._grant_maker(award, source)
        make, head, tail = maker
        self.batch.append(make(head + member + tail, member, amount, owed, expires, events, target))
        if from_budget:
            self.budget_left -= amount
        record = [None, amount]
        self.pending.append(record)
        key = (award.name, member)
        paid = self.paid
        paid[key] = paid.get(key, 0) + amount
        grants = self.grants.get(key)
        if grants is None:
            self.grants[key] = [record]
        else:
            grants.append(record)
        figures = self.figures
        figures["grants"] += 1
        figures["points"] += amount
        self.ctx.awarded(member)
        return True

    def settle_deferred(self) -> None:
        """The budget's grants of this checkpoint, decided together: `first come first
        served` pays them whole in order of the member's first event (member id on a tie)
        and none after the first that does not fit; `pro rata` pays every one whole if
        they all fit, else each scaled by what is left over what is due, rounded down."""
        deferred, self.deferred = self.deferred, []
        if not deferred:
            return
        if self.policy == "pro rata":
            due = sum(d[3] for d in deferred)
            left = max(self.budget_left, 0)
            for _, member, award, amount, target, pay_date, events in sorted(deferred, key=lambda d: d[1]):
                share = amount if due <= left else amount * left // due
                if share > 0:
                    self.grant(award, member, share, target, pay_date, events, now=True)
                if share < amount:
                    self.refuse(award, member, amount - share,
                                f"pro rata: {due} points due, {left} left in the budget of {self.lc.name}")
            return
        exhausted = False
        for _, member, award, amount, target, pay_date, events in sorted(
                deferred, key=lambda d: (d[0] is None, d[0] or "", d[1])):
            if exhausted:
                self.refuse(award, member, amount, f"first come first served: the budget of {self.lc.name} "
                            "ran out for an earlier member")
            elif not self.grant(award, member, amount, target, pay_date, events, now=True):
                exhausted = True

    def no_pay_date(self, award: AwardPlan, env: MemberEnv) -> None:
        """A cleared award whose `on day N of month after EXPR` has no date (EXPR is none
        for this member) cannot be paid: recorded once per member and period, so that it
        says why instead of staying silent."""
        target = self.target(award, env)
        if target <= 0:
            return
        key = f"refused:{self.lc.name}:{self.cp.period.id}:{award.name}:{env.member}:no-pay-date"
        if key in self.noted or self.j.entry_by_key(key) is not None:
            return
        self.noted.add(key)
        reason = (f"cleared, but not paid: its payment date `on day {award.pay.day} of month after ...` "
                  "has no value for this member (the date it is computed from is none)")
        self.batch.append(NewEntry(
            key=key, effective=self.cp.day, postings=(), recorded=self.ctx.recorded,
            campaign=self.lc.name, rule=self.lc.file, rules_hash=self.lc.rules_hash,
            step=f"{self.cp.period.id}:{award.name}:refused",
            memo={"member": env.member, "award": award.name, "points": target, "refused": reason}))
        self.pending.append([None, 0])
        self.refused.append((env.member, award.name, target, reason))

    def refuse(self, award: AwardPlan, member: str, amount: int, reason: str) -> None:
        key = "refused:" + self._base_key(award, member)
        if self.j.entry_by_key(key) is None:
            self.batch.append(NewEntry(
                key=key, effective=self.cp.day, postings=(), recorded=self.ctx.recorded,
                campaign=self.lc.name, rule=self.lc.file, rules_hash=self.lc.rules_hash,
                step=f"{self.cp.period.id}:{award.name}:refused",
                memo={"member": member, "award": award.name, "points": amount, "refused": reason}))
            self.pending.append([None, 0])
        self.refused.append((member, award.name, amount, reason))

    def take_back(self, award: AwardPlan, member: str, amount: int, target: int,
                  events: tuple[str, ...] = ()) -> None:
        self.flush()  # a reversal reads the lots: everything queued must be written first
        grants = self.grants.get((award.name, member), [])
        n = 0
        for g in reversed(grants):  # newest grant first
            if amount <= 0:
                break
            take = min(g[1], amount)
            if take <= 0:
                continue
            n += 1
            key = "reverse:" + self._base_key(award, member) + (f":{n}" if n > 1 else "")
            self.j.reverse(g[0], take, self.cp.day, key=key, recorded=self.ctx.recorded, events=events,
                           rules_hash=self.lc.rules_hash,
                           memo={"member": member, "award": award.name, "period": self.cp.period.id,
                                 "target": target})
            g[1] -= take
            amount -= take
            if award.kind == self.budget_kind:
                self.budget_left += take
            self.paid[(award.name, member)] -= take
            self.figures["reversals"] += 1
            self.figures["reversed_points"] += take

    def draw(self, award: AwardPlan, candidates: LotteryCandidates) -> None:
        """The lottery: a seeded, recorded order; winners paid in that order."""
        count, digest = candidates.digest()
        day = self.fixed_pay[award.name]  # a lottery is drawn on a fixed date (_due_fixed)
        seed = award.lottery.seed or hashlib.sha256(
            f"{self.lc.name}|{self.cp.period.id}|{award.name}|{day.isoformat()}|{digest}".encode()).hexdigest()
        order, winners = pick_winners(candidates.in_draw_order(seed), award.lottery.winners,
                                      self.budget_left)
        self.flush()  # the grants before the draw, then the draw entry alone: it holds `order`
        self.batch.append(NewEntry(
            key=f"draw:{self.lc.name}:{self.cp.period.id}:{award.name}", effective=self.cp.day,
            postings=(), recorded=self.ctx.recorded, campaign=self.lc.name, rule=self.lc.file,
            rules_hash=self.lc.rules_hash, step=f"{self.cp.period.id}:{award.name}:draw",
            memo={"award": award.name, "seed": seed, "candidates_digest": digest,
                  "candidates": count, "order": order, "winners": winners,
                  "rule": (f"{award.lottery.winners} winners" if award.lottery.winners is not None
                           else "draw order within budget")}))
        self.pending.append([None, 0])
        del order
        self.flush()
        self.drawn[award.name] = frozenset(winners)
        self.figures["winners"] += len(winners)
        # Only (member, amount) was kept per candidate: the winners are evaluated again,
        # in one query, so memory holds no candidate's whole row until the draw.
        if winners:
            envs = {env.member: env for env in evaluate(
                self.ctx.conn, self.plan, self.cp.period, self.cp.day, self.ctx.watermark, member=winners)}
            # Nothing of a lottery award is paid before its draw; read it all the same.
            self.paid.clear()
            self.grants.clear()
            history = PaidHistory(self.ctx.conn, self.lc.name, self.cp.period.id, self.cp.day,
                                  winners, (award.kind,), award=award.name)
            for m in sorted(winners):
                history.load(m, self.paid, self.grants)
            for m in winners:  # paid in draw order, as drawn
                self.settle(award, envs[m], pay_date=day)
