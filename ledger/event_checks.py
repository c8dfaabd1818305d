"""The checks of single values of an event: ids, members, timestamps, dates,
text, integers, choices, lists. Each returns the normalised value or raises
`Invalid`, whose message completes "field 'x' ...".

These are the strict input rules of the contract (docs/events.md): ids and
members without control characters or surrounding spaces and in Unicode NFC
(the same rule for CSV and JSONL, so one event cannot become two); timestamps
spelled exactly `YYYY-MM-DDTHH:MM:SS` with `Z`, `+HH:MM`, `-HH:MM` or no
offset (the one default: Asia/Tokyo); years within a stated range.

They run on every imported line, so the common case (ASCII, well formed) is
decided by a few string tests before anything slower.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from typing import Any, Callable

MAX_ID = 128  # characters of an id (and so of a ref)
MAX_MEMBER = 64
MAX_TEXT = 1000  # characters of a text value (or a list item)
AT_YEARS = (2000, 2099)  # `at`, in Asia/Tokyo
DATE_YEARS = (1900, 2099)  # declared date and datetime fields (a birthday is older than any event)


class Invalid(Exception):
    """A value does not fit its field; the message completes "field 'x' ..."."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message  # what errors are counted by (no input value in it)


def show(value: Any) -> str:
    """A value as it would read in JSON, shortened for an error message."""
    if type(value) is str and len(value) > 50:
        value = value[:47] + "..."
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Control, format (zero-width, bidi), surrogate, line and paragraph separator
# characters: unseen or misleading in an id. Unassigned code points are not
# refused (a newer Unicode than this Python's may assign them).
_INVISIBLE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def _clean(value: str) -> None:
    """Raise Invalid unless `value` has no control/invisible character, no
    surrounding whitespace, and is in NFC (the rules for ids and members)."""
    if value.isascii():
        if not value.isprintable():
            raise Invalid("must not contain control characters")
        if value[0] == " " or value[-1] == " ":
            raise Invalid("must not start or end with a space")
        return
    if value != value.strip():
        raise Invalid("must not start or end with a space")
    if not value.isprintable() and any(unicodedata.category(ch) in _INVISIBLE for ch in value):
        raise Invalid("must not contain control or invisible characters")
    if not unicodedata.is_normalized("NFC", value):
        raise Invalid("must be in Unicode NFC form (normalise it before importing)")


def check_id(value: Any) -> str:
    """An event id (or a ref to one): 1..MAX_ID characters, clean (see `_clean`)."""
    if type(value) is not str or not value:
        raise Invalid("must be a non-empty string")
    if len(value) > MAX_ID:
        raise Invalid(f"must be at most {MAX_ID} characters")
    _clean(value)
    return value


_MEMBER_RE = re.compile(r"[^\s:]{1,%d}" % MAX_MEMBER)
_good_members: set[str] = set()


def check_member(value: Any) -> str:
    try:
        if value in _good_members:
            return value
    except TypeError:  # unhashable: a list or an object
        pass
    if type(value) is not str or not _MEMBER_RE.fullmatch(value):
        raise Invalid(f"must be 1-{MAX_MEMBER} characters without whitespace or ':'")
    _clean(value)
    if len(_good_members) > 500_000:
        _good_members.clear()
    _good_members.add(value)
    return value


_fromisoformat = dt.datetime.fromisoformat
_NINE_HOURS = dt.timedelta(hours=9)
_offsets: dict[str, dt.timedelta] = {"Z": _NINE_HOURS, "+09:00": dt.timedelta(0)}


# Days ('YYYY-MM-DD') that fromisoformat has accepted, each with the day after
# it once known; and the two-digit hours, minutes and seconds it accepts: a
# datetime in Tokyo time or UTC is then checked and converted by a few lookups
# (the other spellings, and a day not seen yet, take the general way).
_good_days: dict[str, str | None] = {}  # day -> the next day (None: not known yet)
_DAYS_MAX = 100_000
_SIXTY = frozenset(f"{i:02d}" for i in range(60))
_NINE_ON = {f"{h:02d}": f"{h + 9:02d}" for h in range(15)}  # hour -> nine hours later, same day
_NINE_ON_NEXT = {f"{h:02d}": f"{h - 15:02d}" for h in range(15, 24)}  # ... the next day


def fast_datetime(value: str) -> str | None:
    """'YYYY-MM-DDTHH:MM:SS' followed by nothing (Asia/Tokyo), 'Z' or
    '+HH:MM'/'-HH:MM' -> that moment in Tokyo local time, same spelling
    without an offset; None for any other spelling (or an out-of-range year)."""
    n = len(value)
    if n == 19 or (n == 25 and value[19:] == "+09:00") or (n == 20 and value[19] == "Z"):
        day = value[:10]
        hour = value[11:13]
        if value[10] == "T" and day in _good_days and value[13] == ":" and value[16] == ":" \
                and value[14:16] in _SIXTY and value[17:19] in _SIXTY:
            if n != 20:
                if hour in _NINE_ON or hour in _NINE_ON_NEXT:
                    return value[:19]
            else:
                later = _NINE_ON.get(hour)
                if later is not None:
                    return day + "T" + later + value[13:19]
                after = _good_days[day]
                later = _NINE_ON_NEXT.get(hour)
                if after is not None and later is not None:
                    return after + "T" + later + value[13:19]
    text = _slow_datetime(value)
    if text is not None and (n == 19 or n == 20 or value[19:] == "+09:00"):
        if len(_good_days) > _DAYS_MAX:
            _good_days.clear()
        day = value[:10]
        if n == 20 and text[:10] != day:  # `text` is on the next day
            _good_days[day] = text[:10]
        elif day not in _good_days:
            _good_days[day] = None
    return text


