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

The dates come from `engine.calendar`; one checkpoint's settlement (state, lottery,
grants, reversals) is `engine.settlement.Checkpointer`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import defaultdict
from typing import Callable

import apsw
import attrs

from points.dsl import ast
from points.engine import recorded
from points.engine.calendar import Checkpoint, last_pay_check, period_pay_date, periods_of, relevant_days
from points.dsl.compiler import Period, Plan
from points.dsl.errors import RunError
from points.dsl.evaluator import window_of
from points.dsl.loader import LoadedCampaign, RuleSet
from points.engine.lottery import load_draws
from points.engine.run_log import MemberTally, RunLog
from points.engine.runs import completed_until, marker_entry, seal
from points.engine.settlement import CheckpointContext, Checkpointer, CheckpointResult
from points.ledger import db, rulesets
from points.ledger.dates import day_of_month_after
from points.ledger.errors import InsufficientPoints
from points.ledger.journal import Journal
from points.ledger.model import NewEntry

__all__ = ["CampaignReport", "MemberTally", "RunError", "RunLog", "RunReport", "Runner"]


@attrs.define
class CampaignReport:
    name: str
    entries: int = 0
    points: int = 0
    members: "set | MemberTally" = attrs.field(factory=set)  # those awarded; only len() is used
    winners: int = 0
    draws: int = 0
    reversals: int = 0
    reversed_points: int = 0
    refused: "list | RunLog" = attrs.field(factory=list)  # (member, award, points, reason)


@attrs.define
class RunReport:
    until: dt.date
    watermark: int
    campaigns: dict = attrs.field(factory=dict)
    redemptions: int = 0
    redeemed_points: int = 0
    refused_redemptions: "list | RunLog" = attrs.field(factory=list)  # (event, member, reason)
    expiries: int = 0
    expired_points: int = 0
    entries: int = 0
    # Makes each campaign's `members` (a set if None): see MemberTally; and its
    # `refused` (a list if None): see RunLog.
    member_tally: Callable[[], MemberTally] | None = attrs.field(default=None, eq=False, repr=False)
    log: Callable[[int], RunLog] | None = attrs.field(default=None, eq=False, repr=False)

    def campaign(self, name: str) -> CampaignReport:
        if name not in self.campaigns:
            members = self.member_tally() if self.member_tally else set()
            refused = self.log(4) if self.log else []
            self.campaigns[name] = CampaignReport(name, members=members, refused=refused)
        return self.campaigns[name]


# ---------------------------------------------------------------- the run

