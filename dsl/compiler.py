"""AST -> Plan: SQL for what is per event, Python closures for what is per member.

A checked campaign compiles to a `Plan`:
- every stream becomes a SQL predicate over the `events` table (type, `where`,
  not undone by a cancel/refund/stopover, visible at the evaluation date);
- every aggregate (`sum(booking.amount)`, `count(pay where amount >= 500)`, ...)
  becomes one column of a single GROUP BY member query, so filtering and
  aggregation run inside SQLite, streaming one row per member; its inner pass
  computes each stream predicate once per event and joins lookups by a unique
  key once per event (see `main_query`);
- aggregates that need their own pass (running sums, tiers) get their own query,
  also ordered by member, merged with the main one -- except the first `sum over`,
  which the main query computes in the same pass when it can (`foldable_group`);
- per-member values and award conditions/amounts become Python closures over the
  aggregated row (`dsl.runtime`).

Literals from the rules file reach SQL only as bound parameters. Identifiers
(field and table names) are checked against the schema and quoted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from fractions import Fraction
from typing import Any, Callable

import attrs

from points.dsl import ast
from points.dsl import runtime
from points.dsl import symbols as sym
from points.dsl.runtime import SCALARS, _arith, _cmp, _round_to, to_date, whole  # noqa: F401 (re-exported)
from points.dsl.tables import Table

Closure = Callable[["MemberEnv"], Any]


class CompileError(Exception):
    """Raised when a checked AST still cannot be compiled (a bug, not a user error)."""


class MemberEnv:
    """One member's aggregated row and the values computed from it (lazily, once)."""

    __slots__ = ("plan", "member", "slots", "_values", "_cleared", "period")

    def __init__(self, plan: "Plan", member: str, slots: dict[str, Any], period: "Period"):
        self.plan = plan
        self.member = member
        self.slots = slots
        self.period = period
        self._values: dict[str, Any] = {}
        self._cleared: dict[str, bool] = {}

    def value(self, name: str):
        if name not in self._values:
            self._values[name] = self.plan.values[name](self)
        return self._values[name]

    def cleared(self, name: str) -> bool:
        if name not in self._cleared:
            self._cleared[name] = bool(self.plan.awards[name].when(self))
        return self._cleared[name]

    def values(self) -> dict[str, Any]:
        return {name: self.value(name) for name in self.plan.value_order}


# ---------------------------------------------------------------- the plan

@attrs.frozen
class Period:
    """One evaluation period of a campaign: the whole window, or one cycle."""

    id: str
    start: dt.date | None
    end: dt.date | None


@attrs.frozen
class AwardPlan:
    name: str
    label: str | None
    kind: str
    amount: Closure
    when: Closure
    pay: ast.PayDate | None
    pay_after: Closure | None  # for `on day N of month after EXPR`
    expiry: ast.Expiry | None
    lottery: ast.Lottery | None
    node: ast.Award


@attrs.frozen
class Scan:
    """How a query finds its events (its `{scan}` clause), three ways.

    For everyone, by type and date range: `by_index` finds the rows on the (type, day)
    index and reads them in rowid order (`seq IN (...)`: SQLite sorts the rowids; read
    in index order, each row is a random B-tree search, several times the cost once the
    file outgrows the page cache); `by_table` reads the whole table in one pass, cheaper
    when the rows wanted are a large part of it (a file holding one card cycle: 1M
    events 0.23 s against 0.69 s); `count` tells which (evaluator). For listed members,
    `by_member`: by type only, so that the (type, member) index serves the member list."""

    by_index: str
    by_table: str
    by_member: str
    count: str


EVERYTHING = Scan("1", "1", "1", "SELECT 0")


@attrs.frozen
class SideQuery:
    """An aggregate that needs its own pass: rows (member, ...) ordered by member."""

    slot: str
    sql: str
    kind: str  # 'reaching' | 'group'
    group: "GroupPlan | None" = None
    scans: Scan = EVERYTHING


@attrs.frozen
class GroupPlan:
    key_slot: str
    slots: tuple[tuple[str, str], ...]  # (slot name, aggregate kind) in SELECT order after key
    body: Closure
    stream: str = ""  # the stream the tiers are made of


