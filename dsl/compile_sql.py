"""The per-event back end: SQL over the `events` table for streams, their fields and
filters, lookups, and the aggregate expressions of a member's row.

`EventSql` holds what the SQL of one campaign shares: the bound parameters (a rules
file's literals reach SQL only as parameters), the lookup joins of the main query's
inner pass and each stream's predicate. Identifiers (field, column and table names)
were checked against the schema by the checker and are quoted here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from fractions import Fraction
from typing import Any

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl.compile_numbers import Frac, choose, combine, date_sql, negate, rounded
from points.dsl.plan import ENTRY_STREAM, CompileError, Scan
from points.dsl.tables import Table


def unique_column(table: Table, column: str) -> bool:
    """Whether no two rows of the table share a value in this column."""
    if column not in table.columns:
        return False
    i = table.columns.index(column)
    values = [row[i] for row in table.rows if row[i] is not None]
    return len(values) == len(set(values))


def agg_parts(streams: dict[str, ast.Stream], call: ast.Call) -> tuple[str, ast.Stream, str | None, ast.Expr | None]:
    """(kind, stream, field name, extra filter) of an aggregate call."""
    arg = call.args[0]
    if isinstance(arg, ast.Filtered):
        return call.func, streams[arg.stream], None, arg.cond
    if isinstance(arg, ast.Dotted):
        return call.func, streams[arg.base], arg.attr, None
    if isinstance(arg, ast.Name):
        return call.func, streams[arg.name], None, None
    raise CompileError(f"{call.span}: bad aggregate argument")


class EventSql:
    """SQL for what is computed per event row; see the module docstring."""

    def __init__(self, campaign: ast.Campaign, tables: dict[str, Table], *, join_lookups: bool = True):
        self.c = campaign
        self.tables = tables
        self.streams: dict[str, ast.Stream] = {s.name: s for s in campaign.streams}
        self.value_nodes = {v.name: v for v in campaign.values}
        self.params: dict[str, Any] = {}
        self._param_ids: dict[tuple, str] = {}
        self._alias_n = 0
        self.entry_stream = None
        if campaign.entry is not None:
            self._add_entry_stream(campaign.entry)
        # Each stream's predicate is computed once per event row, as a column of the
        # main query's inner pass; the aggregates and the id list test the column.
        self.flag_of = {name: f"f{i}" for i, name in enumerate(self.streams)}
        self.join_lookups = join_lookups
        self.where: str | None = None  # see in_pass
        self.joins: dict[tuple[str, str, str], str] = {}  # (table, key column, value SQL) -> alias
        self.join_clauses: list[str] = []
        self.join_columns: dict[str, str] = {}  # column of the inner pass -> joined column
        self.group = None  # a GroupLevel while compiling the body of a SQL `sum over`

    # --- helpers
    def param(self, value) -> str:
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, dt.time):
            value = value.strftime("%H:%M:%S")
        elif isinstance(value, Fraction):
            value = float(value)
        key = (type(value).__name__, value)
        if key not in self._param_ids:
            name = f"p{len(self._param_ids)}"
            self._param_ids[key] = name
            self.params[name] = value
        return ":" + self._param_ids[key]

    def alias(self) -> str:
        self._alias_n += 1
        return f"x{self._alias_n}"

    def agg_parts(self, call: ast.Call):
        return agg_parts(self.streams, call)

    def _add_entry_stream(self, entry: ast.EntryRequirement):
        span = entry.span
        cond = ast.BinOp(
            "and",
            ast.Compare("==", ast.Name("campaign", span), ast.Literal(self.c.name, span), span),
            ast.InRange(ast.Name("date", span), entry.within.low, entry.within.high,
                        entry.within.inclusive_end, span),
            span,
        )
        self.streams[ENTRY_STREAM] = ast.Stream(ENTRY_STREAM, "campaign_entry", cond, (), (), span)
        self.entry_stream = ENTRY_STREAM

    # --- expressions on one event row
    def field_sql(self, stream: ast.Stream, name: str, a: str) -> str:
        for f in stream.fields:
            if f.name == name:
                return f"({self.ev(f.expr, stream, a)})"
        if name in sym.COLUMN_FIELDS:
            return f"{a}.{sym.COLUMN_FIELDS[name]}"
        if name == sym.RANK and name not in sym.event_fields(stream.event_type):
            return self.rank_sql(stream, a)
        return f"json_extract({a}.body, {self.param('$.' + name)})"

    def rank_sql(self, stream: ast.Stream, a: str) -> str:
        """`nth`: how many of the member's events of the stream (visible, not undone) come
        before event `a` or are it, by time and then import order."""
        y = self.alias()
        return (f"(SELECT COUNT(*) FROM events {y} WHERE {y}.member = {a}.member "
                f"AND {self.match(stream.name, y, with_visibility=True)} "
                f"AND ({y}.at < {a}.at OR ({y}.at = {a}.at AND {y}.seq <= {a}.seq)))")

    def attribute_sql(self, attribute: str, member_sql: str, day_sql: str) -> str:
        """Member data (`member.ATTR`): the value of the member's `member_profile` event that
        sets it with the latest `valid_from` on or before the day, the later import on a
        tie, undone profiles left out (ledger.member_data's rule), among the events visible
        at the evaluation."""
        p, u = self.alias(), self.alias()
        value = f"json_extract({p}.body, {self.param('$.' + attribute)})"
        valid = f"json_extract({p}.body, {self.param('$.valid_from')})"
        undo = ", ".join(self.param(t) for t in sym.undo_types()) or "NULL"
        return (f"(SELECT {value} FROM events {p} WHERE {p}.type = {self.param(sym.PROFILE)} "
                f"AND {p}.member = {member_sql} AND {value} IS NOT NULL AND {valid} <= {day_sql} "
                f"AND +{p}.day <= :asof AND {p}.seq <= :wm "
                f"AND NOT EXISTS (SELECT 1 FROM events {u} WHERE {u}.ref = {p}.id AND +{u}.type IN ({undo}) "
                f"AND +{u}.day <= :asof AND {u}.seq <= :wm) "
                f"ORDER BY {valid} DESC, {p}.seq DESC LIMIT 1)")

    def is_list_field(self, stream: ast.Stream, node) -> bool:
        return isinstance(node, ast.Name) and sym.event_fields(stream.event_type).get(node.name) == sym.LIST

    def range_sql(self, name: str) -> tuple[str, str]:
        if name == "window":
            return ":wstart", ":wend"
        return ":pstart", ":pend"

    def ev(self, node, stream: ast.Stream, a: str) -> str:
        """SQL for an expression evaluated on one event row (alias `a`)."""
        t = type(node)
        if t is ast.Literal:
            return "NULL" if node.value is None else self.param(node.value)
        if t is ast.Name:
            if self.group is not None and node.name in self.group.keys:
                return self.group.keys[node.name]
            if node.name in sym.WEEKDAYS:
                return self.param(sym.WEEKDAYS[node.name])
            if node.name in self.value_nodes:
                return self.ev(self.value_nodes[node.name].expr, stream, a)
            return self.field_sql(stream, node.name, a)
        if t is ast.Unary:
            inner = self.ev(node.operand, stream, a)
            return f"(NOT COALESCE({inner}, 0))" if node.op == "not" else f"(-{inner})"
        if t is ast.BinOp:
            shifted = self.date_add(node, stream, a)
            if shifted is not None:
                return shifted
            left, right = self.ev(node.left, stream, a), self.ev(node.right, stream, a)
            op = {"and": "AND", "or": "OR"}.get(node.op, node.op)
            return f"({left} {op} {right})"
        if t is ast.Conditional:
            return (f"(CASE WHEN {self.ev(node.cond, stream, a)} THEN {self.ev(node.then, stream, a)} "
                    f"ELSE {self.ev(node.otherwise, stream, a)} END)")
        if t is ast.InRange:
            v = self.ev(node.value, stream, a)
            lo, hi = self.ev(node.low, stream, a), self.ev(node.high, stream, a)
            return f"({v} >= {lo} AND {v} {'<=' if node.inclusive_end else '<'} {hi})"
        if t is ast.Compare:
            return self.compare_sql(node, stream, a)
        if t is ast.Lookup:
            return self.lookup_sql(node, stream, a)
        if t is ast.Dotted and node.base == sym.MEMBER:  # member data on the event's date
            return self.attribute_sql(node.attr, f"{a}.member", f"{a}.day")
        if t is ast.Call:
            if self.group is not None and self.is_aggregate(node):
                return self.group.aggregate(node)
            if self.is_aggregate(node):
                return self.correlated_aggregate(node, a)
            return self.scalar_sql(node, stream, a)
        if t is ast.GroupSum and self.group is not None:
            return self.group.nested(node)
        raise CompileError(f"{node.span}: cannot compile {t.__name__} per event")

    def is_aggregate(self, node: ast.Call) -> bool:
        """The checker's decision: `min(s.f)` aggregates, `min(a, b)` does not."""
        if node.func in sym.AGGREGATES:
            return True
        if node.func in sym.MIN_MAX and len(node.args) == 1:
            arg = node.args[0]
            return isinstance(arg, (ast.Dotted, ast.Filtered)) or (
                isinstance(arg, ast.Name) and (self.group is not None or arg.name in self.streams))
        return False

    # --- numbers and dates computed per event (or per group)
    def frac(self, node, stream, a) -> Frac:
        """A number that may be a fraction, as numerator / denominator SQL (compile_numbers)."""
        t = type(node)
        if t is ast.Literal and isinstance(node.value, Fraction):
            return Frac(self.param(node.value.numerator), self.param(node.value.denominator), True, node.value)
        if t is ast.Literal and type(node.value) is int:
            return Frac(self.param(node.value), "1", True, node.value)
        if t is ast.BinOp and node.op in ("+", "-", "*", "/"):
            return combine(node.op, self.frac(node.left, stream, a), self.frac(node.right, stream, a))
        if t is ast.Unary and node.op == "neg":
            return negate(self.frac(node.operand, stream, a))
        if t is ast.Conditional:
            return choose(self.ev(node.cond, stream, a), self.frac(node.then, stream, a),
                          self.frac(node.otherwise, stream, a))
        return Frac(self.ev(node, stream, a))

    def scalar_sql(self, node: ast.Call, stream, a) -> str:
        func, args = node.func, node.args
        if func in ("floor", "ceil", "trunc", "round"):
            step = self.param(args[1].value) if len(args) == 2 else "1"
            return rounded(func, self.frac(args[0], stream, a), step)
        sql = [self.ev(x, stream, a) for x in args]
        if func in sym.MIN_MAX:  # none (NULL) arguments are skipped, as per member
            out = sql[0]
            for x in sql[1:]:
                if x.startswith(":") or out.startswith(":"):  # a literal is never none
                    lit, other = (x, out) if x.startswith(":") else (out, x)
                    out = f"{func}(COALESCE({other}, {lit}), {lit})"
                else:
                    out = f"{func}(COALESCE({out}, {x}), COALESCE({x}, {out}))"
            return out
        if func == "abs":
            return f"abs({sql[0]})"
        out = date_sql(func, sql)
        if out is None:
            raise CompileError(f"{node.span}: cannot compile {func}() per event")
        return out

    def date_add(self, node: ast.BinOp, stream, a) -> str | None:
        """`DATE + N days` / `DATE - N days` (either side for +) as SQL, else None."""
        def is_days(x):
            return isinstance(x, ast.Call) and x.func == "days"
        if node.op not in ("+", "-"):
            return None
        day, days = (node.left, node.right) if is_days(node.right) else (node.right, node.left)
        if not is_days(days) or (node.op == "-" and days is node.left):
            return None
        n = self.ev(days.args[0], stream, a)
        n = f"(-({n}))" if node.op == "-" else f"({n})"
        return f"date({self.ev(day, stream, a)}, {n} || ' days')"

    def compare_sql(self, node: ast.Compare, stream, a) -> str:
        op, left, right = node.op, node.left, node.right
        if op in ("has", "has one of"):
            values = right.items if op == "has one of" else (right,)
            placeholders = ", ".join(self.ev(v, stream, a) for v in values)
            path = self.param("$." + left.name)
            return f"EXISTS (SELECT 1 FROM json_each({a}.body, {path}) WHERE value IN ({placeholders}))"
        if op in ("in", "not in"):
            lhs = self.ev(left, stream, a)
            if isinstance(right, ast.Name) and right.name in sym.RANGE_NAMES:
                lo, hi = self.range_sql(right.name)
                sql = f"({lhs} BETWEEN {lo} AND {hi})"
            elif isinstance(right, ast.ListLit):
                items = ", ".join(self.ev(v, stream, a) for v in right.items) or "NULL"
                sql = f"({lhs} IN ({items}))"
            elif isinstance(right, ast.Dotted):
                table = self.tables[right.base]
                sql = f"({lhs} IN (SELECT {table.column(right.attr)} FROM {table.sql_name}))"
            elif self.is_list_field(stream, right):
                path = self.param("$." + right.name)
                sql = f"EXISTS (SELECT 1 FROM json_each({a}.body, {path}) WHERE value = {lhs})"
            else:
                raise CompileError(f"{node.span}: cannot compile `in`")
            return sql if op == "in" else f"({lhs} IS NULL OR NOT {sql})"
        lhs, rhs = self.ev(left, stream, a), self.ev(right, stream, a)
        if op == "==":
            return f"({lhs} IS {rhs})"
        if op == "!=":
            return f"({lhs} IS NOT {rhs})"
        return f"({lhs} {op} {rhs})"

    def lookup_sql(self, node: ast.Lookup, stream, a) -> str:
        table = self.tables[node.table]
        joined = self.lookup_join(node, stream, a)
        if joined is not None:
            return f"COALESCE({joined}, {self.ev(node.default, stream, a)})"
        conds = " AND ".join(
            f"{table.column(c.column)} {'=' if c.op == '==' else c.op} {self.ev(c.value, stream, a)}"
            for c in node.conds
        )
        default = self.ev(node.default, stream, a)
        return (f"COALESCE((SELECT {table.column(node.column)} FROM {table.sql_name} "
                f"WHERE {conds} LIMIT 1), {default})")

    # --- lookups joined once per row in the main query
    @contextlib.contextmanager
    def in_pass(self, where: str | None):
        """SQL generated inside the block is for the main query's inner pass ("inner": the
        row is `events e` with the lookup joins beside it) or for a pass over its rows
        ("outer": the joined values are columns of `e`)."""
        before, self.where = self.where, where
        try:
            yield
        finally:
            self.where = before

    def lookup_join(self, node: ast.Lookup, stream, a: str) -> str | None:
        """A lookup by the table's unique key in the main query becomes one LEFT JOIN of
        the row (every lookup of the same key shares it) instead of a correlated subquery
        per use: the card program looks up three columns of the merchant's row. Same
        value: at most one row matches, and COALESCE gives the default when none does
        or its column is empty, as for the subquery. None: not joinable here."""
        if not self.join_lookups:
            return None
        if self.where is None or a != "e" or len(node.conds) != 1 or node.conds[0].op != "==":
            return None
        table, cond = self.tables[node.table], node.conds[0]
        if not unique_column(table, cond.column):
            return None
        with self.in_pass("inner"):
            value = self.ev(cond.value, stream, "e")
        alias = self.joins.get((node.table, cond.column, value))
        if alias is None:
            alias = self.joins[(node.table, cond.column, value)] = f"j{len(self.joins)}"
            self.join_clauses.append(f"LEFT JOIN {table.sql_name} {alias} "
                                     f"ON {alias}.{table.column(cond.column)} = {value}")
        if self.where == "inner":
            return f"{alias}.{table.column(node.column)}"
        name = f'"{alias}_{node.column}"'
        self.join_columns[name] = f"{alias}.{table.column(node.column)}"
        return f"e.{name}"

    # --- which rows a query reads
    def date_bound(self, name: str, a: str) -> str | None:
        """`a.day` bounds implied by a top-level `date in ...` of the stream's filter, as
        plain SQL the (type, day) index can serve; None if the filter has none."""
        s = self.streams[name]
        parts = []
        stack = [s.where] if s.where is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, ast.BinOp) and node.op == "and":
                stack += [node.left, node.right]
            elif (isinstance(node, ast.InRange) and isinstance(node.value, ast.Name)
                  and node.value.name == "date" and isinstance(node.low, ast.Literal)
                  and isinstance(node.high, ast.Literal)):
                op = "<=" if node.inclusive_end else "<"
                parts.append(f"{a}.day >= {self.param(node.low.value)} AND {a}.day {op} {self.param(node.high.value)}")
            elif (isinstance(node, ast.Compare) and node.op == "in" and isinstance(node.left, ast.Name)
                  and node.left.name == "date" and isinstance(node.right, ast.Name)
                  and node.right.name in sym.RANGE_NAMES):
                lo, hi = self.range_sql(node.right.name)
                parts.append(f"{a}.day >= {lo} AND {a}.day <= {hi}")
        return " AND ".join(parts) if parts else None

    def scan(self, name: str, a: str) -> str:
        """The indexable part of a stream's predicate: its type and its date bounds."""
        s = self.streams[name]
        bound = self.date_bound(name, a)
        typ = f"{a}.type = {self.param(s.event_type)}"
        return f"({typ} AND {bound})" if bound else f"({typ})"

    def scans(self, names, a: str) -> Scan:
        """The `{scan}` clause of a query over these streams (see `Scan`)."""
        everyone = " OR ".join(sorted({self.scan(name, "s") for name in names}))
        # `+a` as the alias: `+e.type = ...` is the same test, but no index can serve it.
        in_table = " OR ".join(sorted({self.scan(name, "+" + a) for name in names}))
        types = ", ".join(self.param(t) for t in sorted({self.streams[n].event_type for n in names}))
        return Scan(by_index=f"{a}.seq IN (SELECT s.seq FROM events s WHERE {everyone})",
                    by_table=f"({in_table})", by_member=f"{a}.type IN ({types})",
                    count=f"SELECT COUNT(*) FROM events s WHERE {everyone}")

    def visible(self, a: str) -> str:
        # `+`: visibility is never a good index bound (it keeps nearly every row); the
        # scan clause carries the real date range, a member list the member index.
        return f"+{a}.day <= :asof AND +{a}.seq <= :wm"

    def match(self, name: str, a: str, *, with_visibility: bool = False, undone: bool = True) -> str:
        """Predicate: event row `a` belongs to stream `name` (with `undone=False`: would
        belong to it but for a cancel/refund/stopover)."""
        s = self.streams[name]
        parts = [f"{a}.type = {self.param(s.event_type)}"]
        if s.where is not None:
            parts.append(f"COALESCE({self.ev(s.where, s, a)}, 0)")
        if s.undone_by and undone:
            u = self.alias()
            types = ", ".join(self.param(t) for t in s.undone_by)
            # `+` keeps type and day out of index choice: the only good index here is
            # events_ref (ref = id); the planner would otherwise scan every cancel by type.
            parts.append(f"NOT EXISTS (SELECT 1 FROM events {u} WHERE {u}.ref = {a}.id "
                         f"AND +{u}.type IN ({types}) AND +{u}.day <= :asof AND {u}.seq <= :wm)")
        if self.entry_stream and name != self.entry_stream and not self.c.entry.retroactive:
            x = self.alias()
            parts.append(f"{a}.at >= (SELECT MIN({x}.at) FROM events {x} WHERE {x}.member = {a}.member "
                         f"AND {self.match(self.entry_stream, x, with_visibility=True)})")
        if with_visibility:
            parts.append(self.visible(a))
        return " AND ".join(parts)

    # --- aggregates
    def agg_sql(self, call: ast.Call, a: str, cond_sql: str) -> str:
        """The SQL aggregate expression for `call` over rows matching cond_sql."""
        kind, stream, field, extra = self.agg_parts(call)
        cond = cond_sql
        fsql = self.field_sql(stream, field, a) if field else None
        if kind == "all":
            # all(s where c): every event of s satisfies c -- the test is the value
            # aggregated, not a filter (filtered, only the events passing c would
            # be looked at, and the answer would always be true).
            test = fsql if extra is None else self.ev(extra, stream, a)
            return f"MIN(CASE WHEN {cond} THEN COALESCE({test}, 0) END)" if test else f"MIN(CASE WHEN {cond} THEN 1 END)"
        if extra is not None:
            cond = f"{cond} AND COALESCE({self.ev(extra, stream, a)}, 0)"
        if kind == "sum":
            return f"SUM(CASE WHEN {cond} THEN {fsql} END)"
        if kind in ("count", "exists"):
            return f"COUNT(CASE WHEN {cond} THEN 1 END)"
        if kind == "any":
            inner = f"{cond} AND COALESCE({fsql}, 0)" if fsql else cond
            return f"MAX(CASE WHEN {inner} THEN 1 ELSE 0 END)"
        if kind == "distinct_days":
            return f"COUNT(DISTINCT CASE WHEN {cond} THEN {a}.day END)"
        if kind == "count_distinct":
            return f"COUNT(DISTINCT CASE WHEN {cond} THEN {fsql} END)"
        if kind in ("min", "first"):
            return f"MIN(CASE WHEN {cond} THEN {fsql} END)"
        if kind in ("max", "last"):
            return f"MAX(CASE WHEN {cond} THEN {fsql} END)"
        raise CompileError(f"{call.span}: unknown aggregate {kind}")

    def correlated_aggregate(self, call: ast.Call, outer: str) -> str:
        """An aggregate of another stream used inside a stream filter: a subquery per member."""
        _, stream, _, _ = self.agg_parts(call)
        x = self.alias()
        cond = self.match(stream.name, x, with_visibility=True)
        agg = self.agg_sql(call, x, "1")
        if call.func == "exists":
            agg = f"({agg} > 0)"
        return f"(SELECT {agg} FROM events {x} WHERE {x}.member = {outer}.member AND {cond})"
