"""The specialised member-scope closures (dsl.runtime.arith/compare/scalar) return
exactly what the generic operations return: same value and same type (an int stays
an int, a whole Fraction becomes an int, None propagates)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from points.dsl import runtime
from points.dsl.runtime import SCALARS, arith_values, compare_values

values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                   st.integers(-3, 3), st.fractions(max_denominator=12).map(lambda f: f * 1000))
ints = st.integers(-10**4, 10**4)


def const(v):
    return lambda env: v


def same(a, b) -> bool:
    return a == b and type(a) is type(b)


@given(st.sampled_from("+-*/"), values, values)
def test_arith_matches_the_generic_operation(op, a, b):
    assert same(outcome(runtime.arith(op, const(a), const(b))), outcome(lambda _: arith_values(op, a, b)))


@given(st.sampled_from("+-*/"), values, ints)
def test_arith_by_a_literal_matches_the_generic_operation(op, a, b):
    assert same(outcome(runtime.arith(op, const(a), const(b), b)), outcome(lambda _: arith_values(op, a, b)))


def outcome(fn):
    """The value, or the error a division by zero raises (it no longer pays nothing)."""
    try:
        return fn(None)
    except runtime.DivisionByZero as exc:
        return type(exc)


def test_division_by_zero_is_an_error_not_nothing():
    import pytest

    for closure in (runtime.arith("/", const(5), const(0)), lambda _: arith_values("/", 5, 0)):
        with pytest.raises(runtime.DivisionByZero, match="division by zero"):
            closure(None)
    assert runtime.arith("/", const(None), const(0))(None) is None  # no value: still none


@given(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), values, values)
def test_compare_matches_the_generic_comparison(op, a, b):
    assert same(runtime.compare(op, const(a), const(b))(None), compare_values(op, a, b))


@given(st.sampled_from(["floor", "ceil", "trunc", "round"]), values, st.integers(1, 5000))
def test_rounding_by_a_literal_step_matches_the_generic_function(func, x, step):
    got = runtime.scalar(func, [const(x), const(step)], [runtime.NO_CONST, step])(None)
    assert same(got, SCALARS[func](x, step))


@given(st.sampled_from(["min", "max"]), st.lists(values.filter(lambda v: not isinstance(v, bool)),
                                                 min_size=1, max_size=3))
def test_min_max_match_the_generic_function(func, xs):
    got = runtime.scalar(func, [const(x) for x in xs], [runtime.NO_CONST] * len(xs))(None)
    assert same(got, SCALARS[func](*xs))


def test_a_fraction_that_is_whole_becomes_an_int():
    half = runtime.arith("/", const(3), const(2))
    assert same(half(None), Fraction(3, 2))
    assert same(runtime.arith("*", half, const(None), 2)(None), 3)
