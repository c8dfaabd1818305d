"""The syntax tree of a rules file: frozen attrs classes, each with its source span.

Built by `dsl.parser` from the Lark parse tree; read by `dsl.checker` (semantic
checks) and `dsl.compiler` (to an executable plan). Nothing here evaluates.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Union

import attrs


@attrs.frozen
class Span:
    """Where a node stands in its file (1-based lines and columns)."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


# ---------------------------------------------------------------- expressions

@attrs.frozen
class Literal:
    value: Union[int, Fraction, str, dt.date, dt.time, bool, None]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Name:
    name: str
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Dotted:
    """`stream.field` or `table.column`."""

    base: str
    attr: str
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Filtered:
    """`stream where condition`, only as an aggregate's argument."""

    stream: str
    cond: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Call:
    func: str
    args: tuple["Expr", ...]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class ListLit:
    items: tuple["Expr", ...]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Unary:
    op: str  # 'neg' | 'not'
    operand: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class BinOp:
    op: str  # '+', '-', '*', '/', 'and', 'or'
    left: "Expr"
    right: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Compare:
    op: str  # '==', '!=', '<', '<=', '>', '>=', 'in', 'not in', 'has', 'has one of'
    left: "Expr"
    right: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class InRange:
    value: "Expr"
    low: "Expr"
    high: "Expr"
    inclusive_end: bool
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Conditional:
    cond: "Expr"
    then: "Expr"
    otherwise: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class GroupSum:
    """`sum over STREAM by FIELD[, FIELD...]: (expr)`: expr per group, summed."""

    stream: str
    key: str
    body: "Expr"
    span: Span = attrs.field(eq=False)
    more_keys: tuple[str, ...] = ()  # `by date, merchant`: the keys after the first

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,) + self.more_keys


@attrs.frozen
class LookupCond:
    column: str
    op: str
    value: "Expr"
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Lookup:
    """`lookup COLUMN in TABLE where col op expr [and ...] else DEFAULT`."""

    column: str
    table: str
    conds: tuple[LookupCond, ...]
    default: "Expr"
    span: Span = attrs.field(eq=False)


Expr = Union[
    Literal, Name, Dotted, Filtered, Call, ListLit, Unary, BinOp, Compare, InRange,
    Conditional, GroupSum, Lookup,
]


# ---------------------------------------------------------------- declarations

@attrs.frozen
class KindAlias:
    name: str
    until: dt.date
    span: Span = attrs.field(eq=False)


@attrs.frozen
class KindDecl:
    name: str
    display: str
    aliases: tuple[KindAlias, ...]
    span: Span = attrs.field(eq=False)


@attrs.frozen
class DateRange:
    low: Expr
    high: Expr
    inclusive_end: bool
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Budget:
    amount: int
    kind: str
    span: Span = attrs.field(eq=False)
    # What happens when it runs out: "all or nothing" (members in member-id order, each
    # grant whole or refused), "first come first served" (by the member's first event,
    # no grant after a refused one) or "pro rata" (every grant due scaled down).
    policy: str = "all or nothing"


@attrs.frozen
class EntryRequirement:
    within: DateRange
    retroactive: bool
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Cycle:
    """`every month from day A to day B`: periods from day A of a month to day B of the
    next; or a calendar unit, `every month` / `every week` (monday to sunday) /
    `every year` (`calendar` is then "month", "week" or "year", the days 0)."""

    start_day: int
    end_day: int
    span: Span = attrs.field(eq=False)
    calendar: str | None = None


@attrs.frozen
class TableDecl:
    name: str
    path: str
    span: Span = attrs.field(eq=False)


@attrs.frozen
class FieldDef:
    name: str
    expr: Expr
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Stream:
    name: str
    event_type: str
    where: Expr | None
    fields: tuple[FieldDef, ...]
    undone_by: tuple[str, ...]
    span: Span = attrs.field(eq=False)
    type_span: Span = attrs.field(eq=False, default=None)
    # `credited to FIELD`: the events count for the member the field names (a referrer),
    # not for the event's member
    credited_to: str | None = None


@attrs.frozen
class Value:
    name: str
    expr: Expr
    span: Span = attrs.field(eq=False)


@attrs.frozen
class PayFixed:
    date: dt.date
    span: Span = attrs.field(eq=False)


@attrs.frozen
class PayMonthAfter:
    """`on day N of month after EXPR`: day N of the month after the date EXPR."""

    day: int
    after: Expr
    span: Span = attrs.field(eq=False)


@attrs.frozen
class PayAfterPeriod:
    """`on day N after period end`: the first day N after the period's last day."""

    day: int
    span: Span = attrs.field(eq=False)


PayDate = Union[PayFixed, PayMonthAfter, PayAfterPeriod]


@attrs.frozen
class ExpiresOn:
    date: dt.date
    span: Span = attrs.field(eq=False)


@attrs.frozen
class ExpiresAfter:
    """`expires N months after payment`: the last day of the Nth month after payment."""

    months: int
    span: Span = attrs.field(eq=False)


Expiry = Union[ExpiresOn, ExpiresAfter]


@attrs.frozen
class Lottery:
    winners: int | None  # None: draw order within the budget
    seed: str | None
    span: Span = attrs.field(eq=False)


@attrs.frozen
class Award:
    name: str
    label: str | None
    amount: Expr
    kind: str
    when: Expr | None
    pay: PayDate | None
    expiry: Expiry | None
    lottery: Lottery | None
    is_mission: bool
    span: Span = attrs.field(eq=False)
    kind_span: Span = attrs.field(eq=False, default=None)


@attrs.frozen
class Campaign:
    name: str
    title: str
    document: str | None
    window: DateRange | None
    budget: Budget | None
    entry: EntryRequirement | None
    cycle: Cycle | None
    payday: PayDate | None
    tables: tuple[TableDecl, ...]
    streams: tuple[Stream, ...]
    values: tuple[Value, ...]
    awards: tuple[Award, ...]
    span: Span = attrs.field(eq=False)
    duplicates: tuple[tuple[str, Span], ...] = attrs.field(eq=False, default=())


@attrs.frozen
class RulesFile:
    path: str
    source: str
    kinds: tuple[KindDecl, ...]
    campaigns: tuple[Campaign, ...]
