"""Why a member got what they got, in enough detail for a third party to redo it.

The trace re-evaluates the campaign for one member at a date (by default the
date of the latest run) with the same compiled SQL as the run, and shows: the
rules file and its sha256 (and each table's); per period, the member's events
each stream counted and those it left out with the condition that left each out
(engine.explain_events) and the counted events per day; every conjunct of every
award's condition with its value, the amount expression and the arguments of a
cap (`min(spend, cap)`); the lottery draw in full (seed, candidate digest, draw
position: docs/lottery.md); what was computed when the points were paid (each
entry's target, rules hash and source events) beside today's computation; and the
entries posted, a reversal with the cancel/refund/stopover events that caused it.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from typing import Any

from points.dsl import ast
from points.dsl.compiler import MemberEnv, Period, compile_campaign, entered_condition
from points.dsl.evaluator import evaluate, tier_breakdown
from points.dsl.loader import RuleSet
from points.engine.calendar import expiry_date, member_pay_date, periods_of
from points.engine.explain_events import conjuncts, event_plan, reversal_causes, source_text, stream_events
from points.engine.recorded import run_of_entry
from points.engine.runs import latest_run, run_markers


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


def explain(conn, rules: RuleSet, member: str, campaign: str, as_of: dt.date | None = None,
            rules_origin: str | None = None) -> dict:
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

    markers = run_markers(conn)
    draws, entries = {}, []
    events_of: dict[int, tuple[str, ...]] = {}
    still_counted: dict[int, tuple[str, ...]] = {}  # grant seq -> events after its reversals
    for seq, key, effective, step, memo, reverses, rule, rules_hash, events in conn.execute(
            "SELECT seq, key, effective, step, memo, reverses, rule, rules_hash, events FROM entries"
            " WHERE campaign = ? ORDER BY seq", (campaign,)):
        memo = json.loads(memo)
        events_of[seq] = tuple(json.loads(events))
        if key.startswith("draw:"):
            draws[step.rsplit(":", 1)[0]] = dict(memo, draw_date=effective)
        elif memo.get("member") == member:
            points = {}
            for account, kind, amount in conn.execute(
                    "SELECT account, kind, amount FROM postings WHERE entry = ?", (seq,)):
                if account.split(":")[0] in ("member", "receivable"):
                    points[kind] = points.get(kind, 0) + amount
            item = {"seq": seq, "effective": effective, "what": key.split(":")[0],
                    "award": memo.get("award"), "period": memo.get("period"),
                    "points": points, "reverses": reverses, "refused": memo.get("refused"),
                    "target": memo.get("target"), "rule": rule, "rules_hash": rules_hash,
                    "events": list(events_of[seq]), "amendment": _amendment(key)}
            run = run_of_entry(markers, seq)
            item["ruleset"] = run.ruleset if run is not None else None
            if reverses is not None:
                # What the grant still counted before this reversal: an earlier reversal of
                # it already answered for the events it dropped.
                before = still_counted.get(reverses, events_of.get(reverses, ()))
                still_counted[reverses] = events_of[seq]
                item["caused_by"] = reversal_causes(conn, events_of[seq], before,
                                                    plan.undo_types, effective)
            entries.append(item)

    eplan, filters = event_plan(lc)
    periods = []
    for period in periods_of(conn, plan, as_of, wm):
        env = next(evaluate(conn, plan, period, as_of, wm, member=member), None)
        if env is None and plan.campaign.cycle is not None:
            continue
        trace = _period_trace(lc, plan, period, env, member, probes, draws, entries)
        trace["streams"] = stream_events(conn, eplan, filters, period, as_of, wm, member)
        trace["tiers"] = _tiers(lc, conn, plan, period, as_of, wm, member)
        periods.append(trace)
    return {
        "member": member, "campaign": campaign, "title": c.title, "document": c.document,
        "file": lc.file, "as_of": as_of.isoformat(), "events_seen": wm,
        "rules": {"file": lc.file, "sha256": lc.rules_hash,
                  "tables": {t.path: t.digest for t in lc.plan.tables.values()},
                  "origin": rules_origin or f"folder {rules.rules_dir}"},
        "periods": periods, "entries": entries,
    }


def _tiers(lc, conn, plan, period: Period, as_of: dt.date, wm: int, member: str) -> list[dict]:
    """Per `sum over` of the campaign, the member's value tier by tier."""
    sums = _group_sums(plan.campaign)
    out = []
    try:
        groups = tier_breakdown(conn, plan, period, as_of, wm, member)
    except Exception:  # noqa: BLE001 -- a grouping the breakdown cannot show: the values still are
        groups = []
    for g in groups:
        same = [n for n in sums if n.stream == g["stream"]]
        text = source_text(lc.source, same[0].span) if len(same) == 1 else f"sum over {g['stream']}"
        out.append({"expression": text, "tiers": [{"key": _show(k), "value": _show(v)} for k, v in g["tiers"]]})
    return out


