"""Event declarations: the `*.events` files of a rules folder -> a `Catalogue`.

The event types an import accepts, and the fields rules can read, are data:
declared in `*.events` files beside the `.rules` files, not in Python. The
bundled `rules/catalogue.events` declares the contract's table. The format
(documented for users in docs/events.md) is line based:

    # a comment
    event ex_booking
        amount:    int, required, >= 0
        service:   one of (ex, e5489), required
        segments:  list of (tokaido, sanyo, other), required
        product:   text, may be empty, default ""

A line `event NAME` starts a type; each indented line below it declares one
field as `NAME: KIND` followed by clauses, separated by commas. Kinds: text,
int, bool, date, datetime, `list of text`, `list of (a, b)`, `one of (a, b)`.
Clauses: required, optional (the default), `default VALUE`, `>= N`, `<= N`,
`may be empty` (text), `default date of at` (a date field: the event's day).

Every event has the envelope `id`, `type`, `member`, `at` with the contract's
rules; those cannot be declared. `amount` (an integer, optional unless
declared otherwise) may be narrowed per type; a type that declares `ref` is
one that undoes another event (its `ref` is that event's id).

Which declarations apply to a rules folder is `ledger.event_catalogue`.
Errors come back as (file, line, col, message).
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

MAX_AMOUNT = 10**12  # the bound of every int field (amount, points, ...)

# Value kinds of a declared field.
TEXT, INT, BOOL, DATE, DATETIME, LIST, CHOICE = "text", "int", "bool", "date", "datetime", "list", "choice"
ENVELOPE_NAMES = ("id", "type", "member", "at")
# Names the rules language derives from `at` on every event: not declarable.
RESERVED_NAMES = ("date", "time", "weekday")
DATE_OF_AT = "date of at"  # the default of a date field that is the event's own day

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TOKEN = re.compile(r"""
    (?P<space>[ \t]+)
  | (?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})(?![A-Za-z0-9_])
  | (?P<number>[+-]?[0-9]+)(?![A-Za-z_])
  | (?P<word>[A-Za-z0-9_][A-Za-z0-9_.-]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<op>>=|<=|[:,()])
