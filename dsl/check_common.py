"""What the semantic checks share: constants, small helpers, the checking context."""

from __future__ import annotations

import datetime as dt
import difflib
from fractions import Fraction

import attrs

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl.errors import at
from points.dsl.tables import Table

Types = str

ORDERED_OPS = {"<", "<=", ">", ">="}
NON_NEGATIVE_AGGREGATES = {"count", "distinct_days", "count_distinct"}
CLAUSE_WORDS = {"document": "document", "window": "window", "budget": "budget", "entry": "entry required",
                "cycle": "every month", "payday": "pay"}
ALL_FUNCTIONS = sorted(set(sym.AGGREGATES) | sym.SCALAR_FUNCTIONS)
FUNCTION_HINT = ("aggregates: sum, count, any, all, exists, distinct_days, count_distinct, min, max, "
                 "first, last, date_reaching, longest_streak, weekly_streak; per event or member: min, max, abs, floor, ceil, trunc, "
                 "round; dates: year, month, day, weekday, week_start, days_between, `DATE + N days`")
MAX_PAY_YEARS_AFTER = 2


def closest(word: str, choices) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices, listing: bool = True) -> str | None:
    choices = sorted(set(choices))
    best = closest(word, choices)
    parts = []
    if best:
        parts.append(f"did you mean {best}?")
    if listing and choices:
        parts.append("known: " + ", ".join(choices))
    return " ".join(parts) or None


def unify(a: str, b: str) -> str:
    if a == sym.ANY or a == sym.NONE:
        return b
    if b == sym.ANY or b == sym.NONE:
        return a
    if a in sym.NUMERIC and b in sym.NUMERIC:
        return sym.NUM if sym.NUM in (a, b) else sym.INT
    return a


def is_date_lit(node) -> bool:
    return isinstance(node, ast.Literal) and isinstance(node.value, dt.date)


def conjuncts(node) -> list:
    if isinstance(node, ast.BinOp) and node.op == "and":
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def int_lit(node) -> int | None:
    if isinstance(node, ast.Literal) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Unary) and node.op == "neg":
        inner = int_lit(node.operand)
        return None if inner is None else -inner
    return None


def dependency_loops(deps: dict[str, dict], order) -> list[tuple[list[str], object]]:
    """Each loop of a dependency graph once: the names around it (the first repeated last)
    and the span of the edge that closes it. `deps` maps a name to {name it reads: span};
    `order` is the order names are visited in (so the loop reported is stable). An edge from
    a name to itself is left to the caller, who says something more precise about it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    reported: set[frozenset] = set()
    found: list[tuple[list[str], object]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other, span in deps.get(name, {}).items():
            if other == name:
                continue
            if state.get(other) == 1:
                loop = path[path.index(other):] + [other]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    found.append((loop, span))
            elif state.get(other) is None:
                visit(other, path + [other])
        state[name] = 2

    for name in order:
        if state.get(name) is None:
            visit(name, [name])
    return found


def walk(node):
    """Every expression node under `node` (itself included)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        yield n
        if isinstance(n, (ast.BinOp,)):
            stack += [n.left, n.right]
        elif isinstance(n, ast.Compare):
            stack += [n.left, n.right]
        elif isinstance(n, ast.Unary):
            stack.append(n.operand)
        elif isinstance(n, ast.InRange):
            stack += [n.value, n.low, n.high]
        elif isinstance(n, ast.Conditional):
            stack += [n.cond, n.then, n.otherwise]
        elif isinstance(n, ast.Call):
            stack += list(n.args)
        elif isinstance(n, ast.ListLit):
            stack += list(n.items)
        elif isinstance(n, ast.Filtered):
            stack.append(n.cond)
        elif isinstance(n, ast.GroupSum):
            stack.append(n.body)
        elif isinstance(n, ast.Lookup):
            stack += [c.value for c in n.conds] + [n.default]


