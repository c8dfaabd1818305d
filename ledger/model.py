"""The journal's value types: Posting, NewEntry (to append), Entry (stored), Lot."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs


def _tuple(value) -> tuple:
    return tuple(value)


@attrs.frozen
class Posting:
    """One line of an entry. `amount` is signed (credit > 0, debit < 0).

    A credit to a member account carries `expires` (it opens a lot); a debit of
    a member account carries `lot`, the posting id of the lot it draws from.
    `id` is set on stored postings (it is the lot id of a member credit).
    """

    account: str
    kind: str
    amount: int
    expires: dt.date | None = None
    lot: int | None = None
    id: int | None = None


class Memo(dict):
    """A memo dict that carries its canonical JSON text (`hashing.canonical` of the same
    dict), written by the code that built both from the same values
    (`operations.grant_maker`), so the writer stores and hashes `text` instead of
    encoding the dict again. Read-only: a change would leave `text` stale (the stored
    memo would then differ from the hashed one), so every mutator raises."""

    __slots__ = ("text",)

    def _read_only(self, *args, **kwargs):
        raise TypeError("a Memo is read-only: build a new one")

    __setitem__ = __delitem__ = __ior__ = _read_only
    update = pop = popitem = setdefault = clear = _read_only


@attrs.frozen
class NewEntry:
    """An entry to append. `recorded` defaults to the effective date."""

    key: str
    effective: dt.date
    postings: tuple[Posting, ...] = attrs.field(converter=_tuple)
    recorded: str | dt.date | None = None
    campaign: str | None = None
    rule: str | None = None
    rules_hash: str | None = None
    step: str | None = None
    events: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    reverses: int | None = None
    memo: Any = None  # JSON-serialisable; stored as canonical JSON ({} when None)


@attrs.frozen
class Entry:
    """A stored entry (postings in idx order, with their ids)."""

    seq: int
    key: str
    effective: dt.date
    recorded: str
    campaign: str | None
    rule: str | None
    rules_hash: str | None
    step: str | None
    events: tuple[str, ...]
    reverses: int | None
    memo: Any
    prev_hash: str
    hash: str
    postings: tuple[Posting, ...]


@attrs.frozen
class Lot:
    """An open lot: the member credit posting `id` of entry `entry`."""

    id: int
    member: str
    kind: str
    amount: int  # granted
    remaining: int
    expires: dt.date
    entry: int
