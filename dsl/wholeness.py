"""Awards proven whole and within 64 bits from their text, so that a run need not
evaluate them ahead to find out.

Before a run writes anything, `engine.guards.invalid_award` evaluates the awards of
campaigns with `/`, `*` or a percentage once, so that an award that is not a whole
number, beyond 64 bits or divides by zero refuses the run before its first entry.
That pass costs as much as the evaluation in the run itself; this module removes it
for the awards whose text already proves it cannot fail:

- **whole**: every numeric expression is known to be a multiple of a rational step
  (a literal of itself, the step of `floor`/`ceil`/`trunc`/`round`, products and
  quotients by literals, the gcd for sums, `min`/`max` and both branches of `if`);
  an award whose step is an integer is whole whatever the data;
- **64-bit**: every numeric expression has a bound on its magnitude, a polynomial in
  the number of events n (an event's int field is at most MAX_AMOUNT, enforced at
  import; a table column at most its largest value; `sum` adds at most n events; the
  tiers of a `sum over` partition the member's events). The run evaluates the
  largest bound of the award (and of every step of it, so no SQL intermediate
  overflows either) at n = the number of events in the database;
- **no division by zero**: every `/` in the award, its condition and what they read
  divides by a literal that is not 0.

Anything else (a name this module does not know, a `/` by an expression, a fraction
per event...) is simply not proven: the run then evaluates the award ahead as before,
and the settlement still checks every amount as it grants it. A proof here is only
ever a reason to skip that extra pass, never to skip the check at grant time.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable

import attrs

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl.tables import Table
from points.ledger.event_decl import INT, MAX_AMOUNT, Catalogue
from points.ledger.event_schema import Schema, schema_for

MAX_POINTS = 2**63 - 1  # SQLite INTEGER, what the journal stores
Poly = tuple  # (c0, c1, ...): |value| <= c0 + c1*n + c2*n**2 + ...


class Unproven(Exception):
    """The text does not prove the property (the reason is the message)."""


@attrs.frozen
class Num:
    """What is known of a numeric expression: a multiple of `step` (0: always 0), at
    most `bound` in magnitude, every step of its computation at most `peak`."""

    step: Fraction
    bound: Poly
    peak: Poly


@attrs.frozen
class Proof:
    """An award's amount: whole for every member (or why not), and its largest value."""

    award: str
    whole: bool
    peak: Poly | None  # None: not bounded (or not whole)
    reason: str = ""
    step: Fraction | None = None  # the amount is a multiple of it (None: not known)

    def safe(self, events: int) -> bool:
        """Whole, within 64 bits at every step and free of division by zero with at
        most `events` events in the database."""
        return self.whole and self.peak is not None and evaluate(self.peak, max(events, 1)) <= MAX_POINTS


def evaluate(poly: Poly, n: int) -> Fraction:
    return sum((Fraction(c) * n**k for k, c in enumerate(poly)), Fraction(0))