def event_blocker(node, values: dict, is_aggregate, streams: dict, seen: set):
    """The first node of a value expression that cannot run per event (in SQL), or None;
    `streams` collects the streams it aggregates."""
    def go(n, seen=seen):
        return event_blocker(n, values, is_aggregate, streams, seen)

    t = type(node)
    if t is ast.Literal:
        return node if isinstance(node.value, Fraction) else None
    if t is ast.Name:
        if node.name in sym.WEEKDAYS:
            return None
        if node.name in values:
            if node.name in seen:
                return None
            return go(values[node.name].expr, seen | {node.name})
        return node
    if t is ast.Call:
        if node.func == "date_reaching" or not is_aggregate(node, None):
            return node
        arg = node.args[0] if node.args else None
        base = (arg.name if isinstance(arg, ast.Name) else arg.stream if isinstance(arg, ast.Filtered)
                else arg.base if isinstance(arg, ast.Dotted) else None)
        if base is not None:
            streams.setdefault(base, node.span)
        return None
    if t is ast.BinOp:
        if node.op == "/":
            return node
        return go(node.left) or go(node.right)
    if t is ast.Unary:
        return go(node.operand)
    if t is ast.Compare:
        if node.op in ("has", "has one of"):
            return node
        right = node.right
        if node.op in ("in", "not in"):
            if not isinstance(right, ast.ListLit):
                return node
            for item in right.items:
                b = go(item)
                if b is not None:
                    return b
            return go(node.left)
        return go(node.left) or go(right)
    if t is ast.InRange:
        for part in (node.value, node.low, node.high):
            b = go(part)
            if b is not None:
                return b
        return None
    if t is ast.Conditional:
        for part in (node.cond, node.then, node.otherwise):
            b = go(part)
            if b is not None:
                return b
        return None
    return node


def table_type(table: Table, column: str) -> str:
    if not table.rows:
        return sym.ANY
    if table.column_type(column) == "int":
        return sym.INT
    i = table.columns.index(column)
    values = [r[i] for r in table.rows if r[i] != ""]
    try:
        if values and all(len(v) == 10 and dt.date.fromisoformat(v) for v in values):
            return sym.DATE
    except ValueError:
        pass
    return sym.STR


@attrs.define
class Ctx:
    """Where an expression is checked."""

    scope: str  # 'event' | 'member'
    stream: ast.Stream | None = None  # event scope: the stream being filtered
    fields: dict | None = None  # event scope: visible field -> type (None: unknown event type)
    group: ast.GroupSum | None = None  # member scope: inside `sum over`
    group_stream: ast.Stream | None = None
    key_type: str = sym.ANY
    key_types: dict | None = None  # inside `sum over`: every key in reach -> its type
    in_sql: bool = False  # computed in SQL (a stream, or a nested / multi-key `sum over`)
    ranked: bool = False  # an aggregate's filter: `nth` (the event's rank in its stream) is known

    @property
    def sql(self) -> bool:
        return self.scope == "event" or self.in_sql


def is_sql_group(node: ast.GroupSum, nested: bool = False) -> bool:
    """A `sum over` computed wholly in SQL: several keys, nested, or holding another.
    (One key, alone: the body is a closure per tier, dsl.compile_member.)"""
    return nested or bool(node.more_keys) or any(
        isinstance(x, ast.GroupSum) for x in walk(node.body) if x is not node)


@attrs.frozen
class Scope:
    """What every checker of one campaign reads: the campaign, its names by kind, its
    tables, and where diagnostics go (the list is shared; nothing else changes)."""

    rules: ast.RulesFile
    c: ast.Campaign
    streams: dict
    values: dict
    awards: dict
    tables: dict
    failed_tables: frozenset  # declared, but could not be loaded (already reported)
    window: tuple | None
    diags: list

    @classmethod
    def of(cls, rules: ast.RulesFile, campaign: ast.Campaign, tables: dict, failed_tables, diags: list) -> "Scope":
        def first(items):
            out = {}
            for x in items:
                out.setdefault(x.name, x)
            return out
        w = campaign.window
        window = (w.low.value, w.high.value) if w is not None and is_date_lit(w.low) and is_date_lit(w.high) else None
        return cls(rules, campaign, first(campaign.streams), first(campaign.values), first(campaign.awards),
                   tables, frozenset(failed_tables), window, diags)

    def err(self, span, message: str, hint: str | None = None) -> None:
        self.diags.append(at(span, message, hint))

    def warn(self, span, message: str, hint: str | None = None) -> None:
        """Something the engine will ignore or read otherwise than it seems: the file
        still loads."""
        self.diags.append(at(span, message, hint, "warning"))

    def text(self, node) -> str:
        """The source text of a node, on one line."""
        s = node.span
        lines = self.rules.source.splitlines()
        if not (1 <= s.line <= len(lines)) or not (1 <= s.end_line <= len(lines)):
            return "?"
        if s.line == s.end_line:
            out = lines[s.line - 1][s.column - 1:s.end_column - 1]
        else:
            parts = [lines[s.line - 1][s.column - 1:]] + lines[s.line:s.end_line - 1] + \
                [lines[s.end_line - 1][:s.end_column - 1]]
            out = " ".join(p.strip() for p in parts)
        return " ".join(out.split())
