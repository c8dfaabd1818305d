"""One checkpoint of one campaign period: recompute every award, post the differences.

`PeriodState` knows what each member was already paid per award (as of a date);
`Checkpointer` evaluates the period with the events visible at the checkpoint,
draws the lotteries that are due, and writes grants, reversals and refusals in
one batch inside the checkpoint's transaction (see `dsl.workflow.Runner`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Iterable

from dsl import ast
from dsl.calendar import expiry_date, member_pay_date, period_pay_date
from dsl.compiler import AwardPlan, MemberEnv, whole
from dsl.errors import RunError
from dsl.evaluator import evaluate, source_events
from dsl.loader import LoadedCampaign
from ledger.accounts import FUNDING, budget_account, member_account, receivable_account
from ledger.model import NewEntry, Posting

if TYPE_CHECKING:
    from dsl.calendar import Checkpoint
    from dsl.workflow import Runner


class PeriodState:
    """What a campaign period has paid so far, per (award, member), as of a date.

    Loaded once per run from the journal (no memo is decoded but the member name
    and the lottery winners) and moved forward date by date: a run visits its
    checkpoints in date order, and entries of earlier runs dated later than the
    current checkpoint are applied only when the run reaches their date. The
    Runner drops every state when another process has written to the journal.
    """

    def __init__(self, conn, campaign: str, period_id: str):
        self.conn, self.campaign, self.period_id = conn, campaign, period_id
        self.load()

    def load(self) -> None:
        self.paid: dict[tuple[str, str], int] = defaultdict(int)
        self.grants: dict[tuple[str, str], list] = defaultdict(list)
        self.draws: dict[str, set] = {}
        self.future: list[tuple] = []
        self.day = None
        prefix = f"{self.period_id}:"
        rows = self.conn.execute(
            "SELECT e.effective, e.seq, e.step, e.reverses, "
            "CASE WHEN e.step LIKE '%:draw' THEN json_extract(e.memo, '$.winners') "
            "ELSE json_extract(e.memo, '$.member') END, "
            "COALESCE((SELECT SUM(p.amount) FROM postings p WHERE p.entry = e.seq "
            " AND (p.account >= 'member:' AND p.account < 'member;' "
            "   OR p.account >= 'receivable:' AND p.account < 'receivable;')), 0) "
            "FROM entries e WHERE e.campaign = ? AND e.step >= ? AND e.step < ? ORDER BY e.seq",
            (self.campaign, prefix, self.period_id + ";"))
        for effective, seq, step, reverses, who, net in rows:
            award = step[len(prefix):]
            if award.endswith(":draw"):  # a draw happens once, whatever its date
                self.draws[award[:-5]] = set(json.loads(who or "[]"))
            elif who is not None and not award.endswith(":refused"):
                self.future.append((effective, seq, award, who, net, reverses))
        self.future.sort()

    def advance(self, day: dt.date) -> None:
        """Apply every loaded entry dated on or before `day`."""
        iso = day.isoformat()
        n = 0
        for effective, seq, award, member, net, reverses in self.future:
            if effective > iso:
                break
            n += 1
            self.paid[(award, member)] += net
            if reverses is None and net > 0:
                self.grants[(award, member)].append([seq, net])
            elif reverses is not None:
                for g in self.grants[(award, member)]:
                    if g[0] == reverses:
                        g[1] += net
        del self.future[:n]


@contextlib.contextmanager
def _gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Checkpointer:
    """Recomputes one campaign period at one date and posts the differences."""

    def __init__(self, runner: Runner, lc: LoadedCampaign, cp: Checkpoint):
        self.r = runner
        self.j = runner.journal
        self.lc = lc
        self.plan = lc.plan
        self.cp = cp
        self.report = runner.report.campaign(lc.name)
        state = runner.period_state(lc, cp.period)
        state.advance(cp.day)
        self.paid, self.grants, self.draws = state.paid, state.grants, state.draws
        budget = self.plan.campaign.budget
        self.budget_kind = budget.kind if budget else None
        self.budget_left = (self.j.account_balance(budget_account(lc.name), budget.kind)
                            if budget else None)
        self.owed = self.load_receivables()
        self.batch: list[NewEntry] = []
        self.pending: list[list] = []  # grant records whose entry seq is known after flush

    def load_receivables(self) -> dict[tuple[str, str], int]:
        """Points each member owes back, per kind: later grants pay these first."""
        owed = {}
        for account, kind, total in self.r.conn.execute(
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

    def run(self) -> None:
        # The cyclic GC would walk the growing batch (an entry, postings and a memo per
        # grant, none of them in a cycle) again and again: ~1 s CPU of a 1M-event card
        # cycle. Journal.append pauses it the same way while it writes the batch.
        with _gc_paused():
            self._run()

    def _run(self) -> None:
        cp = self.cp
        members = cp.members
        # Dates that do not depend on the member, computed once per checkpoint (a card
        # cycle grants to every member with the same payment and expiry dates).
        self.fixed_pay = {a.name: period_pay_date(a.pay, self.plan, cp.period)
                          for a in self.plan.awards.values() if not isinstance(a.pay, ast.PayMonthAfter)}
        self.expiries: dict[tuple[str, dt.date], dt.date] = {}
        envs: Iterable[MemberEnv]
        envs = evaluate(self.r.conn, self.plan, cp.period, cp.day, self.r.wm,
                        member=None if members is None else list(members))
        lotteries = [a for a in self.plan.awards.values() if a.lottery is not None]
        pending_draw = {a.name: [] for a in lotteries
                        if a.name not in self.draws and self._due_fixed(a)}
        for env in envs:
            for award in self.plan.awards.values():
                if award.lottery is not None:
                    if award.name in pending_draw:
                        target = self.target(award, env)
                        if target:
                            pending_draw[award.name].append((env.member, target))
                        continue
                    winners = self.draws.get(award.name)
                    if winners is None or env.member not in winners:
                        continue
                self.settle(award, env)
        for name, candidates in pending_draw.items():
            self.draw(self.plan.awards[name], candidates)
        self.flush()

    def _due_fixed(self, award: AwardPlan) -> bool:
        d = period_pay_date(award.pay, self.plan, self.cp.period)
        return d is not None and d <= self.cp.day

    def target(self, award: AwardPlan, env: MemberEnv) -> int:
        if not award.when(env):
            return 0
        amount = whole(award.amount(env))
        if amount is None:
            return 0
        if not isinstance(amount, int):
            raise RunError(
                f"{self.lc.file}: award {award.name} of member {env.member} is {float(amount):g} points, "
                f"not a whole number: round it with floor(), ceil(), trunc() or round()")
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
        # new entry, while a re-run over the same events reuses the same keys.
        return (f"{self.lc.name}:{self.cp.period.id}:{award.name}:{member}:"
                f"{self.cp.day.isoformat()}@{self.r.wm}")

    def grant(self, award: AwardPlan, member: str, amount: int, target: int, pay_date: dt.date,
              events: tuple[str, ...] = ()) -> bool:
        """Queue a grant of `amount` (the budget and receivables are tracked here, so a
        whole checkpoint is one append); refused when a budget cannot pay all of it."""
        from_budget = award.kind == self.budget_kind
        source = budget_account(self.lc.name) if from_budget else FUNDING
        if from_budget and amount > self.budget_left:
            self.refuse(award, member, amount,
                        f"budget of {self.lc.name} has {self.budget_left} {award.kind} points left, "
                        f"{amount} needed")
            return False
        postings = [Posting(source, award.kind, -amount)]
        owed = self.owed.get((member, award.kind), 0)
        payoff = min(owed, amount)
        if payoff:
            postings.append(Posting(receivable_account(member, award.kind), award.kind, payoff))
            self.owed[(member, award.kind)] = owed - payoff
        if amount > payoff:
            expires = self.expiries.get((award.name, pay_date))
            if expires is None:
                expires = self.expiries[(award.name, pay_date)] = expiry_date(award, pay_date)
            if self.r.expired_upto is not None and expires <= self.r.expired_upto:
                self.r.stale_lots = True  # a late grant of a lot already past its expiry
            postings.append(Posting(member_account(member, award.kind), award.kind, amount - payoff,
                                    expires=expires))
        self.batch.append(NewEntry(
            key="award:" + self._base_key(award, member), effective=self.cp.day, postings=postings,
            recorded=self.r.recorded, events=events, campaign=self.lc.name, rule=self.lc.file,
            rules_hash=self.lc.rules_hash, step=f"{self.cp.period.id}:{award.name}",
            memo={"member": member, "award": award.name, "period": self.cp.period.id,
                  "target": target, "label": award.label}))
        if from_budget:
            self.budget_left -= amount
        record = [None, amount]
        self.pending.append(record)
        self.paid[(award.name, member)] = self.paid.get((award.name, member), 0) + amount
        self.grants.setdefault((award.name, member), []).append(record)
        self.report.entries += 1
        self.report.points += amount
        self.report.members.add(member)
        self.r.report.entries += 1
        return True

    def refuse(self, award: AwardPlan, member: str, amount: int, reason: str) -> None:
        key = "refused:" + self._base_key(award, member)
        if self.j.entry_by_key(key) is None:
            self.batch.append(NewEntry(
                key=key, effective=self.cp.day, postings=(), recorded=self.r.recorded,
                campaign=self.lc.name, rule=self.lc.file, rules_hash=self.lc.rules_hash,
                step=f"{self.cp.period.id}:{award.name}:refused",
                memo={"member": member, "award": award.name, "points": amount, "refused": reason}))
            self.pending.append([None, 0])
        self.report.refused.append((member, award.name, amount, reason))

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
            self.j.reverse(g[0], take, self.cp.day, key=key, recorded=self.r.recorded, events=events,
                           memo={"member": member, "award": award.name, "period": self.cp.period.id,
                                 "target": target})
            g[1] -= take
            amount -= take
            if award.kind == self.budget_kind:
                self.budget_left += take
            self.paid[(award.name, member)] -= take
            self.report.reversals += 1
            self.report.reversed_points += take
            self.report.entries += 1
            self.r.report.entries += 1

    def draw(self, award: AwardPlan, candidates: list[tuple[str, int]]) -> None:
        """The lottery: a seeded, recorded order; winners paid in that order."""
        names = sorted(m for m, _ in candidates)
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
        day = period_pay_date(award.pay, self.plan, self.cp.period)
        seed = award.lottery.seed or hashlib.sha256(
            f"{self.lc.name}|{self.cp.period.id}|{award.name}|{day.isoformat()}|{digest}".encode()).hexdigest()
        order = sorted(names, key=lambda m: hashlib.sha256(f"{seed}|{m}".encode()).hexdigest())
        amounts = dict(candidates)
        winners: list[str] = []
        if award.lottery.winners is not None:
            winners = order[: award.lottery.winners]
        else:  # within budget: in draw order while the full award still fits
            left = self.budget_left
            for m in order:
                if amounts[m] > left:
                    break
                winners.append(m)
                left -= amounts[m]
        self.batch.append(NewEntry(
            key=f"draw:{self.lc.name}:{self.cp.period.id}:{award.name}", effective=self.cp.day,
            postings=(), recorded=self.r.recorded, campaign=self.lc.name, rule=self.lc.file,
            rules_hash=self.lc.rules_hash, step=f"{self.cp.period.id}:{award.name}:draw",
            memo={"award": award.name, "seed": seed, "candidates_digest": digest,
                  "candidates": len(names), "order": order, "winners": winners,
                  "rule": (f"{award.lottery.winners} winners" if award.lottery.winners is not None
                           else "draw order within budget")}))
        self.pending.append([None, 0])
        self.draws[award.name] = set(winners)
        self.report.draws += 1
        self.report.winners += len(winners)
        self.r.report.entries += 1
        # Only (member, amount) was kept per candidate: the winners are evaluated again,
        # in one query, so memory holds no candidate's whole row until the draw.
        if winners:
            envs = {env.member: env for env in evaluate(
                self.r.conn, self.plan, self.cp.period, self.cp.day, self.r.wm, member=winners)}
            for m in winners:  # paid in draw order, as drawn
                self.settle(award, envs[m], pay_date=day)
