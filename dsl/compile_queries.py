"""The queries of a campaign's plan, built from the per-event SQL of `dsl.compile_sql`:
the main GROUP BY member query (one column per aggregate), and the side queries that
need a pass of their own (running totals, the tiers of `sum over`).

The main query's inner pass tests each stream's predicate once per event and joins
lookups by a unique key once per event; the first `sum over` is folded into the same
pass when every other aggregate merges exactly across its tier rows.
"""

from __future__ import annotations

from points.dsl import ast
from points.dsl.compile_numbers import date_sql
from points.dsl.compile_sql import EventSql
from points.dsl.compile_tier import tier_body_sql
from points.dsl.plan import EVENT_COLUMNS, FOLD_KINDS, GroupPlan, SideQuery


class Queries:
    """The slots of a member's row and the SQL that fills them."""

    def __init__(self, sql: EventSql, *, fold: bool = True):
        self.sql = sql
        self.fold = fold
        self.main_slots: list[tuple[str, str]] = []
        self.main_exprs: list[str] = []
        self._slot_of: dict[str, str] = {}
        self.side: list[SideQuery] = []
        self.tier_keys: dict[str, str] = {}  # group side slot -> SQL of its tier key
        self.tier_exprs: dict[str, dict[str, str]] = {}  # group side slot -> its aggregates' SQL

    # --- one slot per aggregate
    def main_slot(self, call: ast.Call) -> str:
        """The main query's column computing this aggregate (one per distinct call)."""
        key = repr(call)
        if key not in self._slot_of:
            slot = f"a{len(self.main_slots)}"
            _, stream, _, _ = self.sql.agg_parts(call)
            with self.sql.in_pass("outer"):
                self.main_exprs.append(self.sql.agg_sql(call, "e", f"e.{self.sql.flag_of[stream.name]}"))
            self.main_slots.append((slot, call.func))
            self._slot_of[key] = slot
        return self._slot_of[key]

    def attribute_slot(self, attribute: str) -> str:
        """`member.ATTR` per member: on the last day of the period, one value per member
        (the same on every row of the member, so it merges as a max)."""
        key = f"member.{attribute}"
        if key not in self._slot_of:
            slot = f"a{len(self.main_slots)}"
            self.main_exprs.append(self.sql.attribute_sql(attribute, "e.member", ":pend"))
            self.main_slots.append((slot, "max"))
            self._slot_of[key] = slot
        return self._slot_of[key]

    def campaign_slot(self, func: str, campaign: str, award: str) -> str:
        """`awarded(C, A)` (net points) / `award_date(C, A)` (latest grant's date): one pass
        over campaign C's award and reversal entries effective by the evaluation day, per
        member, in a side query (members with such an award and no event of this campaign
        are evaluated too)."""
        key = f"{func}:{campaign}:{award}"
        if key not in self._slot_of:
            q = self.sql
            slot = f"c{len(self.side)}"
            value = ("SUM(p.amount)" if func == "awarded"
                     else "MAX(CASE WHEN n.key LIKE 'award:%' THEN n.effective END)")
            inner = (f"SELECT json_extract(n.memo, '$.member') AS member, {value} AS v "
                     f"FROM entries n JOIN postings p ON p.entry = n.seq "
                     f"WHERE n.campaign = {q.param(campaign)} AND json_extract(n.memo, '$.award') = {q.param(award)} "
                     f"AND (n.key LIKE 'award:%' OR n.key LIKE 'reverse:%') AND n.effective <= :asof "
                     f"AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%') GROUP BY member")
            sql = f"SELECT e.member, e.v FROM ({inner}) e WHERE e.v IS NOT NULL {{members}} ORDER BY e.member"
            self.side.append(SideQuery(slot, sql, "value"))
            self._slot_of[key] = slot
        return self._slot_of[key]

    def credited_slot(self, call: ast.Call) -> str:
        """An aggregate of a stream `credited to FIELD`: grouped by the member the field
        names, in a side query (that member need not have an event of their own)."""
        key = repr(call)
        if key not in self._slot_of:
            q = self.sql
            slot = f"b{len(self.side)}"
            _, stream, _, _ = q.agg_parts(call)
            who = q.field_sql(stream, stream.credited_to, "e")
            # Every event of the type, the stream's test inside the aggregate: a member whose
            # only event was undone still has a row (0), so that what was paid is taken back.
            inner = (f"SELECT {who} AS member, {q.agg_sql(call, 'e', q.match(stream.name, 'e'))} AS v "
                     f"FROM events e WHERE {{scan}} AND e.type = {q.param(stream.event_type)} "
                     f"AND {q.visible('e')} GROUP BY {who}")
            sql = f"SELECT e.member, e.v FROM ({inner}) e WHERE e.member IS NOT NULL {{members}} ORDER BY e.member"
            self.side.append(SideQuery(slot, sql, "value", scans=q.scans([stream.name], "e")))
            self._slot_of[key] = slot
        return self._slot_of[key]

    def streak_slot(self, call: ast.Call) -> str:
        """`longest_streak(s)` / `weekly_streak(s)`: the longest run of consecutive days
        (weeks, monday to sunday) with an event of the stream, per member: the distinct
        days (week starts) numbered in order; a run is where day number minus rank is
        constant (whole julian days, so the test is exact)."""
        key = repr(call)
        if key not in self._slot_of:
            q = self.sql
            slot = f"s{len(self.side)}"
            _, stream, _, extra = q.agg_parts(call)
            cond = q.match(stream.name, "e", with_visibility=True)
            if extra is not None:
                cond += f" AND COALESCE({q.ev(extra, stream, 'e')}, 0)"
            unit = date_sql("week_start", ["e.day"]) if call.func == "weekly_streak" else "e.day"
            step = 7 if call.func == "weekly_streak" else 1
            days = (f"SELECT DISTINCT e.member AS member, CAST(julianday({unit}) AS INTEGER) / {step} AS n "
                    f"FROM events e WHERE {{scan}} AND {cond} {{members}}")
            runs = (f"SELECT member, COUNT(*) AS len FROM (SELECT member, n - ROW_NUMBER() OVER "
                    f"(PARTITION BY member ORDER BY n) AS island FROM ({days})) GROUP BY member, island")
            sql = f"SELECT member, MAX(len) FROM ({runs}) GROUP BY member ORDER BY member"
            self.side.append(SideQuery(slot, sql, "value", scans=q.scans([stream.name], "e")))
            self._slot_of[key] = slot
        return self._slot_of[key]

    def reaching_slot(self, call: ast.Call) -> str:
        """`date_reaching(s.f, N)`: a running total per member in a side query."""
        key = repr(call)
        if key not in self._slot_of:
            q = self.sql
            slot = f"r{len(self.side)}"
            _, stream, field, _ = q.agg_parts(call)
            threshold = q.param(call.args[1].value)
            fsql = q.field_sql(stream, field, "e")
            sql = (f"SELECT member, MIN(day) FROM ("
                   f"SELECT e.member AS member, e.day AS day, SUM({fsql}) OVER "
                   f"(PARTITION BY e.member ORDER BY e.at, e.seq ROWS UNBOUNDED PRECEDING) AS running "
                   f"FROM events e WHERE {{scan}} "
                   f"AND {q.match(stream.name, 'e', with_visibility=True)} "
                   f"{{members}}) WHERE running >= {threshold} GROUP BY member ORDER BY member")
            self.side.append(SideQuery(slot, sql, "reaching", scans=q.scans([stream.name], "e")))
            self._slot_of[key] = slot
        return self._slot_of[key]

    # --- tiers: `sum over STREAM by FIELD: (body)`
    def new_group(self) -> str:
        """The slot name of the next `sum over` (its side query is added by `add_group`)."""
        return f"g{len(self.side)}"

    def group_slot(self, group: dict, call: ast.Call) -> str:
        """A column of a tier's row computing `call` over the tier's events."""
        slot = f"{group['key_slot']}_{len(group['slots'])}"
        group["exprs"][slot] = self.sql.agg_sql(call, "e", "1")
        with self.sql.in_pass("outer"):
            group["folded"][slot] = self.sql.agg_sql(call, "e", "1")
        group["slots"].append((slot, call.func))
        return slot

    def add_group(self, slot: str, group: dict, node: ast.GroupSum, body) -> None:
        """The side query of a `sum over` whose body's aggregates are in `group`."""
        q = self.sql
        stream = group["stream"]
        key_sql = q.field_sql(stream, node.key, "e")
        with q.in_pass("outer"):  # the same, over the rows of the main query's inner pass
            self.tier_keys[slot] = q.field_sql(stream, node.key, "e")
        self.tier_exprs[slot] = group["folded"]
        cols = ", ".join(group["exprs"][s] for s, _ in group["slots"]) or "NULL"
        sql = (f"SELECT e.member, {key_sql} AS k, {cols} FROM events e "
               f"WHERE {{scan}} "
               f"AND {q.match(stream.name, 'e', with_visibility=True)} {{members}} "
               f"GROUP BY e.member, k ORDER BY e.member, k")
        body_sql, body_key = tier_body_sql(node.body, node.key, group.get("aggregates", {}))
        plan = GroupPlan(group["key_slot"], tuple(group["slots"]), body, stream.name, body_sql, body_key)
        self.side.append(SideQuery(slot, sql, "group", plan, scans=q.scans([stream.name], "e")))

    # --- the main query
    def main_query(self, folded: SideQuery | None) -> str:
        """One pass over the events of the streams' types: an inner pass computes each
        stream's predicate once per row (`f0`, `f1`, ... -- the undo NOT EXISTS and any
        correlated subquery run once, not once per aggregate that tests them), the outer
        GROUP BY member aggregates over those columns. With a folded `sum over`, a middle
        pass adds the tier key `k` (its lookups computed once per row) and the groups are
        (member, in the tier stream, k), one row per tier, merged per member by the
        evaluator. `LIMIT -1` (no limit) keeps SQLite from flattening the inner passes
        back into the aggregate, which would repeat their expressions."""
        q = self.sql
        with q.in_pass("inner"):
            flags = [f"({q.match(name, 'e')}) AS {flag}" for name, flag in q.flag_of.items()]
        joined = [f"{col} AS {name}" for name, col in q.join_columns.items()]
        inner = (f"SELECT {', '.join([EVENT_COLUMNS] + joined + flags)} FROM events e "
                 f"{' '.join(q.join_clauses)} WHERE {{scan}} "
                 f"AND {q.visible('e')} {{members}} LIMIT -1")
        # The ids of the member's events that belong to any stream: the entries of an
        # award record the events they were derived from.
        any_stream = " OR ".join(f"e.{flag}" for flag in q.flag_of.values())
        ids = f"json_group_array(e.id) FILTER (WHERE {any_stream})"
        if folded is None:
            select = ", ".join(["e.member"] + self.main_exprs + [ids])
            return f"SELECT {select} FROM ({inner}) e GROUP BY e.member ORDER BY e.member"
        tier = f"e.{q.flag_of[folded.group.stream]}"
        middle = (f"SELECT e.*, CASE WHEN {tier} THEN {self.tier_keys[folded.slot]} END AS k "
                  f"FROM ({inner}) e LIMIT -1")
        tier_cols = [self.tier_exprs[folded.slot][s] for s, _ in folded.group.slots]
        if folded.group.body_sql is not None:  # the body per tier row, when SQLite's is exact
            tier_cols.append(folded.group.body_sql)
        select = ", ".join([f"e.member, {tier}, e.k"] + self.main_exprs + tier_cols + [ids])
        return (f"SELECT {select} FROM ({middle}) e GROUP BY e.member, {tier}, e.k "
                f"ORDER BY e.member, {tier}, e.k")

    def foldable_group(self) -> SideQuery | None:
        """The first `sum over`, if every main aggregate merges exactly across its tier
        rows: counts, sums, min/max-like; not distinct counts. Sums merge exactly because
        every per-event value is a whole number (the checker refuses `/` and percentages
        in a stream, and `sum` of anything but a number), so partial sums are integers."""
        if not self.fold:
            return None
        group = next((q for q in self.side if q.kind == "group"), None)
        if group is None or any(kind not in FOLD_KINDS for _, kind in self.main_slots):
            return None
        return group
