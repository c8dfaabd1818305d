"""Run a compiled plan against the stored events: one `MemberEnv` per member, streamed.

The main query and each side query return rows ordered by member; they are
merged here member by member, so memory stays flat however many events there
are. Every query sees only the events visible at the evaluation date (`asof`,
end of that day) and imported up to the watermark (`wm`, an events.seq), which
is what makes a past evaluation reproducible by an auditor.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
from typing import Any, Iterator

import apsw

from dsl import tables as tables_mod
from dsl.compiler import MemberEnv, Period, Plan

FAR_PAST, FAR_FUTURE = "0001-01-01", "9999-12-31"
EVENTS_SLOT = "__events__"  # JSON list of the member's event ids that belong to a stream


def source_events(env: MemberEnv) -> tuple[str, ...]:
    """The ids of the events an award of this member was derived from."""
    text = env.slots.get(EVENTS_SLOT)
    return tuple(sorted(json.loads(text))) if text else ()


def window_of(plan: Plan) -> tuple[dt.date | None, dt.date | None]:
    w = plan.campaign.window
    if w is None:
        return None, None
    return w.low.value, w.high.value


def query_params(plan: Plan, period: Period, asof: dt.date, wm: int, member: str | None) -> dict[str, Any]:
    wstart, wend = window_of(plan)
    params = dict(plan.params)
    params.update(
        asof=asof.isoformat(), wm=wm,
        wstart=wstart.isoformat() if wstart else FAR_PAST,
        wend=wend.isoformat() if wend else FAR_FUTURE,
        pstart=(period.start or wstart).isoformat() if (period.start or wstart) else FAR_PAST,
        pend=(period.end or wend).isoformat() if (period.end or wend) else FAR_FUTURE,
    )
    if member is not None:
        params["member"] = member if isinstance(member, str) else json.dumps(sorted(member))
    return params


def _sql(template: str, member, scans: tuple[str, str] = ("1", "1"), alias: str = "e") -> str:
    """The query for everyone, one member (a str) or a list of members (bound as JSON)."""
    template = template.replace("{scan}", scans[0] if member is None else scans[1])
    if member is None:
        restrict = ""
    elif isinstance(member, str):
        restrict = f"AND {alias}.member = :member"
    else:
        restrict = f"AND {alias}.member IN (SELECT value FROM json_each(:member))"
    return template.replace("{members}", restrict)


def install_tables(conn: apsw.Connection, plan: Plan) -> None:
    for table in plan.tables.values():
        tables_mod.install(conn, table)


def _main_rows(conn, plan: Plan, params, member) -> Iterator[tuple[str, dict]]:
    names = [slot for slot, _ in plan.main_slots] + [EVENTS_SLOT]
    for row in conn.execute(_sql(plan.main_sql, member, plan.main_scans), params):
        yield row[0], dict(zip(names, row[1:]))


def _side_rows(conn, plan: Plan, side, params, member) -> Iterator[tuple[str, dict]]:
    if side.kind == "reaching":
        for m, day in conn.execute(_sql(side.sql, member, side.scans), params):
            yield m, {side.slot: day}
        return
    group = side.group
    names = [slot for slot, _ in group.slots]
    current, total = None, 0
    env = MemberEnv(plan, None, {}, None)  # one env reused for every tier row
    body, key_slot = group.body, group.key_slot
    for row in conn.execute(_sql(side.sql, member, side.scans), params):
        m = row[0]
        if m != current:
            if current is not None:
                yield current, {side.slot: total}
            current, total = m, 0
        slots = dict(zip(names, row[2:]))
        slots[key_slot] = row[1]
        env.member, env.slots = m, slots
        total = total + (body(env) or 0)
    if current is not None:
        yield current, {side.slot: total}


def evaluate(conn: apsw.Connection, plan: Plan, period: Period, asof: dt.date, wm: int,
             member: str | list[str] | tuple[str, ...] | None = None) -> Iterator[MemberEnv]:
    """Every member with events in the plan's streams, with their aggregates, in member order
    (or only `member`, or only the members of a list)."""
    install_tables(conn, plan)
    params = query_params(plan, period, asof, wm, member)
    sources = [_main_rows(conn, plan, params, member)]
    sources += [_side_rows(conn, plan, side, params, member) for side in plan.side]
    merged = heapq.merge(*[((m, i, slots) for m, slots in src) for i, src in enumerate(sources)],
                         key=lambda t: (t[0], t[1]))
    current, slots = None, {}
    for m, _, part in merged:
        if m != current:
            if current is not None:
                yield MemberEnv(plan, current, slots, period)
            current, slots = m, {}
        slots.update(part)
    if current is not None:
        yield MemberEnv(plan, current, slots, period)
