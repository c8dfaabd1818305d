"""Checks of calls: scalar functions and aggregates over streams, per event and per member.

A `CallChecker` belongs to an `ExpressionChecker` (`dsl.check_expressions`), which it
asks for the types of arguments; both read the campaign's `Scope`. It knows its owner only
as the `ArgumentTyper` protocol below, so neither module imports the other's.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Protocol

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl.errors import Diagnostic
from points.dsl.foreign import FUNCTIONS, not_in_language
from points.dsl.check_common import (
    ALL_FUNCTIONS, FUNCTION_HINT, Ctx, Scope, closest, did_you_mean, table_type, unify,
)


class ArgumentTyper(Protocol):
    """What a CallChecker asks of the expression checker that owns it."""

    stream_deps: dict[str, dict[str, ast.Span]]

    def expr(self, n, ctx: Ctx) -> str: ...
    def field_type(self, stream: ast.Stream, name: str) -> str | None: ...
    def stream_field_names(self, stream: ast.Stream) -> dict[str, None] | None: ...
    def stream_field_names_typed(self, s: ast.Stream) -> dict[str, str]: ...
    def need_bool(self, node, ty: str, what: str) -> None: ...
    def need_whole(self, node, ty: str, ctx: Ctx, what: str) -> None: ...


class CallChecker:
    """Functions, aggregates, table lookups, date arithmetic and member data: arity,
    argument shapes and types."""

    def __init__(self, scope: Scope, exprs: ArgumentTyper):
        self.s = scope
        self.x = exprs

    def is_aggregate(self, n: ast.Call, group) -> bool:
        """Mirrors the compiler's decision."""
        if n.func in sym.AGGREGATES:
            return True
        if n.func in sym.MIN_MAX and len(n.args) == 1:
            arg = n.args[0]
            return isinstance(arg, (ast.Dotted, ast.Filtered, ast.Name)) and (
                group is not None or not isinstance(arg, ast.Name) or arg.name in self.s.streams)
        return False

    def call(self, n: ast.Call, ctx: Ctx) -> str:
        f = n.func
        if f not in sym.AGGREGATES and f not in sym.SCALAR_FUNCTIONS:
            said = not_in_language(f + "()", {f"{k}()": v for k, v in FUNCTIONS.items()})
            best = closest(f, ALL_FUNCTIONS)
            if said:
                self.s.err(n.span, said, FUNCTION_HINT)
                return sym.ANY
            self.s.err(n.span, f"unknown function {f}", (f"did you mean {best}? " if best else "") + FUNCTION_HINT)
            for a in n.args:
                if not isinstance(a, ast.Filtered):
                    self.x.expr(a, ctx)
            return sym.ANY
        if self.is_aggregate(n, ctx.group):
            return self.aggregate(n, ctx)
        types = [self.x.expr(a, ctx) for a in n.args]
        if f == "days":  # `N days`
            if len(types) != 1 or types[0] not in (sym.INT, sym.ANY):
                self.s.err(n.span, "a number of days is a whole number: `30 days`")
                return sym.ANY
            return sym.DAYS
        if f in sym.DATE_FUNCTIONS:
            return self.date_function(n, types)
        if f in sym.CAMPAIGN_FUNCTIONS:
            return self.campaign_function(n, ctx)
        if ctx.sql and f in ("min", "max", "abs"):
            for a, ty in zip(n.args, types):
                self.x.need_whole(a, ty, ctx, f"the argument `{self.s.text(a)}` of {f}()")
            types = [sym.INT if ty == sym.NUM else ty for ty in types]  # reported once, above
        if f in sym.MIN_MAX:
            if not n.args:
                self.s.err(n.span, f"{f}() needs at least one argument")
                return sym.ANY
            out = sym.ANY
            for a, ty in zip(n.args, types):
                if ty in (sym.BOOL, sym.LIST, sym.STR):
                    self.s.err(a.span, f"type mismatch: {f}() compares numbers or dates, not {ty}")
                    return sym.ANY
                if not sym.compatible(out, ty):
                    self.s.err(a.span, f"type mismatch: {f}() of {out} and {ty}")
                    return sym.ANY
                out = unify(out, ty)
            return out
        if f == "abs":
            if len(n.args) != 1:
                self.s.err(n.span, f"abs() takes 1 argument, not {len(n.args)}")
                return sym.ANY
            if types[0] not in sym.NUMERIC and types[0] != sym.ANY:
                self.s.err(n.args[0].span, f"type mismatch: abs() needs a number, not {types[0]}")
                return sym.ANY
            return types[0]
        # floor, ceil, trunc, round
        if not 1 <= len(n.args) <= 2:
            self.s.err(n.span, f"{f}() takes 1 or 2 arguments (the number, then the step), not {len(n.args)}",
                     f"e.g. {f}(total * 5%) or {f}(total, 1_000)")
            return sym.ANY
        if types[0] not in sym.NUMERIC and types[0] != sym.ANY:
            self.s.err(n.args[0].span, f"type mismatch: {f}() needs a number, not {types[0]}")
            return sym.ANY
        if len(n.args) == 2:
            step = n.args[1]
            if not (isinstance(step, ast.Literal) and isinstance(step.value, (int, Fraction))
                    and not isinstance(step.value, bool) and step.value > 0):
                self.s.err(step.span, f"the step of {f}() must be a number greater than 0, such as 1_000",
                         f"e.g. {f}(total, 1_000) rounds to a multiple of 1,000")
                return sym.INT
            if ctx.sql and not isinstance(step.value, int):
                self.s.err(step.span, f"per event, the step of {f}() is a whole number, such as 100")
                return sym.INT
            return sym.INT if isinstance(step.value, int) else sym.NUM
        return sym.INT

    def campaign_function(self, n: ast.Call, ctx: Ctx) -> str:
        """`awarded("campaign", "award")`, `award_date(...)`: another campaign's award, per
        member (that the campaign and award exist, and no loop, is checked across files)."""
        f = n.func
        if len(n.args) != 2 or not all(isinstance(a, ast.Literal) and isinstance(a.value, str) for a in n.args):
            self.s.err(n.span, f"{f}() takes a campaign's name and one of its awards, as text",
                       f'e.g. {f}("gold-status", "gold")')
            return sym.ANY
        if ctx.scope == "event" or ctx.group is not None:
            self.s.err(n.span, f"{f}() reads another campaign's awards per member: use it in a value or a "
                       "condition, not in a stream or `sum over`")
            return sym.ANY
        if n.args[0].value == self.s.c.name:
            self.s.err(n.args[0].span, f"{f}() names this campaign: use the award's name itself",
                       f"e.g. `when {n.args[1].value}`")
            return sym.ANY
        return sym.CAMPAIGN_FUNCTIONS[f]

    def date_function(self, n: ast.Call, types: list[str]) -> str:
        """year(d), month(d), day(d), weekday(d), week_start(d), days_between(a, b)."""
        f = n.func
        want = 2 if f == "days_between" else 1
        if len(n.args) != want:
            self.s.err(n.span, f"{f}() takes {want} date{'s' if want > 1 else ''}, not {len(n.args)} arguments",
                       "e.g. days_between(first(s.date), last(s.date))" if want == 2 else f"e.g. {f}(date)")
            return sym.ANY
        for a, ty in zip(n.args, types):
            if ty not in (sym.DATE, sym.ANY):
                self.s.err(a.span, f"type mismatch: {f}() needs a date, not {ty}",
                           "the date of an event is `date`; `at` is its time stamp")
                return sym.ANY
        return sym.DATE_FUNCTIONS[f]

    def aggregate(self, n: ast.Call, ctx: Ctx) -> str:
        f = n.func
        want = 2 if f == "date_reaching" else 1
        if len(n.args) != want:
            example = {"date_reaching": "date_reaching(charge.amount, 20_000)", "count": "count(pay)",
                       "exists": "exists(pay)", "distinct_days": "distinct_days(pay)",
                       "any": "any(booking.ticketless)", "all": "all(booking.ticketless)"}.get(f, f"{f}(stream.field)")
            self.s.err(n.span, f"{f}() takes {want} argument{'s' if want > 1 else ''}, not {len(n.args)}",
                     f"e.g. {example}")
            return sym.AGGREGATES.get(f) or sym.ANY
        if ctx.scope == "event" and f == "date_reaching":
            self.s.err(n.span, "date_reaching() cannot be used in a stream", "compute it in a value")
            return sym.DATE
        if ctx.group is not None and f == "date_reaching":
            self.s.err(n.span, "date_reaching() cannot be used inside `sum over`")
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
                self.s.err(arg.span, f"inside `sum over {gs.name} by ...`, aggregates are over the events "
                         f"of {gs.name}", f"e.g. sum(amount) or count({gs.name})")
                return sym.AGGREGATES.get(f) or sym.ANY
        else:
            base = (arg.name if isinstance(arg, ast.Name) else arg.base if isinstance(arg, ast.Dotted)
                    else arg.stream if isinstance(arg, ast.Filtered) else None)
            if base is None:
                self.s.err(arg.span, f"{f}() aggregates a stream: write {f}(STREAM) or {f}(STREAM.field)")
                if not isinstance(arg, ast.Filtered):
                    self.x.expr(arg, ctx) if ctx.scope == "member" else None
                return sym.AGGREGATES.get(f) or sym.ANY
            stream = self.s.streams.get(base)
            if stream is None:
                if base in self.s.tables:
                    self.s.err(arg.span, f"{base} is a table, not a stream: {f}() aggregates a stream's events")
                else:
                    self.s.err(arg.span, f"unknown stream {base}",
                             did_you_mean(base, self.s.streams) if self.s.streams else
                             "declare it: `stream NAME = EVENT_TYPE where ...`")
                return sym.AGGREGATES.get(f) or sym.ANY
            if isinstance(arg, ast.Dotted):
                field = arg.attr
            if ctx.scope == "event" and ctx.stream is not None:
                if stream.name == ctx.stream.name:
                    self.s.err(n.span, f"stream {stream.name} cannot use an aggregate of itself in its own filter",
                             "aggregate another stream, or compute it per member in a value")
                    return sym.AGGREGATES.get(f) or sym.ANY
                self.x.stream_deps.setdefault(ctx.stream.name, {}).setdefault(stream.name, n.span)
        if f in sym.STREAKS and (ctx.scope == "event" or ctx.group is not None):
            self.s.err(n.span, f"{f}() is computed per member: use it in a value or a condition")
            return sym.INT
        if stream.credited_to is not None and (ctx.scope == "event" or ctx.group is not None
                                               or f == "date_reaching"):
            self.s.err(n.span, f"stream {stream.name} is credited to {stream.credited_to}: aggregate it in a "
                       "value or a condition (not in a stream, `sum over` or date_reaching)")
            return sym.AGGREGATES.get(f) or sym.ANY
        if isinstance(arg, ast.Filtered):
            fctx = Ctx("event", stream=stream,
                       fields=self.x.stream_field_names_typed(stream) if stream.event_type in sym.EVENT_TYPES
                       else None, ranked=True)
            self.x.need_bool(arg.cond, self.x.expr(arg.cond, fctx), "the condition after `where`")
            if ctx.scope == "event" and ctx.stream is not None:
                pass
        # Shape of the argument per aggregate.
        ftype = None
        if field is not None:
            ftype = self.x.field_type(stream, field)
            if ftype is None:
                self.s.err(arg.span, f"stream {stream.name} ({stream.event_type}) has no field {field}",
                         did_you_mean(field, self.x.stream_field_names(stream) or {}))
                return sym.AGGREGATES.get(f) or sym.ANY
        if f in sym.FIELD_AGGREGATES:
            if field is None:
                self.s.err(arg.span, f"{f}() needs a field of the stream: {f}({stream.name}.FIELD)",
                         "to aggregate only some events, declare a stream with that filter"
                         if isinstance(arg, ast.Filtered) else f"e.g. {f}({stream.name}.amount)")
                return sym.AGGREGATES.get(f) or sym.ANY
            if f in ("sum", "date_reaching") and ftype not in sym.NUMERIC and ftype != sym.ANY:
                self.s.err(arg.span, f"{f}() needs a number field; {stream.name}.{field} is {ftype}")
                return sym.AGGREGATES.get(f) or sym.ANY
            if f in ("first", "last") and field not in ("date", "at"):
                self.s.err(arg.span, f"{f}() takes the date of the first or last event: "
                         f"{f}({stream.name}.date) or {f}({stream.name}.at)")
                return sym.ANY
            if f in sym.MIN_MAX and ftype in (sym.BOOL, sym.LIST):
                self.s.err(arg.span, f"type mismatch: {f}() of {ftype} field {field}")
                return sym.ANY
            if f == "date_reaching":
                limit = n.args[1]
                if not (isinstance(limit, ast.Literal) and type(limit.value) is int and limit.value > 0):
                    self.s.err(limit.span, "the threshold of date_reaching() must be a whole number greater than 0",
                             "e.g. date_reaching(charge.amount, 20_000)")
                return sym.DATE
            if f == "count_distinct":
                return sym.INT
            return sym.INT if f == "sum" else ftype
        if f in sym.STREAM_AGGREGATES:
            if field is not None:
                self.s.err(arg.span, f"{f}() counts events: write {f}({stream.name}) or "
                         f"{f}({stream.name} where ...)")
            return sym.AGGREGATES[f]
        # any / all
        if field is None and not isinstance(arg, ast.Filtered):
            self.s.err(arg.span, f"{f}() needs a yes/no field or a condition: {f}({stream.name}.FIELD) "
                     f"or {f}({stream.name} where ...)", f"to test for any event, use exists({stream.name})")
        elif field is not None and ftype not in (sym.BOOL, sym.ANY):
            self.s.err(arg.span, f"{f}() needs a yes/no field; {stream.name}.{field} is {ftype}",
                     f"e.g. {f}({stream.name} where {field} ...)")
        return sym.BOOL

    def date_arith(self, n: ast.BinOp, a: str, b: str) -> str:
        """`DATE + N days`, `DATE - N days`: a date."""
        if n.op in ("+", "-") and a in (sym.DATE, sym.ANY) and b in (sym.DAYS, sym.ANY):
            return sym.DATE
        if n.op == "+" and a in (sym.DAYS, sym.ANY) and b in (sym.DATE, sym.ANY):
            return sym.DATE
        if n.op == "-" and a == sym.DATE and b == sym.DATE:
            self.s.err(n.span, "the days between two dates are `days_between(EARLIER, LATER)`",
                       "e.g. days_between(first(s.date), date)")
            return sym.INT
        self.s.err(n.span, f"type mismatch: `{n.op}` of {a} and {b}",
                   "a date takes a number of days: `date + 30 days`, `first(s.date) - 7 days`")
        return sym.ANY

    def lookup(self, n: ast.Lookup, ctx: Ctx) -> str:
        if ctx.scope != "event":
            self.s.err(n.span, "`lookup` reads a table per event: use it in a stream's `field` or `where`",
                     "e.g. `field rate = lookup rate in TABLE where merchant == merchant else 1`")
            return sym.ANY
        table = self.s.tables.get(n.table)
        ty = sym.ANY
        if n.table in self.s.failed_tables:
            pass
        elif table is None:
            self.s.err(n.span, f"unknown table {n.table}",
                     did_you_mean(n.table, self.s.tables) if self.s.tables else
                     "declare it: `table NAME from \"data/FILE.csv\"`")
        elif n.column not in table.columns:
            self.s.err(n.span, f"table {n.table} has no column {n.column}", did_you_mean(n.column, table.columns))
        else:
            ty = table_type(table, n.column)
        for c in n.conds:
            vt = self.x.expr(c.value, ctx)
            if table is None:
                continue
            if c.column not in table.columns:
                self.s.err(c.span, f"table {n.table} has no column {c.column}", did_you_mean(c.column, table.columns))
            else:
                ct = table_type(table, c.column)
                if not sym.compatible(ct, vt):
                    self.s.err(c.span, f"type mismatch: column {c.column} of {n.table} is {ct}, compared with {vt}")
        if table is not None and n.conds and all(c.op == "==" and c.column in table.columns for c in n.conds):
            self._unique_key(n, table)
        dt_ = self.x.expr(n.default, ctx)
        if not sym.compatible(ty, dt_):
            self.s.err(n.default.span, f"type mismatch: the default after `else` is {dt_}, the column is {ty}")
            return sym.ANY
        return unify(ty, dt_)

    def _unique_key(self, n: ast.Lookup, table) -> None:
        """A lookup by equal columns only must find one row: two rows with the same key
        would pay by whichever SQLite returns first. The error is at the second row."""
        columns = tuple(dict.fromkeys(c.column for c in n.conds))
        found = table.duplicate(columns)
        if found is None:
            return
        first, second, values = found
        key = ", ".join(f"{c} {v!r}" for c, v in zip(columns, values))
        self.s.diags.append(Diagnostic(
            str(Path(n.span.path).parent / table.path), second, 1,
            f"duplicate key in table {n.table}: lines {first} and {second} both have {key}, and a "
            f"`lookup ... where {' and '.join(f'{c} == ...' for c in columns)}` must find one row",
            "remove or merge one of the two rows"))

    def member_attribute(self, n: ast.Dotted, ctx: Ctx) -> str:
        """`member.tier`: member data, per event on the event's date, per member on the
        last day of the period."""
        attributes = sym.member_attributes()
        if not attributes:
            self.s.err(n.span, f"`member.{n.attr}` reads member data, but no `{sym.PROFILE}` event type "
                       "is declared", "declare it in a *.events file of the rules folder (see docs/events.md)")
            return sym.ANY
        if n.attr not in attributes:
            self.s.err(n.span, f"members have no attribute {n.attr}", did_you_mean(n.attr, attributes))
            return sym.ANY
        if ctx.group is not None:
            self.s.err(n.span, f"`member.{n.attr}` cannot be used inside `sum over`",
                       "read it in a value, or per event in a stream's field")
            return sym.ANY
        return attributes[n.attr]
