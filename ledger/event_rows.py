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

from points.ledger.event_checks import (AT_YEARS, MAX_ID, MAX_TEXT, Invalid, _good_dates, _good_members, check_date,
                                       check_member, fast_datetime)
from points.ledger.event_decl import BOOL, CHOICE, DATE, DATE_OF_AT, INT, LIST, TEXT
from points.ledger.event_schema import BUNDLED, ID, Field, Schema, checker

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


def _plain(value: str) -> bool:
    """Whether a value's JSON is the value itself in quotes (nothing escaped)."""
    return _json(value) == f'"{value}"'


def _field_lines(f: Field, var: str, consts: dict[str, Any]) -> list[str]:
    """Source lines that check field `f` of record `r` and leave its JSON text
    in `j_<var>` (and its value in `v_<var>`); `return None` on anything unusual."""
    v, j = f"v_{var}", f"j_{var}"
    lines = [f"{v} = r.get({f.name!r})"]
    if f.required:
        lines.append(f"if {v} is None: return None")
        test = "if True:"
    elif f.default == DATE_OF_AT:  # the event's own day
        lines += [f"if {v} is None: {v} = day; {j} = '\"' + day + '\"'"]
        test = "else:"
    else:
        lines += [f"if {v} is None: {j} = {_json(f.default)!r}"]
        test = "else:"
    if f.kind == TEXT:
        empty = "" if f.may_be_empty else f" or not {v}"
        body = [f"if type({v}) is not str{empty} or len({v}) > {MAX_TEXT}: return None", f"{j} = quote({v})"]
    elif f.kind == ID:
        body = [f"if type({v}) is not str or not {v} or len({v}) > {MAX_ID} or not {v}.isascii()"
                f" or not {v}.isprintable() or {v}.strip() != {v}: return None",
                f"{j} = quote({v})"]
    elif f.kind == INT:
        body = [f"if type({v}) is not int or {v} < {f.lo} or {v} > {f.hi}: return None",
                f"{j} = str({v})"]
    elif f.kind == BOOL:
        body = [f"if {v} is True: {j} = 'true'", f"elif {v} is False: {j} = 'false'",
                "else: return None"]
    elif f.kind == CHOICE:
        consts[f"enum_{var}"] = {c: _json(c) for c in f.choices}
        body = [f"if type({v}) is not str: return None", f"{j} = enum_{var}.get({v})",
                f"if {j} is None: return None"]
    elif f.kind == DATE:
        body = [f"if type({v}) is not str: return None", f"d = good_dates.get({v})",
                "if d is None:", "    try: d = check_date(" + v + ")",
                "    except Invalid: return None", f"{j} = '\"' + d + '\"'"]
    elif f.kind == LIST and f.choices:
        consts[f"items_{var}"] = frozenset(f.choices)
        # issuperset raises TypeError on an unhashable item: the caller treats
        # that as "not on the fast path" too.
        body = [f"if type({v}) is not list or not {v} or not items_{var}.issuperset({v}): return None",
                (f"{j} = '[\"' + '\",\"'.join({v}) + '\"]'" if all(_plain(c) for c in f.choices)
                 else f"{j} = '[' + ','.join(map(quote, {v})) + ']'")]
    else:  # lists of any text, datetimes: through their full check
        consts[f"check_{var}"] = checker(f)
        body = [f"try: {v} = check_{var}({v})", "except Invalid: return None",
                f"{j} = json_dumps({v}, separators=(',', ':'), ensure_ascii=False)"]
    if f.required:
        return lines + body
    return lines + [test] + ["    " + line for line in body]


def builder_source(schema: Schema, type_: str) -> tuple[str, dict[str, Any]]:
    """The Python source of the row builder for `type_`, and the names it uses."""
    fields = schema.fields_of(type_)
    names = [f.name for f in fields]
    consts: dict[str, Any] = {"allowed": frozenset(names)}
    in_years = _outside_years("at")
    lines = [
        "def build(r):",
        "    if not r.keys() <= allowed: return None",
        "    id_ = r.get('id')",
        f"    if type(id_) is not str or not id_ or len(id_) > {MAX_ID} or not id_.isascii()"
        " or not id_.isprintable() or id_.strip() != id_: return None",
        "    member = r.get('member')",
        "    if type(member) is not str: return None",
        *_MEMBER_CHECK,
        "    at = r.get('at')",
        "    if type(at) is not str: return None",
        "    at = fast_datetime(at)",
        *_day_lines(in_years),
    ]
    pieces = _field_parts(type_, fields, consts, _field_lines, lines)
    lines += _row_lines(type_, names, pieces)
    return "\n".join(lines) + "\n", consts