def _group_sums(node) -> list:
    """Every `sum over` node under an AST node, in source order."""
    found = []
    if isinstance(node, ast.GroupSum):
        found.append(node)
    if isinstance(node, (list, tuple)):
        for item in node:
            found += _group_sums(item)
    elif hasattr(node, "__attrs_attrs__"):
        for field in node.__attrs_attrs__:
            if field.name != "span":
                found += _group_sums(getattr(node, field.name))
    return found


def _amendment(key: str) -> int | None:
    """The amendment entry an adjustment is linked to (its key ends `~amend<seq>`)."""
    tag = key.rsplit("~amend", 1)
    return int(tag[1]) if len(tag) == 2 and tag[1].isdigit() else None


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
        # What was computed when paid: the target each grant or reversal was posted
        # for (with the rules that computed it), against today's computation.
        history = [{"seq": e["seq"], "effective": e["effective"], "target": e["target"],
                    "rules_hash": e["rules_hash"], "ruleset": e.get("ruleset")} for e in entries
                   if e["award"] == name and e["period"] == period.id and e["target"] is not None]
        item["computed_when_paid"] = history
        now = item["amount"] if isinstance(item["amount"], int) else None
        if a.lottery is not None and not _winner(draws, period, name, member):
            now = 0
        item["computed_now"] = now
        item["differs_from_paid"] = bool(history) and now is not None and now != history[-1]["target"]
        if a.lottery is not None:
            draw = draws.get(f"{period.id}:{name}")
            if draw is None:
                item["lottery"] = {"drawn": False}
            else:
                order = draw.get("order", [])
                item["lottery"] = {
                    "drawn": True, "draw_date": draw.get("draw_date"),
                    "seed": draw.get("seed"), "candidates": draw.get("candidates"),
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


def _winner(draws: dict, period: Period, award: str, member: str) -> bool:
    draw = draws.get(f"{period.id}:{award}")
    return draw is not None and member in draw.get("winners", [])


def render(trace: dict) -> str:
    """The trace as text for the rule writer and the auditor."""
    r = trace["rules"]
    out = [f"{trace['member']} in {trace['campaign']} — {trace['title']}",
           f"rules: {r['file']} sha256 {r['sha256']} ({r['origin']}; seed {trace['document']}), "
           f"evaluated at the end of {trace['as_of']} over events up to #{trace['events_seen']}"]
    out += [f"  table {path} sha256 {digest}" for path, digest in sorted(r["tables"].items())]
    for p in trace["periods"]:
        span = f" ({p['start']} .. {p['end']})" if p["start"] else ""
        out.append("")
        out.append(f"period {p['period']}{span}")
        for name, st in p.get("streams", {}).items():
            out += _render_stream(name, st)
        for k, v in p["values"].items():
            out.append(f"  value {k} = {v}")
        for g in p.get("tiers", ()):
            out.append(f"  per tier of {g['expression']}:")
            out += [f"    {t['key']}: {t['value']}" for t in g["tiers"]]
        for a in p["awards"]:
            out += _render_award(a)
    out.append("")
    out.append("entries:" if trace["entries"] else "entries: none")
    for e in trace["entries"]:
        pts = ", ".join(f"{v:+d} {k}" for k, v in e["points"].items()) or "no postings"
        extra = f" (reverses {e['reverses']})" if e["reverses"] else ""
        extra += f" refused: {e['refused']}" if e["refused"] else ""
        extra += f" for a target of {e['target']}" if e.get("target") is not None else ""
        extra += f", amendment entry {e['amendment']}" if e.get("amendment") else ""
        out.append(f"  #{e['seq']} {e['effective']} {e['what']} {e['award']} {pts}{extra}")
        if e.get("events"):
            out.append(f"      events: {', '.join(e['events'])}")
        for cause in e.get("caused_by", ()):
            out.append(f"      caused by {cause['type']} {cause['id']} ({cause['at']}) of {cause['undoes']}")
        if e.get("reverses") and not e.get("caused_by"):
            out.append("      caused by a recomputation with no undoing event"
                       + (" (the rules amendment)" if e.get("amendment") else ""))
    return "\n".join(out)


def _render_stream(name: str, st: dict) -> list[str]:
    if st.get("error"):
        return [f"  stream {name} ({st['type']}): {st['error']}"]
    if not st["counted"] and not st["left_out_total"]:
        return []
    out = [f"  stream {name} ({st['type']}): {len(st['counted'])} counted, "
           f"{st['left_out_total']} left out"]
    for e in st["counted"]:
        out.append(f"    + {e['id']} {e['at']}" + (f" amount {e['amount']}" if e["amount"] is not None else ""))
    for e in st["left_out"]:
        out.append(f"    - {e['id']} {e['at']}: {e['left_out_by']}")
    if st["left_out_total"] > len(st["left_out"]):
        out.append(f"    ... and {st['left_out_total'] - len(st['left_out'])} more left out")
    if len(st["by_day"]) > 1:
        out.append("    per day: " + ", ".join(f"{d['day']} {d['events']} ({d['amount']})" for d in st["by_day"]))
    return out


def _render_award(a: dict) -> list[str]:
    head = f"  award {a['award']}" + (f" «{a['label']}»" if a["label"] else "")
    out = [f"{head}: {'CLEARED' if a['cleared'] else 'not cleared'}"]
    for c in a["conditions"]:
        out.append(f"    [{'x' if c['ok'] else ' '}] {c['condition']}  -> {c['value']}")
    out.append(f"    amount {a['amount_rule']} = {a['amount']} {a['kind']}")
    for cap in a["caps"]:
        out.append(f"      {cap['term']} = {cap['value']}")
    if a["pay_date"]:
        out.append(f"    paid on {a['pay_date']}, expires {a['expires']}; paid so far {a['paid']}")
    for h in a.get("computed_when_paid", ()):
        out.append(f"    computed when paid (entry {h['seq']}, {h['effective']}): {h['target']}"
                   f" with rules sha256 {h['rules_hash']}"
                   + (f", rules set {h['ruleset']}" if h.get("ruleset") else ""))
    if a.get("differs_from_paid"):
        out.append(f"    computed today: {a['computed_now']} (differs from what was paid for)")
    lot = a.get("lottery")
    if lot is not None:
        if not lot["drawn"]:
            out.append("    lottery: not drawn yet")
        else:
            where = f"drawn #{lot['position']} of {lot['candidates']}" if lot["position"] else "not a candidate"
            out.append(f"    lottery ({lot['rule']}) on {lot['draw_date']}: {where}, "
                       f"{'WINNER' if lot['winner'] else 'not a winner'}")
            out.append(f"      seed {lot['seed']}")
            out.append(f"      candidates digest {lot['candidates_digest']} (docs/lottery.md)")
    return out
