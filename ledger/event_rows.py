"""Per-type row builders: a parsed record straight to its `events` row.

`normalise` (ledger.event_schema) is the contract: it walks a generic plan of
checkers per field and collects every reason a record is bad. Import runs on
every line, and nearly every line is a valid event written in the common
spellings, so this module compiles, once per event type, one straight-line
function that only recognises such records and returns the finished row --
the same columns and the same canonical body (sorted keys, compact, not
ASCII-escaped) that `normalise` + `canonical_json` would give. The body text
is assembled from pieces in the known key order instead of sorting a dict.

A builder returns None for anything it is not sure about (a bad or missing
field, an unknown key, an unusual datetime spelling, a ref naming the event
itself...). The caller then runs `normalise`, which decides -- and words the
errors -- exactly as before. So a builder can only ever accept a subset of
what `normalise` accepts, and must produce the very same row for it; the
tests check both against `normalise` on generated records.

Why generated source rather than closures: a closure per field costs a call
and a dispatch per field per event; the generated function is a single frame
with every check inlined (see `builder_source` for what it looks like).
"""

from __future__ import annotations

import datetime as dt
import json
from json.encoder import encode_basestring  # the C quoting of the canonical encoder
from typing import Any, Callable

from points.ledger.event_schema import (
    BOOL,
    DATE,
    ENUM,
    EVENT_TYPES,
    INT,
    SEGMENT_LIST,
    STR,
    TEXT,
    Field,
    Invalid,
    _check_date,
    _check_member,
    _fast_datetime,
    _good_dates,
    _good_members,
    fields_of,
)

#: (id, type, member, at, day, time, weekday, amount, ref, body): the derived
#: columns of an `events` row, in INSERT order, then the canonical body.
Row = tuple

_weekdays: dict[str, int] = {}


def weekday_of(day: str) -> int:
    """0 = Monday .. 6 = Sunday for a 'YYYY-MM-DD' day (cached: few distinct days)."""
    weekday = _weekdays.get(day)
    if weekday is None:
        weekday = _weekdays[day] = dt.date.fromisoformat(day).weekday()
    return weekday


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _field_lines(f: Field, var: str, consts: dict[str, Any]) -> list[str]:
    """Source lines that check field `f` of record `r` and leave its JSON text
    in `j_<var>` (and its value in `v_<var>`); `return None` on anything unusual."""
    v, j = f"v_{var}", f"j_{var}"
    lines = [f"{v} = r.get({f.name!r})"]
    if f.required:
        lines.append(f"if {v} is None: return None")
        test = "if True:"
    else:
        lines += [f"if {v} is None: {j} = {_json(f.default)!r}"]
        test = "else:"
    if f.kind in (STR, TEXT):
        empty = f" or not {v}" if f.kind == STR else ""
        body = [f"if type({v}) is not str{empty}: return None", f"{j} = quote({v})"]
    elif f.kind == INT:
        body = [f"if type({v}) is not int or {v} < {f.lo} or {v} > {f.hi}: return None",
                f"{j} = str({v})"]
    elif f.kind == BOOL:
        body = [f"if {v} is True: {j} = 'true'", f"elif {v} is False: {j} = 'false'",
                "else: return None"]
    elif f.kind == ENUM:
        # The choices are plain identifiers: their JSON is the name in quotes.
        consts[f"enum_{var}"] = {c: _json(c) for c in f.choices}
        body = [f"if type({v}) is not str: return None", f"{j} = enum_{var}.get({v})",
                f"if {j} is None: return None"]
    elif f.kind == DATE:
        body = [f"if type({v}) is not str: return None", f"d = good_dates.get({v})",
                "if d is None:", "    try: d = check_date(" + v + ")",
                "    except Invalid: return None", f"{j} = '\"' + d + '\"'"]
    elif f.kind == SEGMENT_LIST:
        consts[f"items_{var}"] = frozenset(f.choices)
        # issuperset raises TypeError on an unhashable item: the caller treats
        # that as "not on the fast path" too.
        body = [f"if type({v}) is not list or not {v} or not items_{var}.issuperset({v}): return None",
                f"{j} = '[\"' + '\",\"'.join({v}) + '\"]'"]
    else:  # MEMBER and DATETIME only occur in the envelope, handled by the caller
        raise AssertionError(f.kind)
    if f.required:
        return lines + body
    return lines + [test] + ["    " + line for line in body]


def builder_source(type_: str) -> tuple[str, dict[str, Any]]:
    """The Python source of the row builder for `type_`, and the names it uses."""
    fields = fields_of(type_)
    names = [f.name for f in fields]
    consts: dict[str, Any] = {"allowed": frozenset(names)}
    lines = [
        "def build(r):",
        "    if not r.keys() <= allowed: return None",
        "    id_ = r.get('id')",
        "    if type(id_) is not str or not id_: return None",
        "    member = r.get('member')",
        "    if type(member) is not str: return None",
        "    if member not in good_members:",
        "        try: check_member(member)",
        "        except Invalid: return None",
        "    at = r.get('at')",
        "    if type(at) is not str: return None",
        "    at = fast_datetime(at)",
        "    if at is None: return None",
        "    day = at[:10]",
        "    weekday = weekdays.get(day)",
        "    if weekday is None: weekday = weekday_of(day)",
    ]
    pieces = {"id": "{quote(id_)}", "type": _json(type_).replace("{", "{{"),
              "member": "{quote(member)}", "at": '"{at}"'}
    for f in fields:
        if f.name in pieces:
            continue
        lines += ["    " + line for line in _field_lines(f, f.name, consts)]
        pieces[f.name] = "{j_" + f.name + "}"
    if "ref" in names:
        lines.append("    if v_ref == id_: return None  # normalise words this error")
    # The canonical body: keys in sorted order, `"key":value` joined by commas.
    text = ",".join(f'"{name}":{pieces[name]}' for name in sorted(pieces))
    lines.append(f"    body = f'{{{{{text}}}}}'")
    amount = "v_amount" if "amount" in names else "None"
    ref = "v_ref" if "ref" in names else "None"
    lines.append(f"    return (id_, {type_!r}, member, at, day, at[11:], weekday, {amount}, {ref}, body)")
    return "\n".join(lines) + "\n", consts


_SHARED = {
    "quote": encode_basestring,
    "good_members": _good_members,
    "check_member": _check_member,
    "good_dates": _good_dates,
    "check_date": _check_date,
    "fast_datetime": _fast_datetime,
    "weekdays": _weekdays,
    "weekday_of": weekday_of,
    "Invalid": Invalid,
}


def _compile(type_: str) -> Callable[[dict], Row | None]:
    source, consts = builder_source(type_)
    namespace = dict(_SHARED, **consts)
    exec(compile(source, f"<event row builder: {type_}>", "exec"), namespace)
    return namespace["build"]


#: Event type -> builder(record dict) -> Row, or None when `normalise` must decide.
BUILDERS: dict[str, Callable[[dict], Row | None]] = {t: _compile(t) for t in EVENT_TYPES}


def fast_row(record: Any) -> Row | None:
    """The row of a record that is plainly valid, else None (then ask `normalise`)."""
    if type(record) is not dict:
        return None
    type_ = record.get("type")
    build = BUILDERS.get(type_) if type(type_) is str else None
    if build is None:
        return None
    try:
        return build(record)
    except TypeError:  # an unhashable list item: let normalise word it
        return None
