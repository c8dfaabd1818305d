"""Semantic checks of a parsed rules file: every error at once, each at its line and column.

`check(rules, rules_dir)` returns every diagnostic of one file (never raises for a
user error) and the reference tables it loaded, by name, for the compiler.
`check_many(files, rules_dir)` adds what only shows across files: a campaign name
declared twice, a point kind declared differently.

The contract with `dsl.compiler`: a campaign that checks clean compiles without
raising. So every form the compiler cannot turn into SQL (per event) or into a
closure (per member) is rejected here with a message for the rule writer.

Two scopes:
- *per event* (a stream's `where` and `field`s, run in SQL): event fields of the
  stream's type, the stream's earlier fields, weekday names, `window`/`period`
  after `in`, tables (`x in t.col`, `lookup`), and aggregates of OTHER streams
  (correlated subqueries), also through `value`s made only of such aggregates;
- *per member* (values, award amounts and conditions, run in Python): values,
  award names (cleared or not), aggregates over streams, scalar functions.
"""

from __future__ import annotations

import datetime as dt
import difflib
from fractions import Fraction
from pathlib import Path

import attrs

from dsl import ast
from dsl import symbols as sym
from dsl import tables as tables_mod
from dsl.errors import Diagnostic, at
from dsl.tables import Table, TableError
from ledger.kinds import KIND_NAMES

Types = str

ORDERED_OPS = {"<", "<=", ">", ">="}
NON_NEGATIVE_AGGREGATES = {"count", "distinct_days", "count_distinct"}
CLAUSE_WORDS = {"document": "document", "window": "window", "budget": "budget", "entry": "entry required",
                "cycle": "every month", "payday": "pay"}
ALL_FUNCTIONS = sorted(set(sym.AGGREGATES) | sym.SCALAR_FUNCTIONS)
FUNCTION_HINT = ("aggregates: sum, count, any, all, exists, distinct_days, count_distinct, min, max, "
                 "first, last, date_reaching; per member: min, max, abs, floor, ceil, trunc, round")
MAX_PAY_YEARS_AFTER = 2


def _closest(word: str, choices) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _did_you_mean(word: str, choices, listing: bool = True) -> str | None:
    choices = sorted(set(choices))
    best = _closest(word, choices)
    parts = []
    if best:
        parts.append(f"did you mean {best}?")
    if listing and choices:
        parts.append("known: " + ", ".join(choices))
    return " ".join(parts) or None


def _unify(a: str, b: str) -> str:
    if a == sym.ANY or a == sym.NONE:
        return b
    if b == sym.ANY or b == sym.NONE:
        return a
    if a in sym.NUMERIC and b in sym.NUMERIC:
        return sym.NUM if sym.NUM in (a, b) else sym.INT
    return a


def _is_date_lit(node) -> bool:
    return isinstance(node, ast.Literal) and isinstance(node.value, dt.date)


def _conjuncts(node) -> list:
    if isinstance(node, ast.BinOp) and node.op == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _int_lit(node) -> int | None:
    if isinstance(node, ast.Literal) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Unary) and node.op == "neg":
        inner = _int_lit(node.operand)
        return None if inner is None else -inner
    return None


def _walk(node):
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


def _table_type(table: Table, column: str) -> str:
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
class _Ctx:
    """Where an expression is checked."""

    scope: str  # 'event' | 'member'
    stream: ast.Stream | None = None  # event scope: the stream being filtered
    fields: dict | None = None  # event scope: visible field -> type (None: unknown event type)
    group: ast.GroupSum | None = None  # member scope: inside `sum over`
    group_stream: ast.Stream | None = None
    key_type: str = sym.ANY


