"""What a run must not do on data that has not arrived, and what it says about late data.

The journal is append-only and most steps of a run correct themselves: an award
settled on incomplete events is recomputed at the next checkpoint and the
difference posted as a linked correction. A lottery draw does not: its winners
are final. So a draw waits for its events:

- the **cut-off** is the last day through which the events are known to be
  complete: the operator's latest `points close-events --through DATE` (table
  `closings`), or else the day of the latest imported event (events arrive in
  time order, so that day is how far the data reaches); with no event at all,
  there is no cut-off;
- a run whose range includes a draw of a period ending after the cut-off is
  refused before it writes anything (`refusal`), naming the draw, the period's
  end and the cut-off;
- a settlement of a period that ends after the cut-off is done (it corrects
  itself later) and reported as provisional (`provisional`);
- events imported since the previous run that belong to a period already settled
  or drawn are reported with what becomes of them (`late_events`).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterator

import apsw
import attrs

from points.dsl.evaluator import window_of
from points.dsl.loader import LoadedCampaign, RuleSet
from points.dsl.plan import Period
from points.engine.calendar import period_pay_date, periods_of
from points.engine.lottery import load_draws
from points.ledger import db


@attrs.frozen
class Cutoff:
    day: dt.date | None
    source: str  # how it is known, for messages

    def covers(self, day: dt.date) -> bool:
        return self.day is not None and day <= self.day


@attrs.frozen
class PendingDraw:
    campaign: str
    award: str
    period: str
    draw_day: dt.date
    data_end: dt.date  # the last day of the period's events


def cutoff(conn: apsw.Connection) -> Cutoff:
    """The cut-off of the database: declared, or the latest event's day, or none."""
    row = conn.execute("SELECT through FROM closings ORDER BY seq DESC LIMIT 1").fetchone()
    if row is not None:
        return Cutoff(dt.date.fromisoformat(row[0]), "declared with points close-events")
    (day,) = conn.execute("SELECT MAX(day) FROM events").fetchone()
    if day is not None:
        return Cutoff(dt.date.fromisoformat(day), "the day of the latest imported event")
    return Cutoff(None, "no event imported yet")


def close_events(conn: apsw.Connection, through: dt.date, note: str = "") -> None:
    """Record that every event up to the end of `through` (Asia/Tokyo) is imported."""
    declared = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    with db.transaction(conn):
        conn.execute("INSERT INTO closings (through, declared, note) VALUES (?, ?, ?)",
                     (through.isoformat(), declared, note))


def _periods(conn, lc: LoadedCampaign, until: dt.date) -> Iterator[tuple[Period, dt.date | None]]:
    (wm,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
    for period in periods_of(conn, lc.plan, until, wm):
        yield period, period.end or window_of(lc.plan)[1]


def pending_draws(conn: apsw.Connection, rules: RuleSet, until: dt.date) -> list[PendingDraw]:
    """Every lottery a run until `until` would draw (due by then, not drawn yet)."""
    out = []
    for lc in rules.campaigns:
        lotteries = [a for a in lc.plan.awards.values() if a.lottery is not None]
        if not lotteries:
            continue
        for period, end in _periods(conn, lc, until):
            drawn = load_draws(conn, lc.name, period.id)
            for award in lotteries:
                day = period_pay_date(award.pay, lc.plan, period)
                if award.name in drawn or day is None or day > until:
                    continue
                out.append(PendingDraw(lc.name, award.name, period.id, day, end or day))
    return sorted(out, key=lambda p: (p.draw_day, p.campaign, p.award))


def refusal(conn: apsw.Connection, rules: RuleSet, until: dt.date) -> str | None:
    """Why a run until `until` must not start (one line), or None."""
    cut = cutoff(conn)
    blocked = [p for p in pending_draws(conn, rules, until) if not cut.covers(p.data_end)]
    if not blocked:
        return None
    p = blocked[0]
    known = (f"events are complete only through {cut.day} ({cut.source})" if cut.day
             else "no event has been imported yet")
    more = f" (and {len(blocked) - 1} more draws)" if len(blocked) > 1 else ""
    return (f"run refused: the {p.campaign} lottery {p.award} would be drawn on {p.draw_day} "
            f"from events through {p.data_end}, but {known}{more}; "
            f"import the missing events, or declare them complete with "
            f"points close-events --through {p.data_end}, or run --until {p.draw_day - dt.timedelta(days=1)}")


def provisional(conn: apsw.Connection, rules: RuleSet, until: dt.date) -> list[dict]:
    """Periods that a run until `until` settles (pays) before their events are known
    complete: paid now, corrected by later runs as the missing events arrive."""
    cut = cutoff(conn)
    out = []
    for lc in rules.campaigns:
        plain = [a for a in lc.plan.awards.values() if a.lottery is None]
        for period, end in _periods(conn, lc, until):
            days = [d for a in plain if (d := period_pay_date(a.pay, lc.plan, period)) is not None]
            if end is None or not days or min(days) > until or cut.covers(end):
                continue
            out.append({"campaign": lc.name, "period": period.id, "pay": min(days).isoformat(),
                        "events_through": end.isoformat(),
                        "complete_through": cut.day.isoformat() if cut.day else None})
    return out


def late_events(conn: apsw.Connection, rules: RuleSet) -> list[dict]:
    """Events imported since the previous run that belong to a period already settled
    or drawn, per campaign and period, with what becomes of them."""
    (since,) = conn.execute(
        "SELECT MAX(CAST(json_extract(memo, '$.watermark') AS INTEGER)) FROM entries "
        "WHERE step = 'run' AND json_valid(memo)").fetchone()
    if since is None:  # no run yet: nothing can be late
        return []
    out = []
    for lc in rules.campaigns:
        plan = lc.plan
        types = sorted(set(plan.types))
        undo = sorted(set(plan.undo_types))
        for (pid, first) in conn.execute(
                "SELECT substr(step, 1, instr(step, ':') - 1), MIN(effective) FROM entries "
                "WHERE campaign = ? AND step LIKE '%:%' GROUP BY 1", (lc.name,)).fetchall():
            period = next((p for p, _ in _periods(conn, lc, dt.date.fromisoformat(first)) if p.id == pid), None)
            end = (period.end if period is not None else None) or window_of(plan)[1]
            if end is None:
                continue
            n = _count_late(conn, since, types, undo, end)
            if not n:
                continue
            drawn = conn.execute(
                "SELECT MIN(effective) FROM entries WHERE campaign = ? AND step LIKE ? "
                "AND substr(step, -5) = ':draw'", (lc.name, f"{pid}:%")).fetchone()[0]
            if drawn:
                what = (f"its lottery was drawn on {drawn}: they cannot change who won; "
                        "a winner's award is recomputed with them (a cancellation is reversed)")
            else:
                what = (f"it was settled on {first}: they are counted now and the difference "
                        "is posted as a correction linked to what was paid")
            out.append({"campaign": lc.name, "period": pid, "events": n, "settled": first,
                        "drawn": drawn, "outcome": what})
    return out


def _count_late(conn, since: int, types: list[str], undo: list[str], end: dt.date) -> int:
    import json

    (n,) = conn.execute(
        "SELECT COUNT(*) FROM events e WHERE e.seq > ? AND ("
        " (e.type IN (SELECT value FROM json_each(?)) AND e.day <= ?)"
        " OR (e.type IN (SELECT value FROM json_each(?)) AND EXISTS (SELECT 1 FROM events o"
        "     WHERE o.id = e.ref AND o.type IN (SELECT value FROM json_each(?)) AND o.day <= ?)))",
        (since, json.dumps(types), end.isoformat(), json.dumps(undo), json.dumps(types),
         end.isoformat())).fetchone()
    return n


# ---------------------------------------------------------------- awards, before the run writes

MAX_POINTS = 2**63 - 1  # SQLite INTEGER


def _may_be_unsafe(node) -> bool:
    """Does a campaign's text hold arithmetic that can make an award fractional or
    too big (`/`, `*`, a percentage or fraction)? Without it, awards are sums,
    counts, caps and literals of 64-bit integers: nothing to validate ahead."""
    from fractions import Fraction

    from points.dsl import ast

    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.BinOp) and n.op in ("/", "*"):
            return True
        if isinstance(n, ast.Literal) and isinstance(n.value, Fraction):
            return True
        if isinstance(n, (tuple, list)):
            stack.extend(n)
        elif attrs.has(type(n)):
            stack.extend(getattr(n, f.name) for f in attrs.fields(type(n)) if f.name != "span")
    return False