""", re.VERBOSE)


@attrs.frozen
class FieldDecl:
    """One declared field: its kind, whether it is required, its default and limits."""

    name: str
    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()  # CHOICE values, or a LIST's allowed items (empty: any text)
    lo: int | None = None
    hi: int | None = None
    may_be_empty: bool = False  # TEXT only
    where: str = ""  # 'file:line' of the declaration


@attrs.frozen
class EventType:
    """One declared event type: its fields beyond id, type, member and at."""

    name: str
    fields: tuple[FieldDecl, ...]
    where: str = ""

    @property
    def undoes(self) -> bool:
        """Whether events of this type name another event (`ref`) that they undo."""
        return any(f.name == "ref" for f in self.fields)


@attrs.frozen
class Catalogue:
    """Every event type an import accepts and a rules file may read, in declaration order."""

    types: tuple[EventType, ...]
    files: tuple[str, ...] = ()  # the *.events files it was read from

    def type(self, name: str) -> EventType | None:
        return next((t for t in self.types if t.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)


class DeclError(Exception):
    """An `*.events` file is not a valid declaration; carries every `file:line:col: message`."""

    def __init__(self, problems: list[tuple[str, int, int, str]]):
        self.problems = sorted(problems)
        super().__init__("\n".join(f"{p}:{line}:{col}: {msg}" for p, line, col, msg in self.problems))


# --------------------------------------------------------------------------- parsing


class _Line:
    """The tokens of one line, read left to right with their columns."""

    def __init__(self, text: str, errors: list, path: str, line: int) -> None:
        self.path, self.line, self.errors = path, line, errors
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise _Stop(pos + 1, f"unexpected character {text[pos]!r}")
            if m.lastgroup != "space":
                self.tokens.append((m.lastgroup, m.group(), pos + 1))
            pos = m.end()
        self.i = 0
        self.end_col = len(text.rstrip()) + 1

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        return value is None or self.tokens[self.i][1] == value

    def col(self) -> int:
        return self.tokens[self.i][2] if self.i < len(self.tokens) else self.end_col

    def take(self, kind: str | None = None, value: str | None = None, what: str = "") -> tuple[str, str, int]:
        if self.i >= len(self.tokens):
            raise _Stop(self.end_col, f"expected {what or value or kind} at the end of the line")
        tok = self.tokens[self.i]
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            raise _Stop(tok[2], f"expected {what or repr(value) or kind}, found {tok[1]!r}")
        self.i += 1
        return tok


class _Stop(Exception):
    """A problem that ends the reading of one line: (column, message)."""


def _strip_comment(text: str) -> str:
    """The line without a `#` comment (a `#` inside a quoted string is kept)."""
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif ch == "#" and not quoted:
            return text[:i]
    return text


def _choices(ln: _Line) -> tuple[tuple[str, int], ...]:
    ln.take(value="(", what="'(' and the values, e.g. (a, b)")
    out = []
    while True:
        kind, text, col = ln.take(what="a value")
        if kind == "string":
            text = json.loads(text)
        elif kind not in ("word", "number", "date"):
            raise _Stop(col, f"expected a value, found {text!r}")
        if not text or text != text.strip():
            raise _Stop(col, "a value must be non-empty, without surrounding spaces")
        out.append((text, col))
        if ln.peek(")"):
            ln.take(value=")")
            return tuple(out)
        ln.take(value=",", what="',' or ')'")


def _kind(ln: _Line) -> tuple[str, tuple[tuple[str, int], ...]]:
    kind, word, col = ln.take("word", what="a kind (text, int, bool, date, datetime, list of ..., one of (...))")
    if word in (TEXT, INT, BOOL, DATE, DATETIME):
        return word, ()
    if word == "one":
        ln.take(value="of", what="'of' (one of (a, b))")
        return CHOICE, _choices(ln)
    if word == "list":
        ln.take(value="of", what="'of' (list of text, list of (a, b))")
        if ln.peek("text"):
            ln.take()
            return LIST, ()
        return LIST, _choices(ln)
    raise _Stop(col, f"unknown kind {word!r} (kinds: text, int, bool, date, datetime, list of text,"
                     " list of (a, b), one of (a, b))")


def _default(ln: _Line, kind: str, col: int) -> Any:
    tok_kind, text, tcol = ln.take(what="a default value")
    if kind == DATE and text == "date":
        ln.take(value="of", what="'of' (default date of at)")
        ln.take(value="at", what="'at' (default date of at)")
        return DATE_OF_AT
    if kind == BOOL and text in ("true", "false"):
        return text == "true"
    if kind == INT and tok_kind == "number":
        return int(text)
    if kind == DATE and tok_kind == "date":
        import datetime as dt

        try:
            dt.date.fromisoformat(text)
        except ValueError:
            raise _Stop(tcol, f"{text} is not a date") from None
        return text
    if kind in (TEXT, CHOICE) and tok_kind == "string":
        return json.loads(text)
    if kind in (TEXT, CHOICE) and tok_kind == "word":
        return text
    raise _Stop(tcol, f"{text} is not a {kind} value")


def _field(ln: _Line, where: str) -> FieldDecl:
    _k, name, ncol = ln.take("word", what="a field name")
    if not _NAME.fullmatch(name):
        raise _Stop(ncol, f"field name {name!r}: use lower-case letters, digits and _ (at most 64)")
    if name in ENVELOPE_NAMES:
        raise _Stop(ncol, f"{name!r} is in every event's envelope, with the contract's rules:"
                          " it cannot be declared")
    if name in RESERVED_NAMES:
        raise _Stop(ncol, f"{name!r} is derived from 'at' on every event (date, time, weekday):"
                          " choose another name")
    ln.take(value=":", what="':' after the field name")
    kcol = ln.col()
    kind, choices = _kind(ln)
    seen: set[str] = set()
    values = [c for c, _ in choices]
    for value, col in choices:
        if value in seen:
            raise _Stop(col, f"value {value!r} is listed twice")
        seen.add(value)
    spec: dict[str, Any] = {}
    while ln.peek():
        ln.take(value=",", what="',' before the next clause")
        ccol = ln.col()
        _k, word, _c = ln.take(what="a clause (required, optional, default V, >= N, <= N, may be empty)")
        if word in ("required", "optional"):
            key, value = "required", word == "required"
        elif word == "default":
            key, value = "default", _default(ln, kind, ccol)
        elif word in (">=", "<="):
            if kind != INT:
                raise _Stop(ccol, f"'{word}' applies to int fields only")
            _k, num, ncol2 = ln.take("number", what="a whole number")
            bound = int(num)
            if abs(bound) > MAX_AMOUNT:
                raise _Stop(ncol2, f"{num} is beyond the limit of every int field (+-{MAX_AMOUNT:,})")
            key, value = ("lo" if word == ">=" else "hi"), bound
        elif word == "may":
            ln.take(value="be", what="'be' (may be empty)")
            ln.take(value="empty", what="'empty' (may be empty)")
            if kind != TEXT:
                raise _Stop(ccol, "'may be empty' applies to text fields only")
            key, value = "may_be_empty", True
        else:
            raise _Stop(ccol, f"unknown clause {word!r} (clauses: required, optional, default V, >= N,"
                              " <= N, may be empty)")
        if key in spec:
            raise _Stop(ccol, f"the {word} clause is given twice")
        spec[key] = value
    lo, hi = spec.get("lo", -MAX_AMOUNT), spec.get("hi", MAX_AMOUNT)
    if kind == INT and lo > hi:
        raise _Stop(kcol, f"no value is both >= {lo} and <= {hi}")
    required = spec.get("required", False)
    default = spec.get("default")
    if default is not None:
        if required:
            raise _Stop(kcol, "a required field has no default")
        if kind == CHOICE and default not in values:
            raise _Stop(kcol, f"the default {default!r} is not one of the values")
        if kind == INT and not lo <= default <= hi:
            raise _Stop(kcol, f"the default {default} is outside {lo}..{hi}")
        if kind == TEXT and default == "" and not spec.get("may_be_empty"):
            raise _Stop(kcol, "a default of \"\" needs 'may be empty'")
    if name == "amount" and kind != INT:
        raise _Stop(kcol, "'amount' is an int field (integer yen): declare it as int")
    if name == "ref" and kind != TEXT:
        raise _Stop(kcol, "'ref' is the id of the event undone: declare it as text")
    return FieldDecl(name, kind, required, default, tuple(values),
                     lo if kind == INT else None, hi if kind == INT else None,
                     spec.get("may_be_empty", False), where)


def parse_events(text: str, path: str) -> tuple[list[EventType], list[tuple[str, int, int, str]]]:
    """The event types declared in one file's text, and every problem found."""
    errors: list[tuple[str, int, int, str]] = []
    types: list[EventType] = []
    current: tuple[str, str, list[FieldDecl]] | None = None
    names: dict[str, int] = {}

    def close() -> None:
        if current is not None and current[0]:
            types.append(EventType(current[0], tuple(current[2]), current[1]))

    for n, raw in enumerate(text.splitlines(), 1):
        body = _strip_comment(raw).rstrip()
        if not body.strip():
            continue
        try:
            ln = _Line(body, errors, path, n)
            if not body[0].isspace():
                _k, word, col = ln.take("word", what="'event NAME'")
                if word != "event":
                    raise _Stop(col, "expected 'event NAME' (field lines are indented below it)")
                _k, name, ncol = ln.take("word", what="the event type's name")
                close()
                # The fields below still belong to this type, even if its line is bad.
                current = ("", "", [])
                if ln.peek():
                    raise _Stop(ln.col(), "expected the end of the line after 'event NAME'")
                if not _NAME.fullmatch(name):
                    raise _Stop(ncol, f"event type {name!r}: use lower-case letters, digits and _ (at most 64)")
                if name in names:
                    errors.append((path, n, ncol, f"event type {name!r} is already declared at line {names[name]}"))
                    continue
                names[name] = n
                current = (name, f"{path}:{n}", [])
                continue
            if current is None:
                raise _Stop(len(body) - len(body.lstrip()) + 1, "a field line before any 'event NAME' line")
            field = _field(ln, f"{path}:{n}")
            if any(f.name == field.name for f in current[2]):
                errors.append((path, n, ln.tokens[0][2], f"field {field.name!r} is declared twice in {current[0]}"))
                continue
            current[2].append(field)
        except _Stop as stop:
            col, message = stop.args
            errors.append((path, n, col, message))
    close()
    return types, errors
