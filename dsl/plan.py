"""What the compiler produces and the evaluator and the engine consume: a campaign's
`Plan` (SQL text, slots, closures), its awards, the periods it is evaluated over and
the per-member environment the closures read.

These are the public types of `points.dsl.compiler`; they live here so that the two
back ends (`dsl.compile_sql` for what is per event, `dsl.compile_member` for what is
per member) and the facade share them without importing each other in a loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import attrs

from points.dsl import ast
from points.dsl.tables import Table

Closure = Callable[["MemberEnv"], Any]

ENTRY_STREAM = "__entry__"
# The columns of `events` an expression can name (not source, prev_hash, hash).
EVENT_COLUMNS = "e.seq, e.id, e.type, e.member, e.at, e.day, e.time, e.weekday, e.amount, e.ref, e.body"
# Aggregates whose per-tier partial results merge exactly into the member's result.
FOLD_KINDS = {"sum", "count", "exists", "any", "all", "min", "max", "first", "last"}
# What an aggregate is when the member has no event of its stream.
DEFAULTS = {"sum": 0, "count": 0, "any": False, "all": True, "exists": False,
            "distinct_days": 0, "count_distinct": 0, "longest_streak": 0, "weekly_streak": 0}


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
    # `on day N of month after EXPR`: the latest date EXPR can be in a period, or None
    # when nothing bounds it (dsl.pay_bounds); the run checks payments up to then.
    pay_last: Callable[["Period"], "dt.date | None"] | None = None


@attrs.frozen
class Scan:
    """How a query finds its events (its `{scan}` clause), three ways.

    For everyone, by type and date range: `by_index` finds the rows on the (type, day)
    index and reads them in rowid order (`seq IN (...)`: SQLite sorts the rowids; read
    in index order, each row is a random B-tree search, several times the cost once the
    file outgrows the page cache); `by_table` reads the whole table in one pass, cheaper
    when the rows wanted are a large part of it (a file holding one card cycle);
    `count` tells which (evaluator). For listed members, `by_member`: by type only, so
    that the (type, member) index serves the member list."""

    by_index: str
    by_table: str
    by_member: str
    count: str


EVERYTHING = Scan("1", "1", "1", "SELECT 0")


@attrs.frozen
class GroupPlan:
    key_slot: str
    slots: tuple[tuple[str, str], ...]  # (slot name, aggregate kind) in SELECT order after key
    body: Closure
    stream: str = ""  # the stream the tiers are made of
    # The body as SQL of a folded tier row, when SQLite computes it exactly (dsl.compile_tier),
    # and whether it reads the tier key.
    body_sql: str | None = None
    body_key: bool = False


@attrs.frozen
class SideQuery:
    """An aggregate that needs its own pass: rows (member, ...) ordered by member."""

    slot: str
    sql: str
    kind: str  # 'reaching' | 'group'
    group: GroupPlan | None = None
    scans: Scan = EVERYTHING


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
    # Closures asked for by the caller of `compile_campaign(..., probes=...)` (explain:
    # one per conjunct of a condition), computed over the same row as the awards.
    probes: dict[Any, Closure] = attrs.field(factory=dict)
    # `budget ... first come first served`: when the member came (the time of their first
    # event in the campaign's streams, ISO text), or None.
    arrival: Closure | None = None
    # SQL over one event row `e` asked for by `compile_campaign(..., event_probes=...)`.
    event_probes: dict[Any, str] = attrs.field(factory=dict)
