"""The per-type field contract of events, and the check that enforces it.

`normalise(record)` takes one parsed record (a dict straight from JSON, or a
CSV row already converted by `CSV_CONVERTERS`) and returns the normalised event --
every field of its type present, defaults filled, `at` as Tokyo local
'YYYY-MM-DDTHH:MM:SS', dates as 'YYYY-MM-DD' -- or every reason it is invalid.

The checks are plain dict and type tests (no database access): the import
runs them on every line, so they are written for speed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Callable

import attrs

from points.ledger.dates import parse_date, parse_datetime

MAX_AMOUNT = 10**12  # |amount| and points, in yen / points

#: Every event type, in the order of the contract table.
EVENT_TYPES = (
    "member_withdrawn",
    "campaign_entry",
    "ex_booking",
    "cancel",
    "refund",
    "stopover",
    "card_payment",
    "card_cashback",
    "wesmo_charge",
    "icoca_charge",
    "wesmo_payment",
    "video_view",
    "mynapoint_application",
    "health_insurance_registration",
    "public_account_registration",
    "redemption",
)
REF_TYPES = ("cancel", "refund", "stopover")

SERVICES = ("ex", "e5489")
SEGMENTS = ("tokaido", "sanyo", "kyushu", "hokuriku", "jrwest_local", "other")
PAYMENTS = ("credit_card", "station", "convenience_store", "bank")
CARDS = ("standard", "osc", "gold")
CHARGE_SOURCES = ("jwest_card", "credit_card", "bank", "atm", "cash", "point_charge", "gas_station")
USES = ("fare", "charge", "shopping", "wesmo")

# Field kinds.
STR = "str"  # non-empty string
TEXT = "text"  # any string, may be empty
ENUM = "enum"
INT = "int"
BOOL = "bool"
DATE = "date"
DATETIME = "datetime"
MEMBER = "member"
SEGMENT_LIST = "segments"


@attrs.frozen
class Field:
    """One field of an event type: its kind, whether it is required, its default."""

    name: str
    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    lo: int | None = None
    hi: int | None = None


def _amount(required: bool = False, lo: int = -MAX_AMOUNT, hi: int = MAX_AMOUNT) -> Field:
    return Field("amount", INT, required=required, lo=lo, hi=hi)


ENVELOPE = (
    Field("id", STR, required=True),
    Field("type", STR, required=True),
    Field("member", MEMBER, required=True),
    Field("at", DATETIME, required=True),
)
_REF = Field("ref", STR, required=True)
_MERCHANT = Field("merchant", STR, default="other")

#: Fields beyond id/type/member/at, per type (amount is allowed, optional, on every type).
TYPE_FIELDS: dict[str, tuple[Field, ...]] = {
    "member_withdrawn": (),
    "campaign_entry": (Field("campaign", STR, required=True),),
    "ex_booking": (
        _amount(required=True, lo=0),
        Field("service", ENUM, required=True, choices=SERVICES),
        Field("ride_date", DATE, required=True),
        Field("segments", SEGMENT_LIST, required=True, choices=SEGMENTS),
        Field("product", TEXT, default=""),
        Field("ticketless", BOOL, default=False),
        Field("payment", ENUM, default="credit_card", choices=PAYMENTS),
        Field("phone_change", BOOL, default=False),
        Field("railway_points", BOOL, default=False),
    ),
    "cancel": (_REF,),
    "refund": (_REF,),
    "stopover": (_REF,),
    "card_payment": (
        _amount(required=True),
        _MERCHANT,
        Field("card", ENUM, default="standard", choices=CARDS),
    ),
    "card_cashback": (_amount(required=True, hi=0),),
    "wesmo_charge": (_amount(required=True, lo=1), Field("source", ENUM, choices=CHARGE_SOURCES)),
    "icoca_charge": (_amount(required=True, lo=1), Field("source", ENUM, choices=CHARGE_SOURCES)),
    "wesmo_payment": (
        _amount(required=True, lo=0),
        _MERCHANT,
        Field("paid_with_points", BOOL, default=False),
    ),
    "video_view": (Field("video", STR, required=True),),
    "mynapoint_application": (),
    "health_insurance_registration": (),
    "public_account_registration": (),
    "redemption": (
        Field("points", INT, required=True, lo=1, hi=MAX_AMOUNT),
        Field("use", ENUM, required=True, choices=USES),
    ),
}


def fields_of(type_: str) -> tuple[Field, ...]:
    """Every field of an event of `type_`, envelope first (amount always included)."""
    specific = TYPE_FIELDS[type_]
    names = {f.name for f in specific}
    extra = () if "amount" in names else (_amount(),)
    return ENVELOPE + extra + specific


#: Field name -> kind, over all types (a name has one kind everywhere).
FIELD_KINDS: dict[str, str] = {}
for _t in EVENT_TYPES:
    for _f in fields_of(_t):
        assert FIELD_KINDS.setdefault(_f.name, _f.kind) == _f.kind, _f.name
ALL_FIELDS = tuple(FIELD_KINDS)


# --------------------------------------------------------------------------- checks


class Invalid(Exception):
    """A value does not fit its field; the message completes "field 'x' ..."."""


def show(value: Any) -> str:
    """A value as it would read in JSON, shortened for an error message."""
    if type(value) is str and len(value) > 50:
        value = value[:47] + "..."
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_str(value: Any) -> str:
    if type(value) is not str or not value:
        raise Invalid("must be a non-empty string")
    return value


def _check_text(value: Any) -> str:
    if type(value) is not str:
        raise Invalid("must be a string")
    return value


def _check_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise Invalid("must be a boolean (true or false)")
    return value


_MEMBER_RE = re.compile(r"[^\s:]{1,64}")
_good_members: set[str] = set()


def _check_member(value: Any) -> str:
    try:
        if value in _good_members:
            return value
    except TypeError:  # unhashable: a list or an object
        pass
    if type(value) is not str or not _MEMBER_RE.fullmatch(value):
        raise Invalid("must be 1-64 characters without whitespace or ':'")
    if len(_good_members) > 500_000:
        _good_members.clear()
    _good_members.add(value)
    return value


_fromisoformat = dt.datetime.fromisoformat
_NINE_HOURS = dt.timedelta(hours=9)
_offsets: dict[str, dt.timedelta] = {"Z": _NINE_HOURS, "z": _NINE_HOURS, "+09:00": dt.timedelta(0)}


def _fast_datetime(value: str) -> str | None:
    """The result of parse_datetime(value).isoformat() for the common spellings
    'YYYY-MM-DDTHH:MM:SS' followed by nothing, 'Z' or '+HH:MM'/'-HH:MM';
    None for anything else (then parse_datetime decides)."""
    n = len(value)
    if n != 19 and n != 20 and n != 25:
        return None
    local = value[:19]
    if not (local[10] == "T" and local[13] == ":" and local[16] == ":" and local[4] == "-"
            and local[7] == "-" and value.isascii()):
        return None
    suffix = value[19:]
    if suffix:
        shift = _offsets.get(suffix)
        if shift is None:
            if n != 25 or suffix[0] not in "+-" or suffix[3] != ":" or not suffix[1:3].isdigit() \
                    or not suffix[4:].isdigit():
                return None
            hours, minutes = int(suffix[1:3]), int(suffix[4:])
            if hours > 23 or minutes > 59:
                return None
            offset = dt.timedelta(hours=hours, minutes=minutes)
            shift = _offsets[suffix] = _NINE_HOURS - offset if suffix[0] == "+" else _NINE_HOURS + offset
    else:
        shift = None
    try:
        parsed = _fromisoformat(local)
    except ValueError:
        return None
    if not shift:
        return local
    try:
        return (parsed + shift).isoformat()
    except OverflowError:
        return None


def _check_datetime(value: Any) -> str:
    if type(value) is not str:
        raise Invalid("must be an ISO-8601 datetime string")
    fast = _fast_datetime(value)
    if fast is not None:
        return fast
    try:
        return parse_datetime(value).isoformat()
    except (ValueError, OverflowError):
        raise Invalid("must be an ISO-8601 datetime (e.g. 2025-12-26T10:00:00+09:00)") from None


_good_dates: dict[str, str] = {}


def _check_date(value: Any) -> str:
    try:
        return _good_dates[value]
    except (KeyError, TypeError):
        pass
    if type(value) is not str:
        raise Invalid("must be a date string (YYYY-MM-DD)")
    try:
        text = parse_date(value).isoformat()
    except ValueError:
        raise Invalid("must be a date (YYYY-MM-DD)") from None
    if len(_good_dates) > 100_000:
        _good_dates.clear()
    _good_dates[value] = text
    return text


def _int_checker(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int:
            raise Invalid("must be an integer")
        if value < lo:
            raise Invalid(f"must be >= {lo}")
        if value > hi:
            raise Invalid(f"must be <= {hi}")
        return value

    return check


def _enum_checker(choices: tuple[str, ...]) -> Callable[[Any], str]:
    allowed = frozenset(choices)
    expected = ", ".join(choices)

    def check(value: Any) -> str:
        if type(value) is not str or value not in allowed:
            raise Invalid(f"must be one of: {expected}")
        return value

    return check


def _list_checker(choices: tuple[str, ...]) -> Callable[[Any], list[str]]:
    allowed = frozenset(choices)
    expected = ", ".join(choices)

    def check(value: Any) -> list[str]:
        if type(value) is not list or not value:
            raise Invalid(f"must be a non-empty list of: {expected}")
        for item in value:
            if type(item) is not str or item not in allowed:
                raise Invalid(f"has unknown item {show(item)} (expected any of: {expected})")
        return value

    return check


def _checker(field: Field) -> Callable[[Any], Any]:
    kind = field.kind
    if kind == STR:
        return _check_str
    if kind == TEXT:
        return _check_text
    if kind == BOOL:
        return _check_bool
    if kind == MEMBER:
        return _check_member
    if kind == DATETIME:
        return _check_datetime
    if kind == DATE:
        return _check_date
    if kind == INT:
        return _int_checker(field.lo, field.hi)
    if kind == ENUM:
        return _enum_checker(field.choices)
    if kind == SEGMENT_LIST:
        return _list_checker(field.choices)
    raise AssertionError(kind)


# Per type: the allowed keys and a plan of (name, check, required, default),
# beyond the envelope which is checked first for every record.
_ENVELOPE_PLAN = tuple((f.name, _checker(f), f.required, f.default) for f in ENVELOPE if f.name != "type")
_PLANS: dict[str, tuple[frozenset[str], tuple]] = {}
for _t in EVENT_TYPES:
    _fields = fields_of(_t)[len(ENVELOPE):]
    _PLANS[_t] = (
        frozenset(f.name for f in fields_of(_t)),
        tuple((f.name, _checker(f), f.required, f.default) for f in _fields),
    )
_TYPE_LIST = ", ".join(EVENT_TYPES)
_check_any_amount = _checker(_amount())
_REF_TYPE_LIST = ", ".join(REF_TYPES)


def normalise(record: Any, ignore_missing: frozenset[str] = frozenset()) -> tuple[dict | None, list[str]]:
    """Check one record against the contract.

    Returns (normalised event, []) or (None, [reason, ...]) with every reason
    found. Names in `ignore_missing` are not reported as missing (a CSV whose
    header lacks the column reports that once instead).
    """
    if type(record) is not dict:
        return None, [f"an event must be a JSON object, got {show(record)}"]
    errors: list[str] = []
    silent = False  # a missing field that is reported elsewhere (CSV header)
    out: dict[str, Any] = {}
    type_ = record.get("type")
    plan = _PLANS.get(type_) if type(type_) is str else None
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
            errors.append(f"unknown event type {type_!r} (expected one of: {_TYPE_LIST})")
    out["type"] = type_
    for name, check, required, default in _ENVELOPE_PLAN:
        value = record.get(name)
        if value is None:
            if name not in ignore_missing:
                errors.append(
                    f"missing field {name!r}" if name not in record
                    else f"field {name!r} must not be null"
                )
            else:
                silent = True
            continue
        try:
            out[name] = check(value)
        except Invalid as exc:
            errors.append(f"field {name!r} {exc}, got {show(value)}")
    if plan is None:
        amount = record.get("amount")
        if amount is not None:
            try:
                _check_any_amount(amount)
            except Invalid as exc:
                errors.append(f"field 'amount' {exc}, got {show(amount)}")
        return None, errors
    allowed, fields = plan
    if not record.keys() <= allowed:
        for name in record:
            if name not in allowed:
                if name == "ref":
                    errors.append(f"field 'ref' is not allowed on {type_} (only on {_REF_TYPE_LIST})")
                else:
                    errors.append(f"unknown field {name!r} for {type_}")
    for name, check, required, default in fields:
        value = record.get(name)
        if value is None:
            if required:
                if name in record:
                    errors.append(f"field {name!r} must not be null (required for {type_})")
                else:
                    errors.append(f"missing field {name!r} (required for {type_})")
            out[name] = default
            continue
        try:
            out[name] = check(value)
        except Invalid as exc:
            errors.append(f"field {name!r} {exc}, got {show(value)}")
    if errors or silent:
        return None, errors
    if "ref" in out and out["ref"] == out["id"]:
        return None, [f"'ref' names the event itself ({out['id']!r})"]
    return out, errors


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


_CSV_CONVERT = {INT: _csv_int, BOOL: _csv_bool, SEGMENT_LIST: _csv_list}

#: Column name -> function turning a (stripped, non-empty) CSV cell into a value
#: of the field's declared type; a cell that does not convert is returned as
#: is, so that the check reports it with the field's usual message.
CSV_CONVERTERS: dict[str, Callable[[str], Any]] = {
    name: _CSV_CONVERT.get(kind, _csv_str) for name, kind in FIELD_KINDS.items()
}

#: Columns whose cell is the value as it stands (stripped): no conversion.
CSV_TEXT_COLUMNS = frozenset(name for name, kind in FIELD_KINDS.items() if kind not in _CSV_CONVERT)
