"""One checkpoint of one campaign period: recompute every award, post the differences.

`PaidHistory` reads what each member was already paid per award (as of a date),
member by member beside the evaluation;
`Checkpointer` evaluates the period with the events visible at the checkpoint,
draws the lotteries that are due, and writes grants, reversals and refusals in
one batch inside the checkpoint's transaction (see `engine.workflow.Runner`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from typing import TYPE_CHECKING, Iterable

from points.dsl import ast
from points.engine.calendar import expiry_date, member_pay_date, period_pay_date, relevant_members
from points.dsl.compiler import AwardPlan, MemberEnv, whole
from points.dsl.errors import RunError
from points.dsl.evaluator import evaluate, source_events
from points.dsl.loader import LoadedCampaign
from points.ledger.accounts import FUNDING, budget_account, member_account, receivable_account
from points.ledger.db import gc_paused
from points.ledger.model import NewEntry, Posting

if TYPE_CHECKING:
    from points.engine.calendar import Checkpoint
    from points.engine.workflow import Runner


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


def load_draws(conn, campaign: str, period_id: str) -> dict[str, set]:
    """The lotteries of a period already drawn (whatever their date): award -> winners."""
    prefix = f"{period_id}:"
    draws = {}
    for step, winners in conn.execute(
            "SELECT step, json_extract(memo, '$.winners') FROM entries WHERE campaign = ? "
            "AND step >= ? AND step < ? AND substr(step, -5) = ':draw' ORDER BY seq",
            (campaign, prefix, period_id + ";")):
        draws[step[len(prefix):-5]] = set(json.loads(winners or "[]"))
    return draws


class LotteryCandidates:
    """The members a lottery draws from, with their award, in a TEMP table of the run's
    connection (a temp file, bounded by its page cache): read back sorted by member for
    the digest and in draw order for the draw, never held all at once but for the
    draw entry's own `order` list."""

    _made = itertools.count(1)
    FLUSH_EVERY = 10_000

    def __init__(self, conn):
        self.conn = conn
        self.table = f"temp.lottery_candidates_{next(self._made)}"
        # Made before the checkpoint's queries start: a schema change (or a function
        # registered again) aborts the statements running at that moment.
        conn.execute(f"CREATE TABLE {self.table} (member TEXT NOT NULL, amount INTEGER NOT NULL)")
        conn.create_scalar_function(
            "lottery_rank", lambda seed, m: hashlib.sha256(f"{seed}|{m}".encode()).hexdigest(), 2,
            deterministic=True)
        self.buffer: list[tuple[str, int]] = []

    def add(self, member: str, amount: int) -> None:
        self.buffer.append((member, amount))
        if len(self.buffer) >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany(f"INSERT INTO {self.table} VALUES (?, ?)", self.buffer)
        self.buffer = []

    def digest(self) -> tuple[int, str]:
        """(how many, sha256 of their names sorted and joined by newlines)."""
        self.flush()
        h, n = hashlib.sha256(), 0
        for (member,) in self.conn.execute(f"SELECT member FROM {self.table} ORDER BY member"):
            h.update(member.encode() if not n else b"\n" + member.encode())
            n += 1
        return n, h.hexdigest()

    def in_draw_order(self, seed: str) -> Iterable[tuple[str, int]]:
        """(member, amount) by sha256 of `seed|member` (its hex, then the name: the order
        of a stable sort of the sorted names by that key)."""
        self.flush()
        return self.conn.execute(
            f"SELECT member, amount FROM {self.table} ORDER BY lottery_rank(?, member), member", (seed,))

    def drop(self) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")


