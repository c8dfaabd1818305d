"""Dates and times in Asia/Tokyo, the only calendar the programs know.

Japan has had no daylight saving time since 1951, so a fixed +09:00 offset is
exact and needs no tz database on the machine.
"""

from __future__ import annotations

import calendar
import datetime as dt

TOKYO = dt.timezone(dt.timedelta(hours=9), "Asia/Tokyo")


def parse_date(text: str) -> dt.date:
    """'YYYY-MM-DD' -> date; raises ValueError with a readable message."""
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None


def parse_datetime(text: str) -> dt.datetime:
    """ISO-8601 datetime -> naive Tokyo local datetime.

    No offset means Asia/Tokyo; an offset (or Z) is converted to Tokyo time.
    A bare date means the start of that day.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a datetime: {text!r}")
    raw = text.strip()
    try:
        if len(raw) == 10:
            value = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time())
        else:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 datetime: {text!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(TOKYO).replace(tzinfo=None)
    return value.replace(microsecond=0)


def end_of_month(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def add_months(day: dt.date, months: int) -> tuple[int, int]:
    """(year, month) that is `months` months after day's month."""
    index = day.year * 12 + (day.month - 1) + months
    return index // 12, index % 12 + 1


def end_of_month_after(day: dt.date, months: int) -> dt.date:
    """Last day of the month `months` months after `day`'s month."""
    return end_of_month(*add_months(day, months))


def day_of_month_after(day: dt.date, months: int, dom: int) -> dt.date:
    """Day `dom` of the month `months` after `day` (clamped to the month's end)."""
    year, month = add_months(day, months)
    return dt.date(year, month, min(dom, calendar.monthrange(year, month)[1]))
