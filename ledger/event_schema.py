"""The field contract of events, compiled from a `Catalogue` of declarations,
and the check that enforces it.

`Schema(catalogue).normalise(record)` takes one parsed record (a dict straight
from JSON, or a CSV row already converted by the schema's `csv_converters`)
and returns the normalised event -- every field of its type present, defaults
filled, `at` as Tokyo local 'YYYY-MM-DDTHH:MM:SS', dates as 'YYYY-MM-DD' --
or every reason it is invalid.

The declarations are data (`ledger.event_decl`, rules/*.events); the value
checks are `ledger.event_checks`. The module-level names (EVENT_TYPES,
normalise, ...) are those of the bundled catalogue, the contract's table.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import attrs

from points.ledger import event_checks as ck
from points.ledger.event_checks import Invalid, show
from points.ledger.event_catalogue import bundled_catalogue
from points.ledger.event_decl import (BOOL, CHOICE, DATE, DATE_OF_AT, DATETIME, INT, LIST, MAX_AMOUNT, TEXT,
                                      Catalogue, FieldDecl)

# Kinds of the envelope (beyond the declared kinds of ledger.event_decl).
ID, MEMBER, AT = "id", "member", "at"


@attrs.frozen
class Field:
    """One field of an event type as the checks see it: declared, or of the envelope."""

    name: str
    kind: str  # a kind of ledger.event_decl, or ID / MEMBER / AT
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    lo: int | None = None
    hi: int | None = None
    may_be_empty: bool = False


ENVELOPE = (Field("id", ID, required=True), Field("type", TEXT, required=True),
            Field("member", MEMBER, required=True), Field("at", AT, required=True))
_ANY_AMOUNT = Field("amount", INT, lo=-MAX_AMOUNT, hi=MAX_AMOUNT)


def _field(d: FieldDecl) -> Field:
    kind = ID if d.name == "ref" else d.kind
    return Field(d.name, kind, d.required, d.default, d.choices, d.lo, d.hi, d.may_be_empty)


def checker(field: Field) -> Callable[[Any], Any]:
    """The function that checks (and normalises) a value of `field`."""
    kind = field.kind
    if kind == ID:
        return ck.check_id
    if kind == MEMBER:
        return ck.check_member
    if kind == AT:
        return ck.check_at
    if kind == TEXT:
        return ck.check_text if field.may_be_empty else ck.check_str
    if kind == BOOL:
        return ck.check_bool
    if kind == DATE:
        return ck.check_date
    if kind == DATETIME:
        return ck.datetime_checker(ck.DATE_YEARS)
    if kind == INT:
        return ck.int_checker(field.lo, field.hi)
    if kind == CHOICE:
        return ck.choice_checker(field.choices)
    if kind == LIST:
        return ck.list_checker(field.choices)
    raise AssertionError(kind)


class Problem(str):
    """An error message that also knows what it is counted under (`reason`:
    the message without the values of the input, e.g. "unknown field")."""

    reason: str

    def __new__(cls, text: str, reason: str | None = None) -> "Problem":
        self = super().__new__(cls, text)
        self.reason = reason or text
        return self


def _quoted(name: str) -> str:
    """A name from the input in quotes, shortened for an error message."""
    return repr(name if len(name) <= 50 else name[:47] + "...")


def reason_of(message: str) -> str:
    """What an error message is counted under in an import's summary."""
    reason = getattr(message, "reason", None)
    return reason if reason is not None else message.split(", got ", 1)[0]


