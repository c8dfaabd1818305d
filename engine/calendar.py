"""The calendar of a campaign: its periods, payment and expiry dates, and checkpoints.

Pure date arithmetic over the compiled plan (and two read-only queries over the
events: which cycles have events, and which later days bring events that may
change a period's awards). `engine.workflow` turns this into the run's agenda.
"""

from __future__ import annotations

import datetime as dt

import attrs

from points.dsl import ast
from points.dsl.compiler import AwardPlan, MemberEnv, Period, Plan
from points.dsl.evaluator import install_tables, query_params, window_of
from points.ledger.dates import day_of_month_after, end_of_month, end_of_month_after

DEFAULT_EXPIRY_MONTHS = {"limited": 6, "basic": 12, "charge_only": 12}


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


def last_pay_check(award: AwardPlan, period: Period) -> dt.date | None:
    """The last day a per-member payment date (`on day N of month after EXPR`) of this
    award can fall on in the period: day N of the month after the latest date EXPR can
    have. None: nothing bounds EXPR, so payments are checked up to the run's end."""
    bound = award.pay_last(period) if award.pay_last is not None else None
    return None if bound is None else day_of_month_after(bound, 1, award.pay.day)


def expiry_date(award: AwardPlan, pay_date: dt.date) -> dt.date:
    if isinstance(award.expiry, ast.ExpiresOn):
        return award.expiry.date
    months = award.expiry.months if isinstance(award.expiry, ast.ExpiresAfter) else DEFAULT_EXPIRY_MONTHS.get(award.kind, 12)
    return end_of_month_after(pay_date, months)


# The distinct days of one event type: one (type, day) index search per day, jumping to
# the next day each time, instead of visiting every event of the type.
DAYS_OF_TYPE = """
WITH RECURSIVE d(day) AS (
  SELECT (SELECT MIN(day) FROM events WHERE type = :type AND day <= :until AND seq <= :wm)
  UNION ALL
  SELECT (SELECT MIN(day) FROM events WHERE type = :type AND day > d.day AND day <= :until AND seq <= :wm)
  FROM d WHERE d.day IS NOT NULL
) SELECT day FROM d WHERE day IS NOT NULL"""


def period_of_day(cycle: ast.Cycle, d: dt.date) -> Period:
    """The period of a cycle that holds day d. Ids: "YYYY-MM" for a month (a day A..B
    cycle is named by the month it ends in), "YYYY-Www" for an ISO week (monday to
    sunday), "YYYY" for a year."""
    if cycle.calendar == "month":
        return Period(f"{d.year:04d}-{d.month:02d}", d.replace(day=1), end_of_month(d.year, d.month))
    if cycle.calendar == "week":
        start = d - dt.timedelta(days=d.weekday())
        year, week, _ = start.isocalendar()
        return Period(f"{year:04d}-W{week:02d}", start, start + dt.timedelta(days=6))
    if cycle.calendar == "year":
        return Period(f"{d.year:04d}", dt.date(d.year, 1, 1), dt.date(d.year, 12, 31))
    if d.day <= cycle.end_day:
        year, month = d.year, d.month
    else:
        year, month = (d + dt.timedelta(days=32 - d.day)).timetuple()[:2]
    end = dt.date(year, month, cycle.end_day)
    return Period(f"{year:04d}-{month:02d}", day_of_month_after(end, -1, cycle.start_day), end)


def periods_of(conn, plan: Plan, until: dt.date, wm: int) -> list[Period]:
    """The campaign's window, or every period of its cycle that holds an event of one
    of its streams' types (up to `until`), in order."""
    c = plan.campaign
    if c.cycle is None:
        lo, hi = window_of(plan)
        return [Period("main", lo, hi)]
    days = {day for t in plan.types for (day,) in conn.execute(
        DAYS_OF_TYPE, {"type": t, "until": until.isoformat(), "wm": wm})}
    periods = {period_of_day(c.cycle, dt.date.fromisoformat(day)) for day in days}
    return sorted(periods, key=lambda p: p.start)


@attrs.frozen
class Checkpoint:
    day: dt.date
    campaign: str
    period: Period
    everyone: bool  # False: only the members of `relevant_members` that day


