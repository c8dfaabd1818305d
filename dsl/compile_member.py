"""The per-member back end: values, award amounts and conditions as Python closures
over one member's aggregated row (`MemberEnv`).

An aggregate becomes a slot of the row (asked of `dsl.compile_queries`); everything
else is computed by the closures of `dsl.runtime`: integers stay exact integers,
other quotients are fractions.
"""

from __future__ import annotations

from points.dsl import ast
from points.dsl import runtime
from points.dsl import symbols as sym
from points.dsl.check_common import is_sql_group
from points.dsl.compile_groups import GroupSql
from points.dsl.compile_queries import Queries
from points.dsl.plan import DEFAULTS, Closure, CompileError
from points.dsl.runtime import NO_CONST, compare_values, to_date


class MemberCode:
    """Closures for one campaign's per-member expressions."""

    def __init__(self, queries: Queries):
        self.q = queries
        self.sql = queries.sql
        campaign = self.sql.c
        self.value_nodes = {v.name: v for v in campaign.values}
        self.award_nodes = {a.name: a for a in campaign.awards}

    def closure(self, node, group: dict | None = None) -> Closure:
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
            inner = self.closure(node.operand, group)
            if node.op == "not":
                return lambda env: not inner(env)
            return lambda env: None if (x := inner(env)) is None else -x
        if t is ast.BinOp:
            left, right = self.closure(node.left, group), self.closure(node.right, group)
            if node.op == "and":
                return lambda env: bool(left(env)) and bool(right(env))
            if node.op == "or":
                return lambda env: bool(left(env)) or bool(right(env))
            const = node.right.value if type(node.right) is ast.Literal else NO_CONST
            return runtime.arith(node.op, left, right, const)
        if t is ast.Conditional:
            c, a, b = (self.closure(node.cond, group), self.closure(node.then, group),
                       self.closure(node.otherwise, group))
            return lambda env: a(env) if c(env) else b(env)
        if t is ast.Compare:
            left, right = self.closure(node.left, group), self.closure(node.right, group)
            op = node.op
            if op in ("in", "not in"):
                inside = lambda env: left(env) in (right(env) or ())  # noqa: E731
                return inside if op == "in" else (lambda env: not inside(env))
            return runtime.compare(op, left, right)
        if t is ast.InRange:
            v, lo, hi = (self.closure(node.value, group), self.closure(node.low, group),
                         self.closure(node.high, group))
            inc = node.inclusive_end
            return lambda env: (compare_values(">=", v(env), lo(env))
                                and compare_values("<=" if inc else "<", v(env), hi(env)))
        if t is ast.Dotted and node.base == sym.MEMBER:  # member data on the period's last day
            slot = self.q.attribute_slot(node.attr)
            if sym.member_attributes().get(node.attr) == sym.DATE:
                return lambda env: to_date(env.slots.get(slot))
            return lambda env: env.slots.get(slot)
        if t is ast.ListLit:
            items = [self.closure(i, group) for i in node.items]
            return lambda env: [f(env) for f in items]
        if t is ast.GroupSum:
            return self.group_sum(node)
        if t is ast.Call:
            return self.call(node, group)
        raise CompileError(f"{node.span}: cannot compile {t.__name__} per member")

    def is_aggregate(self, node: ast.Call, group: dict | None) -> bool:
        """The same decision as the checker's: `min(s.f)` aggregates, `min(a, b)` does not."""
        func = node.func
        return func in sym.AGGREGATES or (
            func in sym.MIN_MAX and len(node.args) == 1
            and isinstance(node.args[0], (ast.Dotted, ast.Filtered, ast.Name))
            and (group is not None or not isinstance(node.args[0], ast.Name)
                 or node.args[0].name in self.sql.streams)
        )

    def call(self, node: ast.Call, group: dict | None) -> Closure:
        func = node.func
        if func in sym.CAMPAIGN_FUNCTIONS:  # another campaign's award, per member
            slot = self.q.campaign_slot(func, node.args[0].value, node.args[1].value)
            if func == "award_date":
                return lambda env: to_date(env.slots.get(slot))
            return lambda env: env.slots.get(slot) or 0
        if not self.is_aggregate(node, group):
            args = [self.closure(a, group) for a in node.args]
            consts = [a.value if type(a) is ast.Literal else NO_CONST for a in node.args]
            return runtime.scalar(func, args, consts)
        if group is not None:
            return self.group_aggregate(node, group)
        if func == "date_reaching":
            slot = self.q.reaching_slot(node)
            return lambda env: to_date(env.slots.get(slot))
        if func in sym.STREAKS:
            slot = self.q.streak_slot(node)
            return lambda env: env.slots.get(slot) or 0
        _, stream, field, _ = self.sql.agg_parts(node)
        slot = self.q.credited_slot(node) if stream.credited_to else self.q.main_slot(node)
        default = DEFAULTS.get(func)
        if func == "exists":
            return lambda env: (env.slots.get(slot) or 0) > 0
        if func in ("any", "all"):
            return lambda env: default if env.slots.get(slot) is None else bool(env.slots[slot])
        if field == "date":
            return lambda env: to_date(env.slots.get(slot))
        return lambda env: default if (v := env.slots.get(slot)) is None else v

    # --- tiers: `sum over STREAM by FIELD: (body)`
    def group_sum(self, node: ast.GroupSum) -> Closure:
        if is_sql_group(node):
            slot = self.q.new_group()
            self.q.side.append(GroupSql(self.sql).side_query(node, slot))
            return lambda env: env.slots.get(slot) or 0
        stream = self.sql.streams[node.stream]
        slot = self.q.new_group()
        group = {"key": node.key, "key_slot": f"{slot}_key", "stream": stream, "slots": [], "exprs": {},
                 "folded": {}}
        body = self.closure(node.body, group)
        self.q.add_group(slot, group, node, body)
        return lambda env: env.slots.get(slot, 0)

    def group_aggregate(self, node: ast.Call, group: dict) -> Closure:
        stream = group["stream"]
        arg = node.args[0]
        # Inside `sum over`, `sum(amount)` means the amount of the tier's rows.
        call = node
        if isinstance(arg, ast.Name):
            call = ast.Call(node.func, (ast.Dotted(stream.name, arg.name, arg.span),), node.span)
        slot = self.q.group_slot(group, call)
        group.setdefault("aggregates", {})[id(node)] = (node.func, group["folded"][slot])  # dsl.compile_tier
        default = DEFAULTS.get(node.func)
        return lambda env: default if (v := env.slots.get(slot)) is None else v