@attrs.frozen
class Plan:
    campaign: ast.Campaign
    main_sql: str
    main_slots: tuple[tuple[str, str], ...]  # (slot, aggregate kind) after member
    main_scans: Scan  # {scan} of main_sql
    side: tuple[SideQuery, ...]
    # A `sum over` whose tiers the main query computes in the same pass: main_sql then
    # groups by (member, in the tier stream, tier key) and evaluator folds the rows of a
    # member; None when every side query runs on its own.
    folded: SideQuery | None
    params: dict[str, Any]
    types: tuple[str, ...]
    values: dict[str, Closure]
    value_order: tuple[str, ...]
    awards: dict[str, AwardPlan]
    streams: dict[str, ast.Stream]
    match_sql: dict[str, str]  # stream -> predicate over alias e (for relevance queries)
    match_sql_undone: dict[str, str]  # the same without the undo test (what a cancel undid)
    type_params: str  # ':pN, ...' bound to the event types of the streams
    undo_params: str  # the same for the undo types
    undo_types: tuple[str, ...]
    tables: dict[str, Table]
    entry_stream: str | None


ENTRY_STREAM = "__entry__"
# The columns of `events` an expression can name (not source, prev_hash, hash).
EVENT_COLUMNS = "e.seq, e.id, e.type, e.member, e.at, e.day, e.time, e.weekday, e.amount, e.ref, e.body"
# Aggregates whose per-tier partial results merge exactly into the member's result.
FOLD_KINDS = {"sum", "count", "exists", "any", "all", "min", "max", "first", "last"}
_DEFAULTS = {"sum": 0, "count": 0, "any": False, "all": True, "exists": False,
             "distinct_days": 0, "count_distinct": 0}


