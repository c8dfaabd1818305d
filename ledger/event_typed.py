"""Typed decoding of JSONL events: one msgspec Struct per declared event type.

The row builders of `ledger.event_rows` start from a dict that `json`/msgspec
made of the line, and check the type of every value in Python. Here msgspec
decodes a line straight into the Struct of its `type` (a tagged union over the
catalogue) and checks, in C, what the builders check first: the keys allowed
(no unknown field), each value's JSON type, string lengths, integer bounds,
choices and list items. What remains in Python -- ids, members, the datetime,
dates, the defaults and the canonical body -- is one generated function per
type (`finisher_source`), written like the row builders and giving the very
same row.

A finisher returns None for anything it is not sure about; so does a line that
msgspec refuses. Such a line goes the dict way (`ledger.event_files`, then the
row builder or `normalise`), which decides and words errors as before. So the
typed path accepts a subset of what the builders accept, with the same row
(tests/events/test_event_typed.py compares them line by line).

A repeated key is not visible in a Struct (msgspec keeps the last value), so a
finisher counts the keys it found and the caller's line must hold exactly that
many `":` (see "Repeated keys" in `ledger.event_files` for why that is sound).
Types with a field whose value has no typed form here (lists of free text,
datetimes) have no Struct: their lines take the dict way.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal, Union

try:
    import msgspec
except ImportError:  # an environment installed before msgspec became a dependency
    msgspec = None

from points.ledger.event_checks import MAX_ID, MAX_TEXT
from points.ledger.event_decl import BOOL, CHOICE, DATE, DATE_OF_AT, INT, LIST, TEXT
from points.ledger.event_rows import (_MEMBER_CHECK, _SHARED, _day_lines, _field_parts, _json, _outside_years, _plain,
                                      _row_lines)
from points.ledger.event_schema import AT, ID, MEMBER, Field, Schema

__all__ = ["Typed", "finisher_source", "typed_for"]


def _value_type(f: Field) -> Any:
    """The msgspec type of a field's value, or None when it has no typed form here."""
    if f.kind == ID:
        return Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
    if f.kind in (MEMBER, AT, DATE):
        return str
    if f.kind == TEXT:
        return Annotated[str, msgspec.Meta(min_length=0 if f.may_be_empty else 1, max_length=MAX_TEXT)]
    if f.kind == INT:
        if f.lo is None or f.hi is None:
            return None
        return Annotated[int, msgspec.Meta(ge=f.lo, le=f.hi)]
    if f.kind == BOOL:
        return bool
    if f.kind == CHOICE and f.choices:
        return Literal.__getitem__(tuple(f.choices))
    if f.kind == LIST and f.choices:
        return Annotated[list[Literal.__getitem__(tuple(f.choices))], msgspec.Meta(min_length=1)]
    return None


def _struct(schema: Schema, type_: str) -> type | None:
    """The Struct of `type_` (attribute `f_<name>` for JSON key `<name>`), or None."""
    fields = []
    for f in schema.fields_of(type_):
        if f.name == "type":
            continue
        value = _value_type(f)
        if value is None:
            return None
        if f.required:
            fields.append((f"f_{f.name}", value))
        else:  # UNSET when absent; null is taken like an absent value, as the builders do
            fields.append((f"f_{f.name}", Union[value, None, msgspec.UnsetType], msgspec.UNSET))
    return msgspec.defstruct(f"Event_{type_}", fields, tag_field="type", tag=type_, kw_only=True,
                             forbid_unknown_fields=True, rename=lambda name: name[2:])


