"""`run --until DATE`: every due step of every campaign, in date order, exactly once.

The calendar of a run is built from the rules and the stored events:
- budget funding on the campaign's first day;
- checkpoints of each campaign period: its payment dates (fixed, end of cycle, or
  per member, e.g. "the 18th of the month after the threshold was reached"),
  then every later day on which an event arrived that can change the result
  (a late purchase, a cancellation, a refund);
- redemptions, on their own day after the campaigns' steps;
- expiry of lots at the end of each day.

At a checkpoint every award is recomputed from the events visible that day and
compared with what the member was already paid for it; the difference is posted
as an adjustment (a grant) or a reversal linked to the grant it corrects. So a
re-run is a no-op, a late event becomes a linked correction, and a run killed
half-way resumes where it stopped: each checkpoint is one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from typing import Callable, Iterable

import apsw
import attrs

from dsl import ast
from dsl.compiler import AwardPlan, MemberEnv, Period, Plan, whole
from dsl.evaluator import evaluate, install_tables, query_params, source_events, window_of
from dsl.loader import LoadedCampaign, RuleSet
from ledger import db
from ledger.accounts import FUNDING, budget_account, member_account, receivable_account
from ledger.dates import day_of_month_after, end_of_month, end_of_month_after
from ledger.errors import IdempotencyConflict, InsufficientPoints
from ledger.journal import Journal
from ledger.model import NewEntry, Posting

DEFAULT_EXPIRY_MONTHS = {"limited": 6, "basic": 12, "charge_only": 12}


class RunError(Exception):
    """Raised when a run cannot go on (an award amount that is not a whole number, ...)."""


@attrs.define
class CampaignReport:
    name: str
    entries: int = 0
    points: int = 0
    members: set = attrs.field(factory=set)
    winners: int = 0
    draws: int = 0
    reversals: int = 0
    reversed_points: int = 0
    refused: list = attrs.field(factory=list)


@attrs.define
class RunReport:
    until: dt.date
    watermark: int
    campaigns: dict = attrs.field(factory=dict)
    redemptions: int = 0
    redeemed_points: int = 0
    refused_redemptions: list = attrs.field(factory=list)
    expiries: int = 0
    expired_points: int = 0
    entries: int = 0

    def campaign(self, name: str) -> CampaignReport:
        return self.campaigns.setdefault(name, CampaignReport(name))


# ---------------------------------------------------------------- dates of a campaign

def period_pay_date(pay: ast.PayDate | None, plan: Plan, period: Period) -> dt.date | None:
    """The payment date of an award when it does not depend on the member."""
    if isinstance(pay, ast.PayFixed):
        return pay.date
    if isinstance(pay, ast.PayAfterPeriod):
        end = period.end
        if end.day < pay.day:
            return end.replace(day=min(pay.day, end_of_month(end.year, end.month).day))
        return day_of_month_after(end, 1, pay.day)
    if pay is None:
        _, wend = window_of(plan)
        end = period.end or wend
        return end_of_month_after(end, 1) if end else None
    return None


def member_pay_date(award: AwardPlan, plan: Plan, period: Period, env: MemberEnv) -> dt.date | None:
    if isinstance(award.pay, ast.PayMonthAfter):
        after = award.pay_after(env)
        if after is None:
            return None
        if not isinstance(after, dt.date):
            after = dt.date.fromisoformat(str(after)[:10])
        return day_of_month_after(after, 1, award.pay.day)
    return period_pay_date(award.pay, plan, period)


def expiry_date(award: AwardPlan, pay_date: dt.date) -> dt.date:
    if isinstance(award.expiry, ast.ExpiresOn):
        return award.expiry.date
    months = award.expiry.months if isinstance(award.expiry, ast.ExpiresAfter) else DEFAULT_EXPIRY_MONTHS.get(award.kind, 12)
    return end_of_month_after(pay_date, months)


def periods_of(conn, plan: Plan, until: dt.date, wm: int) -> list[Period]:
    c = plan.campaign
    if c.cycle is None:
        lo, hi = window_of(plan)
        return [Period("main", lo, hi)]
    marks = ", ".join("?" for _ in plan.types)
    days = conn.execute(
        f"SELECT DISTINCT day FROM events WHERE type IN ({marks}) AND day <= ? AND seq <= ?",
        (*plan.types, until.isoformat(), wm),
    )
    ends = set()
    for (day,) in days:
        d = dt.date.fromisoformat(day)
        if d.day <= c.cycle.end_day:
            ends.add((d.year, d.month))
        else:
            ends.add((d + dt.timedelta(days=32 - d.day)).timetuple()[:2])
    out = []
    for year, month in sorted(ends):
        end = dt.date(year, month, c.cycle.end_day)
        start = day_of_month_after(end, -1, c.cycle.start_day)
        out.append(Period(f"{year:04d}-{month:02d}", start, end))
    return out


@attrs.frozen
class Checkpoint:
    day: dt.date
    campaign: str
    period: Period
    members: tuple[str, ...] | None  # None: everyone


def relevant_days(conn, plan: Plan, period: Period, after: dt.date, until: dt.date, wm: int) -> dict[dt.date, set]:
    """Days after `after` with an event that may change this period's awards, and whose members."""
    install_tables(conn, plan)
    params = query_params(plan, period, until, wm, None)
    params.update(after=after.isoformat(), until=until.isoformat())
    any_match = " OR ".join(f"({sql})" for sql in plan.match_sql.values())
    out: dict[dt.date, set] = defaultdict(set)
    types = ", ".join(f"'{t}'" for t in plan.types)  # event type names from the schema
    sql = (f"SELECT DISTINCT e.day, e.member FROM events e WHERE e.type IN ({types}) "
           f"AND e.day > :after AND e.day <= :until AND e.seq <= :wm AND ({any_match})")
    for day, member in conn.execute(sql, params):
        out[dt.date.fromisoformat(day)].add(member)
    if plan.undo_types:
        # The cancelled event no longer matches its stream (it is undone), so test
        # the stream's predicate without its undo clause.
        marks = ", ".join(f"'{t}'" for t in plan.undo_types)  # fixed names from the schema
        as_before = " OR ".join(f"({_without_undo(plan, name)})" for name in plan.match_sql)
        sql = (f"SELECT DISTINCT u.day, u.member FROM events u JOIN events e ON e.id = u.ref "
               f"WHERE u.type IN ({marks}) AND u.day > :after AND u.day <= :until AND u.seq <= :wm "
               f"AND e.seq <= :wm AND ({as_before})")
        for day, member in conn.execute(sql, params):
            out[dt.date.fromisoformat(day)].add(member)
    return out