class _CampaignChecker:
    def __init__(self, rules: ast.RulesFile, campaign: ast.Campaign, tables: dict[str, Table],
                 diags: list[Diagnostic]):
        self.rules = rules
        self.c = campaign
        self.tables = tables
        self.diags = diags
        self.streams = {}
        for s in campaign.streams:
            self.streams.setdefault(s.name, s)
        self.values = {}
        for v in campaign.values:
            self.values.setdefault(v.name, v)
        self.awards = {}
        for a in campaign.awards:
            self.awards.setdefault(a.name, a)
        self._value_types: dict[str, str] = {}
        self._in_progress: set[str] = set()
        self._field_types: dict[tuple[str, str], str] = {}
        self._field_progress: set[tuple[str, str]] = set()
        self._stream_deps: dict[str, dict[str, ast.Span]] = {s.name: {} for s in campaign.streams}
        self.window = self._dates(campaign.window)
        self.dead_streams: dict[str, str] = {}
        self.failed_tables: set[str] = set()  # declared, but could not be loaded (already reported)

    # ------------------------------------------------------------ helpers
    def err(self, span, message: str, hint: str | None = None) -> None:
        self.diags.append(at(span, message, hint))

    def text(self, node) -> str:
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

    def _dates(self, rng: ast.DateRange | None) -> tuple[dt.date, dt.date] | None:
        if rng is None or not (_is_date_lit(rng.low) and _is_date_lit(rng.high)):
            return None
        return rng.low.value, rng.high.value

    def stream_field_names(self, stream: ast.Stream) -> dict[str, None] | None:
        if stream.event_type not in sym.EVENT_TYPES:
            return None
        names = dict.fromkeys(sym.event_fields(stream.event_type))
        names.update(dict.fromkeys(f.name for f in stream.fields))
        return names

    def field_type(self, stream: ast.Stream, name: str) -> str | None:
        """Type of field `name` of `stream` (event field or `field` definition); None if absent."""
        if stream.event_type not in sym.EVENT_TYPES:
            return sym.ANY
        for i, f in enumerate(stream.fields):
            if f.name == name:
                return self._def_type(stream, i)
        return sym.event_fields(stream.event_type).get(name)

    def _def_type(self, stream: ast.Stream, index: int) -> str:
        f = stream.fields[index]
        key = (stream.name, f.name)
        if key in self._field_types:
            return self._field_types[key]
        if key in self._field_progress:
            return sym.ANY
        self._field_progress.add(key)
        visible = dict(sym.event_fields(stream.event_type))
        for earlier in stream.fields[:index]:
            if earlier.name not in visible:
                visible[earlier.name] = sym.ANY  # typed lazily in name()
        ctx = _Ctx("event", stream=stream, fields=visible)
        ty = self.expr(f.expr, ctx)
        self._field_progress.discard(key)
        self._field_types[key] = ty
        return ty

    # ------------------------------------------------------------ the campaign
    def run(self) -> None:
        c = self.c
        self.check_header()
        self.check_names()
        for s in c.streams:
            self.check_stream(s)
        for v in c.values:
            self.value_type(v.name)
        for a in c.awards:
            self.check_award(a)
        self.check_stream_cycles()
        self.check_value_cycles()
        self.check_unreachable()

    def check_header(self) -> None:
        c = self.c
        for tag, span in c.duplicates:
            word = CLAUSE_WORDS.get(tag, tag)
            self.err(span, f"duplicate `{word}` clause: a campaign has at most one",
                     "keep one and delete the others")
        if c.window is None and c.cycle is None:
            self.err(c.span, f"campaign {c.name} has neither a window nor a cycle",
                     "add `window FIRST_DAY .. LAST_DAY`, or `every month from day A to day B` "
                     "for a standing monthly program")
        if c.window is not None:
            self.check_date_range(c.window, "window")
            if not c.window.inclusive_end:
                self.err(c.window.span, "a campaign window is written with `..` (both days included)",
                         "write the last day of the campaign: `window 2025-12-26 .. 2026-01-04`")
        if c.entry is not None:
            self.check_date_range(c.entry.within, "entry period")
        if c.cycle is not None:
            cy = c.cycle
            bad = False
            for day in (cy.start_day, cy.end_day):
                if not 1 <= day <= 28:
                    self.err(cy.span, f"day {day} of a monthly cycle must be between 1 and 28",
                             "every month has days 1 to 28")
                    bad = True
            if not bad and cy.start_day != cy.end_day + 1:
                self.err(cy.span,
                         f"a monthly cycle from day {cy.start_day} to day {cy.end_day} would leave gaps "
                         "or overlap between periods",
                         f"a period runs from day A of a month to day B of the next: A must be B + 1, "
                         f"e.g. `every month from day {min(cy.end_day, 27) + 1} to day {min(cy.end_day, 27)}`")
        if c.budget is not None:
            b = c.budget
            if b.amount <= 0:
                self.err(b.span, "a budget must be more than 0 points")
            if b.kind not in KIND_NAMES:
                self.err(b.span, f"unknown point kind {b.kind}", _did_you_mean(b.kind, KIND_NAMES))
        if c.payday is not None:
            self.check_pay(c.payday, None)

    def check_date_range(self, rng: ast.DateRange, what: str) -> None:
        ok = True
        for end in (rng.low, rng.high):
            if not _is_date_lit(end):
                self.err(end.span, f"the {what} is bounded by dates like 2025-12-26, not `{self.text(end)}`")
                ok = False
        if ok:
            lo, hi = rng.low.value, rng.high.value
            if hi < lo or (hi == lo and not rng.inclusive_end):
                self.err(rng.span, f"the {what} is empty: {lo} is after {hi}"
                         if hi < lo else f"the {what} is empty: {lo} ..< {hi}",
                         "write the first day, then the last day")

    def check_names(self) -> None:
        """Streams, values, awards and tables share one namespace."""
        seen: dict[str, str] = {}
        entries = ([("table", t.name, t.span) for t in self.c.tables]
                   + [("stream", s.name, s.span) for s in self.c.streams]
                   + [("value", v.name, v.span) for v in self.c.values]
                   + [("mission" if a.is_mission else "award", a.name, a.span) for a in self.c.awards])
        entries.sort(key=lambda e: (e[2].line, e[2].column))
        for what, name, span in entries:
            if what == "table":
                pass  # duplicate tables are reported by the file checker
            elif name in seen:
                self.err(span, f"{name} is already declared (as a {seen[name]})",
                         "streams, values, awards and missions need distinct names")
                continue
            if name in sym.WEEKDAYS or name in sym.RANGE_NAMES:
                self.err(span, f"{name} is a reserved word (a weekday or a date range) and cannot name a {what}")
            seen.setdefault(name, what)

    # ------------------------------------------------------------ streams
    def check_stream(self, s: ast.Stream) -> None:
        known = s.event_type in sym.EVENT_TYPES
        if not known:
            best = _closest(s.event_type, sym.EVENT_TYPES)
            self.err(s.type_span or s.span, f"unknown event type {s.event_type}",
                     (f"did you mean {best}? " if best else "") + "event types: " + ", ".join(sym.EVENT_TYPES))
        for u in s.undone_by:
            if u not in sym.UNDO_TYPES:
                self.err(s.span, f"`undone by {u}`: only {', '.join(sym.UNDO_TYPES)} events undo another event",
                         _did_you_mean(u, sym.UNDO_TYPES, listing=False))
        event_fields = sym.event_fields(s.event_type) if known else {}
        seen: set[str] = set()
        for i, f in enumerate(s.fields):
            if f.name in seen:
                self.err(f.span, f"field {f.name} is already defined in stream {s.name}")
            elif f.name in event_fields:
                self.err(f.span, f"field {f.name} would hide the event field {f.name} of {s.event_type}",
                         "choose another name")
            elif f.name in sym.WEEKDAYS or f.name in sym.RANGE_NAMES:
                self.err(f.span, f"{f.name} is a reserved word and cannot name a field")
            elif f.name in self.values:
                self.err(f.span, f"field {f.name} has the name of a value: in this stream the value "
                         "would be used instead", "choose another name")
            seen.add(f.name)
            if known:
                self._def_type(s, i)
        if s.where is not None:
            ctx = _Ctx("event", stream=s, fields=self.stream_field_names_typed(s) if known else None)
            ty = self.expr(s.where, ctx)
            self.need_bool(s.where, ty, "a stream's `where`")
            self.check_stream_dates(s)

    def stream_field_names_typed(self, s: ast.Stream) -> dict[str, str]:
        out = dict(sym.event_fields(s.event_type))
        for f in s.fields:
            out.setdefault(f.name, self._field_types.get((s.name, f.name), sym.ANY))
        return out

    def need_bool(self, node, ty: str, what: str) -> None:
        if ty not in (sym.BOOL, sym.ANY):
            self.err(node.span, f"{what} must be a condition (true or false), not {ty}",
                     "compare it, e.g. `amount >= 500`")

    def check_stream_dates(self, s: ast.Stream) -> None:
        """A stream whose `date` bounds cannot meet the campaign's dates never matches."""
        lo, hi, lo_node, hi_node = None, None, None, None
        for part in _conjuncts(s.where):
            bounds = self._date_bounds(part)
            if bounds is None:
                continue
            plo, phi = bounds
            if plo is not None and (lo is None or plo > lo):
                lo, lo_node = plo, part
            if phi is not None and (hi is None or phi < hi):
                hi, hi_node = phi, part
        if lo is not None and hi is not None and lo > hi:
            msg = (f"`{self.text(lo_node)}` contradicts itself" if lo_node is hi_node
                   else f"`{self.text(lo_node)}` and `{self.text(hi_node)}` contradict")
            self.err(s.where.span, f"stream {s.name} never matches an event: {msg}")
            self.dead_streams[s.name] = msg
            return
        if self.window is None:
            return
        ws, we = self.window
        last = we
        for d in [self.c.payday] + [a.pay for a in self.c.awards]:
            if isinstance(d, ast.PayFixed) and d.date > last:
                last = d.date
        if (hi is not None and hi < ws) or (lo is not None and lo > last):
            node = hi_node if hi is not None and hi < ws else lo_node
            msg = f"`{self.text(node)}` is outside the campaign window {ws} .. {we}"
            self.err(node.span, f"stream {s.name} never matches an event of the campaign: {msg}",
                     "a stream dated outside its campaign: check the year")
            self.dead_streams[s.name] = msg

    def _date_bounds(self, node):
        one = dt.timedelta(days=1)
        if isinstance(node, ast.InRange) and isinstance(node.value, ast.Name) and node.value.name == "date":
            if _is_date_lit(node.low) and _is_date_lit(node.high):
                high = node.high.value if node.inclusive_end else node.high.value - one
                return node.low.value, high
            return None
        if isinstance(node, ast.Compare) and node.op in ORDERED_OPS | {"=="}:
            left, right, op = node.left, node.right, node.op
            if _is_date_lit(left) and isinstance(right, ast.Name):
                left, right = right, left
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            if isinstance(left, ast.Name) and left.name == "date" and _is_date_lit(right):
                d = right.value
                return {"<": (None, d - one), "<=": (None, d), ">": (d + one, None), ">=": (d, None),
                        "==": (d, d)}[op]
        return None

    # ------------------------------------------------------------ values and awards
    def value_type(self, name: str) -> str:
        if name in self._value_types:
            return self._value_types[name]
        if name in self._in_progress:
            return sym.ANY  # a cycle: reported by check_value_cycles
        self._in_progress.add(name)
        node = self.values[name]
        ty = self.expr(node.expr, _Ctx("member"))
        self._in_progress.discard(name)
        self._value_types[name] = ty
        return ty

    def check_award(self, a: ast.Award) -> None:
        word = "mission" if a.is_mission else "award"
        if a.kind not in KIND_NAMES:
            best = _closest(a.kind, KIND_NAMES)
            self.err(a.kind_span or a.span, f"unknown point kind {a.kind}",
                     (f"did you mean {best}? " if best else "") + "kinds: " + ", ".join(KIND_NAMES))
        ty = self.expr(a.amount, _Ctx("member"))
        if ty not in sym.NUMERIC and ty != sym.ANY:
            self.err(a.amount.span, f"the amount of {word} {a.name} must be a number of points, not {ty}")
        if a.when is not None:
            self.need_bool(a.when, self.expr(a.when, _Ctx("member")), f"the `when` of {word} {a.name}")
        if a.pay is not None:
            self.check_pay(a.pay, a)
        pay = a.pay or self.c.payday
        fixed = pay.date if isinstance(pay, ast.PayFixed) else None
        if isinstance(a.expiry, ast.ExpiresOn):
            if fixed is not None and a.expiry.date < fixed:
                self.err(a.expiry.span, f"{word} {a.name} would expire on {a.expiry.date}, before it is paid "
                         f"on {fixed}", "a step dated outside its campaign: check the year")
            elif fixed is None and self.window and a.expiry.date <= self.window[1]:
                self.err(a.expiry.span, f"{word} {a.name} would expire on {a.expiry.date}, before the campaign "
                         f"window ends ({self.window[1]})", "a step dated outside its campaign: check the year")
        elif isinstance(a.expiry, ast.ExpiresAfter) and not 1 <= a.expiry.months <= 120:
            self.err(a.expiry.span, f"`expires {a.expiry.months} months after payment`: the number of "
                     "months must be between 1 and 120")
        if a.lottery is not None:
            lot = a.lottery
            if lot.winners is not None and lot.winners < 1:
                self.err(lot.span, "a lottery needs at least 1 winner")
            if not (isinstance(pay, (ast.PayFixed, ast.PayAfterPeriod)) or (pay is None and self.c.cycle)):
                self.err(lot.span, f"the lottery of {word} {a.name} needs a fixed payment date, "
                         "the day of the draw",
                         "add `on 2026-02-05` to the award, or `pay on DATE` to the campaign")
            if lot.winners is None:
                b = self.c.budget
                if b is None:
                    self.err(lot.span, "`by lottery within budget` needs a `budget` clause",
                             f"e.g. `budget 100_000_000 {a.kind}`")
                elif b.kind != a.kind:
                    self.err(lot.span, f"`by lottery within budget`: the budget is in {b.kind} points, "
                             f"the {word} pays {a.kind}")

    def check_pay(self, pay, award: ast.Award | None) -> None:
        if isinstance(pay, ast.PayFixed):
            if self.window is not None:
                ws, we = self.window
                if pay.date < ws:
                    self.err(pay.span, f"a step dated outside its campaign: payment on {pay.date} is before "
                             f"the campaign starts ({ws})", "check the year")
                elif pay.date > we.replace(year=we.year + MAX_PAY_YEARS_AFTER) if not (
                        we.month == 2 and we.day == 29) else pay.date > we + dt.timedelta(days=731):
                    self.err(pay.span, f"a step dated outside its campaign: payment on {pay.date} is more "
                             f"than {MAX_PAY_YEARS_AFTER} years after the campaign ends ({we})", "check the year")
        elif isinstance(pay, ast.PayAfterPeriod):
            if self.c.cycle is None:
                self.err(pay.span, "`on day N after period end` needs a monthly cycle "
                         "(`every month from day A to day B`)", "use `on DATE` for a campaign with a window")
            if not 1 <= pay.day <= 31:
                self.err(pay.span, f"day {pay.day} is not a day of a month (1 to 31)")
        elif isinstance(pay, ast.PayMonthAfter):
            if not 1 <= pay.day <= 31:
                self.err(pay.span, f"day {pay.day} is not a day of a month (1 to 31)")
            ty = self.expr(pay.after, _Ctx("member"))
            if ty not in (sym.DATE, sym.ANY):
                self.err(pay.after.span, f"`on day N of month after ...` needs a date, not {ty}",
                         "e.g. `on day 18 of month after first(application.date)`")

    # ------------------------------------------------------------ expressions
    def expr(self, n, ctx: _Ctx) -> str:
        t = type(n)
        if t is ast.Literal:
            ty = sym.literal_type(n.value)
            if ty == sym.NUM and ctx.scope == "event":
                self.err(n.span, "a percentage cannot be used in a stream (per event, whole numbers only)",
                         "apply it per member, e.g. `value points = floor(sum(s.amount) * 5%)`")
            return ty
        if t is ast.Name:
            return self.name(n, ctx)
        if t is ast.Dotted:
            return self.dotted(n, ctx)
        if t is ast.Filtered:
            self.err(n.span, f"`{n.stream} where ...` can only be the argument of an aggregate",
                     f"e.g. `count({n.stream} where ...)`")
            return sym.ANY
        if t is ast.Call:
            return self.call(n, ctx)
        if t is ast.ListLit:
            if ctx.scope == "event":
                self.err(n.span, "a list can only follow `in` or `has one of` in a stream")
            return self.list_items(n, ctx)
        if t is ast.Unary:
            ty = self.expr(n.operand, ctx)
            if n.op == "not":
                self.need_bool(n.operand, ty, "the operand of `not`")
                return sym.BOOL
            if ty not in sym.NUMERIC and ty != sym.ANY:
                self.err(n.span, f"type mismatch: cannot negate {ty}")
                return sym.ANY
            return ty
        if t is ast.BinOp:
            return self.binop(n, ctx)
        if t is ast.Compare:
            return self.compare(n, ctx)
        if t is ast.InRange:
            return self.in_range(n, ctx)
        if t is ast.Conditional:
            self.need_bool(n.cond, self.expr(n.cond, ctx), "the condition after `if`")
            a, b = self.expr(n.then, ctx), self.expr(n.otherwise, ctx)
            if not sym.compatible(a, b):
                self.err(n.span, f"type mismatch: one branch is {a}, the other {b}")
                return sym.ANY
            return _unify(a, b)
        if t is ast.GroupSum:
            return self.group_sum(n, ctx)
        if t is ast.Lookup:
            return self.lookup(n, ctx)
        self.err(n.span, "cannot use this here")  # pragma: no cover - every node type is handled
        return sym.ANY

    def list_items(self, n: ast.ListLit, ctx: _Ctx) -> str:
        first = None
        for item in n.items:
            ty = self.expr(item, ctx)
            if first is None or first == sym.ANY:
                first = ty
            elif not sym.compatible(first, ty):
                self.err(item.span, f"type mismatch: a list mixes {first} and {ty}")
        return sym.LIST

    def name(self, n: ast.Name, ctx: _Ctx) -> str:
        name = n.name
        if ctx.scope == "event":
            if name in sym.WEEKDAYS:
                return sym.WEEKDAY
            if name in self.values:
                if ctx.fields is not None and name in ctx.fields:
                    self.err(n.span, f"{name} is both a value and a field of {ctx.stream.event_type}",
                             "rename the value")
                    return sym.ANY
                return self.value_in_event(n, ctx)
            if ctx.fields is None:
                return sym.ANY
            if name in ctx.fields:
                if ctx.stream is not None:
                    for i, f in enumerate(ctx.stream.fields):
                        if f.name == name:
                            return self._def_type(ctx.stream, i)
                return ctx.fields[name]
            if ctx.stream is not None and any(f.name == name for f in ctx.stream.fields):
                self.err(n.span, f"field {name} is defined later in stream {ctx.stream.name}",
                         "a field can use the fields defined before it")
                return sym.ANY
            if name in sym.RANGE_NAMES:
                self.err(n.span, f"`{name}` is a date range: use it after `in`, as in `date in {name}`")
                return sym.ANY
            if name in self.awards:
                self.err(n.span, f"{name} is an award, decided per member: it cannot be used in a stream")
                return sym.ANY
            if name in self.streams:
                self.err(n.span, f"{name} is a stream: in a filter use an aggregate such as exists({name})")
                return sym.ANY
            if name in self.tables:
                self.err(n.span, f"{name} is a table: use `x in {name}.COLUMN` or `lookup`")
                return sym.ANY
            etype = ctx.stream.event_type if ctx.stream else "this event"
            choices = list(ctx.fields) + list(self.values)
            best = _closest(name, choices)
            self.err(n.span, f"unknown name {name}: not a field of {etype}",
                     (f"did you mean {best}? " if best else "")
                     + f"fields of {etype}: " + ", ".join(sorted(ctx.fields)))
            return sym.ANY
        # member scope
        if ctx.group is not None:
            if name == ctx.group.key:
                return ctx.key_type
            if name in sym.WEEKDAYS:
                return sym.WEEKDAY
            self.err(n.span, f"inside `sum over {ctx.group.stream} by {ctx.group.key}` only the key "
                     f"{ctx.group.key} and aggregates of the group's events can be used, not {name}",
                     f"e.g. `sum(amount)` for the total of each {ctx.group.key}")
            return sym.ANY
        if name in self.values:
            return self.value_type(name)
        if name in self.awards:
            return sym.BOOL
        if name in sym.WEEKDAYS:
            return sym.WEEKDAY
        if name in sym.RANGE_NAMES:
            self.err(n.span, f"`{name}` is a date range of events: use it in a stream, as `date in {name}`")
            return sym.ANY
        if name in self.streams:
            self.err(n.span, f"{name} is a stream of events, not a value",
                     f"use an aggregate: count({name}), exists({name}) or sum({name}.amount)")
            return sym.ANY
        if name in self.tables:
            self.err(n.span, f"{name} is a table: use it in a stream (`x in {name}.COLUMN` or `lookup`)")
            return sym.ANY
        if name in sym.DERIVED_FIELDS or name in sym.es.FIELD_KINDS:
            stream = next(iter(self.streams), "STREAM")
            self.err(n.span, f"{name} is a field of each event, not a value of the member",
                     f"use an aggregate, e.g. sum({stream}.{name}) or first({stream}.{name})")
            return sym.ANY
        choices = list(self.values) + list(self.awards)
        self.err(n.span, f"unknown name {name}",
                 _did_you_mean(name, choices) if choices else "declare it with `value NAME = ...`")
        return sym.ANY

    def value_in_event(self, n: ast.Name, ctx: _Ctx) -> str:
        """A member value used per event: inlined as SQL, so only aggregates of other streams."""
        ty = self.value_type(n.name)
        streams: dict[str, ast.Span] = {}
        blocker = self._event_blocker(self.values[n.name].expr, streams, {n.name})
        if blocker is not None:
            self.err(n.span, f"value {n.name} cannot be used in a stream: it uses `{self.text(blocker)}`",
                     "per event, a value may only combine numbers, dates and aggregates of other "
                     "streams (no /, no percentages, no functions other than aggregates)")
            return ty
        if ctx.stream is not None:
            for s in streams:
                self._stream_deps.setdefault(ctx.stream.name, {}).setdefault(s, n.span)
        return ty

    def _event_blocker(self, node, streams: dict, seen: set):
        """The first node of a value expression that cannot run per event, or None."""
        t = type(node)
        if t is ast.Literal:
            return node if isinstance(node.value, Fraction) else None
        if t is ast.Name:
            if node.name in sym.WEEKDAYS:
                return None
            if node.name in self.values:
                if node.name in seen:
                    return None
                return self._event_blocker(self.values[node.name].expr, streams, seen | {node.name})
            return node
        if t is ast.Call:
            if node.func == "date_reaching" or not self._is_aggregate(node, None):
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
            return self._event_blocker(node.left, streams, seen) or self._event_blocker(node.right, streams, seen)
        if t is ast.Unary:
            return self._event_blocker(node.operand, streams, seen)
        if t is ast.Compare:
            if node.op in ("has", "has one of"):
                return node
            right = node.right
            if node.op in ("in", "not in"):
                if not isinstance(right, ast.ListLit):
                    return node
                for item in right.items:
                    b = self._event_blocker(item, streams, seen)
                    if b is not None:
                        return b
                return self._event_blocker(node.left, streams, seen)
            return self._event_blocker(node.left, streams, seen) or self._event_blocker(right, streams, seen)
        if t is ast.InRange:
            for part in (node.value, node.low, node.high):
                b = self._event_blocker(part, streams, seen)
                if b is not None:
                    return b
            return None
        if t is ast.Conditional:
            for part in (node.cond, node.then, node.otherwise):
                b = self._event_blocker(part, streams, seen)
                if b is not None:
                    return b
            return None
        return node

    def dotted(self, n: ast.Dotted, ctx: _Ctx) -> str:
        if n.base in self.tables or n.base in self.failed_tables:
            self.err(n.span, f"`{n.base}.{n.attr}` is a table column: use it after `in`",
                     f"e.g. `merchant in {n.base}.{n.attr}`, or `lookup {n.attr} in {n.base} where ...`")
        elif n.base in self.streams:
            self.err(n.span, f"`{n.base}.{n.attr}` is one value per event: use an aggregate",
                     f"e.g. sum({n.base}.{n.attr}), first({n.base}.{n.attr}) or max({n.base}.{n.attr})")
        else:
            self.err(n.span, f"unknown stream or table {n.base}",
                     _did_you_mean(n.base, list(self.streams) + list(self.tables)))
        return sym.ANY

    def binop(self, n: ast.BinOp, ctx: _Ctx) -> str:
        a, b = self.expr(n.left, ctx), self.expr(n.right, ctx)
        if n.op in ("and", "or"):
            self.need_bool(n.left, a, f"each side of `{n.op}`")
            self.need_bool(n.right, b, f"each side of `{n.op}`")
            return sym.BOOL
        for side, ty in ((n.left, a), (n.right, b)):
            if ty not in sym.NUMERIC and ty != sym.ANY:
                self.err(side.span, f"type mismatch: `{n.op}` needs numbers, not {ty}",
                         "dates cannot be added; compare them instead" if ty == sym.DATE else None)
                return sym.ANY
        if n.op == "/":
            if ctx.scope == "event":
                self.err(n.span, "`/` cannot be used in a stream (per event, whole numbers only)",
                         "divide per member, in a value, and round it with floor(), trunc() or round()")
            return sym.NUM
        return _unify(a, b)

    def compare(self, n: ast.Compare, ctx: _Ctx) -> str:
        op, left, right = n.op, n.left, n.right
        if op in ("has", "has one of"):
            if ctx.scope != "event":
                self.err(n.span, f"`{op}` tests a list field of each event: use it in a stream")
                return sym.BOOL
            lt = sym.ANY
            if not isinstance(left, ast.Name) or (ctx.fields is not None and (
                    left.name not in sym.event_fields(ctx.stream.event_type)
                    or sym.event_fields(ctx.stream.event_type)[left.name] != sym.LIST)):
                lists = sorted(k for k, v in (ctx.fields or {}).items() if v == sym.LIST)
                self.err(left.span, f"`{op}` needs a list field of the event on its left",
                         f"list fields of {ctx.stream.event_type}: {', '.join(lists)}" if lists
                         else f"{ctx.stream.event_type} has no list field")
            else:
                lt = sym.STR
            if op == "has one of":
                if not isinstance(right, ast.ListLit):
                    self.err(right.span, "`has one of` needs a list: `segments has one of [\"sanyo\", \"kyushu\"]`")
                    self.expr(right, ctx)
                else:
                    for item in right.items:
                        self.compatible(item, lt, self.expr(item, ctx), "an item of the list")
            else:
                self.compatible(right, lt, self.expr(right, ctx), "the value after `has`")
            return sym.BOOL
        if op in ("in", "not in"):
            lt = self.expr(left, ctx)
            if isinstance(right, ast.Name) and right.name in sym.RANGE_NAMES:
                if ctx.scope != "event":
                    self.err(right.span, f"`{right.name}` is a date range of events: use it in a stream")
                elif right.name == "window" and self.c.window is None:
                    self.err(right.span, "this campaign has no window",
                             "use `period` for the current monthly period" if self.c.cycle else
                             "add `window FIRST_DAY .. LAST_DAY`")
                if lt not in (sym.DATE, sym.ANY):
                    self.err(left.span, f"type mismatch: `in {right.name}` needs a date, not {lt}",
                             f"e.g. `date in {right.name}`")
                return sym.BOOL
            if isinstance(right, ast.ListLit):
                for item in right.items:
                    self.compatible(item, lt, self.expr(item, ctx), "an item of the list")
                return sym.BOOL
            if isinstance(right, ast.Dotted) and right.base in self.failed_tables and ctx.scope == "event":
                return sym.BOOL
            if isinstance(right, ast.Dotted) and right.base in self.tables and ctx.scope == "event":
                table = self.tables[right.base]
                if right.attr not in table.columns:
                    self.err(right.span, f"table {right.base} has no column {right.attr}",
                             _did_you_mean(right.attr, table.columns))
                else:
                    self.compatible(left, _table_type(table, right.attr), lt, "the value before `in`")
                return sym.BOOL
            if ctx.scope == "event":
                if (isinstance(right, ast.Name) and ctx.fields is not None and right.name in ctx.fields
                        and right.name not in self.values):
                    rt = self.expr(right, ctx)
                    if rt == sym.LIST and right.name in sym.event_fields(ctx.stream.event_type):
                        self.compatible(left, sym.STR, lt, "the value before `in`")
                        return sym.BOOL
                if ctx.fields is None and isinstance(right, ast.Name):
                    return sym.BOOL
                self.err(right.span, "after `in`: a list [..], `window`, `period`, TABLE.COLUMN or a list field",
                         "for a range write `x in A .. B`")
                return sym.BOOL
            rt = self.expr(right, ctx)
            if rt not in (sym.LIST, sym.ANY):
                self.err(right.span, f"after `in`: a list, not {rt}",
                         "per member, `in` tests a list such as [1, 2, 3]")
            return sym.BOOL
        lt, rt = self.expr(left, ctx), self.expr(right, ctx)
        self.compatible(n, lt, rt, None)
        if op in ORDERED_OPS:
            for side, ty in ((left, lt), (right, rt)):
                if ty in (sym.BOOL, sym.LIST, sym.NONE):
                    self.err(side.span, f"`{op}` cannot order {ty} values",
                             "compare with none using == or !=" if ty == sym.NONE else None)
                    break
        return sym.BOOL

    def compatible(self, node, a: str, b: str, what: str | None) -> bool:
        if sym.compatible(a, b):
            return True
        subject = f"{what}: " if what else ""
        self.err(node.span, f"type mismatch: {subject}cannot compare {a} with {b}",
                 f"`{self.text(node)}`" if what is None else None)
        return False

    def in_range(self, n: ast.InRange, ctx: _Ctx) -> str:
        vt = self.expr(n.value, ctx)
        lt, ht = self.expr(n.low, ctx), self.expr(n.high, ctx)
        for end, et in ((n.low, lt), (n.high, ht)):
            if not sym.compatible(vt, et):
                self.err(end.span, f"type mismatch: the range bound is {et}, the value is {vt}",
                         f"`{self.text(n)}`")
                return sym.BOOL
        for ty in (vt, lt, ht):
            if ty in (sym.BOOL, sym.LIST, sym.NONE):
                self.err(n.span, f"a range `A .. B` needs ordered values (numbers, dates, times), not {ty}")
                return sym.BOOL
        if isinstance(n.low, ast.Literal) and isinstance(n.high, ast.Literal):
            lo, hi = n.low.value, n.high.value
            try:
                empty = hi < lo or (hi == lo and not n.inclusive_end)
            except TypeError:
                empty = False
            if empty:
                self.err(n.span, f"the range `{self.text(n.low)} {'..' if n.inclusive_end else '..<'} "
                         f"{self.text(n.high)}` is empty", "write the lower bound first")
        return sym.BOOL

    def group_sum(self, n: ast.GroupSum, ctx: _Ctx) -> str:
        if ctx.scope == "event":
            self.err(n.span, "`sum over` is computed per member: it cannot be used in a stream")
            return sym.ANY
        if ctx.group is not None:
            self.err(n.span, "`sum over` cannot be nested")
            return sym.ANY
        stream = self.streams.get(n.stream)
        if stream is None:
            self.err(n.span, f"unknown stream {n.stream} in `sum over`", _did_you_mean(n.stream, self.streams))
            return sym.ANY
        key_type = self.field_type(stream, n.key)
        if key_type is None:
            self.err(n.span, f"stream {n.stream} has no field {n.key} to group by",
                     _did_you_mean(n.key, self.stream_field_names(stream) or {}))
            key_type = sym.ANY
        inner = _Ctx("member", group=n, group_stream=stream, key_type=key_type)
        ty = self.expr(n.body, inner)
        if ty not in sym.NUMERIC and ty != sym.ANY:
            self.err(n.body.span, f"the body of `sum over` must be a number, not {ty}")
            return sym.ANY
        return sym.INT if ty == sym.INT else sym.NUM

    def lookup(self, n: ast.Lookup, ctx: _Ctx) -> str:
        if ctx.scope != "event":
            self.err(n.span, "`lookup` reads a table per event: use it in a stream's `field` or `where`",
                     "e.g. `field rate = lookup rate in TABLE where merchant == merchant else 1`")
            return sym.ANY
        table = self.tables.get(n.table)
        ty = sym.ANY
        if n.table in self.failed_tables:
            pass
        elif table is None:
            self.err(n.span, f"unknown table {n.table}",
                     _did_you_mean(n.table, self.tables) if self.tables else
                     "declare it: `table NAME from \"data/FILE.csv\"`")
        elif n.column not in table.columns:
            self.err(n.span, f"table {n.table} has no column {n.column}", _did_you_mean(n.column, table.columns))
        else:
            ty = _table_type(table, n.column)
        for c in n.conds:
            vt = self.expr(c.value, ctx)
            if table is None:
                continue
            if c.column not in table.columns:
                self.err(c.span, f"table {n.table} has no column {c.column}", _did_you_mean(c.column, table.columns))
            else:
                ct = _table_type(table, c.column)
                if not sym.compatible(ct, vt):
                    self.err(c.span, f"type mismatch: column {c.column} of {n.table} is {ct}, compared with {vt}")
        dt_ = self.expr(n.default, ctx)
        if not sym.compatible(ty, dt_):
            self.err(n.default.span, f"type mismatch: the default after `else` is {dt_}, the column is {ty}")
            return sym.ANY
        return _unify(ty, dt_)

    # ------------------------------------------------------------ calls
    def _is_aggregate(self, n: ast.Call, group) -> bool:
        """Mirrors the compiler's decision."""
        if n.func in sym.AGGREGATES:
            return True
        if n.func in sym.MIN_MAX and len(n.args) == 1:
            arg = n.args[0]
            return isinstance(arg, (ast.Dotted, ast.Filtered, ast.Name)) and (
                group is not None or not isinstance(arg, ast.Name) or arg.name in self.streams)
        return False

    def call(self, n: ast.Call, ctx: _Ctx) -> str:
        f = n.func
        if f not in sym.AGGREGATES and f not in sym.SCALAR_FUNCTIONS:
            best = _closest(f, ALL_FUNCTIONS)
            self.err(n.span, f"unknown function {f}", (f"did you mean {best}? " if best else "") + FUNCTION_HINT)
            for a in n.args:
                if not isinstance(a, ast.Filtered):
                    self.expr(a, ctx)
            return sym.ANY
        if self._is_aggregate(n, ctx.group):
            return self.aggregate(n, ctx)
        if ctx.scope == "event":
            self.err(n.span, f"{f}() is computed per member: it cannot be used in a stream",
                     "in a stream, only aggregates of other streams can be used, e.g. first(application.date)")
            return sym.ANY
        types = [self.expr(a, ctx) for a in n.args]
        if f in sym.MIN_MAX:
            if not n.args:
                self.err(n.span, f"{f}() needs at least one argument")
                return sym.ANY
            out = sym.ANY
            for a, ty in zip(n.args, types):
                if ty in (sym.BOOL, sym.LIST, sym.STR):
                    self.err(a.span, f"type mismatch: {f}() compares numbers or dates, not {ty}")
                    return sym.ANY
                if not sym.compatible(out, ty):
                    self.err(a.span, f"type mismatch: {f}() of {out} and {ty}")
                    return sym.ANY
                out = _unify(out, ty)
            return out
        if f == "abs":
            if len(n.args) != 1:
                self.err(n.span, f"abs() takes 1 argument, not {len(n.args)}")
                return sym.ANY
            if types[0] not in sym.NUMERIC and types[0] != sym.ANY:
                self.err(n.args[0].span, f"type mismatch: abs() needs a number, not {types[0]}")
                return sym.ANY
            return types[0]
        # floor, ceil, trunc, round
        if not 1 <= len(n.args) <= 2:
            self.err(n.span, f"{f}() takes 1 or 2 arguments (the number, then the step), not {len(n.args)}",
                     f"e.g. {f}(total * 5%) or {f}(total, 1_000)")
            return sym.ANY
        if types[0] not in sym.NUMERIC and types[0] != sym.ANY:
            self.err(n.args[0].span, f"type mismatch: {f}() needs a number, not {types[0]}")
            return sym.ANY
        if len(n.args) == 2:
            step = n.args[1]
            if not (isinstance(step, ast.Literal) and isinstance(step.value, (int, Fraction))
                    and not isinstance(step.value, bool) and step.value > 0):
                self.err(step.span, f"the step of {f}() must be a number greater than 0, such as 1_000",
                         f"e.g. {f}(total, 1_000) rounds to a multiple of 1,000")
                return sym.INT
            return sym.INT if isinstance(step.value, int) else sym.NUM
        return sym.INT

    def aggregate(self, n: ast.Call, ctx: _Ctx) -> str:
        f = n.func
        want = 2 if f == "date_reaching" else 1
        if len(n.args) != want:
            example = {"date_reaching": "date_reaching(charge.amount, 20_000)", "count": "count(pay)",
                       "exists": "exists(pay)", "distinct_days": "distinct_days(pay)",
                       "any": "any(booking.ticketless)", "all": "all(booking.ticketless)"}.get(f, f"{f}(stream.field)")
            self.err(n.span, f"{f}() takes {want} argument{'s' if want > 1 else ''}, not {len(n.args)}",
                     f"e.g. {example}")
            return sym.AGGREGATES.get(f) or sym.ANY
        if ctx.scope == "event" and f == "date_reaching":
            self.err(n.span, "date_reaching() cannot be used in a stream", "compute it in a value")
            return sym.DATE
        if ctx.group is not None and f == "date_reaching":
            self.err(n.span, "date_reaching() cannot be used inside `sum over`")
            return sym.DATE
        arg = n.args[0]
        # Resolve the argument to (stream, field or None, filter or None).
        stream, field = None, None
        if ctx.group is not None:
            gs = ctx.group_stream
            if isinstance(arg, ast.Name):
                if arg.name == gs.name and f in sym.STREAM_AGGREGATES:
                    stream = gs
                else:
                    stream, field = gs, arg.name
            elif isinstance(arg, ast.Dotted) and arg.base == gs.name:
                stream, field = gs, arg.attr
            elif isinstance(arg, ast.Filtered) and arg.stream == gs.name:
                stream = gs
            else:
                self.err(arg.span, f"inside `sum over {gs.name} by ...`, aggregates are over the events "
                         f"of {gs.name}", f"e.g. sum(amount) or count({gs.name})")
                return sym.AGGREGATES.get(f) or sym.ANY
        else:
            base = (arg.name if isinstance(arg, ast.Name) else arg.base if isinstance(arg, ast.Dotted)
                    else arg.stream if isinstance(arg, ast.Filtered) else None)
            if base is None:
                self.err(arg.span, f"{f}() aggregates a stream: write {f}(STREAM) or {f}(STREAM.field)")
                if not isinstance(arg, ast.Filtered):
                    self.expr(arg, ctx) if ctx.scope == "member" else None
                return sym.AGGREGATES.get(f) or sym.ANY
            stream = self.streams.get(base)
            if stream is None:
                if base in self.tables:
                    self.err(arg.span, f"{base} is a table, not a stream: {f}() aggregates a stream's events")
                else:
                    self.err(arg.span, f"unknown stream {base}",
                             _did_you_mean(base, self.streams) if self.streams else
                             "declare it: `stream NAME = EVENT_TYPE where ...`")
                return sym.AGGREGATES.get(f) or sym.ANY
            if isinstance(arg, ast.Dotted):
                field = arg.attr
            if ctx.scope == "event" and ctx.stream is not None:
                if stream.name == ctx.stream.name:
                    self.err(n.span, f"stream {stream.name} cannot use an aggregate of itself in its own filter",
                             "aggregate another stream, or compute it per member in a value")
                    return sym.AGGREGATES.get(f) or sym.ANY
                self._stream_deps.setdefault(ctx.stream.name, {}).setdefault(stream.name, n.span)
        if isinstance(arg, ast.Filtered):
            fctx = _Ctx("event", stream=stream,
                        fields=self.stream_field_names_typed(stream) if stream.event_type in sym.EVENT_TYPES
                        else None)
            self.need_bool(arg.cond, self.expr(arg.cond, fctx), "the condition after `where`")
            if ctx.scope == "event" and ctx.stream is not None:
                pass
        # Shape of the argument per aggregate.
        ftype = None
        if field is not None:
            ftype = self.field_type(stream, field)
            if ftype is None:
                self.err(arg.span, f"stream {stream.name} ({stream.event_type}) has no field {field}",
                         _did_you_mean(field, self.stream_field_names(stream) or {}))
                return sym.AGGREGATES.get(f) or sym.ANY
        if f in sym.FIELD_AGGREGATES:
            if field is None:
                self.err(arg.span, f"{f}() needs a field of the stream: {f}({stream.name}.FIELD)",
                         "to aggregate only some events, declare a stream with that filter"
                         if isinstance(arg, ast.Filtered) else f"e.g. {f}({stream.name}.amount)")
                return sym.AGGREGATES.get(f) or sym.ANY
            if f in ("sum", "date_reaching") and ftype not in sym.NUMERIC and ftype != sym.ANY:
                self.err(arg.span, f"{f}() needs a number field; {stream.name}.{field} is {ftype}")
                return sym.AGGREGATES.get(f) or sym.ANY
            if f in ("first", "last") and field not in ("date", "at"):
                self.err(arg.span, f"{f}() takes the date of the first or last event: "
                         f"{f}({stream.name}.date) or {f}({stream.name}.at)")
                return sym.ANY
            if f in sym.MIN_MAX and ftype in (sym.BOOL, sym.LIST):
                self.err(arg.span, f"type mismatch: {f}() of {ftype} field {field}")
                return sym.ANY
            if f == "date_reaching":
                limit = n.args[1]
                if not (isinstance(limit, ast.Literal) and type(limit.value) is int and limit.value > 0):
                    self.err(limit.span, "the threshold of date_reaching() must be a whole number greater than 0",
                             "e.g. date_reaching(charge.amount, 20_000)")
                return sym.DATE
            if f == "count_distinct":
                return sym.INT
            return sym.INT if f == "sum" else ftype
        if f in sym.STREAM_AGGREGATES:
            if field is not None:
                self.err(arg.span, f"{f}() counts events: write {f}({stream.name}) or "
                         f"{f}({stream.name} where ...)")
            return sym.AGGREGATES[f]
        # any / all
        if field is None and not isinstance(arg, ast.Filtered):
            self.err(arg.span, f"{f}() needs a yes/no field or a condition: {f}({stream.name}.FIELD) "
                     f"or {f}({stream.name} where ...)", f"to test for any event, use exists({stream.name})")
        elif field is not None and ftype not in (sym.BOOL, sym.ANY):
            self.err(arg.span, f"{f}() needs a yes/no field; {stream.name}.{field} is {ftype}",
                     f"e.g. {f}({stream.name} where {field} ...)")
        return sym.BOOL

    # ------------------------------------------------------------ graphs
    def check_stream_cycles(self) -> None:
        deps = self._stream_deps
        state: dict[str, int] = {}
        reported: set[frozenset] = set()

        def visit(s: str, path: list[str]) -> None:
            state[s] = 1
            for t in deps.get(s, {}):
                if t == s:
                    self.err(deps[s][t], f"stream {s} cannot use an aggregate of itself in its own filter "
                             "(through a value)", "aggregate another stream, or compute it per member")
                    continue
                if state.get(t) == 1:
                    cycle = path[path.index(t):] + [t] if t in path else [s, t]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.err(deps[s][t], "streams depend on each other through their filters: "
                                 + " -> ".join(cycle), "a stream's filter may aggregate other streams, not in a loop")
                elif state.get(t) is None:
                    visit(t, path + [t])
            state[s] = 2

        for s in list(deps):
            if state.get(s) is None:
                visit(s, [s])

    def check_value_cycles(self) -> None:
        nodes: dict[str, tuple[object, list]] = {}
        for v in self.c.values:
            nodes.setdefault(v.name, (v, [v.expr]))
        for a in self.c.awards:
            exprs = [a.amount] + ([a.when] if a.when is not None else [])
            if isinstance(a.pay, ast.PayMonthAfter):
                exprs.append(a.pay.after)
            nodes.setdefault(a.name, (a, exprs))
        deps = {}
        for name, (_, exprs) in nodes.items():
            out = []
            for e in exprs:
                for x in _walk(e):
                    if isinstance(x, ast.Name) and x.name in nodes and x.name not in out:
                        out.append(x.name)
            deps[name] = out
        state: dict[str, int] = {}
        reported: set[frozenset] = set()

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for d in deps[name]:
                if state.get(d) == 1:
                    cycle = path[path.index(d):] + [d]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        first = min((nodes[x][0] for x in set(cycle)), key=lambda n: (n.span.line, n.span.column))
                        self.err(first.span, f"{first.name} depends on itself: " + " -> ".join(cycle),
                                 "a value cannot be computed from itself")
                elif state.get(d) is None:
                    visit(d, path + [d])
            state[name] = 2

        for name in nodes:
            if state.get(name) is None:
                visit(name, [name])

    # ------------------------------------------------------------ unreachable missions
    def check_unreachable(self) -> None:
        dead: dict[str, str] = {}
        for a in self.c.awards:
            if a.when is not None:
                reason = self._contradiction(a.when)
                if reason:
                    dead[a.name] = reason
                    self.err(a.when.span, f"{'mission' if a.is_mission else 'award'} {a.name} can never be "
                             f"cleared: {reason}")
        changed = True
        while changed:
            changed = False
            for a in self.c.awards:
                if a.name in dead or a.when is None:
                    continue
                for part in _conjuncts(a.when):
                    if isinstance(part, ast.Name) and part.name in dead and part.name in self.awards \
                            and part.name != a.name:
                        other = self.awards[part.name]
                        reason = (f"it needs {'mission' if other.is_mission else 'award'} {part.name}, "
                                  "which can never be cleared")
                        dead[a.name] = reason
                        self.err(a.when.span, f"{'mission' if a.is_mission else 'award'} {a.name} can never "
                                 f"be cleared: {reason}")
                        changed = True
                        break

    def _contradiction(self, cond) -> str | None:
        bounds: dict = {}
        for part in _conjuncts(cond):
            if isinstance(part, ast.Literal) and part.value is False:
                return "its condition is false" if part is cond else f"`{self.text(part)}` is never true"
            stream = self._needs_stream(part)
            if stream in self.dead_streams:
                return f"it needs events of stream {stream}, which never matches"
            for key, lo, hi in self._int_bounds(part):
                b = bounds.setdefault(key, {"lo": None, "hi": None})
                if isinstance(key, ast.Call) and key.func in NON_NEGATIVE_AGGREGATES and b["lo"] is None:
                    b["lo"] = (0, None)
                if lo is not None and (b["lo"] is None or lo > b["lo"][0]):
                    b["lo"] = (lo, part)
                if hi is not None and (b["hi"] is None or hi < b["hi"][0]):
                    b["hi"] = (hi, part)
                if b["lo"] is not None and b["hi"] is not None and b["lo"][0] > b["hi"][0]:
                    lo_part, hi_part = b["lo"][1], b["hi"][1]
                    if lo_part is None:
                        return f"`{self.text(hi_part)}` is never true ({key.func}() is never negative)"
                    if lo_part is hi_part:
                        return f"`{self.text(hi_part)}` is never true"
                    first, second = sorted([lo_part, hi_part], key=lambda p: (p.span.line, p.span.column))
                    return f"`{self.text(first)}` and `{self.text(second)}` contradict"
        return None

    def _needs_stream(self, part) -> str | None:
        """The stream a conjunct needs at least one event of, if obvious."""
        if isinstance(part, ast.Call) and part.func in ("exists", "any") and len(part.args) == 1:
            arg = part.args[0]
            return arg.name if isinstance(arg, ast.Name) else arg.stream if isinstance(arg, ast.Filtered) \
                else arg.base if isinstance(arg, ast.Dotted) else None
        if isinstance(part, ast.Compare) and part.op in (">=", ">") and isinstance(part.left, ast.Call) \
                and part.left.func in NON_NEGATIVE_AGGREGATES and len(part.left.args) == 1:
            n = _int_lit(part.right)
            if n is not None and (n >= 1 if part.op == ">=" else n >= 0):
                arg = part.left.args[0]
                return arg.name if isinstance(arg, ast.Name) else arg.stream if isinstance(arg, ast.Filtered) \
                    else arg.base if isinstance(arg, ast.Dotted) else None
        return None

    def _int_bounds(self, part):
        """(expression, low, high) integer bounds that conjunct `part` puts on an expression."""
        if isinstance(part, ast.Compare) and part.op in ORDERED_OPS | {"=="}:
            left, right, op = part.left, part.right, part.op
            if _int_lit(left) is not None and _int_lit(right) is None:
                left, right = right, left
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            n = _int_lit(right)
            if n is None or _int_lit(left) is not None:
                return []
            if not isinstance(left, (ast.Call, ast.Name)):
                return []
            return [(left, *{"<": (None, n - 1), "<=": (None, n), ">": (n + 1, None), ">=": (n, None),
                             "==": (n, n)}[op])]
        if isinstance(part, ast.InRange) and isinstance(part.value, (ast.Call, ast.Name)):
            lo, hi = _int_lit(part.low), _int_lit(part.high)
            if lo is not None and hi is not None:
                return [(part.value, lo, hi if part.inclusive_end else hi - 1)]
        return []