def _field_lines(f: Field, var: str, consts: dict[str, Any]) -> list[str]:
    """Source lines leaving field `f`'s JSON text in `j_<var>` (value in `v_<var>`),
    counting a key present in `keys`; `return None` on anything unusual."""
    v, j = f"v_{var}", f"j_{var}"
    lines = [f"{v} = s.f_{f.name}"]
    if f.kind == TEXT:
        body = [f"{j} = quote({v})"]
    elif f.kind == ID:
        body = [f"if not {v}.isascii() or not {v}.isprintable() or {v}.strip() != {v}: return None",
                f"{j} = quote({v})"]
    elif f.kind == INT:
        body = [f"{j} = str({v})"]
    elif f.kind == BOOL:
        body = [f"{j} = 'true' if {v} else 'false'"]
    elif f.kind == CHOICE:
        consts[f"enum_{var}"] = {c: _json(c) for c in f.choices}
        body = [f"{j} = enum_{var}[{v}]"]
    elif f.kind == DATE:
        body = [f"d = good_dates.get({v})",
                "if d is None:", "    try: d = check_date(" + v + ")",
                "    except Invalid: return None", f"{j} = '\"' + d + '\"'"]
    else:  # a list of choices
        body = [(f"{j} = '[\"' + '\",\"'.join({v}) + '\"]'" if all(_plain(c) for c in f.choices)
                 else f"{j} = '[' + ','.join(map(quote, {v})) + ']'")]
    if f.required:
        return lines + body
    # As the row builders: the value absent is None (the event's day for a date
    # defaulting to it), its JSON text the default's.
    if f.default == DATE_OF_AT:
        absent = f"{v} = day; {j} = '\"' + day + '\"'"
    else:
        absent = f"{v} = None; {j} = {_json(f.default)!r}"
    return lines + [f"if {v} is UNSET: {absent}", "else:", "    keys += 1",
                    f"    if {v} is None: {absent}", "    else:"] + ["        " + line for line in body]


def finisher_source(schema: Schema, type_: str) -> tuple[str, dict[str, Any]]:
    """The source of the function (Struct, line text) -> Row | None of `type_`."""
    fields = schema.fields_of(type_)
    names = [f.name for f in fields]
    consts: dict[str, Any] = {}
    in_years = _outside_years("at")
    required = sum(1 for f in fields if f.required)  # `type` among them
    lines = [
        "def finish(s, text):",
        "    id_ = s.f_id",
        "    if not id_.isascii() or not id_.isprintable() or id_.strip() != id_: return None",
        "    member = s.f_member",
        *_MEMBER_CHECK,
        "    at = fast_datetime(s.f_at)",
        *_day_lines(in_years),
        f"    keys = {required}",
    ]
    pieces = _field_parts(type_, fields, consts, _field_lines, lines)
    lines.append("    if count(text, '\":') != keys: return None  # a key repeated")
    lines += _row_lines(type_, names, pieces)
    return "\n".join(lines) + "\n", consts


class Typed:
    """The typed decoding of one schema: `decode(text)` -> a Struct (raises one
    of `errors` for a line it does not take), `finishers[type(struct)]`."""

    def __init__(self, schema: Schema) -> None:
        self.finishers: dict[type, Callable[[Any, str], tuple | None]] = {}
        shared = dict(_SHARED, UNSET=msgspec.UNSET, count=str.count)
        for type_ in schema.types:
            struct = _struct(schema, type_)
            if struct is None:
                continue
            source, consts = finisher_source(schema, type_)
            namespace = dict(shared, **consts)
            exec(compile(source, f"<typed event finisher: {type_}>", "exec"), namespace)
            self.finishers[struct] = namespace["finish"]
        union = Union.__getitem__(tuple(self.finishers)) if len(self.finishers) > 1 else next(iter(self.finishers))
        self.decode = msgspec.json.Decoder(union).decode
        self.errors = (msgspec.DecodeError, ValueError, RecursionError)


def typed_for(schema: Schema) -> Typed | None:
    """The typed decoding of a schema (made on first use, kept on it); None
    without msgspec or when no type has a typed form."""
    typed = getattr(schema, "typed", False)
    if typed is False:
        typed = None
        if msgspec is not None and any(_struct(schema, t) is not None for t in schema.types):
            typed = Typed(schema)
        schema.typed = typed
    return typed