class Schema:
    """A catalogue compiled for checking: per type, the allowed keys and a
    plan of (name, check, required, default) beyond the envelope."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.types: tuple[str, ...] = catalogue.names
        self.ref_types = tuple(t.name for t in catalogue.types if t.undoes)
        self.type_fields: dict[str, tuple[Field, ...]] = {
            t.name: tuple(_field(d) for d in t.fields) for t in catalogue.types}
        #: Field name -> kind, over all types (a name has one kind of value everywhere).
        self.field_kinds: dict[str, str] = {}
        for t in self.types:
            for f in self.fields_of(t):
                self.field_kinds.setdefault(f.name, f.kind)
        self.all_fields = tuple(self.field_kinds)
        self._envelope_plan = tuple((f.name, checker(f), f.required, f.default)
                                    for f in ENVELOPE if f.name != "type")
        self.plans: dict[str, tuple[frozenset[str], tuple]] = {}
        for t in self.types:
            fields = self.fields_of(t)[len(ENVELOPE):]
            self.plans[t] = (frozenset(f.name for f in self.fields_of(t)),
                             tuple((f.name, checker(f), f.required, f.default) for f in fields))
        self._type_list = ", ".join(self.types)
        self._ref_type_list = ", ".join(self.ref_types) or "no type"
        self._check_any_amount = checker(_ANY_AMOUNT)
        self.csv_converters: dict[str, Callable[[str], Any]] = {
            name: _CSV_CONVERT.get(kind, _csv_str) for name, kind in self.field_kinds.items()}
        #: Columns whose cell is the value as it stands (stripped): no conversion.
        self.csv_text_columns = frozenset(n for n, k in self.field_kinds.items() if k not in _CSV_CONVERT)
        self.builders: dict | None = None  # the compiled row builders (ledger.event_rows.builders_for)
        self.typed: Any = False  # the typed decoding (ledger.event_typed.typed_for); False: not made yet

    def fields_of(self, type_: str) -> tuple[Field, ...]:
        """Every field of an event of `type_`, envelope first (amount always included)."""
        specific = self.type_fields[type_]
        extra = () if any(f.name == "amount" for f in specific) else (_ANY_AMOUNT,)
        return ENVELOPE + extra + specific

    def normalise(self, record: Any, ignore_missing: frozenset[str] = frozenset()) -> tuple[dict | None, list[str]]:
        """Check one record against the contract.

        Returns (normalised event, []) or (None, [reason, ...]) with every reason
        found. Names in `ignore_missing` are not reported as missing (a CSV whose
        header lacks the column reports that once instead).
        """
        if type(record) is not dict:
            return None, [Problem(f"an event must be a JSON object, got {show(record)}",
                                  "an event must be a JSON object")]
        errors: list[str] = []
        silent = False  # a missing field that is reported elsewhere (CSV header)
        out: dict[str, Any] = {}
        type_ = record.get("type")
        plan = self.plans.get(type_) if type(type_) is str else None
        if plan is None:
            if type_ is None:
                if "type" in record:
                    errors.append("field 'type' must not be null")
                elif "type" not in ignore_missing:
                    errors.append("missing field 'type'")
                else:
                    silent = True
            elif type(type_) is not str:
                errors.append(f"field 'type' must be a string, got {show(type_)}")
            else:
                errors.append(Problem(f"unknown event type {_quoted(type_)} (expected one of: {self._type_list})",
                                      "unknown event type"))
        out["type"] = type_
        for name, check, required, default in self._envelope_plan:
            value = record.get(name)
            if value is None:
                if name not in ignore_missing:
                    errors.append(f"missing field {name!r}" if name not in record
                                  else f"field {name!r} must not be null")
                else:
                    silent = True
                continue
            try:
                out[name] = check(value)
            except Invalid as exc:
                errors.append(Problem(f"field {name!r} {exc}, got {show(value)}", f"field {name!r} {exc.reason}"))
        if plan is None:
            amount = record.get("amount")
            if amount is not None:
                try:
                    self._check_any_amount(amount)
                except Invalid as exc:
                    errors.append(f"field 'amount' {exc}, got {show(amount)}")
            return None, errors
        allowed, fields = plan
        if not record.keys() <= allowed:
            for name in record:
                if name not in allowed:
                    if name == "ref":
                        errors.append(f"field 'ref' is not allowed on {type_} (only on {self._ref_type_list})")
                    else:
                        errors.append(Problem(f"unknown field {_quoted(name)} for {type_}", "unknown field"))
        for name, check, required, default in fields:
            value = record.get(name)
            if value is None:
                if required:
                    if name in record:
                        errors.append(f"field {name!r} must not be null (required for {type_})")
                    else:
                        errors.append(f"missing field {name!r} (required for {type_})")
                out[name] = out["at"][:10] if default == DATE_OF_AT and "at" in out else default
                continue
            try:
                out[name] = check(value)
            except Invalid as exc:
                errors.append(Problem(f"field {name!r} {exc}, got {show(value)}", f"field {name!r} {exc.reason}"))
        if errors or silent:
            return None, errors
        if "ref" in out and out["ref"] == out["id"]:
            return None, [Problem(f"'ref' names the event itself ({out['id']!r})", "'ref' names the event itself")]
        return out, errors


_schemas: dict[Catalogue, Schema] = {}


def schema_for(catalogue: Catalogue | None = None) -> Schema:
    """The compiled schema of a catalogue (default: the bundled one), made once."""
    catalogue = catalogue or bundled_catalogue()
    schema = _schemas.get(catalogue)
    if schema is None:
        if len(_schemas) > 16:
            _schemas.clear()
        schema = _schemas[catalogue] = Schema(catalogue)
    return schema


# --------------------------------------------------------------------------- CSV cells

_INT_RE = re.compile(r"[+-]?[0-9]+")
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _csv_int(text: str) -> Any:
    if text.isdigit() and text.isascii() and len(text) <= 20:  # the common case, no regex
        return int(text)
    return int(text) if _INT_RE.fullmatch(text) and len(text) <= 20 else text


def _csv_bool(text: str) -> Any:
    return _BOOLS.get(text.lower(), text)


def _csv_list(text: str) -> Any:
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    sep = ";" if ";" in text else "|"
    return [part.strip() for part in text.split(sep) if part.strip()]


def _csv_str(text: str) -> str:
    return text


# A CSV cell that does not convert is returned as is, so that the check reports
# it with the field's usual message.
_CSV_CONVERT = {INT: _csv_int, BOOL: _csv_bool, LIST: _csv_list}

# --------------------------------------------------------------------------- the bundled catalogue

BUNDLED = schema_for()
EVENT_TYPES = BUNDLED.types
REF_TYPES = BUNDLED.ref_types
FIELD_KINDS = BUNDLED.field_kinds
ALL_FIELDS = BUNDLED.all_fields
CSV_CONVERTERS = BUNDLED.csv_converters
CSV_TEXT_COLUMNS = BUNDLED.csv_text_columns
fields_of = BUNDLED.fields_of
normalise = BUNDLED.normalise
