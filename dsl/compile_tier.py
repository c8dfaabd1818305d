"""The body of a folded `sum over` as SQL of the tier row, when SQLite computes exactly
what the per-tier closure computes.

The evaluator calls the body's closure once per tier row of the main query (a
dictionary and a chain of closures each). For the common bodies -- whole numbers,
`+ - *`, a rounding to a literal step, a division by a literal that divides what is
divided exactly (`trunc(sum(amount), 1_000) / 1_000 * 5 * (multiplier - 1)`) --
SQLite's integer arithmetic gives the same value, so the main query carries it as one
more column. The evaluator takes that column only when it is an integer (and the tier
key, when the body reads it, is an integer too); anything else -- NULL, a float after
an overflow -- goes to the closure as before, so the result is the closure's always.
Any other body (values, conditions, other functions, fractions) has no SQL here.
"""

from __future__ import annotations

import math

from points.dsl import ast
from points.dsl.compile_numbers import Frac, rounded
from points.dsl.plan import DEFAULTS

__all__ = ["TierSql", "tier_body_sql"]

_ROUNDING = ("floor", "ceil", "trunc", "round")


class TierSql:
    """(SQL, a whole number it is known to be a multiple of, whether it reads the key)."""

    def __init__(self, key: str, aggregates: dict[int, tuple[str, str]]):
        self.key = key
        self.aggregates = aggregates  # id(call node) -> (aggregate function, its tier SQL)
        self.uses_key = False

    def sql(self, node) -> tuple[str, int] | None:
        t = type(node)
        if t is ast.Literal:
            v = node.value
            if type(v) is not int:
                return None
            return f"({v})", abs(v)
        if t is ast.Name:
            if node.name != self.key:
                return None
            self.uses_key = True
            return "e.k", 1
        if t is ast.Unary:
            if node.op == "not":
                return None
            inner = self.sql(node.operand)
            return None if inner is None else (f"(-{inner[0]})", inner[1])
        if t is ast.BinOp:
            return self.binop(node)
        if t is ast.Call:
            return self.call(node)
        return None

    def binop(self, node: ast.BinOp) -> tuple[str, int] | None:
        if node.op not in ("+", "-", "*", "/"):
            return None
        left = self.sql(node.left)
        if left is None:
            return None
        if node.op == "/":  # only by a positive literal that divides the left side exactly
            c = node.right.value if type(node.right) is ast.Literal else None
            if type(c) is not int or c <= 0 or left[1] % c != 0:
                return None
            return f"({left[0]} / {c})", left[1] // c
        right = self.sql(node.right)
        if right is None:
            return None
        multiple = left[1] * right[1] if node.op == "*" else math.gcd(left[1], right[1])
        return f"({left[0]} {node.op} {right[0]})", multiple

    def call(self, node: ast.Call) -> tuple[str, int] | None:
        found = self.aggregates.get(id(node))
        if found is not None:
            func, sql = found
            if type(DEFAULTS.get(func)) is not int:
                return None
            return f"COALESCE({sql}, {DEFAULTS[func]})", 1
        if node.func not in _ROUNDING or not 1 <= len(node.args) <= 2:
            return None
        step = 1
        if len(node.args) == 2:
            lit = node.args[1]
            step = lit.value if type(lit) is ast.Literal else None
            if type(step) is not int or step <= 0:
                return None
        inner = self.sql(node.args[0])
        if inner is None:
            return None
        return rounded(node.func, Frac(inner[0]), str(step)), step


def tier_body_sql(body, key: str, aggregates: dict[int, tuple[str, str]]) -> tuple[str | None, bool]:
    """(SQL of `body` over one tier row, or None; whether it reads the tier key `e.k`)."""
    t = TierSql(key, aggregates)
    out = t.sql(body)
    return (None, False) if out is None else (out[0], t.uses_key)