class Runner:
    """Executes one `run --until` over a rule set; see the module docstring."""

    # Lottery draws (winners) of periods kept at once: enough for the campaigns of
    # one day, bounded so memory does not grow with periods.
    MAX_DRAWS = 8
    RUN_CACHE_KIB = 16 * 1024  # see _run_cached()
    RUN_DIRTY_KIB = 64 * 1024  # see _run_cached()

    def __init__(self, conn: apsw.Connection, rules: RuleSet, until: dt.date,
                 progress: Callable[[int, int], None] | None = None, *,
                 amend=None, check_terms: bool = True, snapshot: rulesets.Snapshot | None = None):
        self.conn = conn
        # The exact rules set this run uses and records (engine.recorded); `amend`:
        # the operator's reason for changed terms, or the amendment a replay re-posts;
        # `snapshot`: that set read already (a replay, whose scratch folder is gone).
        self.snapshot = snapshot if snapshot is not None else rulesets.snapshot_of(rules)
        self.ruleset = self.snapshot.digest
        self.amend, self.check_terms = amend, check_terms
        self.marker_extra: dict = {}
        self.key_tags: dict[str, str] = {}  # campaign -> suffix of its entry keys
        self.amended: dict[str, int] = {}  # campaign -> its latest amendment's seq
        self.rules = rules
        self.until = until
        self.journal = Journal(conn)
        self.recorded = until.isoformat()
        self.progress = progress
        self.wm = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        self.report = RunReport(until, self.wm, member_tally=lambda: MemberTally(conn))
        self._draws: dict[tuple[str, str], dict[str, frozenset[str]]] = {}
        # Steps up to this day were done by an earlier run over the same events and rules.
        self.done_until = completed_until(conn, self.wm, rules.hashes, self.ruleset)
        self.expired_upto: dt.date | None = None
        self.last_seq = 0  # the journal's last seq after this run's latest step
        self.stale_lots = False

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
                cps = self.checkpoints(lc, period)
                if lc.name in self.amended:
                    cps = self.amended_checkpoints(lc, period, cps, self.amended[lc.name])
                for cp in cps:
                    days[cp.day].append(("checkpoint", lc, cp))
        for (day,) in self.conn.execute(
                "SELECT DISTINCT day FROM events WHERE type = 'redemption' AND day <= ? AND seq <= ?",
                (self.until.isoformat(), self.wm)):
            days[dt.date.fromisoformat(day)].append(("redeem",))
        return days

    def amended_checkpoints(self, lc: LoadedCampaign, period: Period,
                            cps: list[Checkpoint], amendment: int) -> list[Checkpoint]:
        """A period of a campaign whose terms were amended (engine.recorded), in the
        amending run and every run after it: settled once on the day of its latest entry
        before the amendment, against everything paid or taken back by then (the
        amendment's adjustments included: they are dated that day), then at its later
        checkpoints. Recomputing its earlier days would not see what later entries
        already paid or took back."""
        (last,) = self.conn.execute(
            "SELECT MAX(effective) FROM entries WHERE campaign = ? AND step >= ? AND step < ?"
            " AND seq < ?", (lc.name, f"{period.id}:", f"{period.id};", amendment)).fetchone()
        if last is None:
            return cps
        day = dt.date.fromisoformat(last)
        # (a later run --until before that day: the amendment settled those days already)
        first = [Checkpoint(day, lc.name, period, True)] if day <= self.until else []
        return first + [cp for cp in cps if cp.day > day]

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
                fixed |= set(self.monthly_grid(plan, period, a.pay.day, last_pay_check(a, period)))
        candidates = sorted(d for d in fixed if d <= self.until)
        if not candidates:
            return []
        first = candidates[0]
        everyone = {d: True for d in candidates}
        # Later days are for the members of that day's events only; who they are is read
        # when the run gets there, so the agenda does not hold them all.
        for d in relevant_days(self.conn, plan, period, first, self.until, self.wm):
            everyone.setdefault(d, False)
        return [Checkpoint(d, lc.name, period, e) for d, e in sorted(everyone.items())]

    def monthly_grid(self, plan: Plan, period: Period, day: int, last: dt.date | None) -> list[dt.date]:
        """Day `day` of every month after the period starts, up to `last` (the last day a
        member's payment can be due, `calendar.last_pay_check`; None: the run's end)."""
        lo = period.start or window_of(plan)[0]
        if lo is None:
            row = self.conn.execute("SELECT MIN(day) FROM events WHERE seq <= ?", (self.wm,)).fetchone()
            if row[0] is None:
                return []
            lo = dt.date.fromisoformat(row[0])
        if last is None:
            last = self.until
        out, k = [], 1
        while (d := day_of_month_after(lo, k, day)) <= min(last, self.until):
            out.append(d)
            k += 1
        return out

    def run(self) -> RunReport:
        # One run at a time (engine.recorded.run_lock): what it sees is read once the
        # lock is held, and the rules set is recorded before the first step.
        with recorded.run_lock(self.conn):
            self.wm = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            self.report = RunReport(self.until, self.wm, member_tally=lambda: MemberTally(self.conn),
                                    log=lambda width: RunLog(self.conn, width))
            self.report.refused_redemptions = RunLog(self.conn, 3)
            self._draws.clear()
            with db.transaction(self.conn):
                self.marker_extra, self.key_tags = recorded.start(self, self.amend, self.check_terms)
            self.amended = recorded.amended_campaigns(self.conn)
            self.done_until = completed_until(self.conn, self.wm, self.rules.hashes, self.ruleset)
            return self._run_cached()

    def _run_cached(self) -> RunReport:
        # SQLite's page cache, and so each sorter's memory, at RUN_CACHE_KIB for the
        # run: the journal asks for 64 MiB, and a run holds several sorters at once
        # (the evaluation's main and side queries, the paid history); a run appends
        # in batches of a few thousand entries, so it does not need the bigger cache.
        # The pages a checkpoint changes (all its grants are one transaction) may fill
        # RUN_DIRTY_KIB before SQLite writes them to the WAL mid-transaction: once it
        # spills, the hot index and trigger pages are written out and read back again
        # and again (system time growing faster than the checkpoint); bounded, so that
        # the run's peak memory stays within its budget (docs/benchmarks.md).
        with db.page_cache(self.conn, self.RUN_CACHE_KIB, dirty_kib=self.RUN_DIRTY_KIB):
            return self._run()

    def _run(self) -> RunReport:
        days = self.agenda()
        if self.done_until is not None:
            days = {d: tasks for d, tasks in days.items() if d > self.done_until}
        order = sorted(days)
        total = sum(len(v) for v in days.values()) + 1
        done = 0
        for day in order:
            self.expire(day - dt.timedelta(days=1))
            for task in sorted(days[day], key=lambda t: _task_order(t, self.rules.run_order)):
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
        with self.own():
            if self.journal.entry_by_key(key) is None:
                self.journal.fund_budget(lc.name, b.kind, b.amount, day, recorded=self.recorded)
                self.report.entries += 1

    # A day's redemptions are appended in batches of at most this many entries.
    REDEEM_BATCH = 2_000

    def redeem(self, day: dt.date) -> None:
        rows = list(self.conn.execute(
            "SELECT id, member, body FROM events WHERE type = 'redemption' AND day = ? AND seq <= ? "
            "ORDER BY at, seq", (day.isoformat(), self.wm)))
        # The day's redemptions are one step: looked at and written under one lock (runs
        # may race), those recorded already (spent or refused) skipped. They are appended
        # in order, in batches of consecutive events of distinct members: a redemption
        # reads only its member's lots, which no other member's entry changes.
        with self.own():
            keys = [f"redeem:{event_id}" for event_id, _, _ in rows]
            done = {k for (k,) in self.conn.execute(
                "SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?))", (json.dumps(keys),))}
            batch: list[NewEntry] = []
            members: set[str] = set()
            for (event_id, member, body), key in zip(rows, keys):
                if key in done:
                    continue
                if member in members or len(batch) >= self.REDEEM_BATCH:
                    self.journal.append_seqs(batch)
                    batch, members = [], set()
                batch.append(self.redemption(day, key, event_id, member, json.loads(body)))
                members.add(member)
            self.journal.append_seqs(batch)

    def redemption(self, day: dt.date, key: str, event_id: str, member: str, data: dict) -> NewEntry:
        """The entry of one redemption event: spent, or recorded as refused with the reason."""
        try:
            entry = self.journal.redemption_entry(member, data["points"], data["use"], day, key=key,
                                                  events=(event_id,), recorded=self.recorded)
            self.report.redemptions += 1
            self.report.redeemed_points += data["points"]
        except InsufficientPoints as exc:
            entry = NewEntry(
                key=key, effective=day, postings=(), recorded=self.recorded, step="redeem",
                events=(event_id,), memo={"refused": str(exc), "member": member,
                                          "points": data["points"], "use": data["use"]})
            self.report.refused_redemptions.append((event_id, member, str(exc)))
        self.report.entries += 1
        return entry

    def expire(self, as_of: dt.date) -> None:
        if as_of > self.until or (self.done_until is not None and as_of <= self.done_until):
            return
        if self.expired_upto is not None and as_of <= self.expired_upto:
            return
        # After the first call, only lots expiring since the last one are read; a grant
        # made this run with an expiry already past resets that (stale_lots).
        since = None if self.stale_lots else self.expired_upto
        if since is not None and not self.expiring_by(as_of):
            self.expired_upto = as_of  # nothing expires in (since, as_of]: no step to take
            return
        # One expiry date at a time: the journal holds every lot of one call in memory,
        # and the last call of a run (to --until) would otherwise take in the lots of
        # every remaining month at once. Same entries, in the same order (date, member).
        with self.own():
            dates = [dt.date.fromisoformat(d) for (d,) in self.conn.execute(
                "SELECT DISTINCT expires FROM postings WHERE expires IS NOT NULL AND expires <= ? "
                "AND expires > ? ORDER BY expires",
                (as_of.isoformat(), since.isoformat() if since is not None else ""))]
            for day in dates:
                entries, points = self.journal.expire_lots(day, recorded=self.recorded, since=since)
                since = day
                self.report.expiries += entries
                self.report.expired_points += points
                self.report.entries += entries
        self.expired_upto, self.stale_lots = as_of, False

    def expiring_by(self, as_of: dt.date) -> bool:
        """Whether a lot expires after the last expiry and up to `as_of`: most days none
        does, and then the day needs no transaction (one index probe, the range the
        expiry itself would read)."""
        return self.conn.execute(
            "SELECT 1 FROM postings WHERE expires IS NOT NULL AND expires > ? AND expires <= ? LIMIT 1",
            (self.expired_upto.isoformat(), as_of.isoformat())).fetchone() is not None

    def mark(self) -> None:
        marker = marker_entry(self.until, self.wm, self.rules.hashes, recorded=self.recorded,
                              extra=self.marker_extra)
        with self.own():
            found = self.journal.entry_by_key(marker.key)
            seal(self.conn, found.seq if found is not None else self.journal.append([marker])[0].seq)

    # --- a campaign checkpoint: one transaction
    def period_draws(self, lc: LoadedCampaign, period: Period) -> dict[str, frozenset[str]]:
        """The drawn lotteries of a period, award -> winners; a draw made at a checkpoint
        is added when the checkpoint commits. (What each member was paid is not cached:
        it is read from the journal at each checkpoint, in member order: engine.paid.PaidHistory.)"""
        key = (lc.name, period.id)
        draws = self._draws.pop(key, None)
        if draws is None:
            draws = load_draws(self.conn, lc.name, period.id)
        self._draws[key] = draws  # most recently used last
        while len(self._draws) > self.MAX_DRAWS:  # an evicted one reloads from the journal
            self._draws.pop(next(iter(self._draws)))
        return draws

    def head(self) -> int:
        """The journal's last seq (the rowid: an O(1) look-up)."""
        return self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0]

    @contextlib.contextmanager
    def own(self):
        """One step of this run in its own transaction. The journal's head is noted
        before the lock is released, so a different head at the next step can only
        mean that another process wrote in between."""
        with self.journal.transaction():
            yield
            self.last_seq = self.head()

    def checkpoint(self, lc: LoadedCampaign, cp: Checkpoint) -> None:
        try:
            with self.own():
                if self.head() != self.last_seq:  # another process wrote: cached draws are stale
                    self._draws.clear()
                # The campaign's report (and its member tally's TEMP table) is made before
                # the checkpoint's queries start: a schema change aborts running statements.
                report = self.report.campaign(lc.name)
                draws = self.period_draws(lc, cp.period)
                ctx = CheckpointContext(
                    conn=self.conn, journal=self.journal, until=self.until, watermark=self.wm,
                    recorded=self.recorded, expired_upto=self.expired_upto, draws=draws,
                    awarded=report.members.add, key_tag=self.key_tags.get(lc.name, ""))
                result = Checkpointer(ctx, lc, cp).run()
        except BaseException:
            self._draws.clear()  # memory may be ahead of the rollback
            raise
        self.fold(report, draws, result)

    def fold(self, report: CampaignReport, draws: dict, result: CheckpointResult) -> None:
        """A committed checkpoint's figures into the report, its draws into the cache."""
        draws.update(result.draws)
        report.entries += result.grants + result.reversals
        report.points += result.points
        report.reversals += result.reversals
        report.reversed_points += result.reversed_points
        report.draws += len(result.draws)
        report.winners += result.winners
        report.refused.extend(result.refused)
        self.report.entries += result.entries
        # A grant of a lot already past the last expiry: the next expiry reads every lot.
        self.stale_lots = self.stale_lots or result.stale_lots

def _task_order(task, run_order: tuple[str, ...] = ()) -> tuple:
    # A campaign's checkpoints after those of the campaigns whose awards it reads.
    rank = {"fund": 0, "checkpoint": 1, "redeem": 2}[task[0]]
    name = task[1].name if len(task) > 1 else ""
    return (rank, run_order.index(name) if name in run_order else len(run_order), name)
