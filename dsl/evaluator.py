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

from points.dsl import tables as tables_mod
from points.dsl.compiler import MemberEnv, Period, Plan, Scan
from points.ledger.db import page_cache

FAR_PAST, FAR_FUTURE = "0001-01-01", "9999-12-31"
EVENTS_SLOT = "__events__"  # JSON list of the member's event ids that belong to a stream


def source_events(env: MemberEnv) -> tuple[str, ...]:
    """The ids of the events an award of this member was derived from."""
    text = env.slots.get(EVENTS_SLOT)
    return tuple(sorted(id_list(text))) if text else ()


def id_list(text: str) -> list[str]:
    """The strings of a JSON array of strings as SQLite's json_group_array writes it
    (`["a","b"]`, no spaces). Without a backslash there is no escape in it -- a quote
    inside an id would be `\\"` -- so splitting on `","` is exact and much cheaper than
    json.loads, which matters at one grant per member of a card cycle."""
    if "\\" in text or not text.startswith('["'):
        return json.loads(text)
    return text[2:-2].split('","')


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


def _sql(template: str, member, scan: str = "1", alias: str = "e") -> str:
    """The query for everyone, one member (a str) or a list of members (bound as JSON),
    with `scan` as its {scan} clause (see `scan_clause`)."""
    template = template.replace("{scan}", scan)
    if member is None:
        restrict = ""
    elif isinstance(member, str):
        restrict = f"AND {alias}.member = :member"
    else:
        restrict = f"AND {alias}.member IN (SELECT value FROM json_each(:member))"
    return template.replace("{members}", restrict)


# Reading the rows wanted in rowid order costs about three times a row of a pass over the
# whole table (measured: docs/benchmarks.md): past a third of the table, one pass is cheaper.
WHOLE_TABLE_SHARE = 3


def scan_clause(conn, scan: Scan, params, member) -> str:
    """The {scan} clause of a query: by member, or for everyone by index or by one pass
    over the table, whichever reads less (the (type, day) index counts the rows)."""
    if member is not None:
        return scan.by_member
    if scan.by_index == scan.by_table:
        return scan.by_index
    (wanted,) = conn.execute(scan.count, params).fetchone()
    return scan.by_table if wanted * WHOLE_TABLE_SHARE > params["wm"] else scan.by_index


def install_tables(conn: apsw.Connection, plan: Plan) -> None:
    for table in plan.tables.values():
        tables_mod.install(conn, table)


# SQLite sizes a sorter's in-memory runs by the page cache (`cache_size`). With the 64 MiB
# cache the journal sets, a GROUP BY over a million rows sorts one huge list, slower than
# merging small runs (docs/benchmarks.md); queries over everyone start with this much instead. The sorter reads the size when the statement starts, so
# the cache is given back as soon as the first row is there.
SORT_CACHE_KIB = 2000


def _execute(conn, sql: str, params, member):
    if member is not None:  # a member or a list: a small sort; keep the cache as it is
        return conn.execute(sql, params)
    (cache,) = conn.execute("PRAGMA cache_size").fetchone()
    if 0 <= cache or -cache <= SORT_CACHE_KIB:
        return conn.execute(sql, params)
    with page_cache(conn, SORT_CACHE_KIB):
        return conn.execute(sql, params)


def _rows(conn, template: str, scans: Scan, params, member):
    """A query of the plan (main or side) run for everyone, one member or a list."""
    scan = scan_clause(conn, scans, params, member)
    return _execute(conn, _sql(template, member, scan), params, member)


def _main_rows(conn, plan: Plan, params, member) -> Iterator[tuple[str, dict]]:
    rows = _rows(conn, plan.main_sql, plan.main_scans, params, member)
    if plan.folded is not None:
        yield from _folded_rows(plan, rows)
        return
    names = [slot for slot, _ in plan.main_slots] + [EVENTS_SLOT]
    for row in rows:
        yield row[0], dict(zip(names, row[1:]))


def _sqlite_order(value):
    """Sort key matching SQLite's MIN/MAX across storage classes: numbers < text < blob."""
    if isinstance(value, (int, float)):
        return 0, value
    return (1, value) if isinstance(value, str) else (2, value)


def _add(a, b):
    return b if a is None else a if b is None else a + b


def _min(a, b):
    return b if a is None else a if b is None else min(a, b, key=_sqlite_order)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b, key=_sqlite_order)