def awards_to_validate(rules: RuleSet, events: int) -> list[tuple[LoadedCampaign, list]]:
    """The campaigns whose awards a run must evaluate ahead, each with those awards:
    the ones with `/`, `*` or a percentage that the text does not prove whole, within
    64 bits and free of division by zero with `events` events in the database
    (dsl.wholeness). Empty when every award is proven: the run then evaluates nothing
    twice."""
    from points.dsl.wholeness import prove_awards

    out = []
    for lc in rules.campaigns:
        if not _may_be_unsafe(lc.plan.campaign):
            continue
        proofs = prove_awards(lc.plan.campaign, lc.plan.tables, rules.catalogue)
        todo = [a for a in lc.plan.awards.values() if not proofs[a.name].safe(events)]
        if todo:
            out.append((lc, todo))
    return out


def invalid_award(conn: apsw.Connection, rules: RuleSet, until: dt.date) -> str | None:
    """The first award a run until `until` could not write (not a whole number, or
    beyond 64 bits), found by evaluating each period once with the events known
    now -- before the run writes any entry -- or None.

    Only the awards of `awards_to_validate` are evaluated (with `/`, `*` or
    percentages, and not proven safe by their text); the run checks every award
    again as it settles."""
    from points.dsl.compiler import whole
    from points.dsl.evaluator import evaluate
    from points.dsl.runtime import DivisionByZero

    from points.engine.runs import completed_until

    (wm,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
    done = completed_until(conn, wm, rules.hashes)
    if done is not None and done >= until:
        return None  # an earlier run did all of it with these events and rules: a no-op
    for lc, todo in awards_to_validate(rules, wm):
        for period, _ in _periods(conn, lc, until):
            days = [period_pay_date(a.pay, lc.plan, period) for a in lc.plan.awards.values()]
            if days and all(d is not None and d > until for d in days):
                continue  # nothing of this period is paid by `until`
            for env in evaluate(conn, lc.plan, period, until, wm):
                for award in todo:
                    where = f"{lc.file}: campaign {lc.name}, award {award.name} of member {env.member}"
                    try:
                        if not award.when(env):
                            continue
                        amount = whole(award.amount(env))
                    except DivisionByZero as exc:
                        return f"{where}: {exc}; nothing was written"
                    if amount is None:
                        continue
                    if not isinstance(amount, int):
                        return (f"{where} is {float(amount):g} points, not a whole number: round it with "
                                "floor(), ceil(), trunc() or round(); nothing was written")
                    if abs(amount) > MAX_POINTS:
                        return (f"{where} is {amount:,} points, beyond the 64-bit range "
                                f"({MAX_POINTS:,}); nothing was written")
    return None