class Compiler:
    """Compiles one checked campaign; see the module docstring."""

    def __init__(self, campaign: ast.Campaign, tables: dict[str, Table]):
        self.c = campaign
        self.tables = tables
        self.streams: dict[str, ast.Stream] = {s.name: s for s in campaign.streams}
        self.value_nodes = {v.name: v for v in campaign.values}
        self.award_nodes = {a.name: a for a in campaign.awards}
        self.params: dict[str, Any] = {}
        self._param_ids: dict[tuple, str] = {}
        self.main_slots: list[tuple[str, str]] = []
        self.main_exprs: list[str] = []
        self._slot_of: dict[str, str] = {}
        self.side: list[SideQuery] = []
        self._alias_n = 0
        self.entry_stream = None
        if campaign.entry is not None:
            self._add_entry_stream(campaign.entry)
        # Each stream's predicate is computed once per event row, as a column of the
        # main query's inner pass; the aggregates and the id list test the column.
        self.flag_of = {name: f"f{i}" for i, name in enumerate(self.streams)}
        self.tier_keys: dict[str, str] = {}  # group side slot -> SQL of its tier key
        self.tier_exprs: dict[str, dict[str, str]] = {}  # group side slot -> its aggregates' SQL
        self.where: str | None = None  # see in_pass
        self.joins: dict[tuple[str, str, str], str] = {}  # (table, key column, value SQL) -> alias
        self.join_clauses: list[str] = []
        self.join_columns: dict[str, str] = {}  # column of the inner pass -> joined column

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

    # --- event scope: SQL
    def field_sql(self, stream: ast.Stream, name: str, a: str) -> str:
        for f in stream.fields:
            if f.name == name:
                return f"({self.ev(f.expr, stream, a)})"
        if name in sym.COLUMN_FIELDS:
            return f"{a}.{sym.COLUMN_FIELDS[name]}"
        return f"json_extract({a}.body, {self.param('$.' + name)})"

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
            if node.name in sym.WEEKDAYS:
                return self.param(sym.WEEKDAYS[node.name])
            if node.name in self.value_nodes:
                return self.ev(self.value_nodes[node.name].expr, stream, a)
            return self.field_sql(stream, node.name, a)
        if t is ast.Unary:
            inner = self.ev(node.operand, stream, a)
            return f"(NOT COALESCE({inner}, 0))" if node.op == "not" else f"(-{inner})"
        if t is ast.BinOp:
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
        if t is ast.Call:
            return self.correlated_aggregate(node, a)
        raise CompileError(f"{node.span}: cannot compile {t.__name__} per event")

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

    def scans(self, names, a: str) -> "Scan":
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
    def _agg_parts(self, call: ast.Call) -> tuple[str, ast.Stream, str | None, ast.Expr | None]:
        """(kind, stream, field name, extra filter) of an aggregate call."""
        arg = call.args[0]
        if isinstance(arg, ast.Filtered):
            return call.func, self.streams[arg.stream], None, arg.cond
        if isinstance(arg, ast.Dotted):
            return call.func, self.streams[arg.base], arg.attr, None
        if isinstance(arg, ast.Name):
            return call.func, self.streams[arg.name], None, None
        raise CompileError(f"{call.span}: bad aggregate argument")

    def agg_sql(self, call: ast.Call, a: str, cond_sql: str) -> str:
        """The SQL aggregate expression for `call` over rows matching cond_sql."""
        kind, stream, field, extra = self._agg_parts(call)
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
        _, stream, _, _ = self._agg_parts(call)
        x = self.alias()
        cond = self.match(stream.name, x, with_visibility=True)
        agg = self.agg_sql(call, x, "1")
        if call.func == "exists":
            agg = f"({agg} > 0)"
        return f"(SELECT {agg} FROM events {x} WHERE {x}.member = {outer}.member AND {cond})"

    def main_slot(self, call: ast.Call) -> str:
        key = repr(call)
        if key not in self._slot_of:
            slot = f"a{len(self.main_slots)}"
            _, stream, _, _ = self._agg_parts(call)
            with self.in_pass("outer"):
                self.main_exprs.append(self.agg_sql(call, "e", f"e.{self.flag_of[stream.name]}"))
            self.main_slots.append((slot, call.func))
            self._slot_of[key] = slot
        return self._slot_of[key]

    def reaching_slot(self, call: ast.Call) -> str:
        key = repr(call)
        if key not in self._slot_of:
            slot = f"r{len(self.side)}"
            _, stream, field, _ = self._agg_parts(call)
            threshold = self.param(call.args[1].value)
            fsql = self.field_sql(stream, field, "e")
            sql = (f"SELECT member, MIN(day) FROM ("
                   f"SELECT e.member AS member, e.day AS day, SUM({fsql}) OVER "
                   f"(PARTITION BY e.member ORDER BY e.at, e.seq ROWS UNBOUNDED PRECEDING) AS running "
                   f"FROM events e WHERE {{scan}} "
                   f"AND {self.match(stream.name, 'e', with_visibility=True)} "
                   f"{{members}}) WHERE running >= {threshold} GROUP BY member ORDER BY member")
            self.side.append(SideQuery(slot, sql, "reaching", scans=self.scans([stream.name], "e")))
            self._slot_of[key] = slot
        return self._slot_of[key]

    # --- member scope: closures
    def mem(self, node, group: dict | None = None) -> Closure:
        """A closure computing `node` for one member (or one tier, inside `sum over`)."""
        t = type(node)
        if t is ast.Literal:
            v = node.value
            return lambda env: v
        if t is ast.Name:
            name = node.name
            if group is not None and name == group["key"]:
                return lambda env: env.slots[group["key_slot"]]
            if name in self.value_nodes:
                return lambda env: env.value(name)
            if name in self.award_nodes:
                return lambda env: env.cleared(name)
            if name in sym.WEEKDAYS:
                v = sym.WEEKDAYS[name]
                return lambda env: v
            raise CompileError(f"{node.span}: unknown name {name}")
        if t is ast.Unary:
            inner = self.mem(node.operand, group)
            if node.op == "not":
                return lambda env: not inner(env)
            return lambda env: None if (x := inner(env)) is None else -x
        if t is ast.BinOp:
            left, right = self.mem(node.left, group), self.mem(node.right, group)
            if node.op == "and":
                return lambda env: bool(left(env)) and bool(right(env))
            if node.op == "or":
                return lambda env: bool(left(env)) or bool(right(env))
            const = node.right.value if type(node.right) is ast.Literal else runtime._NO_CONST
            return runtime.arith(node.op, left, right, const)
        if t is ast.Conditional:
            c, a, b = self.mem(node.cond, group), self.mem(node.then, group), self.mem(node.otherwise, group)
            return lambda env: a(env) if c(env) else b(env)
        if t is ast.Compare:
            left, right = self.mem(node.left, group), self.mem(node.right, group)
            op = node.op
            if op in ("in", "not in"):
                inside = lambda env: left(env) in (right(env) or ())  # noqa: E731
                return inside if op == "in" else (lambda env: not inside(env))
            return runtime.compare(op, left, right)
        if t is ast.InRange:
            v, lo, hi = self.mem(node.value, group), self.mem(node.low, group), self.mem(node.high, group)
            inc = node.inclusive_end
            return lambda env: _cmp(">=", v(env), lo(env)) and _cmp("<=" if inc else "<", v(env), hi(env))
        if t is ast.ListLit:
            items = [self.mem(i, group) for i in node.items]
            return lambda env: [f(env) for f in items]
        if t is ast.GroupSum:
            return self.group_sum(node)
        if t is ast.Call:
            return self.call(node, group)
        raise CompileError(f"{node.span}: cannot compile {t.__name__} per member")

    def call(self, node: ast.Call, group: dict | None) -> Closure:
        func = node.func
        is_agg = func in sym.AGGREGATES or (
            func in sym.MIN_MAX and len(node.args) == 1
            and isinstance(node.args[0], (ast.Dotted, ast.Filtered, ast.Name))
            and (group is not None or not isinstance(node.args[0], ast.Name) or node.args[0].name in self.streams)
        )
        if not is_agg:
            args = [self.mem(a, group) for a in node.args]
            consts = [a.value if type(a) is ast.Literal else runtime._NO_CONST for a in node.args]
            return runtime.scalar(func, args, consts)
        if group is not None:
            return self.group_aggregate(node, group)
        if func == "date_reaching":
            slot = self.reaching_slot(node)
            return lambda env: to_date(env.slots.get(slot))
        slot = self.main_slot(node)
        default = _DEFAULTS.get(func)
        _, stream, field, _ = self._agg_parts(node)
        is_date = field == "date"
        if func == "exists":
            return lambda env: (env.slots.get(slot) or 0) > 0
        if func in ("any", "all"):
            return lambda env: default if env.slots.get(slot) is None else bool(env.slots[slot])
        if is_date:
            return lambda env: to_date(env.slots.get(slot))
        return lambda env: default if (v := env.slots.get(slot)) is None else v

    # --- tiers: `sum over STREAM by FIELD: (body)`
    def group_sum(self, node: ast.GroupSum) -> Closure:
        stream = self.streams[node.stream]
        slot = f"g{len(self.side)}"
        group = {"key": node.key, "key_slot": f"{slot}_key", "stream": stream, "slots": [], "exprs": {},
                 "folded": {}}
        body = self.mem(node.body, group)
        key_sql = self.field_sql(stream, node.key, "e")
        with self.in_pass("outer"):  # the same, over the rows of the main query's inner pass
            self.tier_keys[slot] = self.field_sql(stream, node.key, "e")
        self.tier_exprs[slot] = group["folded"]
        cols = ", ".join(group["exprs"][s] for s, _ in group["slots"]) or "NULL"
        sql = (f"SELECT e.member, {key_sql} AS k, {cols} FROM events e "
               f"WHERE {{scan}} "
               f"AND {self.match(stream.name, 'e', with_visibility=True)} {{members}} "
               f"GROUP BY e.member, k ORDER BY e.member, k")
        plan = GroupPlan(group["key_slot"], tuple(group["slots"]), body, stream.name)
        self.side.append(SideQuery(slot, sql, "group", plan, scans=self.scans([stream.name], "e")))
        return lambda env: env.slots.get(slot, 0)

    def group_aggregate(self, node: ast.Call, group: dict) -> Closure:
        stream = group["stream"]
        arg = node.args[0]
        # Inside `sum over`, `sum(amount)` means the amount of the tier's rows.
        call = node
        if isinstance(arg, ast.Name):
            call = ast.Call(node.func, (ast.Dotted(stream.name, arg.name, arg.span),), node.span)
        slot = f"{group['key_slot']}_{len(group['slots'])}"
        group["exprs"][slot] = self.agg_sql(call, "e", "1")
        with self.in_pass("outer"):
            group["folded"][slot] = self.agg_sql(call, "e", "1")
        group["slots"].append((slot, node.func))
        default = _DEFAULTS.get(node.func)
        return lambda env: default if (v := env.slots.get(slot)) is None else v

    # --- the whole campaign
    def compile(self) -> Plan:
        values = {name: self.mem(v.expr) for name, v in self.value_nodes.items()}
        awards = {}
        for a in self.c.awards:
            amount = self.mem(a.amount)
            cond = self.mem(a.when) if a.when is not None else (lambda env: True)
            if self.entry_stream:
                entered = self.mem(ast.Call("exists", (ast.Name(self.entry_stream, a.span),), a.span))
                base_cond = cond
                cond = lambda env, base_cond=base_cond, entered=entered: entered(env) and base_cond(env)  # noqa: E731
            pay = a.pay or self.c.payday
            pay_after = self.mem(pay.after) if isinstance(pay, ast.PayMonthAfter) else None
            awards[a.name] = AwardPlan(a.name, a.label, a.kind, amount, cond, pay, pay_after,
                                       a.expiry, a.lottery, a)
        types = tuple(sorted({s.event_type for s in self.streams.values()}))
        main_scans = self.scans(list(self.streams), "e")
        folded = self.foldable_group()
        main_sql = self.main_query(folded)
        match_sql = {name: self.match(name, "e") for name in self.streams}
        match_sql_undone = {name: self.match(name, "e", undone=False) for name in self.streams}
        type_params = ", ".join(self.param(t) for t in types)
        undo = tuple(sorted({t for s in self.streams.values() for t in s.undone_by}))
        undo_params = ", ".join(self.param(t) for t in undo)
        return Plan(
            campaign=self.c, main_sql=main_sql, main_slots=tuple(self.main_slots), main_scans=main_scans,
            side=tuple(q for q in self.side if q is not folded), folded=folded,
            params=dict(self.params), types=types, values=values,
            value_order=tuple(self.value_nodes), awards=awards, streams=dict(self.streams),
            match_sql=match_sql, match_sql_undone=match_sql_undone, type_params=type_params,
            undo_params=undo_params,
            undo_types=undo, tables=self.tables, entry_stream=self.entry_stream,
        )


    # --- the main query
    def main_query(self, folded: SideQuery | None) -> str:
        """One pass over the events of the streams' types: an inner pass computes each
        stream's predicate once per row (`f0`, `f1`, ... -- the undo NOT EXISTS and any
        correlated subquery run once, not once per aggregate that tests them), the outer
        GROUP BY member aggregates over those columns. With a folded `sum over`, a middle
        pass adds the tier key `k` (its lookups computed once per row) and the groups are
        (member, in the tier stream, k), one row per tier, merged per member by the
        evaluator. `LIMIT -1` (no limit) keeps SQLite from flattening the inner passes
        back into the aggregate, which would repeat their expressions."""
        with self.in_pass("inner"):
            flags = [f"({self.match(name, 'e')}) AS {flag}" for name, flag in self.flag_of.items()]
        joined = [f"{col} AS {name}" for name, col in self.join_columns.items()]
        inner = (f"SELECT {', '.join([EVENT_COLUMNS] + joined + flags)} FROM events e "
                 f"{' '.join(self.join_clauses)} WHERE {{scan}} "
                 f"AND {self.visible('e')} {{members}} LIMIT -1")
        # The ids of the member's events that belong to any stream: the entries of an
        # award record the events they were derived from.
        any_stream = " OR ".join(f"e.{flag}" for flag in self.flag_of.values())
        ids = f"json_group_array(e.id) FILTER (WHERE {any_stream})"
        if folded is None:
            select = ", ".join(["e.member"] + self.main_exprs + [ids])
            return f"SELECT {select} FROM ({inner}) e GROUP BY e.member ORDER BY e.member"
        tier = f"e.{self.flag_of[folded.group.stream]}"
        middle = (f"SELECT e.*, CASE WHEN {tier} THEN {self.tier_keys[folded.slot]} END AS k "
                  f"FROM ({inner}) e LIMIT -1")
        tier_cols = [self.tier_exprs[folded.slot][s] for s, _ in folded.group.slots]
        select = ", ".join([f"e.member, {tier}, e.k"] + self.main_exprs + tier_cols + [ids])
        return (f"SELECT {select} FROM ({middle}) e GROUP BY e.member, {tier}, e.k "
                f"ORDER BY e.member, {tier}, e.k")

    def foldable_group(self) -> SideQuery | None:
        """The first `sum over`, if every main aggregate merges exactly across its tier
        rows: counts, sums, min/max-like; not distinct counts. Sums merge exactly because
        every per-event value is a whole number (the checker refuses `/` and percentages
        in a stream, and `sum` of anything but a number), so partial sums are integers."""
        group = next((q for q in self.side if q.kind == "group"), None)
        if group is None or any(kind not in FOLD_KINDS for _, kind in self.main_slots):
            return None
        return group


def unique_column(table: Table, column: str) -> bool:
    """Whether no two rows of the table share a value in this column."""
    if column not in table.columns:
        return False
    i = table.columns.index(column)
    values = [row[i] for row in table.rows if row[i] is not None]
    return len(values) == len(set(values))


def compile_campaign(campaign: ast.Campaign, tables: dict[str, Table]) -> Plan:
    """Compile one checked campaign into an executable plan."""
    return Compiler(campaign, tables).compile()