class Checkpointer:
    """Recomputes one campaign period at one date and posts the differences."""

    # Grants are appended in batches of this many entries (one validation and hash pass
    # each), all in the checkpoint's one transaction: memory is bounded by the batch.
    BATCH = 5_000

    def __init__(self, runner: Runner, lc: LoadedCampaign, cp: Checkpoint):
        self.r = runner
        self.j = runner.journal
        self.lc = lc
        self.plan = lc.plan
        self.cp = cp
        self.report = runner.report.campaign(lc.name)
        self.draws = runner.period_draws(lc, cp.period)
        # The paid state of the member being settled only (see PaidHistory).
        self.paid: dict[tuple[str, str], int] = {}
        self.grants: dict[tuple[str, str], list] = {}
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
        with gc_paused():
            self._run()

    def _run(self) -> None:
        cp = self.cp
        members = None if cp.everyone else relevant_members(
            self.r.conn, self.plan, cp.period, cp.day, self.r.until, self.r.wm)
        # Dates that do not depend on the member, computed once per checkpoint (a card
        # cycle grants to every member with the same payment and expiry dates).
        self.fixed_pay = {a.name: period_pay_date(a.pay, self.plan, cp.period)
                          for a in self.plan.awards.values() if not isinstance(a.pay, ast.PayMonthAfter)}
        self.expiries: dict[tuple[str, dt.date], dt.date] = {}
        envs: Iterable[MemberEnv]
        envs = evaluate(self.r.conn, self.plan, cp.period, cp.day, self.r.wm,
                        member=None if members is None else list(members))
        lotteries = [a for a in self.plan.awards.values() if a.lottery is not None]
        pending_draw = {a.name: LotteryCandidates(self.r.conn) for a in lotteries
                        if a.name not in self.draws and self._due_fixed(a)}
        history = PaidHistory(self.r.conn, self.lc.name, cp.period.id, cp.day, members,
                              self.award_kinds())
        for env in envs:
            self.paid.clear()
            self.grants.clear()
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

    def draw(self, award: AwardPlan, candidates: LotteryCandidates) -> None:
        """The lottery: a seeded, recorded order; winners paid in that order."""
        count, digest = candidates.digest()
        day = self.fixed_pay[award.name]  # a lottery is drawn on a fixed date (_due_fixed)
        seed = award.lottery.seed or hashlib.sha256(
            f"{self.lc.name}|{self.cp.period.id}|{award.name}|{day.isoformat()}|{digest}".encode()).hexdigest()
        order: list[str] = []
        winners: list[str] = []
        left, fits = self.budget_left, True
        for m, amount in candidates.in_draw_order(seed):
            order.append(m)
            if award.lottery.winners is not None:
                if len(winners) < award.lottery.winners:
                    winners.append(m)
            elif fits:  # within budget: in draw order while the full award still fits
                if amount > left:
                    fits = False
                else:
                    winners.append(m)
                    left -= amount
        self.flush()  # the grants before the draw, then the draw entry alone: it holds `order`
        self.batch.append(NewEntry(
            key=f"draw:{self.lc.name}:{self.cp.period.id}:{award.name}", effective=self.cp.day,
            postings=(), recorded=self.r.recorded, campaign=self.lc.name, rule=self.lc.file,
            rules_hash=self.lc.rules_hash, step=f"{self.cp.period.id}:{award.name}:draw",
            memo={"award": award.name, "seed": seed, "candidates_digest": digest,
                  "candidates": count, "order": order, "winners": winners,
                  "rule": (f"{award.lottery.winners} winners" if award.lottery.winners is not None
                           else "draw order within budget")}))
        self.pending.append([None, 0])
        del order
        self.flush()
        self.draws[award.name] = set(winners)
        self.report.draws += 1
        self.report.winners += len(winners)
        self.r.report.entries += 1
        # Only (member, amount) was kept per candidate: the winners are evaluated again,
        # in one query, so memory holds no candidate's whole row until the draw.
        if winners:
            envs = {env.member: env for env in evaluate(
                self.r.conn, self.plan, self.cp.period, self.cp.day, self.r.wm, member=winners)}
            # Nothing of a lottery award is paid before its draw; read it all the same.
            self.paid.clear()
            self.grants.clear()
            history = PaidHistory(self.r.conn, self.lc.name, self.cp.period.id, self.cp.day,
                                  winners, (award.kind,), award=award.name)
            for m in sorted(winners):
                history.load(m, self.paid, self.grants)
            for m in winners:  # paid in draw order, as drawn
                self.settle(award, envs[m], pay_date=day)