def _without_undo(plan: Plan, name: str) -> str:
    sql = plan.match_sql[name]
    cut = sql.find(" AND NOT EXISTS (SELECT 1 FROM events")
    return sql if cut < 0 else sql[:cut] + _after_undo(sql, cut)


def _after_undo(sql: str, cut: int) -> str:
    # drop the balanced `NOT EXISTS (...)` clause that starts at `cut`
    i = sql.index("(", cut)
    depth = 0
    for j in range(i, len(sql)):
        depth += sql[j] == "("
        depth -= sql[j] == ")"
        if depth == 0:
            return sql[j + 1:]
    return ""


# ---------------------------------------------------------------- the run

class Runner:
    """Executes one `run --until` over a rule set; see the module docstring."""

    def __init__(self, conn: apsw.Connection, rules: RuleSet, until: dt.date,
                 progress: Callable[[int, int], None] | None = None):
        self.conn = conn
        self.rules = rules
        self.until = until
        self.journal = Journal(conn)
        self.recorded = until.isoformat()
        self.progress = progress
        self.wm = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        self.report = RunReport(until, self.wm)
        self._states: dict[tuple[str, str], PeriodState] = {}
        self.done_until = self.completed_until()
        self.expired_upto: dt.date | None = None
        self.stale_lots = False

    def completed_until(self) -> dt.date | None:
        """The last day an earlier run finished with these very events and rules.

        Its marker is written only after all its steps, so every step dated up to
        that day is done: a re-run skips them instead of recomputing to no effect.
        """
        done = None
        for (memo,) in self.conn.execute("SELECT memo FROM entries WHERE step = 'run'"):
            memo = json.loads(memo)
            if memo.get("watermark") == self.wm and memo.get("rules") == dict(sorted(self.rules.hashes.items())):
                until = dt.date.fromisoformat(memo["until"])
                done = until if done is None or until > done else done
        return done

    # --- calendar
    def agenda(self) -> dict[dt.date, list]:
        days: dict[dt.date, list] = defaultdict(list)
        for lc in self.rules.campaigns:
            plan = lc.plan
            if plan.campaign.budget is not None:
                lo, _ = window_of(plan)
                fund_day = lo or self.until
                if fund_day <= self.until:
                    days[fund_day].append(("fund", lc))
            for period in periods_of(self.conn, plan, self.until, self.wm):
                for cp in self.checkpoints(lc, period):
                    days[cp.day].append(("checkpoint", lc, cp))
        for (day,) in self.conn.execute(
                "SELECT DISTINCT day FROM events WHERE type = 'redemption' AND day <= ? AND seq <= ?",
                (self.until.isoformat(), self.wm)):
            days[dt.date.fromisoformat(day)].append(("redeem",))
        return days

    def checkpoints(self, lc: LoadedCampaign, period: Period) -> list[Checkpoint]:
        plan = lc.plan
        fixed = {period_pay_date(a.pay, plan, period) for a in plan.awards.values()
                 if not isinstance(a.pay, ast.PayMonthAfter)}
        fixed.discard(None)
        # Per-member dates ("day 18 of the month after the threshold was reached") are
        # checked on that day of every month the campaign can pay in, each time with
        # the events of that day: a refund after payment cannot erase the payment day.
        for a in plan.awards.values():
            if isinstance(a.pay, ast.PayMonthAfter):
                fixed |= set(self.monthly_grid(plan, period, a.pay.day))
        candidates = sorted(d for d in fixed if d <= self.until)
        if not candidates:
            return []
        first = candidates[0]
        out: dict[dt.date, set | None] = {d: None for d in candidates}
        for d, members in relevant_days(self.conn, plan, period, first, self.until, self.wm).items():
            if d not in out:
                out[d] = set(members)
            elif out[d] is not None:
                out[d] |= members
        return [Checkpoint(d, lc.name, period, None if m is None else tuple(sorted(m)))
                for d, m in sorted(out.items())]

    def monthly_grid(self, plan: Plan, period: Period, day: int) -> list[dt.date]:
        """Day `day` of every month after the period starts, up to the month after it ends."""
        lo = period.start or window_of(plan)[0]
        if lo is None:
            row = self.conn.execute("SELECT MIN(day) FROM events WHERE seq <= ?", (self.wm,)).fetchone()
            if row[0] is None:
                return []
            lo = dt.date.fromisoformat(row[0])
        hi = period.end or window_of(plan)[1]
        last = day_of_month_after(hi, 1, day) if hi else self.until
        out, k = [], 1
        while (d := day_of_month_after(lo, k, day)) <= min(last, self.until):
            out.append(d)
            k += 1
        return out

    def run(self) -> RunReport:
        days = self.agenda()
        if self.done_until is not None:
            days = {d: tasks for d, tasks in days.items() if d > self.done_until}
        order = sorted(days)
        total = sum(len(v) for v in days.values()) + 1
        done = 0
        for day in order:
            self.expire(day - dt.timedelta(days=1))
            for task in sorted(days[day], key=_task_order):
                if task[0] == "fund":
                    self.fund(task[1], day)
                elif task[0] == "checkpoint":
                    self.checkpoint(task[1], task[2])
                else:
                    self.redeem(day)
                done += 1
                if self.progress:
                    self.progress(done, total)
            self.expire(day)
        self.expire(self.until)
        self.mark()
        if self.progress:
            self.progress(total, total)
        return self.report

    # --- steps
    def fund(self, lc: LoadedCampaign, day: dt.date) -> None:
        b = lc.plan.campaign.budget
        key = f"fund:{lc.name}:{b.kind}"
        if self.journal.entry_by_key(key) is None:
            self.journal.fund_budget(lc.name, b.kind, b.amount, day, recorded=self.recorded)
            self.report.entries += 1

    def redeem(self, day: dt.date) -> None:
        rows = list(self.conn.execute(
            "SELECT id, member, body FROM events WHERE type = 'redemption' AND day = ? AND seq <= ? "
            "ORDER BY at, seq", (day.isoformat(), self.wm)))
        for event_id, member, body in rows:
            with db.transaction(self.conn):  # look and write under one lock: runs may race
                self.redeem_one(day, event_id, member, json.loads(body))

    def redeem_one(self, day: dt.date, event_id: str, member: str, data: dict) -> None:
        """One redemption event: spent, or recorded as refused with the reason."""
        key = f"redeem:{event_id}"
        if self.journal.entry_by_key(key) is not None:
            return
        try:
            self.journal.redeem(member, data["points"], data["use"], day, key=key,
                                events=(event_id,), recorded=self.recorded)
            self.report.redemptions += 1
            self.report.redeemed_points += data["points"]
        except IdempotencyConflict:
            # Another run recorded this redemption (spent or refused) first: it is done.
            done = self.journal.entry_by_key(key)
            if done is None or done.events != (event_id,):
                raise
            return
        except InsufficientPoints as exc:
            self.journal.append([NewEntry(
                key=key, effective=day, postings=(), recorded=self.recorded, step="redeem",
                events=(event_id,), memo={"refused": str(exc), "member": member,
                                          "points": data["points"], "use": data["use"]})])
            self.report.refused_redemptions.append((event_id, member, str(exc)))
        self.report.entries += 1

    def expire(self, as_of: dt.date) -> None:
        if as_of > self.until or (self.done_until is not None and as_of <= self.done_until):
            return
        if self.expired_upto is not None and as_of <= self.expired_upto:
            return
        # After the first call, only lots expiring since the last one are read; a grant
        # made this run with an expiry already past resets that (stale_lots).
        since = None if self.stale_lots else self.expired_upto
        entries, points = self.journal.expire_lots(as_of, recorded=self.recorded, since=since)
        self.expired_upto, self.stale_lots = as_of, False
        self.report.expiries += entries
        self.report.expired_points += points
        self.report.entries += entries

    def mark(self) -> None:
        key = f"run:{self.until.isoformat()}:{self.wm}:{_digest(self.rules.hashes)[:16]}"
        if self.journal.entry_by_key(key) is None:
            self.journal.append([NewEntry(
                key=key, effective=self.until, postings=(), recorded=self.recorded, step="run",
                memo={"until": self.until.isoformat(), "watermark": self.wm,
                      "rules": dict(sorted(self.rules.hashes.items()))})])

    # --- a campaign checkpoint: one transaction
    def period_state(self, lc: LoadedCampaign, period: Period) -> "PeriodState":
        key = (lc.name, period.id)
        if key not in self._states:
            self._states[key] = PeriodState(self.conn, lc.name, period.id)
        return self._states[key]

    def checkpoint(self, lc: LoadedCampaign, cp: Checkpoint) -> None:
        try:
            with db.transaction(self.conn):
                Checkpointer(self, lc, cp).run()
        except BaseException:
            self._states.pop((lc.name, cp.period.id), None)  # memory may be ahead of the rollback
            raise
        self.period_state(lc, cp.period).written()


