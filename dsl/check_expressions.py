"""Checks of expressions: names, types, functions and aggregates, per event and per member.

`ExpressionChecker` is given the campaign's `Scope` by the clause checker
(`dsl.checker`): every method returns the type of the expression it checked and
reports what is wrong through the scope. Calls (functions and aggregates) are checked
by a `CallChecker` (`dsl.check_calls`) it owns.
"""

from __future__ import annotations

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl import foreign
from points.dsl.check_calls import CallChecker
from points.dsl.check_common import (
    ORDERED_OPS, Ctx, Scope, closest, did_you_mean, event_blocker, is_sql_group, table_type, unify,
)


class ExpressionChecker:
    """Type and name checks of expressions; the types of values and of stream fields
    are computed once, on first use, and remembered."""

    def __init__(self, scope: Scope):
        self.s = scope
        self.calls = CallChecker(scope, self)
        self._value_types: dict[str, str] = {}
        self._in_progress: set[str] = set()
        self._field_types: dict[tuple[str, str], str] = {}
        self._field_progress: set[tuple[str, str]] = set()
        # stream -> the streams its filter aggregates (and where): checked for loops
        self.stream_deps: dict[str, dict[str, ast.Span]] = {st.name: {} for st in scope.c.streams}

    # ------------------------------------------------------------ names and types
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
                return self.def_type(stream, i)
        return sym.event_fields(stream.event_type).get(name)

    def def_type(self, stream: ast.Stream, index: int) -> str:
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
        ctx = Ctx("event", stream=stream, fields=visible)
        ty = self.expr(f.expr, ctx)
        self._field_progress.discard(key)
        self._field_types[key] = ty
        return ty

    def stream_field_names_typed(self, s: ast.Stream) -> dict[str, str]:
        out = dict(sym.event_fields(s.event_type))
        for f in s.fields:
            out.setdefault(f.name, self._field_types.get((s.name, f.name), sym.ANY))
        return out

    def need_bool(self, node, ty: str, what: str) -> None:
        if ty not in (sym.BOOL, sym.ANY):
            self.s.err(node.span, f"{what} must be a condition (true or false), not {ty}",
                     "compare it, e.g. `amount >= 500`")

    def value_type(self, name: str) -> str:
        if name in self._value_types:
            return self._value_types[name]
        if name in self._in_progress:
            return sym.ANY  # a cycle: reported by check_value_cycles
        self._in_progress.add(name)
        node = self.s.values[name]
        ty = self.expr(node.expr, Ctx("member"))
        self._in_progress.discard(name)
        self._value_types[name] = ty
        return ty


    # ------------------------------------------------------------ expressions
    def expr(self, n, ctx: Ctx) -> str:
        t = type(n)
        if t is ast.Literal:
            ty = sym.literal_type(n.value)
            return ty
        if t is ast.Name:
            return self.name(n, ctx)
        if t is ast.Dotted:
            return self.dotted(n, ctx)
        if t is ast.Filtered:
            self.s.err(n.span, f"`{n.stream} where ...` can only be the argument of an aggregate",
                     f"e.g. `count({n.stream} where ...)`")
            return sym.ANY
        if t is ast.Call:
            return self.calls.call(n, ctx)
        if t is ast.ListLit:
            if ctx.scope == "event":
                self.s.err(n.span, "a list can only follow `in` or `has one of` in a stream")
            return self.list_items(n, ctx)
        if t is ast.Unary:
            ty = self.expr(n.operand, ctx)
            if n.op == "not":
                self.need_bool(n.operand, ty, "the operand of `not`")
                return sym.BOOL
            if ty not in sym.NUMERIC and ty != sym.ANY:
                self.s.err(n.span, f"type mismatch: cannot negate {ty}")
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
                self.s.err(n.span, f"type mismatch: one branch is {a}, the other {b}")
                return sym.ANY
            return unify(a, b)
        if t is ast.GroupSum:
            return self.group_sum(n, ctx)
        if t is ast.Lookup:
            return self.calls.lookup(n, ctx)
        self.s.err(n.span, "cannot use this here")  # pragma: no cover - every node type is handled
        return sym.ANY

    def list_items(self, n: ast.ListLit, ctx: Ctx) -> str:
        first = None
        for item in n.items:
            ty = self.expr(item, ctx)
            if first is None or first == sym.ANY:
                first = ty
            elif not sym.compatible(first, ty):
                self.s.err(item.span, f"type mismatch: a list mixes {first} and {ty}")
        return sym.LIST

    def name(self, n: ast.Name, ctx: Ctx) -> str:
        name = n.name
        if ctx.scope == "event":
            if name in sym.WEEKDAYS:
                return sym.WEEKDAY
            if name in self.s.values:
                if ctx.fields is not None and name in ctx.fields:
                    self.s.err(n.span, f"{name} is both a value and a field of {ctx.stream.event_type}",
                             "rename the value")
                    return sym.ANY
                return self.value_in_event(n, ctx)
            if ctx.fields is None:
                return sym.ANY
            if name == sym.RANK and name not in ctx.fields:
                if not ctx.ranked:
                    self.s.err(n.span, "`nth` (the event's rank in its stream) is known only in an "
                               "aggregate's filter", "e.g. `count(purchase where nth >= 11)`, "
                               "`exists(purchase where nth == 1 and date in period)`")
                return sym.INT
            if name in ctx.fields:
                if ctx.stream is not None:
                    for i, f in enumerate(ctx.stream.fields):
                        if f.name == name:
                            return self.def_type(ctx.stream, i)
                return ctx.fields[name]
            if ctx.stream is not None and any(f.name == name for f in ctx.stream.fields):
                self.s.err(n.span, f"field {name} is defined later in stream {ctx.stream.name}",
                         "a field can use the fields defined before it")
                return sym.ANY
            if name in sym.RANGE_NAMES:
                self.s.err(n.span, f"`{name}` is a date range: use it after `in`, as in `date in {name}`")
                return sym.ANY
            if name in self.s.awards:
                self.s.err(n.span, f"{name} is an award, decided per member: it cannot be used in a stream")
                return sym.ANY
            if name in self.s.streams:
                self.s.err(n.span, f"{name} is a stream: in a filter use an aggregate such as exists({name})")
                return sym.ANY
            if name in self.s.tables:
                self.s.err(n.span, f"{name} is a table: use `x in {name}.COLUMN` or `lookup`")
                return sym.ANY
            etype = ctx.stream.event_type if ctx.stream else "this event"
            choices = list(ctx.fields) + list(self.s.values)
            if foreign.foreign_name(self.s, n):
                return sym.ANY
            best = closest(name, choices)
            self.s.err(n.span, f"unknown name {name}: not a field of {etype}",
                     (f"did you mean {best}? " if best else "")
                     + f"fields of {etype}: " + ", ".join(sorted(ctx.fields)))
            return sym.ANY
        # member scope
        if ctx.group is not None:
            if ctx.key_types and name in ctx.key_types:
                return ctx.key_types[name]
            if name in sym.WEEKDAYS:
                return sym.WEEKDAY
            self.s.err(n.span, f"inside `sum over {ctx.group.stream} by {ctx.group.key}` only the key "
                     f"{ctx.group.key} and aggregates of the group's events can be used, not {name}",
                     f"e.g. `sum(amount)` for the total of each {ctx.group.key}")
            return sym.ANY
        if name in self.s.values:
            return self.value_type(name)
        if name in self.s.awards:
            return sym.BOOL
        if name in sym.WEEKDAYS:
            return sym.WEEKDAY
        if name in sym.RANGE_NAMES:
            self.s.err(n.span, f"`{name}` is a date range of events: use it in a stream, as `date in {name}`")
            return sym.ANY
        if name in self.s.streams:
            self.s.err(n.span, f"{name} is a stream of events, not a value",
                     f"use an aggregate: count({name}), exists({name}) or sum({name}.amount)")
            return sym.ANY
        if name in self.s.tables:
            self.s.err(n.span, f"{name} is a table: use it in a stream (`x in {name}.COLUMN` or `lookup`)")
            return sym.ANY
        if sym.is_event_field(name):
            stream = next(iter(self.s.streams), "STREAM")
            self.s.err(n.span, f"{name} is a field of each event, not a value of the member",
                     f"use an aggregate, e.g. sum({stream}.{name}) or first({stream}.{name})")
            return sym.ANY
        choices = list(self.s.values) + list(self.s.awards)
        if foreign.foreign_name(self.s, n):
            return sym.ANY
        self.s.err(n.span, f"unknown name {name}",
                 did_you_mean(name, choices) if choices else "declare it with `value NAME = ...`")
        return sym.ANY

    def value_in_event(self, n: ast.Name, ctx: Ctx) -> str:
        """A member value used per event: inlined as SQL, so only aggregates of other streams."""
        ty = self.value_type(n.name)
        streams: dict[str, ast.Span] = {}
        blocker = event_blocker(self.s.values[n.name].expr, self.s.values, self.calls.is_aggregate, streams, {n.name})
        if blocker is not None:
            self.s.err(n.span, f"value {n.name} cannot be used in a stream: it uses `{self.s.text(blocker)}`",
                     "per event, a value may only combine numbers, dates and aggregates of other "
                     "streams (no /, no percentages, no functions other than aggregates)")
            return ty
        if ctx.stream is not None:
            for s in streams:
                self.stream_deps.setdefault(ctx.stream.name, {}).setdefault(s, n.span)
        return ty

    def dotted(self, n: ast.Dotted, ctx: Ctx) -> str:
        if n.base == sym.MEMBER and n.base not in self.s.streams and n.base not in self.s.tables:
            return self.calls.member_attribute(n, ctx)
        if n.base in self.s.tables or n.base in self.s.failed_tables:
            self.s.err(n.span, f"`{n.base}.{n.attr}` is a table column: use it after `in`",
                     f"e.g. `merchant in {n.base}.{n.attr}`, or `lookup {n.attr} in {n.base} where ...`")
        elif n.base in self.s.streams:
            self.s.err(n.span, f"`{n.base}.{n.attr}` is one value per event: use an aggregate",
                     f"e.g. sum({n.base}.{n.attr}), first({n.base}.{n.attr}) or max({n.base}.{n.attr})")
        else:
            self.s.err(n.span, f"unknown stream or table {n.base}",
                     did_you_mean(n.base, list(self.s.streams) + list(self.s.tables)))
        return sym.ANY

    def binop(self, n: ast.BinOp, ctx: Ctx) -> str:
        if n.op == "-" and foreign.dashed(self.s, n, ctx):
            if isinstance(n.left, ast.BinOp):  # what stands before the dashed name
                self.expr(n.left.left, ctx)
            return sym.ANY
        a, b = self.expr(n.left, ctx), self.expr(n.right, ctx)
        if n.op in ("and", "or"):
            self.need_bool(n.left, a, f"each side of `{n.op}`")
            self.need_bool(n.right, b, f"each side of `{n.op}`")
            return sym.BOOL
        if (n.op in ("+", "-") and sym.DATE in (a, b)) or sym.DAYS in (a, b):
            return self.calls.date_arith(n, a, b)
        for side, ty in ((n.left, a), (n.right, b)):
            if ty not in sym.NUMERIC and ty != sym.ANY:
                self.s.err(side.span, f"type mismatch: `{n.op}` needs numbers, not {ty}",
                         "a date takes a number of days: `date + 30 days`; compare dates with <, >" if ty == sym.DATE else None)
                return sym.ANY
        if n.op == "/":
            return sym.NUM
        return unify(a, b)

    def compare(self, n: ast.Compare, ctx: Ctx) -> str:
        op, left, right = n.op, n.left, n.right
        if op in ("has", "has one of"):
            if ctx.scope != "event":
                self.s.err(n.span, f"`{op}` tests a list field of each event: use it in a stream")
                return sym.BOOL
            lt = sym.ANY
            if not isinstance(left, ast.Name) or (ctx.fields is not None and (
                    left.name not in sym.event_fields(ctx.stream.event_type)
                    or sym.event_fields(ctx.stream.event_type)[left.name] != sym.LIST)):
                lists = sorted(k for k, v in (ctx.fields or {}).items() if v == sym.LIST)
                self.s.err(left.span, f"`{op}` needs a list field of the event on its left",
                         f"list fields of {ctx.stream.event_type}: {', '.join(lists)}" if lists
                         else f"{ctx.stream.event_type} has no list field")
            else:
                lt = sym.STR
            if op == "has one of":
                if not isinstance(right, ast.ListLit):
                    self.s.err(right.span, "`has one of` needs a list: `segments has one of [\"sanyo\", \"kyushu\"]`")
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
                    self.s.err(right.span, f"`{right.name}` is a date range of events: use it in a stream")
                elif right.name == "window" and self.s.c.window is None:
                    self.s.err(right.span, "this campaign has no window",
                             "use `period` for the current monthly period" if self.s.c.cycle else
                             "add `window FIRST_DAY .. LAST_DAY`")
                if lt not in (sym.DATE, sym.ANY):
                    self.s.err(left.span, f"type mismatch: `in {right.name}` needs a date, not {lt}",
                             f"e.g. `date in {right.name}`")
                return sym.BOOL
            if isinstance(right, ast.ListLit):
                for item in right.items:
                    self.compatible(item, lt, self.expr(item, ctx), "an item of the list")
                return sym.BOOL
            if isinstance(right, ast.Dotted) and right.base in self.s.failed_tables and ctx.scope == "event":
                return sym.BOOL
            if isinstance(right, ast.Dotted) and right.base in self.s.tables and ctx.scope == "event":
                table = self.s.tables[right.base]
                if right.attr not in table.columns:
                    self.s.err(right.span, f"table {right.base} has no column {right.attr}",
                             did_you_mean(right.attr, table.columns))
                else:
                    self.compatible(left, table_type(table, right.attr), lt, "the value before `in`")
                return sym.BOOL
            if ctx.scope == "event":
                if (isinstance(right, ast.Name) and ctx.fields is not None and right.name in ctx.fields
                        and right.name not in self.s.values):
                    rt = self.expr(right, ctx)
                    if rt == sym.LIST and right.name in sym.event_fields(ctx.stream.event_type):
                        self.compatible(left, sym.STR, lt, "the value before `in`")
                        return sym.BOOL
                if ctx.fields is None and isinstance(right, ast.Name):
                    return sym.BOOL
                self.s.err(right.span, "after `in`: a list [..], `window`, `period`, TABLE.COLUMN or a list field",
                         "for a range write `x in A .. B`")
                return sym.BOOL
            rt = self.expr(right, ctx)
            if rt not in (sym.LIST, sym.ANY):
                self.s.err(right.span, f"after `in`: a list, not {rt}",
                         "per member, `in` tests a list such as [1, 2, 3]")
            return sym.BOOL
        lt, rt = self.expr(left, ctx), self.expr(right, ctx)
        self.need_whole(left, lt, ctx, f"`{self.s.text(left)}`")
        self.need_whole(right, rt, ctx, f"`{self.s.text(right)}`")
        self.compatible(n, lt, rt, None)
        if op in ORDERED_OPS:
            for side, ty in ((left, lt), (right, rt)):
                if ty in (sym.BOOL, sym.LIST, sym.NONE):
                    self.s.err(side.span, f"`{op}` cannot order {ty} values",
                             "compare with none using == or !=" if ty == sym.NONE else None)
                    break
        return sym.BOOL

    def compatible(self, node, a: str, b: str, what: str | None) -> bool:
        if sym.compatible(a, b):
            return True
        subject = f"{what}: " if what else ""
        self.s.err(node.span, f"type mismatch: {subject}cannot compare {a} with {b}",
                 f"`{self.s.text(node)}`" if what is None else None)
        return False

    def in_range(self, n: ast.InRange, ctx: Ctx) -> str:
        vt = self.expr(n.value, ctx)
        lt, ht = self.expr(n.low, ctx), self.expr(n.high, ctx)
        for part, ty in ((n.value, vt), (n.low, lt), (n.high, ht)):
            self.need_whole(part, ty, ctx, f"`{self.s.text(part)}`")
        for end, et in ((n.low, lt), (n.high, ht)):
            if not sym.compatible(vt, et):
                self.s.err(end.span, f"type mismatch: the range bound is {et}, the value is {vt}",
                         f"`{self.s.text(n)}`")
                return sym.BOOL
        for ty in (vt, lt, ht):
            if ty in (sym.BOOL, sym.LIST, sym.NONE):
                self.s.err(n.span, f"a range `A .. B` needs ordered values (numbers, dates, times), not {ty}")
                return sym.BOOL
        if isinstance(n.low, ast.Literal) and isinstance(n.high, ast.Literal):
            lo, hi = n.low.value, n.high.value
            try:
                empty = hi < lo or (hi == lo and not n.inclusive_end)
            except TypeError:
                empty = False
            if empty:
                self.s.err(n.span, f"the range `{self.s.text(n.low)} {'..' if n.inclusive_end else '..<'} "
                         f"{self.s.text(n.high)}` is empty", "write the lower bound first")
        return sym.BOOL

    def group_sum(self, n: ast.GroupSum, ctx: Ctx) -> str:
        if ctx.scope == "event":
            self.s.err(n.span, "`sum over` is computed per member: it cannot be used in a stream")
            return sym.ANY
        if ctx.group is not None and n.stream != ctx.group.stream:
            self.s.err(n.span, f"a `sum over` inside `sum over {ctx.group.stream}` splits the same "
                       f"stream's groups further: write `sum over {ctx.group.stream} by ...`")
            return sym.ANY
        stream = self.s.streams.get(n.stream)
        if stream is None:
            self.s.err(n.span, f"unknown stream {n.stream} in `sum over`", did_you_mean(n.stream, self.s.streams))
            return sym.ANY
        key_types = dict(ctx.key_types or {})
        for key in n.keys:
            if key in key_types and ctx.group is not None:
                self.s.err(n.span, f"the groups are already split by {key}", "name each key once")
            key_type = self.field_type(stream, key)
            if key_type is None:
                self.s.err(n.span, f"stream {n.stream} has no field {key} to group by",
                           did_you_mean(key, self.stream_field_names(stream) or {}))
                key_type = sym.ANY
            key_types[key] = key_type
        in_sql = is_sql_group(n, nested=ctx.group is not None)
        inner = Ctx("member", group=n, group_stream=stream, key_type=key_types[n.key],
                    key_types=key_types, in_sql=in_sql)
        ty = self.expr(n.body, inner)
        if ty not in sym.NUMERIC and ty != sym.ANY:
            self.s.err(n.body.span, f"the body of `sum over` must be a number, not {ty}")
            return sym.ANY
        if in_sql and ty == sym.NUM:
            self.s.err(n.body.span, "a nested or multi-key `sum over` adds whole numbers: round the "
                       "body of each group", "e.g. `floor(sum(amount) * 1%)`")
        return sym.INT if ty == sym.INT else sym.NUM

    def need_whole(self, node, ty: str, ctx: Ctx, what: str) -> None:
        """Computed in SQL, a fraction must be rounded before it is compared or kept."""
        if ty == sym.NUM and ctx.sql:
            self.s.err(node.span, f"{what} is a fraction here: round it (per event, only whole numbers "
                       "are compared, kept in a field or added up)",
                       "e.g. `floor(amount * 2%)`, `round(amount / 3)`")
