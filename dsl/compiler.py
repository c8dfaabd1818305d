"""AST -> Plan: SQL for what is per event, Python closures for what is per member.

A checked campaign compiles to a `Plan` (`dsl.plan`):
- every stream becomes a SQL predicate over the `events` table (type, `where`,
  not undone by a cancel/refund/stopover, visible at the evaluation date);
- every aggregate (`sum(booking.amount)`, `count(pay where amount >= 500)`, ...)
  becomes one column of a single GROUP BY member query, so filtering and
  aggregation run inside SQLite, streaming one row per member;
- aggregates that need their own pass (running sums, tiers) get their own query,
  also ordered by member, merged with the main one -- except the first `sum over`,
  which the main query computes in the same pass when it can;
- per-member values and award conditions/amounts become Python closures over the
  aggregated row (`dsl.runtime`).

The work is split along the two back ends: `dsl.compile_sql` (per-event SQL),
`dsl.compile_queries` (the main and side queries made of it) and
`dsl.compile_member` (per-member closures). This module is the public face:
`compile_campaign` and the plan types.
"""

from __future__ import annotations

from typing import Any, Hashable

from points.dsl import ast
from points.dsl.compile_member import MemberCode
from points.dsl.compile_queries import Queries
from points.dsl.compile_sql import EventSql
from points.dsl.pay_bounds import pay_bound
from points.dsl.plan import (  # noqa: F401 (the public types of the compiler)
    ENTRY_STREAM, AwardPlan, Closure, CompileError, GroupPlan, MemberEnv, Period, Plan, Scan, SideQuery,
)
from points.dsl.runtime import to_date, whole  # noqa: F401 (re-exported)
from points.dsl.tables import Table

__all__ = ["AwardPlan", "CompileError", "MemberEnv", "Period", "Plan", "Scan", "SideQuery", "GroupPlan",
           "compile_campaign", "entered_condition", "to_date", "whole"]


def entered_condition(campaign: ast.Campaign, span: ast.Span) -> ast.Expr | None:
    """The condition every award of a campaign with `entry required` has first: the
    member has an entry event (None for a campaign without entry)."""
    if campaign.entry is None:
        return None
    return ast.Call("exists", (ast.Name(ENTRY_STREAM, span),), span)


def compile_campaign(campaign: ast.Campaign, tables: dict[str, Table], *,
                     probes: dict[Hashable, ast.Expr] | None = None,
                     event_probes: dict[Hashable, tuple[str, ast.Expr]] | None = None,
                     fold: bool = True, join_lookups: bool = True) -> Plan:
    """Compile one checked campaign into an executable plan.

    `probes`: further per-member expressions (key -> expression of the campaign's
    scope) compiled over the same row; `plan.probes[key]` computes each one for a
    member (explain shows every conjunct of a condition this way). `event_probes`:
    per-event expressions (key -> (stream name, expression of that stream's scope));
    `plan.event_probes[key]` is SQL over one event row aliased `e`, bound with
    `plan.params` (explain tests each conjunct of a stream filter on each event this
    way; compile with `join_lookups=False` so that no lookup needs the main query's
    joins). `fold=False` and
    `join_lookups=False` turn off two optimisations of the main query (the result is
    the same; the tests compare both)."""
    sql = EventSql(campaign, tables, join_lookups=join_lookups)
    queries = Queries(sql, fold=fold)
    code = MemberCode(queries)
    probe_code: dict[Any, Closure] = {}
    for key, node in (probes or {}).items():
        probe_code[key] = code.closure(node)
    values = {v.name: code.closure(v.expr) for v in campaign.values}
    awards = {}
    for a in campaign.awards:
        amount = code.closure(a.amount)
        cond = code.closure(a.when) if a.when is not None else (lambda env: True)
        entered = entered_condition(campaign, a.span)
        if entered is not None:
            entered_fn, base_cond = code.closure(entered), cond
            cond = lambda env, base_cond=base_cond, entered=entered_fn: entered(env) and base_cond(env)  # noqa: E731
        pay = a.pay or campaign.payday
        pay_after = code.closure(pay.after) if isinstance(pay, ast.PayMonthAfter) else None
        pay_last = pay_bound(pay.after, campaign) if isinstance(pay, ast.PayMonthAfter) else None
        awards[a.name] = AwardPlan(a.name, a.label, a.kind, amount, cond, pay, pay_after,
                                   a.expiry, a.lottery, a, pay_last)
    arrival = None  # before the main query is built: its slots are columns of it
    if campaign.budget is not None and campaign.budget.policy == "first come first served":
        firsts = [code.closure(ast.Call("first", (ast.Dotted(s.name, "at", s.span),), s.span))
                  for s in campaign.streams]
        arrival = lambda env: min((t for f in firsts if (t := f(env)) is not None), default=None)  # noqa: E731
    streams = sql.streams
    types = tuple(sorted({s.event_type for s in streams.values()}))
    main_scans = sql.scans(list(streams), "e")
    folded = queries.foldable_group()
    main_sql = queries.main_query(folded)
    match_sql = {name: sql.match(name, "e") for name in streams}
    match_sql_undone = {name: sql.match(name, "e", undone=False) for name in streams}
    type_params = ", ".join(sql.param(t) for t in types)
    undo = tuple(sorted({t for s in streams.values() for t in s.undone_by}))
    undo_params = ", ".join(sql.param(t) for t in undo)
    # Last: the probes' parameters then never renumber those of the run's own queries.
    event_probe_sql = {key: sql.ev(node, sql.streams[stream], "e")
                       for key, (stream, node) in (event_probes or {}).items()}
    return Plan(
        campaign=campaign, main_sql=main_sql, main_slots=tuple(queries.main_slots), main_scans=main_scans,
        side=tuple(q for q in queries.side if q is not folded), folded=folded,
        params=dict(sql.params), types=types, values=values,
        value_order=tuple(v.name for v in campaign.values), awards=awards, streams=dict(streams),
        match_sql=match_sql, match_sql_undone=match_sql_undone, type_params=type_params,
        undo_params=undo_params, undo_types=undo, tables=tables, entry_stream=sql.entry_stream,
        probes=probe_code, event_probes=event_probe_sql, arrival=arrival,
    )