# How the main aggregates of two tier rows of a member merge (compiler.FOLD_KINDS).
_MERGE = {"sum": _add, "count": _add, "exists": _add, "any": _max, "all": _min,
          "min": _min, "first": _min, "max": _max, "last": _max}


def _folded_rows(plan: Plan, rows) -> Iterator[tuple[str, dict]]:
    """Rows (member, in tier stream, tier key, main partials..., tier aggregates...,
    [body,] ids) grouped by member: the partials merged, the `sum over` body summed over
    the tiers (as its own side query would, in the same key order), the id lists joined.
    The body is SQL's when the plan has it (dsl.compile_tier) and it came out an integer
    (with an integer key, if it reads the key); else the closure's, from the row."""
    side = plan.folded
    group = side.group
    names = [slot for slot, _ in plan.main_slots]
    merge = [_MERGE[kind] for _, kind in plan.main_slots]
    n = len(names)
    tier_names = [slot for slot, _ in group.slots]
    body, key_slot = group.body, group.key_slot
    # The tier aggregates end before the SQL body (if any) and the ids.
    end = -2 if group.body_sql is not None else -1
    in_sql, key_read = group.body_sql is not None, group.body_key
    adds = n > 0 and all(f is _add for f in merge)
    env = MemberEnv(plan, None, {}, None)  # one env reused for every tier row
    current, acc, ids, total, tiers = None, [], [], 0, False

    def member_slots() -> dict:
        slots = dict(zip(names, acc))
        # Each part is a JSON array (`[]` when none of its rows is in a stream).
        slots[EVENTS_SLOT] = ids[0] if len(ids) == 1 else "[" + ",".join(t[1:-1] for t in ids if len(t) > 2) + "]"
        if tiers:  # a member without tier rows has no value here, as with a side query
            slots[side.slot] = total
        return slots

    for row in rows:
        m = row[0]
        if m != current:
            if current is not None:
                yield current, member_slots()
            current, acc, ids, total, tiers = m, list(row[3:3 + n]), [row[-1]], 0, False
        else:
            if adds:  # every partial a sum or a count: no call per value
                acc = [b if a is None else a if b is None else a + b for a, b in zip(acc, row[3:3 + n])]
            elif n:
                acc = [f(a, b) for f, a, b in zip(merge, acc, row[3:3 + n])]
            ids.append(row[-1])
        if row[1]:
            if in_sql and type(v := row[-2]) is int and (not key_read or type(row[2]) is int):
                total, tiers = total + v, True
                continue
            env.slots = tier = dict(zip(tier_names, row[3 + n:end]))
            tier[key_slot] = row[2]
            env.member = m
            total, tiers = total + (body(env) or 0), True
    if current is not None:
        yield current, member_slots()


def _side_rows(conn, plan: Plan, side, params, member) -> Iterator[tuple[str, dict]]:
    if side.kind in ("reaching", "value"):  # one value per member
        for m, day in _rows(conn, side.sql, side.scans, params, member):
            yield m, {side.slot: day}
        return
    group = side.group
    names = [slot for slot, _ in group.slots]
    current, total = None, 0
    env = MemberEnv(plan, None, {}, None)  # one env reused for every tier row
    body, key_slot = group.body, group.key_slot
    for row in _rows(conn, side.sql, side.scans, params, member):
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
    if len(sources) == 1:  # nothing to merge (a folded `sum over`, or no side query)
        for m, slots in sources[0]:
            yield MemberEnv(plan, m, slots, period)
        return
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


def tier_breakdown(conn: apsw.Connection, plan: Plan, period: Period, asof: dt.date, wm: int,
                   member: str) -> list[dict]:
    """Each `sum over STREAM by KEY: (body)` of one member, tier by tier, from the same
    rows and body the evaluation sums (explain shows them): a list of {"stream", "slot",
    "tiers": [(key, body value), ...]} in key order."""
    install_tables(conn, plan)
    params = query_params(plan, period, asof, wm, member)
    out = []
    for side in (*plan.side, *((plan.folded,) if plan.folded is not None else ())):
        if side.kind != "group":
            continue
        group = side.group
        names = [slot for slot, _ in group.slots]
        env = MemberEnv(plan, member, {}, period)
        tiers = []
        for row in _rows(conn, side.sql, side.scans, params, member):
            env.slots = dict(zip(names, row[2:]))
            env.slots[group.key_slot] = row[1]
            tiers.append((row[1], group.body(env)))
        out.append({"stream": group.stream, "slot": side.slot, "tiers": tiers})
    return out
