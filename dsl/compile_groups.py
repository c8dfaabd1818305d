"""`sum over` in SQL: several keys (`by date, merchant`) or one inside another (per
payment -> per day -> per week), each group's body computed by SQLite.

A top-level SQL group is a side query: the member's events of the stream grouped by
(member, keys...), the body computed per group (its aggregates are SQL aggregates over
the group's rows, its keys the group's values), then summed per member. A `sum over`
inside a group's body splits that group further: a correlated subquery over the same
stream's events of the member that share the outer group's keys, grouped by the inner
keys, its bodies summed. Fractions inside a body are exact (`dsl.compile_numbers`);
the checker makes every body a whole number.
"""

from __future__ import annotations

import contextlib

from points.dsl import ast
from points.dsl.compile_sql import EventSql
from points.dsl.plan import SideQuery


class GroupLevel:
    """One level of grouping while its body is compiled: the SQL of each key in reach
    over the level's rows (alias `a`)."""

    def __init__(self, sql: EventSql, stream: ast.Stream, a: str, keys: dict[str, str]):
        self.sql = sql
        self.stream = stream
        self.a = a
        self.keys = keys

    def aggregate(self, call: ast.Call) -> str:
        arg = call.args[0]
        if isinstance(arg, ast.Name) and arg.name != self.stream.name:  # `sum(amount)`: a field
            call = ast.Call(call.func, (ast.Dotted(self.stream.name, arg.name, arg.span),), call.span)
        elif isinstance(arg, ast.Name):
            call = ast.Call(call.func, (ast.Name(self.stream.name, arg.span),), call.span)
        return self.sql.agg_sql(call, self.a, "1")

    def nested(self, node: ast.GroupSum) -> str:
        return GroupSql(self.sql).correlated(node, self)


class GroupSql:
    def __init__(self, sql: EventSql):
        self.sql = sql

    @contextlib.contextmanager
    def level(self, level: GroupLevel):
        before, self.sql.group = self.sql.group, level
        try:
            yield
        finally:
            self.sql.group = before

    def body(self, node: ast.GroupSum, level: GroupLevel) -> str:
        with self.level(level):
            return self.sql.ev(node.body, level.stream, level.a)

    def side_query(self, node: ast.GroupSum, slot: str) -> SideQuery:
        """The member's total of a top-level SQL `sum over`."""
        q = self.sql
        stream = q.streams[node.stream]
        keys = {k: q.field_sql(stream, k, "e") for k in node.keys}
        body = self.body(node, GroupLevel(q, stream, "e", keys))
        group_by = ", ".join(["e.member"] + list(keys.values()))
        inner = (f"SELECT e.member AS member, {body} AS v FROM events e WHERE {{scan}} "
                 f"AND {q.match(stream.name, 'e', with_visibility=True)} {{members}} GROUP BY {group_by}")
        sql = f"SELECT member, SUM(v) FROM ({inner}) GROUP BY member ORDER BY member"
        return SideQuery(slot, sql, "value", scans=q.scans([stream.name], "e"))

    def correlated(self, node: ast.GroupSum, outer: GroupLevel) -> str:
        """A `sum over` inside the body of `outer`: its groups are the outer group's
        events split by its own keys."""
        q = self.sql
        stream = q.streams[node.stream]
        x = q.alias()
        keys = {k: q.field_sql(stream, k, x) for k in list(outer.keys) + list(node.keys)}
        same_group = " ".join(f"AND {keys[k]} IS {outer.keys[k]}" for k in outer.keys)
        body = self.body(node, GroupLevel(q, stream, x, keys))
        group_by = ", ".join(keys[k] for k in node.keys)
        return (f"(SELECT COALESCE(SUM(v), 0) FROM (SELECT {body} AS v FROM events {x} "
                f"WHERE {x}.member = {outer.a}.member AND {q.match(stream.name, x, with_visibility=True)} "
                f"{same_group} GROUP BY {group_by}))")
