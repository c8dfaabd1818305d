"""Text formatting shared by the commands: numbers, dates, small aligned tables."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

from points.ledger import kinds

KIND_ORDER = kinds.KIND_NAMES  # basic, limited, charge_only
DASH = "—"


def pts(n: int | None) -> str:
    """12345 -> '12,345' (None -> '—')."""
    return DASH if n is None else f"{n:,}"


def signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def day(value: dt.date | str | None) -> str:
    return DASH if value is None else str(value)


def kind_label(kind: str, on: dt.date | None) -> str:
    """'basic (WESTERポイント（基本）)' with the display name on that day."""
    try:
        name = kinds.display_name(kind, on or today())
    except ValueError:
        return kind
    return f"{kind} ({name})"


def today() -> dt.date:
    from points.ledger.dates import TOKYO

    return dt.datetime.now(TOKYO).date()


def table(rows: Sequence[Sequence[Any]], indent: str = "  ", right: Iterable[int] = ()) -> str:
    """Rows of cells as aligned columns (columns in `right` right-aligned)."""
    if not rows:
        return ""
    right = set(right)
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(_width(r[i]) for r in cells if i < len(r)) for i in range(max(map(len, cells)))]
    lines = []
    for r in cells:
        parts = []
        for i, c in enumerate(r):
            pad = " " * (widths[i] - _width(c))
            parts.append(pad + c if i in right else c + pad)
        lines.append((indent + "  ".join(parts)).rstrip())
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: East Asian wide characters count as two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