def _slow_datetime(value: str) -> str | None:
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
    # With the separators in place and ASCII only, fromisoformat accepts
    # nothing but digits in the other places (tests/events check this).
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


_DATETIME_FORM = ("must be an ISO-8601 datetime YYYY-MM-DDTHH:MM:SS with an offset (Z, +HH:MM or -HH:MM;"
                  " none means Asia/Tokyo), e.g. 2025-12-26T10:00:00+09:00")


_DATETIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?")


def datetime_checker(years: tuple[int, int]) -> Callable[[Any], str]:
    lo, hi = f"{years[0]:04d}", f"{years[1]:04d}"
    outside = f"must be in the years {lo}-{hi} (Asia/Tokyo)"

    def check(value: Any) -> str:
        if type(value) is not str:
            raise Invalid("must be an ISO-8601 datetime string")
        text = fast_datetime(value)
        if text is None:
            if not (value.isascii() and _DATETIME_SHAPE.fullmatch(value)):
                raise Invalid(_DATETIME_FORM)
            year = int(value[:4])
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            if fast_datetime(("2000" if leap else "2001") + value[4:]) is not None:  # only the year is out
                raise Invalid(outside)
            raise Invalid("must be a real date and time (an offset within +-23:59), e.g. 2025-12-26T10:00:00+09:00")
        if not lo <= text[:4] <= hi:
            raise Invalid(outside)
        return text

    return check


check_at = datetime_checker(AT_YEARS)
_good_dates: dict[str, str] = {}


def check_date(value: Any) -> str:
    """A calendar day spelled exactly YYYY-MM-DD, years DATE_YEARS."""
    try:
        return _good_dates[value]
    except (KeyError, TypeError):
        pass
    if type(value) is not str:
        raise Invalid("must be a date string (YYYY-MM-DD)")
    if not (len(value) == 10 and value.isascii() and value[4] == "-" and value[7] == "-"
            and value[:4].isdigit() and value[5:7].isdigit() and value[8:].isdigit()):
        raise Invalid("must be a date (YYYY-MM-DD)")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid("must be a date (YYYY-MM-DD)") from None
    if not f"{DATE_YEARS[0]:04d}" <= value[:4] <= f"{DATE_YEARS[1]:04d}":
        raise Invalid(f"must be in the years {DATE_YEARS[0]}-{DATE_YEARS[1]}")
    if len(_good_dates) > 100_000:
        _good_dates.clear()
    _good_dates[value] = value
    return value


def check_str(value: Any) -> str:
    if type(value) is not str or not value:
        raise Invalid("must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise Invalid(f"must be at most {MAX_TEXT:,} characters")
    return value


def check_text(value: Any) -> str:
    if type(value) is not str:
        raise Invalid("must be a string")
    if len(value) > MAX_TEXT:
        raise Invalid(f"must be at most {MAX_TEXT:,} characters")
    return value


def check_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise Invalid("must be a boolean (true or false)")
    return value


def int_checker(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int:
            raise Invalid("must be an integer")
        if value < lo:
            raise Invalid(f"must be >= {lo}")
        if value > hi:
            raise Invalid(f"must be <= {hi}")
        return value

    return check


def choice_checker(choices: tuple[str, ...]) -> Callable[[Any], str]:
    allowed = frozenset(choices)
    expected = ", ".join(choices)

    def check(value: Any) -> str:
        if type(value) is not str or value not in allowed:
            raise Invalid(f"must be one of: {expected}")
        return value

    return check


def list_checker(choices: tuple[str, ...]) -> Callable[[Any], list[str]]:
    """A non-empty list of the given values, or (no choices) of non-empty text."""
    allowed = frozenset(choices)
    expected = ", ".join(choices)
    shape = f"must be a non-empty list of: {expected}" if choices else "must be a non-empty list of text"

    def check(value: Any) -> list[str]:
        if type(value) is not list or not value:
            raise Invalid(shape)
        for item in value:
            if choices:
                if type(item) is not str or item not in allowed:
                    raise Invalid(f"has unknown item {show(item)} (expected any of: {expected})",
                                  "has an unknown item")
            elif type(item) is not str or not item or len(item) > MAX_TEXT:
                raise Invalid(f"has an item that is not a non-empty text: {show(item)}",
                              "has an item that is not a non-empty text")
        return value

    return check
