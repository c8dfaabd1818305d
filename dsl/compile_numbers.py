"""Numbers and dates in SQL: a per-event (or per-group) number as an exact fraction of
two integer SQL expressions, the four rounding functions on it, and the date functions.

SQLite divides integers toward zero and turns a non-whole quotient into a float, so
`amount * 2%` or `amount / 3` cannot be computed as such without losing the cent the
rules ask to round. Instead a `Frac` keeps numerator and denominator as integer SQL
and only a rounding function (`floor`, `ceil`, `trunc`, `round`) makes a whole number
of it, exactly as `dsl.runtime.round_to` does per member (a division by zero gives
NULL, `none` for that event; per member `dsl.runtime` raises DivisionByZero instead).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Frac:
    num: str  # integer SQL
    den: str = "1"  # integer SQL; "1" when the value is whole
    den_positive: bool = True  # known > 0 (literals, steps): simpler rounding SQL
    const: object = None  # the value, when it is a literal (a Fraction or an int)


def whole(sql: str) -> Frac:
    return Frac(sql)


def _mul(a: str, b: str) -> str:
    if a == "1":
        return b
    if b == "1":
        return a
    return f"({a} * {b})"


def combine(op: str, x: Frac, y: Frac) -> Frac:
    pos = x.den_positive and y.den_positive
    if op == "*":
        return Frac(_mul(x.num, y.num), _mul(x.den, y.den), pos)
    if op == "/":
        pos = x.den_positive and y.const is not None and y.const > 0
        return Frac(_mul(x.num, y.den), _mul(x.den, y.num), pos)
    if x.den == y.den:
        return Frac(f"({x.num} {op} {y.num})", x.den, pos)
    return Frac(f"({_mul(x.num, y.den)} {op} {_mul(y.num, x.den)})", _mul(x.den, y.den), pos)


def negate(x: Frac) -> Frac:
    return Frac(f"(-{x.num})", x.den, x.den_positive)


def choose(cond: str, x: Frac, y: Frac) -> Frac:
    """`x if cond else y` over one common denominator."""
    pos = x.den_positive and y.den_positive
    if x.den == y.den:
        return Frac(f"(CASE WHEN {cond} THEN {x.num} ELSE {y.num} END)", x.den, pos)
    return Frac(f"(CASE WHEN {cond} THEN {_mul(x.num, y.den)} ELSE {_mul(y.num, x.den)} END)",
                _mul(x.den, y.den), pos)


def rounded(mode: str, x: Frac, step: str = "1") -> str:
    """Integer SQL: x rounded to a multiple of `step` (a positive integer parameter),
    floor / ceil / trunc (toward zero) / round (half away from zero)."""
    n, d = x.num, _mul(x.den, step)
    if d == "1":
        return n
    if x.den_positive:  # d > 0: each form names n twice at most
        if mode == "trunc":
            q = f"({n} / {d})"
        elif mode == "floor":
            q = f"(({n} - (({n} % {d}) + {d}) % {d}) / {d})"
        elif mode == "ceil":
            m = f"(-({n}))"
            q = f"(-(({m} - (({m} % {d}) + {d}) % {d}) / {d}))"
        else:
            q = f"(CASE WHEN {n} < 0 THEN -((2 * (-({n})) + {d}) / (2 * {d})) ELSE (2 * {n} + {d}) / (2 * {d}) END)"
        return q if step == "1" else f"({q} * {step})"
    if mode == "trunc":
        q = f"({n} / {d})"
    elif mode in ("floor", "ceil"):
        # n / d truncates toward zero; step once more when the quotient was negative
        # (floor) or positive (ceil) and not whole.
        if mode == "floor":
            fix = f"(CASE WHEN {n} % {d} != 0 AND (({n} < 0) != ({d} < 0)) THEN 1 ELSE 0 END)"
            q = f"(({n} / {d}) - {fix})"
        else:
            fix = f"(CASE WHEN {n} % {d} != 0 AND (({n} < 0) = ({d} < 0)) THEN 1 ELSE 0 END)"
            q = f"(({n} / {d}) + {fix})"
    else:
        sign = f"(CASE WHEN ({n} < 0) != ({d} < 0) THEN -1 ELSE 1 END)"
        q = f"(((2 * abs({n}) + abs({d})) / (2 * abs({d}))) * {sign})"
    return q if step == "1" else f"({q} * {step})"


def date_sql(func: str, args: list[str]) -> str | None:
    """The date functions on SQL arguments ('YYYY-MM-DD' text), or None if `func` is not one."""
    if func == "days":  # `N days`: the number, added by `date(d, N || ' days')`
        return args[0]
    if func in ("year", "month", "day"):
        part = {"year": "%Y", "month": "%m", "day": "%d"}[func]
        return f"CAST(strftime('{part}', {args[0]}) AS INTEGER)"
    if func == "weekday":  # monday 0 .. sunday 6, as the weekday names
        return f"((CAST(strftime('%w', {args[0]}) AS INTEGER) + 6) % 7)"
    if func == "week_start":
        return f"date({args[0]}, '-' || ((CAST(strftime('%w', {args[0]}) AS INTEGER) + 6) % 7) || ' days')"
    if func == "days_between":
        return f"CAST(round(julianday({args[1]}) - julianday({args[0]})) AS INTEGER)"
    return None
