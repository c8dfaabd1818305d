"""What names mean in a rules file: event fields and their types, functions, builtins.

Shared by the checker (to report unknown names and type errors) and the compiler
(to turn names into SQL columns). The event types and fields come from the
event declarations of the rules folder being checked (`*.events`, read by
`ledger.event_decl`; the import checks events against the same ones), so a
rule writer who declares `hotel_stay` in `rules/hotel.events` can use it in a
`.rules` file of that folder with no code change, and rules and import never
disagree on a field. `using(catalogue)` makes a catalogue the current one for
the checking and compiling done inside it (the loader does this per folder);
outside, the bundled catalogue applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from fractions import Fraction
from typing import Iterator

from points.ledger import event_schema as es
from points.ledger.event_decl import Catalogue

# Types of the language.
INT, NUM, BOOL, STR, DATE, TIME, WEEKDAY, LIST, NONE, ANY = (
    "int", "number", "bool", "text", "date", "time", "weekday", "list", "none", "any",
)
DAYS = "days"  # a number of days (`30 days`), added to or taken from a date
NUMERIC = {INT, NUM}

_KIND_TO_TYPE = {
    es.TEXT: STR, es.CHOICE: STR, es.ID: STR, es.MEMBER: STR, es.AT: STR, es.INT: INT, es.BOOL: BOOL,
    es.DATE: DATE, es.DATETIME: STR, es.LIST: LIST,
}

# Columns derived at import from `at` (Asia/Tokyo), available on every event.
DERIVED_FIELDS = {"date": DATE, "time": TIME, "weekday": WEEKDAY}

# Event fields stored as their own column in `events`; the rest live in the JSON body.
COLUMN_FIELDS = {
    "id": "id", "type": "type", "member": "member", "at": "at", "amount": "amount",
    "ref": "ref", "date": "day", "time": "time", "weekday": "weekday",
}

_current: contextvars.ContextVar[es.Schema | None] = contextvars.ContextVar("event_catalogue", default=None)


@contextlib.contextmanager
def using(catalogue: Catalogue | None) -> Iterator[None]:
    """Check and compile with `catalogue`'s event types (None: the bundled ones)."""
    token = _current.set(es.schema_for(catalogue))
    try:
        yield
    finally:
        _current.reset(token)


def schema() -> es.Schema:
    """The event schema rules are checked against now."""
    return _current.get() or es.BUNDLED


def event_types() -> tuple[str, ...]:
    """Every declared event type, in declaration order."""
    return schema().types


def undo_types() -> tuple[str, ...]:
    """The types that undo another event (they declare `ref`)."""
    return schema().ref_types


def is_event_field(name: str) -> bool:
    """Whether `name` is a field of some event type (or derived from `at`)."""
    return name in schema().field_kinds or name in DERIVED_FIELDS


def __getattr__(name: str):
    # EVENT_TYPES and UNDO_TYPES read like the constants they once were, but
    # follow the catalogue in use (see `using`).
    if name == "EVENT_TYPES":
        return event_types()
    if name == "UNDO_TYPES":
        return undo_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}

# Aggregates over a stream (member scope). Value: result type, or None = type of field.
AGGREGATES = {
    "sum": None, "count": INT, "any": BOOL, "all": BOOL, "exists": BOOL,
    "distinct_days": INT, "count_distinct": INT, "first": None, "last": None,
    "date_reaching": DATE,
    "longest_streak": INT, "weekly_streak": INT,
}
# Runs of consecutive days / weeks (monday to sunday) with an event: a side query each.
STREAKS = {"longest_streak", "weekly_streak"}
# `min`/`max` are aggregates with one stream argument, scalar functions otherwise.
MIN_MAX = {"min", "max"}
# Parts of a date and the days between two, per event (SQL) and per member.
DATE_FUNCTIONS = {"year": INT, "month": INT, "day": INT, "weekday": WEEKDAY, "week_start": DATE,
                  "days_between": INT}
# Another campaign's award, per member: net points paid / the date of the latest grant.
CAMPAIGN_FUNCTIONS = {"awarded": INT, "award_date": DATE}
SCALAR_FUNCTIONS = ({"min", "max", "abs", "floor", "ceil", "trunc", "round", "days"} | set(DATE_FUNCTIONS)
                    | set(CAMPAIGN_FUNCTIONS))
# Aggregates that need a field (`sum(s.amount)`) rather than a stream (`count(s)`).
FIELD_AGGREGATES = {"sum", "count_distinct", "first", "last", "date_reaching", "min", "max"}
STREAM_AGGREGATES = {"count", "exists", "distinct_days", "longest_streak", "weekly_streak"}
BOOL_AGGREGATES = {"any", "all"}  # either a bool field or a filtered stream

RANGE_NAMES = {"window", "period"}

# Member data (`member.tier`): the attributes `member_profile` events set from their
# `valid_from` day on (ledger.member_data).
PROFILE = "member_profile"
MEMBER = "member"
_NOT_ATTRIBUTES = {"id", "type", "member", "at", "amount", "ref", "valid_from"} | set(DERIVED_FIELDS)


def member_attributes() -> dict[str, str]:
    """Attribute name -> language type, as the catalogue in use declares member_profile
    (empty when it does not)."""
    if PROFILE not in event_types():
        return {}
    return {k: v for k, v in event_fields(PROFILE).items() if k not in _NOT_ATTRIBUTES}

# In an aggregate's filter: the event's position among the member's events of its stream
# (1 = the first, by time, then import order).
RANK = "nth"


def event_fields(event_type: str) -> dict[str, str]:
    """Field name -> language type for one event type (envelope and derived included)."""
    fields = {f.name: _KIND_TO_TYPE[f.kind] for f in schema().fields_of(event_type)}
    fields.update(DERIVED_FIELDS)
    return fields


def literal_type(value) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, Fraction):
        return NUM
    if isinstance(value, str):
        return STR
    if isinstance(value, dt.date):
        return DATE
    if isinstance(value, dt.time):
        return TIME
    return ANY


def compatible(a: str, b: str) -> bool:
    """Can values of types a and b be compared?"""
    if ANY in (a, b) or NONE in (a, b):
        return True
    if a in NUMERIC and b in NUMERIC:
        return True
    if {a, b} == {WEEKDAY, INT}:
        return True
    return a == b