def _task_order(task) -> tuple:
    rank = {"fund": 0, "checkpoint": 1, "redeem": 2}[task[0]]
    return (rank, task[1].name if len(task) > 1 else "")


def _digest(hashes: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(hashes.items())).encode()).hexdigest()


class PeriodState:
    """What a campaign period has paid so far, per (award, member), as of a date.

    Loaded once per run from the journal (no memo is decoded but the member name
    and the lottery winners) and moved forward date by date: a run visits its
    checkpoints in date order, and entries of earlier runs dated later than the
    current checkpoint are applied only when the run reaches their date.
    """

    def __init__(self, conn, campaign: str, period_id: str):
        self.conn, self.campaign, self.period_id = conn, campaign, period_id
        self.load()

    def head(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries WHERE campaign = ?",
                                 (self.campaign,)).fetchone()[0]

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
        self.seen = self.head()

    def advance(self, day: dt.date) -> None:
        """Apply every loaded entry dated on or before `day` (reload if another process wrote)."""
        if self.head() != self.seen:
            self.load()
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

    def written(self) -> None:
        """Our own checkpoint wrote entries (already applied in memory)."""
        self.seen = self.head()


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
        written = self.j.append(self.batch)
        for record, entry in zip(self.pending, written):
            record[0] = entry.seq
        self.batch, self.pending = [], []

    def run(self) -> None:
        cp = self.cp
        members = cp.members
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
                            pending_draw[award.name].append((env.member, target, env))
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
            expires = expiry_date(award, pay_date)
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

    def draw(self, award: AwardPlan, candidates: list[tuple[str, int, MemberEnv]]) -> None:
        """The lottery: a seeded, recorded order; winners paid in that order."""
        names = sorted(m for m, _, _ in candidates)
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
        day = period_pay_date(award.pay, self.plan, self.cp.period)
        seed = award.lottery.seed or hashlib.sha256(
            f"{self.lc.name}|{self.cp.period.id}|{award.name}|{day.isoformat()}|{digest}".encode()).hexdigest()
        order = sorted(names, key=lambda m: hashlib.sha256(f"{seed}|{m}".encode()).hexdigest())
        amounts = {m: t for m, t, _ in candidates}
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
        envs = {m: env for m, _, env in candidates}
        for m in winners:
            self.settle(award, envs[m], pay_date=day)