# ---------------------------------------------------------------- files

def _check_kinds(rules: ast.RulesFile, diags: list[Diagnostic]) -> None:
    seen: dict[str, ast.KindDecl] = {}
    for k in rules.kinds:
        if k.name not in KIND_NAMES:
            best = _closest(k.name, KIND_NAMES)
            diags.append(at(k.span, f"unknown point kind {k.name}: a `kind` declaration names one of "
                            f"{', '.join(KIND_NAMES)}", f"did you mean {best}?" if best else
                            "kinds are fixed by the ledger; a declaration gives a display name and aliases"))
        if k.name in seen and _kind_key(seen[k.name]) != _kind_key(k):
            first = seen[k.name]
            diags.append(at(k.span, f"kind {k.name} is declared differently at line {first.span.line}"))
        seen.setdefault(k.name, k)
        last = None
        for alias in k.aliases:
            if last is not None and alias.until <= last:
                diags.append(at(alias.span, "the aliases of a kind are listed oldest first",
                                f"`until {alias.until}` is not after `until {last}`"))
            last = alias.until


def _kind_key(k: ast.KindDecl):
    return (k.display, tuple((a.name, a.until) for a in k.aliases))


def check(rules: ast.RulesFile, rules_dir: Path) -> tuple[list[Diagnostic], dict[str, Table]]:
    """Every semantic error of one parsed file, sorted, and its reference tables by name."""
    diags: list[Diagnostic] = []
    rules_dir = Path(rules_dir)
    _check_kinds(rules, diags)
    tables: dict[str, Table] = {}
    declared: dict[str, ast.TableDecl] = {}
    names: dict[str, ast.Campaign] = {}
    for c in rules.campaigns:
        if c.name in names:
            diags.append(at(c.span, f"campaign {c.name} is already declared at line {names[c.name].span.line}"))
        names.setdefault(c.name, c)
        campaign_tables: dict[str, Table] = {}
        for t in c.tables:
            if t.name in campaign_tables or (t.name in declared and declared[t.name].path != t.path):
                diags.append(at(t.span, f"table {t.name} is already declared at line {declared[t.name].span.line}",
                                "give each table its own name"))
                continue
            if t.name in tables:
                campaign_tables[t.name] = tables[t.name]
                continue
            try:
                table = tables_mod.load(t.name, rules_dir, t.path)
            except TableError as exc:
                diags.append(at(t.span, str(exc), "tables are CSV files in the rules folder, e.g. \"data/stores.csv\""))
                declared.setdefault(t.name, t)
                continue
            declared.setdefault(t.name, t)
            tables[t.name] = table
            campaign_tables[t.name] = table
        checker = _CampaignChecker(rules, c, campaign_tables, diags)
        checker.failed_tables = {t.name for t in c.tables if t.name not in campaign_tables}
        checker.run()
    return _unique_sorted(diags), tables


def _unique_sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(set(diags), key=Diagnostic.sort_key)


def check_many(files: list[ast.RulesFile], rules_dir: Path) -> list[Diagnostic]:
    """What only shows across files (each file is checked by `check`): a campaign declared
    in two files (reported at the second) and a point kind declared differently."""
    diags: list[Diagnostic] = []
    campaigns: dict[str, ast.Campaign] = {}
    kinds: dict[str, ast.KindDecl] = {}
    for rules in files:
        for k in rules.kinds:
            first = kinds.get(k.name)
            if first is None:
                kinds[k.name] = k
            elif first.span.path != k.span.path and _kind_key(first) != _kind_key(k):
                diags.append(at(k.span, f"kind {k.name} is declared differently in {first.span}",
                                "declare a kind once, or identically"))
        for c in rules.campaigns:
            first = campaigns.get(c.name)
            if first is None:
                campaigns[c.name] = c
            elif first.span.path != c.span.path:
                diags.append(at(c.span, f"campaign {c.name} is already declared in {first.span}",
                                "each campaign has one file; rename one of them"))
    return _unique_sorted(diags)
