"""Point kinds, their display names (with dated aliases) and the uses they pay for.

Kinds are immutable values. Rules may register a dated alias with
`with_alias(kind, name, until=...)`, which returns a *new* PointKind; the
balance is always kept under the kind's `name`, whatever it is displayed as.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import attrs

USES: tuple[str, ...] = ("fare", "charge", "shopping", "wesmo")


@attrs.frozen
class Alias:
    """`name` is displayed for the kind on days `since <= day <= until` (None = open)."""

    name: str
    since: dt.date | None = None
    until: dt.date | None = None

    def covers(self, day: dt.date) -> bool:
        return (self.since is None or self.since <= day) and (self.until is None or day <= self.until)


def _uses(value: Iterable[str]) -> frozenset[str]:
    uses = frozenset(value)
    unknown = uses - set(USES)
    if unknown:
        raise ValueError(f"unknown use(s) {sorted(unknown)}; uses are {', '.join(USES)}")
    return uses


@attrs.frozen
class PointKind:
    """A kind of points: `name` is the stable identifier used in accounts."""

    name: str
    display: str
    uses: frozenset[str] = attrs.field(converter=_uses)
    aliases: tuple[Alias, ...] = ()

    def pays_for(self, use: str) -> bool:
        return use in self.uses

    def display_name(self, on: dt.date) -> str:
        for alias in self.aliases:
            if alias.covers(on):
                return alias.name
        return self.display


BASIC = PointKind("basic", "WESTERポイント（基本）", {"fare", "charge", "shopping", "wesmo"})
LIMITED = PointKind("limited", "WESTERポイント（期間・用途限定）", {"fare", "shopping", "wesmo"})
CHARGE_ONLY = PointKind(
    "charge_only",
    "WESTERポイント（チャージ専用）",
    {"charge"},
    (Alias("ICOCAポイント", None, dt.date(2023, 3, 6)),),
)

KINDS: dict[str, PointKind] = {k.name: k for k in (BASIC, LIMITED, CHARGE_ONLY)}
KIND_NAMES: tuple[str, ...] = ("basic", "limited", "charge_only")
# Most restricted (fewest uses) first; the order lots of equal expiry are spent in.
RESTRICTION_ORDER: tuple[str, ...] = ("charge_only", "limited", "basic")
RANK: dict[str, int] = {name: i for i, name in enumerate(RESTRICTION_ORDER)}


def get(kind: str | PointKind) -> PointKind:
    """The PointKind for a name (or the kind itself); ValueError if unknown."""
    if isinstance(kind, PointKind):
        return kind
    try:
        return KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown point kind {kind!r}; kinds are {', '.join(KIND_NAMES)}") from None


def check_kind(kind: str) -> str:
    get(kind)
    return kind


def check_use(use: str) -> str:
    if use not in USES:
        raise ValueError(f"unknown use {use!r}; uses are {', '.join(USES)}")
    return use


def with_alias(
    kind: str | PointKind, name: str, until: dt.date | None = None, since: dt.date | None = None
) -> PointKind:
    """A new PointKind that is displayed as `name` on days since..until (inclusive).

    The original kind is unchanged. Registering the same alias twice is harmless.
    """
    base = get(kind)
    if not name or not isinstance(name, str):
        raise ValueError("alias name must be a non-empty string")
    if since is not None and until is not None and since > until:
        raise ValueError(f"alias {name!r}: since {since} is after until {until}")
    alias = Alias(name, since, until)
    if alias in base.aliases:
        return base
    return attrs.evolve(base, aliases=base.aliases + (alias,))


def display_name(kind: str | PointKind, on: dt.date) -> str:
    """What the kind was called on day `on` (aliases first, else its display name)."""
    return get(kind).display_name(on)


def kinds_for_use(use: str) -> tuple[str, ...]:
    """Names of the kinds that may pay for `use`, most restricted first."""
    check_use(use)
    return tuple(name for name in RESTRICTION_ORDER if use in KINDS[name].uses)


def uses_of(kind: str | PointKind) -> frozenset[str]:
    return get(kind).uses