def _relevance_queries(plan: Plan, select: tuple[str, str], days: str) -> list[str]:
    """The queries for events that may change a period's awards: `select` is what to
    return of the event itself and of an undo event; `days` bounds `{e}.day`."""
    any_match = " OR ".join(f"({sql})" for sql in plan.match_sql.values())
    out = [f"SELECT DISTINCT {select[0]} FROM events e WHERE e.type IN ({plan.type_params}) "
           f"AND {days.format(e='e')} AND e.seq <= :wm AND ({any_match})"]
    if plan.undo_types:
        # The cancelled event no longer matches its stream (it is undone): test what
        # it was before, the stream's predicate without its undo clause.
        as_before = " OR ".join(f"({sql})" for sql in plan.match_sql_undone.values())
        out.append(f"SELECT DISTINCT {select[1]} FROM events u JOIN events e ON e.id = u.ref "
                   f"WHERE u.type IN ({plan.undo_params}) AND {days.format(e='u')} "
                   f"AND u.seq <= :wm AND e.seq <= :wm AND ({as_before})")
    # A stream `credited to FIELD` changes the awards of the member the field names.
    for name, s in plan.streams.items():
        if s.credited_to is None or select[0] != "e.member":
            continue
        who = f"json_extract(e.body, '$.{s.credited_to}')"  # a declared field name
        out.append(f"SELECT DISTINCT {who} FROM events e WHERE {days.format(e='e')} AND e.seq <= :wm "
                   f"AND ({plan.match_sql[name]})")
        if s.undone_by:
            out.append(f"SELECT DISTINCT {who} FROM events u JOIN events e ON e.id = u.ref "
                       f"WHERE {days.format(e='u')} AND u.seq <= :wm AND e.seq <= :wm "
                       f"AND ({plan.match_sql_undone[name]})")
    return out


def relevant_days(conn, plan: Plan, period: Period, after: dt.date, until: dt.date, wm: int) -> set[dt.date]:
    """Days after `after` with an event that may change this period's awards (their
    members are read when the run reaches the day: `relevant_members`)."""
    install_tables(conn, plan)
    params = query_params(plan, period, until, wm, None)
    params.update(after=after.isoformat(), until=until.isoformat())
    out = set()
    for sql in _relevance_queries(plan, ("e.day", "u.day"), "{e}.day > :after AND {e}.day <= :until"):
        out.update(dt.date.fromisoformat(day) for (day,) in conn.execute(sql, params))
    return out


def relevant_members(conn, plan: Plan, period: Period, day: dt.date, until: dt.date, wm: int) -> list[str]:
    """The members with an event on `day` that may change this period's awards, sorted
    (the same events as `relevant_days`, `until` its bound)."""
    install_tables(conn, plan)
    params = query_params(plan, period, until, wm, None)
    params.update(day=day.isoformat())
    out = set()
    for sql in _relevance_queries(plan, ("e.member", "u.member"), "{e}.day = :day"):
        out.update(member for (member,) in conn.execute(sql, params))
    return sorted(out)


def pay_dates_around(plan: Plan, day: dt.date) -> list[dt.date]:
    """The payment dates of a campaign's awards near `day`, sorted: of a monthly cycle, its
    periods from the month before `day` to two months after; of a window, every fixed
    date and every monthly date a per-member award (`on day N of the month after`) can
    take while the window lasts."""
    out: set[dt.date] = set()
    cycle = plan.campaign.cycle
    if cycle is not None:
        for k in range(-1, 3):
            end = day_of_month_after(day.replace(day=1), k, cycle.end_day)
            start = day_of_month_after(end, -1, cycle.start_day)
            period = Period(f"{end:%Y-%m}", start, end)
            out.update(d for a in plan.awards.values()
                       if (d := period_pay_date(a.pay, plan, period)) is not None)
        return sorted(out)
    lo, hi = window_of(plan)
    period = Period("main", lo, hi)
    for a in plan.awards.values():
        if isinstance(a.pay, ast.PayMonthAfter):
            if lo is not None and hi is not None:
                d = lo.replace(day=1)
                while d <= hi:
                    out.add(day_of_month_after(d, 1, a.pay.day))
                    d = day_of_month_after(d, 1, 1)
        elif (d := period_pay_date(a.pay, plan, period)) is not None:
            out.add(d)
    return sorted(out)


def next_pay_date(plan: Plan, after: dt.date | None, today: dt.date) -> dt.date | None:
    """A campaign's first payment date after `after` (None: its first one, looking
    around `today`)."""
    return next((d for d in pay_dates_around(plan, after or today) if after is None or d > after), None)
