"""The events behind an explanation: which of a member's events each stream counted,
which it left out and the condition that left each out; what caused a reversal.

Built on the compiler's public seams: `compile_campaign(..., event_probes=...)` gives
the SQL of each conjunct of a stream's filter over one event row, `Plan.match_sql`
(and `match_sql_undone`) the exact predicate the run uses, `evaluator.query_params`
the parameters of a period at a date. An event is counted when the run's predicate
holds and it is visible at the evaluation date; otherwise the first reason found, in
this order, left it out: not visible yet (dated after the date, or imported after
the run's last event), a filter conjunct that is false (with its source text), an
undoing event (cancel, refund, stopover: named), or the campaign entry it preceded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import apsw

from points.dsl import ast
from points.dsl.compiler import Period, Plan, compile_campaign
from points.dsl.evaluator import install_tables, query_params

MAX_LEFT_OUT = 50  # left-out events listed per stream and period; all are counted


def conjuncts(node) -> list:
    if isinstance(node, ast.BinOp) and node.op == "and":
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def source_text(source: str, span: ast.Span) -> str:
    lines = source.splitlines()
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1: span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1:]]
    parts += [lines[i].strip() for i in range(span.line, span.end_line - 1)]
    parts.append(lines[span.end_line - 1][: span.end_column - 1].strip())
    return " ".join(p.strip() for p in parts)


def event_plan(lc) -> tuple[Plan, dict[str, list[tuple[str, Any]]]]:
    """The campaign compiled with one event probe per conjunct of each stream filter;
    returns (plan, stream -> [(conjunct text, probe key)])."""
    c = lc.plan.campaign
    probes, texts = {}, {}
    for s in c.streams:
        items = []
        for i, conj in enumerate(conjuncts(s.where) if s.where is not None else []):
            key = ("filter", s.name, i)
            probes[key] = (s.name, conj)
            items.append((source_text(lc.source, conj.span), key))
        texts[s.name] = items
    try:
        plan = compile_campaign(c, lc.plan.tables, event_probes=probes, join_lookups=False)
    except Exception:  # noqa: BLE001 -- a construct the probes cannot take: the run's predicate only
        return lc.plan, {}
    return plan, texts


def stream_events(conn, plan: Plan, texts: dict, period: Period, as_of: dt.date, wm: int,
                  member: str) -> dict:
    """Per stream of the campaign: the member's events counted and left out (see module)."""
    install_tables(conn, plan)
    params = query_params(plan, period, as_of, wm, member)
    out = {}
    for name, stream in plan.streams.items():
        items = texts.get(name, [])
        probe_cols = "".join(f", COALESCE(({plan.event_probes[key]}), 0)" for _, key in items)
        sql = (f"SELECT e.seq, e.id, e.at, e.day, e.amount, ({plan.match_sql[name]}), "
               f"({plan.match_sql_undone[name]}){probe_cols} FROM events e "
               f"WHERE e.member = :member AND e.type = :stream_type ORDER BY e.at, e.seq")
        counted, left, n_left, n_other = [], [], 0, 0
        # A cycle's other events belong to other periods (counted there, not here).
        cycle = plan.campaign.cycle is not None and period.start and period.end
        lo = period.start.isoformat() if cycle else None
        hi = period.end.isoformat() if cycle else None
        args = {**params, "stream_type": stream.event_type}
        try:
            rows = list(conn.execute(sql, args))
        except apsw.Error:  # a probe SQLite refuses: say counted or not, without the condition
            items = []
            try:
                rows = list(conn.execute(sql.replace(probe_cols, ""), args))
            except apsw.Error as exc:
                out[name] = {"type": stream.event_type, "counted": [], "left_out": [],
                             "left_out_total": 0, "other_periods": 0, "by_day": [],
                             "error": f"events not listed: {exc}"}
                continue
        undoers = _undoers(conn, stream, [r[1] for r in rows], as_of, wm)
        for seq, eid, at, day, amount, match, would, *tests in rows:
            visible = day <= as_of.isoformat() and seq <= wm
            item = {"id": eid, "at": at, "amount": amount}
            if match and visible:
                counted.append(item)
                continue
            if lo is not None and hi is not None and not lo <= day <= hi:
                n_other += 1  # another cycle's event: listed under its own period
                continue
            n_left += 1
            if len(left) >= MAX_LEFT_OUT:
                continue
            if seq > wm:
                item["left_out_by"] = f"imported after the run's last event (#{wm})"
            elif day > as_of.isoformat():
                item["left_out_by"] = f"dated after {as_of.isoformat()}"
            else:
                failed = next((text for (text, _), ok in zip(items, tests) if not ok), None)
                if failed is not None:
                    item["left_out_by"] = f"condition `{failed}` is false"
                elif would and undoers.get(eid):
                    item["left_out_by"] = "undone by " + ", ".join(
                        f"{u['type']} {u['id']} ({u['at']})" for u in undoers[eid])
                    item["undone_by"] = [u["id"] for u in undoers[eid]]
                elif plan.entry_stream and name != plan.entry_stream:
                    item["left_out_by"] = "before the member's campaign entry"
                else:
                    item["left_out_by"] = "the stream's filter is false"
            left.append(item)
        label = "campaign entry" if name == plan.entry_stream else name
        out[label] = {"type": stream.event_type, "counted": counted, "left_out": left,
                      "left_out_total": n_left, "other_periods": n_other, "by_day": by_day(counted)}
    return out


def by_day(events: list[dict]) -> list[dict]:
    """Counted events per day: how many and their amounts."""
    days: dict[str, dict] = {}
    for e in events:
        d = days.setdefault(e["at"][:10], {"day": e["at"][:10], "events": 0, "amount": 0})
        d["events"] += 1
        d["amount"] += e["amount"] or 0
    return list(days.values())


def _undoers(conn, stream: ast.Stream, ids: list[str], as_of: dt.date, wm: int) -> dict[str, list]:
    """event id -> the cancel/refund/stopover events (visible at as_of) that name it."""
    if not stream.undone_by or not ids:
        return {}
    out: dict[str, list] = {}
    marks = ",".join("?" * len(stream.undone_by))
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for ref, uid, typ, at in conn.execute(
                f"SELECT ref, id, type, at FROM events WHERE ref IN ({','.join('?' * len(chunk))}) "
                f"AND type IN ({marks}) AND day <= ? AND seq <= ? ORDER BY at, seq",
                (*chunk, *stream.undone_by, as_of.isoformat(), wm)):
            out.setdefault(ref, []).append({"id": uid, "type": typ, "at": at})
    return out


def reversal_causes(conn, entry_events: tuple[str, ...], reversed_events: tuple[str, ...],
                    undo_types: tuple[str, ...], effective: str) -> list[dict]:
    """The events that made a reversal: the undoing events (visible on its date) of the
    events its grant counted and it no longer counts."""
    dropped = sorted(set(reversed_events) - set(entry_events))
    if not dropped or not undo_types:
        return []
    rows = conn.execute(
        f"SELECT id, type, at, ref FROM events WHERE ref IN ({','.join('?' * len(dropped))}) "
        f"AND type IN ({','.join('?' * len(undo_types))}) AND day <= ? ORDER BY at, seq",
        (*dropped, *undo_types, effective))
    return [{"id": i, "type": t, "at": at, "undoes": ref} for i, t, at, ref in rows]