# Generated lines both decoders share (event_typed builds its finisher from them too).
_MEMBER_CHECK = (
    "    if member not in good_members:",
    "        try: check_member(member)",
    "        except Invalid: return None",
)


def _day_lines(in_years: str) -> list[str]:
    """The generated check of the canonical datetime `at` and its day and weekday."""
    return [f"    if at is None or {in_years}: return None",
            "    day = at[:10]",
            "    weekday = weekdays.get(day)",
            "    if weekday is None: weekday = weekday_of(day)"]


def _field_parts(type_: str, fields, consts: dict[str, Any], field_lines, lines: list[str]) -> dict[str, str]:
    """Appends to `lines` the generated code of each field beyond id, type, member and at
    (`field_lines(field, var, consts)`, the decoder's own); returns each body key's
    f-string part for `_row_lines`."""
    pieces = {"id": "{quote(id_)}", "type": _json(type_).replace("{", "{{"),
              "member": "{quote(member)}", "at": '"{at}"'}
    for f in fields:
        if f.name in pieces:
            continue
        lines += ["    " + line for line in field_lines(f, f.name, consts)]
        pieces[f.name] = "{j_" + f.name + "}"
    return pieces


def _outside_years(at: str) -> str:
    """The generated test that a canonical datetime `at` is outside AT_YEARS (the years of
    a century are its two leading digits: one comparison)."""
    years = (f"{AT_YEARS[0]:04d}", f"{AT_YEARS[1]:04d}")
    if years == (years[0][:2] + "00", years[0][:2] + "99"):
        return f"{at}[:2] != {years[0][:2]!r}"
    return f"not {years[0]!r} <= {at}[:4] <= {years[1]!r}"


def _row_lines(type_: str, names: list[str], pieces: dict[str, str]) -> list[str]:
    """The generated end of a row builder: the self-reference check, the canonical body
    (keys in sorted order, `"key":value` joined by commas; `pieces` holds each value's
    f-string part) and the stored row."""
    lines = []
    if "ref" in names:
        lines.append("    if v_ref == id_: return None  # normalise words this error")
    text = ",".join(f'"{name}":{pieces[name]}' for name in sorted(pieces))
    lines.append(f"    body = f'{{{{{text}}}}}'")
    amount = "v_amount" if "amount" in names else "None"
    ref = "v_ref" if "ref" in names else "None"
    lines.append(f"    return (id_, {type_!r}, member, at, day, at[11:], weekday, {amount}, {ref}, body)")
    return lines


_SHARED = {
    "quote": encode_basestring,
    "good_members": _good_members,
    "check_member": check_member,
    "good_dates": _good_dates,
    "check_date": check_date,
    "fast_datetime": fast_datetime,
    "weekdays": _weekdays,
    "weekday_of": weekday_of,
    "Invalid": Invalid,
    "json_dumps": json.dumps,
}


def _compile(schema: Schema, type_: str) -> Callable[[dict], Row | None]:
    source, consts = builder_source(schema, type_)
    namespace = dict(_SHARED, **consts)
    exec(compile(source, f"<event row builder: {type_}>", "exec"), namespace)
    return namespace["build"]


def compile_builders(schema: Schema) -> dict[str, Callable[[dict], Row | None]]:
    """Event type -> builder(record dict) -> Row, or None when `normalise` must decide."""
    return {t: _compile(schema, t) for t in schema.types}


def builders_for(schema: Schema) -> dict[str, Callable[[dict], Row | None]]:
    """The builders of a schema's types, compiled on first use (kept on the schema)."""
    if schema.builders is None:
        schema.builders = compile_builders(schema)
    return schema.builders


#: The builders of the bundled catalogue.
BUILDERS = builders_for(BUNDLED)


def fast_row(record: Any) -> Row | None:
    """The row of a record that is plainly valid, else None (then ask `normalise`)."""
    if type(record) is not dict:
        return None
    type_ = record.get("type")
    build = BUILDERS.get(type_) if type(type_) is str else None  # the bundled catalogue
    if build is None:
        return None
    try:
        return build(record)
    except TypeError:  # an unhashable list item: let normalise word it
        return None
