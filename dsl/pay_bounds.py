"""The latest date an `on day N of month after EXPR` payment can be due, read from EXPR.

The run checks a per-member payment date on day N of every month from the period's
start; it must go on until the last month a member's date can fall in, or an award
cleared later would never be paid. EXPR is a date made of aggregates of event dates,
so its upper bound is that of the events it reads: a stream filtered by
`date in window`, `date in period`, `date in A .. B` or `date <= D` ends there.
`pay_bound(expr, campaign)` returns a function of the period giving that last date,
or None when nothing bounds EXPR (an event date field such as `ride_date`, a date
computed without a bound): the run then checks day N of every month up to its end.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl.plan import Period

Bound = Callable[[Period], "dt.date | None"]
_ONE = dt.timedelta(days=1)


def _const(d: dt.date) -> Bound:
    return lambda period: d


def stream_bound(stream: ast.Stream, campaign: ast.Campaign) -> Bound | None:
    """The last day an event of the stream can have, from its `where`'s conjuncts."""
    found: list[Bound] = []
    stack = [stream.where] if stream.where is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp) and node.op == "and":
            stack += [node.left, node.right]
        elif (isinstance(node, ast.InRange) and _is_date(node.value)
              and isinstance(node.high, ast.Literal) and isinstance(node.high.value, dt.date)):
            found.append(_const(node.high.value if node.inclusive_end else node.high.value - _ONE))
        elif (isinstance(node, ast.Compare) and node.op == "in" and _is_date(node.left)
              and isinstance(node.right, ast.Name) and node.right.name in sym.RANGE_NAMES):
            if node.right.name == "period":
                found.append(lambda period: period.end)
            elif campaign.window is not None and isinstance(campaign.window.high, ast.Literal):
                found.append(_const(campaign.window.high.value))
        elif isinstance(node, ast.Compare) and node.op in ("<", "<=", "==") and _is_date(node.left) \
                and isinstance(node.right, ast.Literal) and isinstance(node.right.value, dt.date):
            found.append(_const(node.right.value - _ONE if node.op == "<" else node.right.value))
    return _smallest(found) if found else None


def _is_date(node) -> bool:
    return isinstance(node, ast.Name) and node.name in ("date", "at")


def _smallest(bounds: list[Bound]) -> Bound:
    def low(period):
        days = [d for d in (b(period) for b in bounds) if d is not None]
        return min(days) if days else None
    return low


def _largest(bounds: list[Bound]) -> Bound:
    def high(period):
        days = [b(period) for b in bounds]
        return None if any(d is None for d in days) else max(days)
    return high


def pay_bound(expr, campaign: ast.Campaign, _seen: frozenset = frozenset()) -> Bound | None:
    """See the module docstring."""
    streams = {s.name: s for s in campaign.streams}
    values = {v.name: v for v in campaign.values}
    t = type(expr)
    if t is ast.Literal and isinstance(expr.value, dt.date):
        return _const(expr.value)
    if t is ast.Name and expr.name in values and expr.name not in _seen:
        return pay_bound(values[expr.name].expr, campaign, _seen | {expr.name})
    if t is ast.Conditional:
        both = [pay_bound(expr.then, campaign, _seen), pay_bound(expr.otherwise, campaign, _seen)]
        return None if None in both else _largest(both)
    if t is ast.Call and expr.args:
        arg = expr.args[0]
        aggregate = isinstance(arg, ast.Dotted) and arg.base in streams and (
            (expr.func in ("first", "last", "min", "max") and len(expr.args) == 1 and arg.attr in ("date", "at"))
            or expr.func == "date_reaching")
        if aggregate:
            return stream_bound(streams[arg.base], campaign)
        if expr.func in ("min", "max"):
            # min() and max() skip an argument that is none (no event), so either can
            # be any of its arguments: bounded only if every argument is.
            parts = [pay_bound(a, campaign, _seen) for a in expr.args]
            return None if None in parts else _largest(parts)
    return None