def _add(a: Poly, b: Poly) -> Poly:
    size = max(len(a), len(b))
    return tuple((a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(size))


def _mul(a: Poly, b: Poly) -> Poly:
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += Fraction(x) * y
    return tuple(out)


def _max(a: Poly, b: Poly) -> Poly:
    size = max(len(a), len(b))
    return tuple(max(a[i] if i < len(a) else 0, b[i] if i < len(b) else 0) for i in range(size))


def _scale(a: Poly, k) -> Poly:
    return tuple(Fraction(c) * abs(k) for c in a)


def _over_events(a: Poly) -> Poly:
    """The bound of a sum of a per-event (degree 0) value over at most n events."""
    if len(a) > 1:
        raise Unproven("a sum of values that grow with the events")
    return (0, a[0])


def _over_groups(a: Poly) -> Poly:
    """Summed over groups that partition n events (each holds n_g >= 1 of them):
    sum c0 <= c0*n and sum n_g**k <= n**k, so the constant term moves to n."""
    if not a:
        return a
    return (0, a[0] + (a[1] if len(a) > 1 else 0)) + tuple(a[2:])


def _gcd(a: Fraction, b: Fraction) -> Fraction:
    """The largest rational r with a and b both integer multiples of r (gcd(0, b) = b)."""
    a, b = abs(Fraction(a)), abs(Fraction(b))
    den = a.denominator * b.denominator // math.gcd(a.denominator, b.denominator)
    return Fraction(math.gcd(int(a * den), int(b * den)), den)


def _const(value) -> Num:
    if isinstance(value, bool) or not isinstance(value, (int, Fraction)):
        raise Unproven(f"{value!r} is not a number")
    v = Fraction(value)
    return Num(abs(v), (abs(v),), (abs(v),))


def _combine(parts: Iterable[Num], bound: Poly, step: Fraction) -> Num:
    peak = bound
    for p in parts:
        peak = _max(peak, p.peak)
    return Num(step, bound, peak)


ROUNDING = {"floor", "ceil", "trunc", "round"}
DATE_PARTS = {"year": 9999, "month": 12, "day": 31, "weekday": 6, "days_between": 3_652_059}


class Prover:
    """Proofs for one campaign's awards (names resolved as the compiler does)."""

    def __init__(self, campaign: ast.Campaign, tables: dict[str, Table], schema: Schema):
        self.c = campaign
        self.schema = schema
        self.tables = tables
        self.values = {v.name: v for v in campaign.values}
        self.awards = {a.name: a for a in campaign.awards}
        self.streams = {s.name: s for s in campaign.streams}
        self._member: dict[str, Num] = {}
        self._busy: set[str] = set()

    def prove(self, award: ast.Award) -> Proof:
        try:
            self.no_division_by_zero(award.when, set())
            self.no_division_by_zero(award.amount, set())
            num = self.member(award.amount, None)
        except Unproven as exc:
            return Proof(award.name, False, None, str(exc))
        except (ArithmeticError, TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            # A construct this module reads wrongly is not a proof, and never stops
            # `check` or a run: the award is then evaluated ahead, as without it.
            return Proof(award.name, False, None, f"not analysed ({type(exc).__name__})")
        if num.step.denominator != 1:
            return Proof(award.name, False, None, f"a multiple of {num.step}, not always whole", num.step)
        return Proof(award.name, True, num.peak, step=num.step)

    # --- division: per member a `/` by 0 is an error (per event it is none)
    def no_division_by_zero(self, node, seen: set) -> None:
        if node is None:
            return
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.BinOp) and n.op == "/":
                r = n.right
                if not (isinstance(r, ast.Literal) and isinstance(r.value, (int, Fraction))
                        and not isinstance(r.value, bool) and r.value != 0):
                    raise Unproven("a division by something other than a literal")
            if isinstance(n, ast.Name) and n.name not in seen:
                if n.name in self.values:
                    seen.add(n.name)
                    stack.append(self.values[n.name].expr)
                elif n.name in self.awards:
                    seen.add(n.name)
                    stack.append(self.awards[n.name].when)
            if isinstance(n, (tuple, list)):
                stack.extend(x for x in n if x is not None)
            elif attrs.has(type(n)) and not isinstance(n, ast.Span):
                stack.extend(v for f in attrs.fields(type(n)) if f.name != "span"
                             and (v := getattr(n, f.name)) is not None)

    # --- per member (and per tier of a `sum over`, `group` = its stream and keys)
    def member(self, node, group) -> Num:
        t = type(node)
        if t is ast.Literal:
            return _const(node.value)
        if t is ast.Name:
            name = node.name
            if group is not None and name in group[1]:
                return self.field(group[0], name, frozenset())
            if name in self.values:
                if group is not None:  # the member's value, the same in every tier
                    group[2]["outer"] = True
                if name in self._busy:
                    raise Unproven(f"value {name} refers to itself")
                if name not in self._member:
                    self._busy.add(name)
                    try:
                        self._member[name] = self.member(self.values[name].expr, None)
                    finally:
                        self._busy.discard(name)
                return self._member[name]
            if name in sym.WEEKDAYS:
                return _const(sym.WEEKDAYS[name])
            raise Unproven(f"{name} is not a number known to be whole")
        if t is ast.Unary and node.op == "neg":
            return self.member(node.operand, group)
        if t is ast.BinOp and node.op in ("+", "-", "*", "/"):
            return self.arith(node, lambda x: self.member(x, group))
        if t is ast.Conditional:
            a, b = self.member(node.then, group), self.member(node.otherwise, group)
            return _combine((a, b), _max(a.bound, b.bound), _gcd(a.step, b.step))
        if t is ast.GroupSum:
            if node.more_keys or any(isinstance(x, ast.GroupSum) for x in _walk(node.body)):
                raise Unproven("a nested or multi-key `sum over` (computed in SQL)")
            stream = self.streams.get(node.stream)
            if stream is None:
                raise Unproven(f"unknown stream {node.stream}")
            flags = {"outer": False}
            body = self.member(node.body, (stream, node.keys, flags))
            # at most n tiers; a body made of the tier's own events only grows with them
            over = (lambda p: (0,) + tuple(p)) if flags["outer"] else _over_groups
            bound = over(body.bound)
            # each step of a tier's body stays within its peak; the running total of
            # the tiers within the bound
            return Num(body.step, bound, _max(body.peak, bound))
        if t is ast.Call:
            return self.call(node, group)
        raise Unproven(f"{t.__name__} is not a number known to be whole")

    def arith(self, node: ast.BinOp, sub) -> Num:
        a, b = sub(node.left), sub(node.right)
        if node.op in ("+", "-"):
            bound = _add(a.bound, b.bound)
            return _combine((a, b), bound, _gcd(a.step, b.step))
        if node.op == "*":
            bound = _mul(a.bound, b.bound)
            return _combine((a, b), bound, a.step * b.step)
        d = node.right.value if isinstance(node.right, ast.Literal) else None
        if isinstance(d, bool) or not isinstance(d, (int, Fraction)) or d == 0:
            raise Unproven("a division by something other than a literal")
        return _combine((a, b), _scale(a.bound, 1 / Fraction(d)), a.step / abs(Fraction(d)))

    def call(self, node: ast.Call, group) -> Num:
        func, args = node.func, node.args
        if _is_aggregate(node, self.streams, group):
            return self.aggregate(node, group)
        if func in ROUNDING:
            x = self.member(args[0], group)
            step = Fraction(1)
            if len(args) > 1:
                s = args[1]
                if not (isinstance(s, ast.Literal) and isinstance(s.value, (int, Fraction))
                        and not isinstance(s.value, bool) and s.value > 0):
                    raise Unproven(f"the step of {func}() is not a positive literal")
                step = Fraction(s.value)
            bound = _add(x.bound, (step,))
            return _combine((x,), bound, step)
        if func in ("min", "max"):
            parts = [self.member(a, group) for a in args]
            bound, step = parts[0].bound, parts[0].step
            for p in parts[1:]:
                bound, step = _max(bound, p.bound), _gcd(step, p.step)
            return _combine(parts, bound, step)
        if func == "abs":
            return self.member(args[0], group)
        if func in DATE_PARTS:
            top = DATE_PARTS[func]
            return Num(Fraction(1), (top,), (top,))
        raise Unproven(f"{func}() is not known to give a whole number")

    def aggregate(self, node: ast.Call, group) -> Num:
        func, arg = node.func, node.args[0]
        named = arg.name if isinstance(arg, ast.Name) and arg.name in self.streams else None
        if group is not None and (_stream_of(arg) or named) not in (None, group[0].name):
            group[2]["outer"] = True  # another stream's events: not the tier's own
        if func in ("count", "distinct_days", "count_distinct"):
            return Num(Fraction(1), (0, 1), (0, 1))
        if func not in ("sum", "min", "max", "first", "last"):
            raise Unproven(f"{func}() is not a number")
        if group is not None and isinstance(arg, ast.Name):
            stream, field = group[0], arg.name
        elif isinstance(arg, ast.Dotted) and arg.base in self.streams:
            stream, field = self.streams[arg.base], arg.attr
        else:
            raise Unproven(f"{func}() of something other than a field")
        one = self.field(stream, field, frozenset())
        if len(one.bound) > 1:
            raise Unproven(f"field {field} grows with the events")
        if func != "sum":
            return one
        bound = _over_events(one.bound)
        return Num(one.step, bound, _max(bound, one.peak))

    # --- per event (SQL): a field of a stream, whole numbers only
    def field(self, stream: ast.Stream, name: str, busy: frozenset) -> Num:
        for f in stream.fields:
            if f.name == name:
                if name in busy:
                    raise Unproven(f"field {name} refers to itself")
                return self.event(f.expr, stream, busy | {name})
        if name == "weekday":
            return Num(Fraction(1), (6,), (6,))
        declared = {f.name: f.kind for f in self.schema.fields_of(stream.event_type)} \
            if stream.event_type in self.schema.types else {}
        if name not in sym.DERIVED_FIELDS and declared.get(name) == INT:
            # every int field of every event is within MAX_AMOUNT (refused at import otherwise)
            return Num(Fraction(1), (MAX_AMOUNT,), (MAX_AMOUNT,))
        raise Unproven(f"field {name} is not an int field")

    def event(self, node, stream: ast.Stream, busy: frozenset) -> Num:
        t = type(node)
        if t is ast.Literal:
            return _const(node.value)
        if t is ast.Name:  # in the compiler's order (dsl.compile_sql): weekday, value, field
            if node.name in sym.WEEKDAYS:
                return _const(sym.WEEKDAYS[node.name])
            if node.name in self.values:
                if "value " + node.name in busy:
                    raise Unproven(f"value {node.name} refers to itself")
                return self.event(self.values[node.name].expr, stream, busy | {"value " + node.name})
            return self.field(stream, node.name, busy)
        if t is ast.Unary and node.op == "neg":
            return self.event(node.operand, stream, busy)
        if t is ast.BinOp and node.op in ("+", "-", "*", "/"):
            return self.arith(node, lambda x: self.event(x, stream, busy))
        if t is ast.Call and node.func in ROUNDING:
            return self.event_rounding(node, stream, busy)
        if t is ast.Conditional:
            a, b = self.event(node.then, stream, busy), self.event(node.otherwise, stream, busy)
            return _combine((a, b), _max(a.bound, b.bound), _gcd(a.step, b.step))
        if t is ast.Lookup:
            return self.lookup(node, stream, busy)
        if t is ast.Call and node.func in ("min", "max"):
            parts = [self.event(a, stream, busy) for a in node.args]
            bound, step = parts[0].bound, parts[0].step
            for p in parts[1:]:
                bound, step = _max(bound, p.bound), _gcd(step, p.step)
            return _combine(parts, bound, step)
        if t is ast.Call and node.func == "abs":
            return self.event(node.args[0], stream, busy)
        raise Unproven(f"a {t.__name__} per event")

    def event_rounding(self, node: ast.Call, stream: ast.Stream, busy: frozenset) -> Num:
        """`floor(amount * 2%)` per event: SQL keeps the fraction as numerator and
        denominator (dsl.compile_numbers) until it is rounded, so each step of it is
        at most the value times the product of the literals' numerators and
        denominators, and the rounding doubles that at most."""
        x = self.event(node.args[0], stream, busy)
        step = Fraction(1)
        if len(node.args) > 1:
            s = node.args[1]
            if not (isinstance(s, ast.Literal) and type(s.value) is int and s.value > 0):
                raise Unproven(f"the step of {node.func}() per event is not a positive whole literal")
            step = Fraction(s.value)
        den = Fraction(1)
        for n in _walk(node.args[0]):
            if isinstance(n, ast.Literal) and isinstance(n.value, Fraction):
                den *= abs(n.value.numerator) * n.value.denominator
            if (isinstance(n, ast.BinOp) and n.op == "/" and isinstance(n.right, ast.Literal)
                    and isinstance(n.right.value, (int, Fraction))):
                v = Fraction(n.right.value)
                den *= abs(v.numerator) * v.denominator
        bound = _add(x.bound, (step,))
        peak = _scale(_add(x.peak, (step,)), 4 * den * step)
        return Num(step, bound, _max(peak, bound))

    def lookup(self, node: ast.Lookup, stream: ast.Stream, busy: frozenset) -> Num:
        table = self.tables.get(node.table)
        if table is not None and not table.rows:  # no row to find: always the default
            return self.event(node.default, stream, busy)
        if table is None or node.column not in table.columns or table.column_type(node.column) != "int":
            raise Unproven(f"column {node.column} of {node.table} is not an int column")
        i = table.columns.index(node.column)
        values = [abs(r[i]) for r in table.rows]
        default = self.event(node.default, stream, busy)
        step = default.step
        for r in table.rows:
            step = _gcd(step, Fraction(r[i]))
        bound = _max((max(values, default=0),), default.bound)
        return _combine((default,), bound, step)


def _is_aggregate(node: ast.Call, streams: dict, group) -> bool:
    """As `dsl.compile_member`: `min(s.f)` aggregates, `min(a, b)` does not."""
    func = node.func
    return func in sym.AGGREGATES or (
        func in sym.MIN_MAX and len(node.args) == 1
        and isinstance(node.args[0], (ast.Dotted, ast.Filtered, ast.Name))
        and (group is not None or not isinstance(node.args[0], ast.Name) or node.args[0].name in streams))


def _stream_of(arg) -> str | None:
    """The stream an aggregate's argument names (None: a field of the tier's stream)."""
    if isinstance(arg, ast.Dotted):
        return arg.base
    if isinstance(arg, ast.Filtered):
        return arg.stream
    return None


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (tuple, list)):
            stack.extend(n)
        elif attrs.has(type(n)) and not isinstance(n, ast.Span):
            stack.extend(getattr(n, f.name) for f in attrs.fields(type(n)) if f.name != "span")


def fraction_warnings(campaign: ast.Campaign, tables: dict[str, Table]) -> list[tuple[ast.Span, str, str]]:
    """(span, message, hint) for every award whose amount is known to be a multiple of
    a fraction, so not always whole: the run refuses such an award for a member
    whose amount is not whole (`points check` warns, with the events' catalogue in
    use)."""
    prover = Prover(campaign, tables, sym.schema())
    out = []
    for a in campaign.awards:
        proof = prover.prove(a)
        if proof.step is not None and proof.step.denominator != 1:
            out.append((a.amount.span,
                        f"award {a.name} may not be a whole number of points (a multiple of {proof.step}): "
                        "a run refuses it, before writing anything, when it is not",
                        "round it with floor(), ceil(), trunc() or round(), e.g. `floor(total * 2%)`"))
    return out


def prove_awards(campaign: ast.Campaign, tables: dict[str, Table],
                 catalogue: Catalogue | None = None) -> dict[str, Proof]:
    """A proof (or the reason there is none) for every award of a campaign whose
    events are declared by `catalogue` (None: the bundled one)."""
    prover = Prover(campaign, tables, schema_for(catalogue))
    return {a.name: prover.prove(a) for a in campaign.awards}
