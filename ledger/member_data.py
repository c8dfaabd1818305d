"""Member data: the attributes `member_profile` events set, as they hold on a day.

A `member_profile` event (declared in rules/catalogue.events; a rules folder
may declare more attributes) sets every attribute it carries -- a field other
than `valid_from` whose value is not null -- from its `valid_from` day on
(default: the day of its `at`). On a day D an attribute has the value of the
member's profile event that sets it with the latest `valid_from` on or before
D; of two with the same `valid_from`, the one imported later. A profile event
undone by a cancel/refund/stopover (its `ref`) sets nothing. Nothing set: null.

`attribute_sql` is that rule as one SQL scalar subquery over the `events`
table, for a compiled plan (per member or per event row); `attributes_as_of`
runs it for one member.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

import apsw

from points.ledger.event_schema import REF_TYPES, schema_for
from points.ledger.event_decl import Catalogue

PROFILE = "member_profile"
VALID_FROM = "valid_from"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def attribute_sql(attribute: str, member_sql: str, day_sql: str,
                  undo_types: Iterable[str] = REF_TYPES) -> str:
    """SQL for the value of `attribute` of the member `member_sql` on the day
    `day_sql` ('YYYY-MM-DD' text): expressions of the enclosing query."""
    if not _NAME.fullmatch(attribute) or attribute == VALID_FROM:
        raise ValueError(f"not a member attribute: {attribute!r}")
    undo = ", ".join(f"'{t}'" for t in undo_types if _NAME.fullmatch(t)) or "''"
    value = f"json_extract(p.body, '$.{attribute}')"
    valid = f"json_extract(p.body, '$.{VALID_FROM}')"
    return (f"(SELECT {value} FROM events p WHERE p.type = '{PROFILE}' AND p.member = {member_sql}"
            f" AND {value} IS NOT NULL AND {valid} <= {day_sql}"
            f" AND NOT EXISTS (SELECT 1 FROM events u WHERE u.ref = p.id AND u.type IN ({undo}))"
            f" ORDER BY {valid} DESC, p.seq DESC LIMIT 1)")


def attribute_names(catalogue: Catalogue | None = None) -> tuple[str, ...]:
    """The attributes a catalogue's `member_profile` declares (none if it has no such type)."""
    schema = schema_for(catalogue)
    if PROFILE not in schema.type_fields:
        return ()
    return tuple(f.name for f in schema.type_fields[PROFILE] if f.name not in (VALID_FROM, "amount"))


def attributes_as_of(conn: apsw.Connection, member: str, day: dt.date,
                     catalogue: Catalogue | None = None) -> dict[str, object]:
    """Every declared attribute of `member` as it holds on `day` (null when never set)."""
    names = attribute_names(catalogue)
    if not names:
        return {}
    undo = schema_for(catalogue).ref_types
    columns = ", ".join(attribute_sql(n, "?1", "?2", undo) for n in names)
    row = conn.execute(f"SELECT {columns}", (member, day.isoformat())).fetchone()
    return dict(zip(names, row))
