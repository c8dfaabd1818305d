"""Lotteries: the draws already made, the candidates of a draw, and who wins.

A draw is recorded as an entry without postings (step `<period>:<award>:draw`)
holding its seed, the digest of its candidates, the draw order and the winners,
so `verify` and `explain` can replay it; see `engine.settlement.Checkpointer.draw`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Iterable

__all__ = ["LotteryCandidates", "load_draws", "pick_winners"]


def load_draws(conn, campaign: str, period_id: str) -> dict[str, frozenset[str]]:
    """The lotteries of a period already drawn (whatever their date): award -> winners."""
    prefix = f"{period_id}:"
    draws = {}
    for step, winners in conn.execute(
            "SELECT step, json_extract(memo, '$.winners') FROM entries WHERE campaign = ? "
            "AND step >= ? AND step < ? AND substr(step, -5) = ':draw' ORDER BY seq",
            (campaign, prefix, period_id + ";")):
        draws[step[len(prefix):-5]] = frozenset(json.loads(winners or "[]"))
    return draws


class LotteryCandidates:
    """The members a lottery draws from, with their award, in a TEMP table of the run's
    connection (a temp file, bounded by its page cache): read back sorted by member for
    the digest and in draw order for the draw, never held all at once but for the
    draw entry's own `order` list."""

    _made = itertools.count(1)
    FLUSH_EVERY = 10_000

    def __init__(self, conn):
        self.conn = conn
        self.table = f"temp.lottery_candidates_{next(self._made)}"
        # Made before the checkpoint's queries start: a schema change (or a function
        # registered again) aborts the statements running at that moment.
        conn.execute(f"CREATE TABLE {self.table} (member TEXT NOT NULL, amount INTEGER NOT NULL)")
        conn.create_scalar_function(
            "lottery_rank", lambda seed, m: hashlib.sha256(f"{seed}|{m}".encode()).hexdigest(), 2,
            deterministic=True)
        self.buffer: list[tuple[str, int]] = []

    def add(self, member: str, amount: int) -> None:
        self.buffer.append((member, amount))
        if len(self.buffer) >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany(f"INSERT INTO {self.table} VALUES (?, ?)", self.buffer)
        self.buffer = []

    def digest(self) -> tuple[int, str]:
        """(how many, sha256 of their names sorted and joined by newlines)."""
        self.flush()
        h, n = hashlib.sha256(), 0
        for (member,) in self.conn.execute(f"SELECT member FROM {self.table} ORDER BY member"):
            h.update(member.encode() if not n else b"\n" + member.encode())
            n += 1
        return n, h.hexdigest()

    def in_draw_order(self, seed: str) -> Iterable[tuple[str, int]]:
        """(member, amount) by sha256 of `seed|member` (its hex, then the name: the order
        of a stable sort of the sorted names by that key)."""
        self.flush()
        return self.conn.execute(
            f"SELECT member, amount FROM {self.table} ORDER BY lottery_rank(?, member), member", (seed,))

    def drop(self) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")



def pick_winners(in_draw_order: Iterable[tuple[str, int]], winners: int | None,
                 budget_left: int | None) -> tuple[list[str], list[str]]:
    """(draw order, winners) of a lottery: its first `winners` candidates, or (no count)
    the candidates in draw order while each one's full award still fits the budget --
    the first that does not fit ends the draw, so no later, smaller award jumps it."""
    order: list[str] = []
    won: list[str] = []
    left, fits = budget_left, True
    for member, amount in in_draw_order:
        order.append(member)
        if winners is not None:
            if len(won) < winners:
                won.append(member)
        elif fits:
            if amount > left:
                fits = False
            else:
                won.append(member)
                left -= amount
    return order, won
