"""Why a member got what they got: each condition with its actual value, caps, lottery, entries.

The trace re-evaluates the campaign for one member at a date (by default the
date of the latest run) with the same compiled SQL as the run, and shows every
conjunct of every award's condition with its value, the amount expression and
the arguments of a cap (`min(spend, cap)`), the lottery outcome recorded in
the journal, and the entries that were posted.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from typing import Any

from points.dsl import ast
from points.dsl.compiler import MemberEnv, Period, compile_campaign, entered_condition
from points.dsl.evaluator import evaluate
from points.dsl.loader import RuleSet
from points.engine.calendar import expiry_date, member_pay_date, periods_of
from points.engine.runs import latest_run


class ExplainError(Exception):
    """Raised when explain is asked about a campaign that the rules do not define."""


def _show(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, list):
        return [_show(v) for v in value]
    return value


def source_text(source: str, span: ast.Span) -> str:
    lines = source.splitlines()
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1: span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1:]]
    parts += [lines[i].strip() for i in range(span.line, span.end_line - 1)]
    parts.append(lines[span.end_line - 1][: span.end_column - 1].strip())
    return " ".join(p.strip() for p in parts)


def conjuncts(node) -> list:
    if isinstance(node, ast.BinOp) and node.op == "and":
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def explain(conn, rules: RuleSet, member: str, campaign: str, as_of: dt.date | None = None) -> dict:
    """A JSON-able trace of one member in one campaign (see the module docstring)."""
    lc = rules.campaign(campaign)
    if lc is None:
        names = ", ".join(c.name for c in rules.campaigns)
        raise ExplainError(f"no campaign {campaign!r} in the rules (campaigns: {names})")
    last = latest_run(conn)
    # Before any run: every event stored so far.
    wm = last.watermark if last else conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    if as_of is None:
        as_of = last.until if last else dt.date.today()
    c = lc.plan.campaign

    # Each conjunct and cap argument compiled as a probe of its own over the same row.
    exprs: dict[tuple, ast.Expr] = {}
    labels: dict[str, list] = {}
    for a in c.awards:
        parts = []
        entered = entered_condition(c, a.span)
        if entered is not None:
            parts.append(("entered the campaign in its entry window", entered))
        for conj in conjuncts(a.when) if a.when is not None else []:
            parts.append((source_text(lc.source, conj.span), conj))
        caps = []
        if isinstance(a.amount, ast.Call) and a.amount.func in ("min", "max") and len(a.amount.args) > 1:
            caps = [(source_text(lc.source, arg.span), arg) for arg in a.amount.args]
        for kind, items in (("part", parts), ("cap", caps)):
            for i, (_, node) in enumerate(items):
                exprs[(a.name, kind, i)] = node
        labels[a.name] = [parts, caps]
    plan = compile_campaign(c, lc.plan.tables, probes=exprs)
    probes = {name: [[(text, plan.probes[(name, kind, i)]) for i, (text, _) in enumerate(items)]
                     for kind, items in (("part", parts), ("cap", caps))]
              for name, (parts, caps) in labels.items()}

    draws, entries = {}, []
    for seq, key, effective, step, memo, reverses in conn.execute(
            "SELECT seq, key, effective, step, memo, reverses FROM entries WHERE campaign = ? ORDER BY seq",
            (campaign,)):
        memo = json.loads(memo)
        if key.startswith("draw:"):
            draws[step.rsplit(":", 1)[0]] = memo
        elif memo.get("member") == member:
            points = {}
            for account, kind, amount in conn.execute(
                    "SELECT account, kind, amount FROM postings WHERE entry = ?", (seq,)):
                if account.split(":")[0] in ("member", "receivable"):
                    points[kind] = points.get(kind, 0) + amount
            entries.append({"seq": seq, "effective": effective, "what": key.split(":")[0],
                            "award": memo.get("award"), "period": memo.get("period"),
                            "points": points, "reverses": reverses, "refused": memo.get("refused")})

    periods = []
    for period in periods_of(conn, plan, as_of, wm):
        env = next(evaluate(conn, plan, period, as_of, wm, member=member), None)
        if env is None and plan.campaign.cycle is not None:
            continue
        periods.append(_period_trace(lc, plan, period, env, member, probes, draws, entries))
    return {
        "member": member, "campaign": campaign, "title": c.title, "document": c.document,
        "file": lc.file, "as_of": as_of.isoformat(), "events_seen": wm,
        "periods": periods, "entries": entries,
    }


def _period_trace(lc, plan, period: Period, env: MemberEnv | None, member, probes, draws, entries) -> dict:
    if env is None:
        env = MemberEnv(plan, member, {}, period)
    awards = []
    for name, a in plan.awards.items():
        parts, caps = probes[name]
        conditions = [{"condition": text, "value": _show(fn(env)), "ok": bool(fn(env))} for text, fn in parts]
        cleared = bool(a.when(env))
        pay_date = member_pay_date(a, plan, period, env)
        item = {
            "award": name, "label": a.label, "kind": a.kind,
            "conditions": conditions, "cleared": cleared,
            "amount_rule": source_text(lc.source, a.node.amount.span),
            "amount": _show(a.amount(env)) if cleared else 0,
            "caps": [{"term": text, "value": _show(fn(env))} for text, fn in caps],
            "pay_date": pay_date.isoformat() if pay_date else None,
            "expires": expiry_date(a, pay_date).isoformat() if pay_date else None,
            "paid": sum(sum(e["points"].values()) for e in entries
                        if e["award"] == name and e["period"] == period.id),
        }
        if a.lottery is not None:
            draw = draws.get(f"{period.id}:{name}")
            if draw is None:
                item["lottery"] = {"drawn": False}
            else:
                order = draw.get("order", [])
                item["lottery"] = {
                    "drawn": True, "seed": draw.get("seed"), "candidates": draw.get("candidates"),
                    "candidates_digest": draw.get("candidates_digest"), "rule": draw.get("rule"),
                    "position": order.index(member) + 1 if member in order else None,
                    "winner": member in draw.get("winners", []),
                }
        awards.append(item)
    return {
        "period": period.id,
        "start": period.start.isoformat() if period.start else None,
        "end": period.end.isoformat() if period.end else None,
        "values": {k: _show(v) for k, v in env.values().items()},
        "awards": awards,
    }


def render(trace: dict) -> str:
    """The trace as text for the rule writer."""
    out = [f"{trace['member']} in {trace['campaign']} — {trace['title']}",
           f"rules: {trace['file']} (seed {trace['document']}), evaluated at the end of {trace['as_of']}"]
    for p in trace["periods"]:
        span = f" ({p['start']} .. {p['end']})" if p["start"] else ""
        out.append("")
        out.append(f"period {p['period']}{span}")
        for k, v in p["values"].items():
            out.append(f"  value {k} = {v}")
        for a in p["awards"]:
            head = f"  award {a['award']}" + (f" «{a['label']}»" if a["label"] else "")
            out.append(f"{head}: {'CLEARED' if a['cleared'] else 'not cleared'}")
            for c in a["conditions"]:
                out.append(f"    [{'x' if c['ok'] else ' '}] {c['condition']}  -> {c['value']}")
            out.append(f"    amount {a['amount_rule']} = {a['amount']} {a['kind']}")
            for cap in a["caps"]:
                out.append(f"      {cap['term']} = {cap['value']}")
            if a["pay_date"]:
                out.append(f"    paid on {a['pay_date']}, expires {a['expires']}; paid so far {a['paid']}")
            lot = a.get("lottery")
            if lot is not None:
                if not lot["drawn"]:
                    out.append("    lottery: not drawn yet")
                else:
                    where = f"drawn #{lot['position']} of {lot['candidates']}" if lot["position"] else "not a candidate"
                    out.append(f"    lottery ({lot['rule']}): {where}, {'WINNER' if lot['winner'] else 'not a winner'}"
                               f" (seed {lot['seed'][:12]}…)")
    out.append("")
    out.append("entries:" if trace["entries"] else "entries: none")
    for e in trace["entries"]:
        pts = ", ".join(f"{v:+d} {k}" for k, v in e["points"].items()) or "no postings"
        extra = f" (reverses {e['reverses']})" if e["reverses"] else ""
        extra += f" refused: {e['refused']}" if e["refused"] else ""
        out.append(f"  #{e['seq']} {e['effective']} {e['what']} {e['award']} {pts}{extra}")
    return "\n".join(out)
