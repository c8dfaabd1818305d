"""Values at member scope: the arithmetic, comparisons and functions of the rules
language on Python values, and closures specialised for the common integer case.

Points are exact: integers stay integers, a division that is not exact becomes a
`Fraction`, and `whole` turns whole Fractions back into ints. The compiler builds
one closure per expression node; the specialised builders below (`arith`,
`compare`, `scalar`) return the same values as the generic `arith_values`, `compare_values` and
`SCALARS` -- they only skip the dispatch on the operator name and the generic
argument handling when both operands are plain ints, which is what the
settlement of a card cycle evaluates a few hundred thousand times.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from fractions import Fraction
from typing import Any, Callable

from points.dsl.errors import RunError

def to_date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def whole(value) -> Any:
    """Fractions that are whole numbers become ints (points are integers)."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def round_to(value, step, mode):
    if value is None:
        return None
    if type(value) is int and type(step) is int and step > 0:  # the common case, exact
        if mode == "floor":
            return value // step * step
        if mode == "ceil":
            return -(-value // step) * step
        if mode == "trunc":
            q = abs(value) // step * step
            return q if value >= 0 else -q
    step = Fraction(step)
    q = Fraction(value) / step
    if mode == "floor":
        n = math.floor(q)
    elif mode == "ceil":
        n = math.ceil(q)
    elif mode == "trunc":
        n = math.trunc(q)
    else:  # round half away from zero: 0.5 -> 1, -0.5 -> -1
        n = math.floor(abs(q) + Fraction(1, 2)) * (1 if q >= 0 else -1)
    return whole(n * step)


def compare_values(op, a, b):
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if a is None or b is None:
        return False
    if isinstance(a, dt.date) != isinstance(b, dt.date):
        a, b = to_date(a), to_date(b)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def arith_values(op, a, b):
    if a is None or b is None:
        return None
    if type(a) is int and type(b) is int:  # integers stay integers when exact
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b and a % b == 0:
            return a // b
    if op == "+":
        return whole(a + b)
    if op == "-":
        return whole(a - b)
    if op == "*":
        return whole(a * b)
    if b == 0:  # an error, not "nothing": paying nothing in silence hides a rule's mistake
        raise DivisionByZero(f"division by zero ({a} / 0)")
    return whole(Fraction(a) / Fraction(b))


class DivisionByZero(RunError):
    """A rule divided by zero for a member (the run names the member and the clause)."""


SCALARS: dict[str, Callable] = {
    "min": lambda *xs: min((x for x in xs if x is not None), default=None),
    "max": lambda *xs: max((x for x in xs if x is not None), default=None),
    "abs": lambda x: None if x is None else abs(x),
    "floor": lambda x, step=1: round_to(x, step, "floor"),
    "ceil": lambda x, step=1: round_to(x, step, "ceil"),
    "trunc": lambda x, step=1: round_to(x, step, "trunc"),
    "round": lambda x, step=1: round_to(x, step, "round"),
    # dates (none stays none)
    "days": lambda n: None if n is None else dt.timedelta(days=n),
    "year": lambda d: None if d is None else to_date(d).year,
    "month": lambda d: None if d is None else to_date(d).month,
    "day": lambda d: None if d is None else to_date(d).day,
    "weekday": lambda d: None if d is None else to_date(d).weekday(),
    "week_start": lambda d: None if d is None else to_date(d) - dt.timedelta(days=to_date(d).weekday()),
    "days_between": lambda a, b: None if a is None or b is None else (to_date(b) - to_date(a)).days,
}


# ---------------------------------------------------------------- specialised closures

NO_CONST = object()  # `const` when the right operand is not a literal
_INT_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_CMP_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


def arith(op: str, left: Callable, right: Callable, const=NO_CONST) -> Callable:
    """`left op right` as a closure; `const` is the right operand when it is a literal
    (then `right` is not called). Same values as `arith_values`."""
    if type(const) is int and (op != "/" or const):
        c = const
        if op == "/":
            def div_const(env):
                a = left(env)
                if type(a) is int and a % c == 0:
                    return a // c
                return arith_values("/", a, c)
            return div_const
        fn = _INT_OPS[op]

        def op_const(env):
            a = left(env)
            return fn(a, c) if type(a) is int else arith_values(op, a, c)
        return op_const
    if op == "/":
        def div(env):
            a, b = left(env), right(env)
            if type(a) is int and type(b) is int and b and a % b == 0:
                return a // b
            return arith_values("/", a, b)
        return div
    fn = _INT_OPS[op]

    def op_any(env):
        a, b = left(env), right(env)
        return fn(a, b) if type(a) is int and type(b) is int else arith_values(op, a, b)
    return op_any


def compare(op: str, left: Callable, right: Callable) -> Callable:
    """`left op right` for the six comparisons; same values as `compare_values`."""
    fn = _CMP_OPS[op]

    def cmp(env):
        a, b = left(env), right(env)
        return fn(a, b) if type(a) is int and type(b) is int else compare_values(op, a, b)
    return cmp


def scalar(func: str, args: list[Callable], consts: list) -> Callable:
    """A call of a scalar function; `consts[i]` is argument i when it is a literal.
    `floor`/`ceil`/`trunc` by a literal positive int step and two-argument `min`/`max`
    are specialised; everything else calls `SCALARS`."""
    fn = SCALARS[func]
    if len(args) == 2 and func in ("floor", "ceil", "trunc") and type(consts[1]) is int and consts[1] > 0:
        value, step = args[0], consts[1]
        if func == "trunc":
            def trunc_step(env):
                x = value(env)
                if type(x) is int:
                    q = abs(x) // step * step
                    return q if x >= 0 else -q
                return round_to(x, step, "trunc")
            return trunc_step
        if func == "floor":
            def floor_step(env):
                x = value(env)
                return x // step * step if type(x) is int else round_to(x, step, "floor")
            return floor_step

        def ceil_step(env):
            x = value(env)
            return -(-x // step) * step if type(x) is int else round_to(x, step, "ceil")
        return ceil_step
    if len(args) == 2 and func in ("min", "max"):
        first, second = args
        pick = min if func == "min" else max

        def min_max(env):  # as SCALARS: None arguments are ignored
            a, b = first(env), second(env)
            if a is None:
                return b
            return a if b is None else pick(a, b)
        return min_max
    if len(args) == 1:
        only = args[0]
        return lambda env: fn(only(env))
    if len(args) == 2:
        first, second = args
        return lambda env: fn(first(env), second(env))
    return lambda env: fn(*(a(env) for a in args))
