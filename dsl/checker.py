"""Semantic checks of a parsed rules file: every error at once, each at its line and column.

`check(rules, rules_dir)` returns every diagnostic of one file (never raises for a
user error) and the reference tables it loaded, by name, for the compiler.
`check_many(files, rules_dir)` adds what only shows across files: a campaign name
declared twice, a point kind declared differently.

The contract with `dsl.compiler`: a campaign that checks clean compiles without
raising. So every form the compiler cannot turn into SQL (per event) or into a
closure (per member) is rejected here with a message for the rule writer.

Two scopes:
- *per event* (a stream's `where` and `field`s, run in SQL): event fields of the
  stream's type, the stream's earlier fields, weekday names, `window`/`period`
  after `in`, tables (`x in t.col`, `lookup`), and aggregates of OTHER streams
  (correlated subqueries), also through `value`s made only of such aggregates;
- *per member* (values, award amounts and conditions, run in Python): values,
  award names (cleared or not), aggregates over streams, scalar functions.

The checker is made of objects that read one frozen `Scope` per campaign
(`dsl.check_common`): a `ClauseChecker` here checks the clauses (header, streams,
awards, dates) and hands expressions to an `ExpressionChecker`
(`dsl.check_expressions`, with a `CallChecker` for functions and aggregates in
`dsl.check_calls`); a `ReachabilityChecker` (`dsl.check_reachability`) finds cycles
and awards that can never be cleared.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from points.dsl import ast, campaign_deps
from points.dsl import symbols as sym
from points.dsl import tables as tables_mod
from points.dsl.check_common import (
    CLAUSE_WORDS, MAX_PAY_YEARS_AFTER, ORDERED_OPS, Ctx, Scope, closest, conjuncts, did_you_mean, is_date_lit, walk,
)
from points.dsl.check_expressions import ExpressionChecker
from points.dsl.check_reachability import ReachabilityChecker
from points.dsl.errors import Diagnostic, at
from points.dsl.tables import Table, TableError
from points.dsl.wholeness import fraction_warnings
from points.ledger.kinds import KIND_NAMES


class ClauseChecker:
    """The clauses of one campaign (header, names, streams, awards, payment dates); the
    expressions in them go to an `ExpressionChecker`, the whole-campaign graphs to a
    `ReachabilityChecker`, all three reading the same `Scope`."""

    def __init__(self, scope: Scope):
        self.s = scope
        self.exprs = ExpressionChecker(scope)
        self.dead_streams: dict[str, str] = {}

    # ------------------------------------------------------------ the campaign
    def run(self) -> None:
        c = self.s.c
        self.check_header()
        self.check_names()
        for s in c.streams:
            self.check_stream(s)
        for v in c.values:
            self.exprs.value_type(v.name)
        for a in c.awards:
            self.check_award(a)
        reach = ReachabilityChecker(self.s)
        reach.check_stream_cycles(self.exprs.stream_deps)
        reach.check_value_cycles()
        reach.check_unreachable(self.dead_streams)

    def check_header(self) -> None:
        c = self.s.c
        for tag, span in c.duplicates:
            word = CLAUSE_WORDS.get(tag, tag)
            self.s.err(span, f"duplicate `{word}` clause: a campaign has at most one",
                     "keep one and delete the others")
        if c.window is None and c.cycle is None:
            self.s.err(c.span, f"campaign {c.name} has neither a window nor a cycle",
                     "add `window FIRST_DAY .. LAST_DAY`, or `every month from day A to day B` "
                     "for a standing monthly program")
        if c.window is not None:
            self.check_date_range(c.window, "window")
            if not c.window.inclusive_end:
                self.s.err(c.window.span, "a campaign window is written with `..` (both days included)",
                         "write the last day of the campaign: `window 2025-12-26 .. 2026-01-04`")
        if c.entry is not None:
            self.check_date_range(c.entry.within, "entry period")
        if c.cycle is not None and c.cycle.calendar is None:
            cy = c.cycle
            bad = False
            for day in (cy.start_day, cy.end_day):
                if not 1 <= day <= 28:
                    self.s.err(cy.span, f"day {day} of a monthly cycle must be between 1 and 28",
                             "every month has days 1 to 28")
                    bad = True
            if not bad and cy.start_day != cy.end_day + 1:
                self.s.err(cy.span,
                         f"a monthly cycle from day {cy.start_day} to day {cy.end_day} would leave gaps "
                         "or overlap between periods",
                         f"a period runs from day A of a month to day B of the next: A must be B + 1, "
                         f"e.g. `every month from day {min(cy.end_day, 27) + 1} to day {min(cy.end_day, 27)}`; "
                         "for calendar months (the 1st to the last day) write `every month`")
        if c.budget is not None:
            b = c.budget
            if b.amount <= 0:
                self.s.err(b.span, "a budget must be more than 0 points")
            if b.kind not in KIND_NAMES:
                self.s.err(b.span, f"unknown point kind {b.kind}", did_you_mean(b.kind, KIND_NAMES))
        if c.payday is not None:
            self.check_pay(c.payday, None)
        self.check_ignored()

    def check_ignored(self) -> None:
        """Clauses the engine reads otherwise than they seem, or not at all: warnings."""
        c = self.s.c
        if c.window is not None and c.cycle is not None:
            self.s.warn(c.window.span, "beside `every month`, the window does not limit the monthly "
                        "periods: every period with events is evaluated, also outside the window",
                        "to count only the window's events, add `date in window` to each stream's `where`")
        if c.payday is not None and c.awards and all(a.pay is not None for a in c.awards):
            self.s.warn(c.payday.span, "the campaign's `pay` date is never used: every award has its own "
                        "payment date", "delete it, or delete the awards' own `on ...`")
        for a in c.awards:
            pay = a.pay or c.payday
            reads = self.sources(pay.after) if isinstance(pay, ast.PayMonthAfter) else set()
            if reads and not reads & self.sources(a.when):  # (a date literal is never none)
                self.s.warn(pay.after.span, f"`{self.s.text(pay.after)}` may be none (no event) while "
                            f"{'mission' if a.is_mission else 'award'} {a.name} is cleared: it then has no "
                            "payment date and is not paid (the run records why)",
                            f"make the condition need it, e.g. `when {self.s.text(pay.after)} != none`")
        if not any(d.is_error for d in self.s.diags):  # a proof needs a sound campaign
            for span, message, hint in fraction_warnings(c, self.s.tables):
                self.s.warn(span, message, hint)
        within_budget = any(a.lottery is not None and a.lottery.winners is None for a in c.awards)
        if c.budget is not None and c.budget.policy != "all or nothing" and c.awards and all(
                a.lottery is not None for a in c.awards if a.kind == c.budget.kind):
            self.s.warn(c.budget.span, f"`{c.budget.policy}` is not used: the budget's awards are lotteries, "
                        "paid in draw order", "delete it, or pay without a lottery")
        if (c.budget is not None and c.awards and not within_budget and c.budget.kind in KIND_NAMES
                and c.budget.kind not in {a.kind for a in c.awards}):
            self.s.warn(c.budget.span, f"no award pays {c.budget.kind} points: the budget is never drawn from",
                        "a budget limits the awards of its own kind only")

    def sources(self, node, seen: frozenset = frozenset()) -> set[str]:
        """The values and streams an expression reads, through values."""
        out: set[str] = set()
        for x in walk(node) if node is not None else ():
            if isinstance(x, ast.Name) and x.name in self.s.values and x.name not in seen:
                out.add(x.name)
                out |= self.sources(self.s.values[x.name].expr, seen | {x.name})
            elif isinstance(x, ast.Name) and x.name in self.s.streams:
                out.add(x.name)
            elif isinstance(x, ast.Dotted) and x.base in self.s.streams:
                out.add(x.base)
            elif isinstance(x, ast.Filtered):
                out.add(x.stream)
        return out

    def check_date_range(self, rng: ast.DateRange, what: str) -> None:
        ok = True
        for end in (rng.low, rng.high):
            if not is_date_lit(end):
                self.s.err(end.span, f"the {what} is bounded by dates like 2025-12-26, not `{self.s.text(end)}`")
                ok = False
        if ok:
            lo, hi = rng.low.value, rng.high.value
            if hi < lo or (hi == lo and not rng.inclusive_end):
                self.s.err(rng.span, f"the {what} is empty: {lo} is after {hi}"
                         if hi < lo else f"the {what} is empty: {lo} ..< {hi}",
                         "write the first day, then the last day")

    def check_names(self) -> None:
        """Streams, values, awards and tables share one namespace."""
        seen: dict[str, str] = {}
        entries = ([("table", t.name, t.span) for t in self.s.c.tables]
                   + [("stream", s.name, s.span) for s in self.s.c.streams]
                   + [("value", v.name, v.span) for v in self.s.c.values]
                   + [("mission" if a.is_mission else "award", a.name, a.span) for a in self.s.c.awards])
        entries.sort(key=lambda e: (e[2].line, e[2].column))
        for what, name, span in entries:
            if what == "table":
                pass  # duplicate tables are reported by the file checker
            elif name in seen:
                self.s.err(span, f"{name} is already declared (as a {seen[name]})",
                         "streams, values, awards and missions need distinct names")
                continue
            if name in sym.WEEKDAYS or name in sym.RANGE_NAMES:
                self.s.err(span, f"{name} is a reserved word (a weekday or a date range) and cannot name a {what}")
            seen.setdefault(name, what)

    # ------------------------------------------------------------ streams
    def check_stream(self, s: ast.Stream) -> None:
        known = s.event_type in sym.EVENT_TYPES
        if not known:
            best = closest(s.event_type, sym.EVENT_TYPES)
            self.s.err(s.type_span or s.span, f"unknown event type {s.event_type}",
                     (f"did you mean {best}? " if best else "") + "event types: " + ", ".join(sym.EVENT_TYPES))
        if s.credited_to is not None and known:
            ty = sym.event_fields(s.event_type).get(s.credited_to)
            if ty != sym.STR or s.credited_to in sym.COLUMN_FIELDS:
                texts = sorted(k for k, v in sym.event_fields(s.event_type).items()
                               if v == sym.STR and k not in sym.COLUMN_FIELDS)
                self.s.err(s.span, f"`credited to {s.credited_to}`: the events are credited to the member a "
                           f"text field of {s.event_type} names, and {s.credited_to} is not one",
                           ("text fields: " + ", ".join(texts)) if texts else f"{s.event_type} has no text field")
        for u in s.undone_by:
            if u not in sym.UNDO_TYPES:
                self.s.err(s.span, f"`undone by {u}`: only {', '.join(sym.UNDO_TYPES)} events undo another event",
                         did_you_mean(u, sym.UNDO_TYPES, listing=False))
        event_fields = sym.event_fields(s.event_type) if known else {}
        seen: set[str] = set()
        for i, f in enumerate(s.fields):
            if f.name in seen:
                self.s.err(f.span, f"field {f.name} is already defined in stream {s.name}")
            elif f.name in event_fields:
                self.s.err(f.span, f"field {f.name} would hide the event field {f.name} of {s.event_type}",
                         "choose another name")
            elif f.name in sym.WEEKDAYS or f.name in sym.RANGE_NAMES:
                self.s.err(f.span, f"{f.name} is a reserved word and cannot name a field")
            elif f.name in self.s.values:
                self.s.err(f.span, f"field {f.name} has the name of a value: in this stream the value "
                         "would be used instead", "choose another name")
            seen.add(f.name)
            if known and self.exprs.def_type(s, i) == sym.NUM:
                self.s.err(f.expr.span, f"field {f.name} is a fraction: round it per event (a field holds "
                           "whole numbers)", "e.g. `floor(amount * 2%)`, `round(amount / 3)`")
        if s.where is not None:
            ctx = Ctx("event", stream=s, fields=self.exprs.stream_field_names_typed(s) if known else None)
            ty = self.exprs.expr(s.where, ctx)
            self.exprs.need_bool(s.where, ty, "a stream's `where`")
            self.check_stream_dates(s)

    def check_stream_dates(self, s: ast.Stream) -> None:
        """A stream whose `date` bounds cannot meet the campaign's dates never matches."""
        lo, hi, lo_node, hi_node = None, None, None, None
        for part in conjuncts(s.where):
            bounds = self._date_bounds(part)
            if bounds is None:
                continue
            plo, phi = bounds
            if plo is not None and (lo is None or plo > lo):
                lo, lo_node = plo, part
            if phi is not None and (hi is None or phi < hi):
                hi, hi_node = phi, part
        if lo is not None and hi is not None and lo > hi:
            msg = (f"`{self.s.text(lo_node)}` contradicts itself" if lo_node is hi_node
                   else f"`{self.s.text(lo_node)}` and `{self.s.text(hi_node)}` contradict")
            self.s.err(s.where.span, f"stream {s.name} never matches an event: {msg}")
            self.dead_streams[s.name] = msg
            return
        if self.s.window is None:
            return
        ws, we = self.s.window
        last = we
        for d in [self.s.c.payday] + [a.pay for a in self.s.c.awards]:
            if isinstance(d, ast.PayFixed) and d.date > last:
                last = d.date
        if (hi is not None and hi < ws) or (lo is not None and lo > last):
            node = hi_node if hi is not None and hi < ws else lo_node
            msg = f"`{self.s.text(node)}` is outside the campaign window {ws} .. {we}"
            self.s.err(node.span, f"stream {s.name} never matches an event of the campaign: {msg}",
                     "a stream dated outside its campaign: check the year")
            self.dead_streams[s.name] = msg

    def _date_bounds(self, node):
        one = dt.timedelta(days=1)
        if isinstance(node, ast.InRange) and isinstance(node.value, ast.Name) and node.value.name == "date":
            if is_date_lit(node.low) and is_date_lit(node.high):
                high = node.high.value if node.inclusive_end else node.high.value - one
                return node.low.value, high
            return None
        if isinstance(node, ast.Compare) and node.op in ORDERED_OPS | {"=="}:
            left, right, op = node.left, node.right, node.op
            if is_date_lit(left) and isinstance(right, ast.Name):
                left, right = right, left
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            if isinstance(left, ast.Name) and left.name == "date" and is_date_lit(right):
                d = right.value
                return {"<": (None, d - one), "<=": (None, d), ">": (d + one, None), ">=": (d, None),
                        "==": (d, d)}[op]
        return None

    # ------------------------------------------------------------ values and awards
    def check_award(self, a: ast.Award) -> None:
        word = "mission" if a.is_mission else "award"
        if a.kind not in KIND_NAMES:
            best = closest(a.kind, KIND_NAMES)
            self.s.err(a.kind_span or a.span, f"unknown point kind {a.kind}",
                     (f"did you mean {best}? " if best else "") + "kinds: " + ", ".join(KIND_NAMES))
        ty = self.exprs.expr(a.amount, Ctx("member"))
        if ty not in sym.NUMERIC and ty != sym.ANY:
            self.s.err(a.amount.span, f"the amount of {word} {a.name} must be a number of points, not {ty}")
        if a.when is not None:
            self.exprs.need_bool(a.when, self.exprs.expr(a.when, Ctx("member")), f"the `when` of {word} {a.name}")
        if a.pay is not None:
            self.check_pay(a.pay, a)
        pay = a.pay or self.s.c.payday
        fixed = pay.date if isinstance(pay, ast.PayFixed) else None
        if isinstance(a.expiry, ast.ExpiresOn):
            if fixed is not None and a.expiry.date < fixed:
                self.s.err(a.expiry.span, f"{word} {a.name} would expire on {a.expiry.date}, before it is paid "
                         f"on {fixed}", "a step dated outside its campaign: check the year")
            elif fixed is None and self.s.window and a.expiry.date <= self.s.window[1]:
                self.s.err(a.expiry.span, f"{word} {a.name} would expire on {a.expiry.date}, before the campaign "
                         f"window ends ({self.s.window[1]})", "a step dated outside its campaign: check the year")
        elif isinstance(a.expiry, ast.ExpiresAfter) and not 1 <= a.expiry.months <= 120:
            self.s.err(a.expiry.span, f"`expires {a.expiry.months} months after payment`: the number of "
                     "months must be between 1 and 120")
        if a.lottery is not None:
            lot = a.lottery
            if lot.winners is not None and lot.winners < 1:
                self.s.err(lot.span, "a lottery needs at least 1 winner")
            if not (isinstance(pay, (ast.PayFixed, ast.PayAfterPeriod)) or (pay is None and self.s.c.cycle)):
                self.s.err(lot.span, f"the lottery of {word} {a.name} needs a fixed payment date, "
                         "the day of the draw",
                         "add `on 2026-02-05` to the award, or `pay on DATE` to the campaign")
            if lot.winners is None:
                b = self.s.c.budget
                if b is None:
                    self.s.err(lot.span, "`by lottery within budget` needs a `budget` clause",
                             f"e.g. `budget 100_000_000 {a.kind}`")
                elif b.kind != a.kind:
                    self.s.err(lot.span, f"`by lottery within budget`: the budget is in {b.kind} points, "
                             f"the {word} pays {a.kind}")

    def check_pay(self, pay, award: ast.Award | None) -> None:
        if isinstance(pay, ast.PayFixed):
            if self.s.window is not None:
                ws, we = self.s.window
                if pay.date < ws:
                    self.s.err(pay.span, f"a step dated outside its campaign: payment on {pay.date} is before "
                             f"the campaign starts ({ws})", "check the year")
                elif pay.date > we.replace(year=we.year + MAX_PAY_YEARS_AFTER) if not (
                        we.month == 2 and we.day == 29) else pay.date > we + dt.timedelta(days=731):
                    self.s.err(pay.span, f"a step dated outside its campaign: payment on {pay.date} is more "
                             f"than {MAX_PAY_YEARS_AFTER} years after the campaign ends ({we})", "check the year")
        elif isinstance(pay, ast.PayAfterPeriod):
            if self.s.c.cycle is None:
                self.s.err(pay.span, "`on day N after period end` needs a monthly cycle "
                         "(`every month from day A to day B`)", "use `on DATE` for a campaign with a window")
            if not 1 <= pay.day <= 31:
                self.s.err(pay.span, f"day {pay.day} is not a day of a month (1 to 31)")
        elif isinstance(pay, ast.PayMonthAfter):
            if not 1 <= pay.day <= 31:
                self.s.err(pay.span, f"day {pay.day} is not a day of a month (1 to 31)")
            ty = self.exprs.expr(pay.after, Ctx("member"))
            if ty not in (sym.DATE, sym.ANY):
                self.s.err(pay.after.span, f"`on day N of month after ...` needs a date, not {ty}",
                         "e.g. `on day 18 of month after first(application.date)`")


# ---------------------------------------------------------------- files

def _check_kinds(rules: ast.RulesFile, diags: list[Diagnostic]) -> None:
    seen: dict[str, ast.KindDecl] = {}
    for k in rules.kinds:
        if k.name not in KIND_NAMES:
            best = closest(k.name, KIND_NAMES)
            diags.append(at(k.span, f"unknown point kind {k.name}: a `kind` declaration names one of "
                            f"{', '.join(KIND_NAMES)}", f"did you mean {best}?" if best else
                            "kinds are fixed by the ledger; a declaration gives a display name and aliases"))
        if k.name in seen and _kind_key(seen[k.name]) != _kind_key(k):
            first = seen[k.name]
            diags.append(at(k.span, f"kind {k.name} is declared differently at line {first.span.line}"))
        seen.setdefault(k.name, k)
        last = None
        for alias in k.aliases:
            if last is not None and alias.until <= last:
                diags.append(at(alias.span, "the aliases of a kind are listed oldest first",
                                f"`until {alias.until}` is not after `until {last}`"))
            last = alias.until


def _kind_key(k: ast.KindDecl):
    return (k.display, tuple((a.name, a.until) for a in k.aliases))


def check(rules: ast.RulesFile, rules_dir: Path) -> tuple[list[Diagnostic], dict[str, Table]]:
    """Every semantic error of one parsed file, sorted, and its reference tables by name."""
    diags: list[Diagnostic] = []
    rules_dir = Path(rules_dir)
    _check_kinds(rules, diags)
    tables: dict[str, Table] = {}
    declared: dict[str, ast.TableDecl] = {}
    names: dict[str, ast.Campaign] = {}
    for c in rules.campaigns:
        if c.name in names:
            diags.append(at(c.span, f"campaign {c.name} is already declared at line {names[c.name].span.line}"))
        names.setdefault(c.name, c)
        campaign_tables: dict[str, Table] = {}
        for t in c.tables:
            if t.name in campaign_tables or (t.name in declared and declared[t.name].path != t.path):
                diags.append(at(t.span, f"table {t.name} is already declared at line {declared[t.name].span.line}",
                                "give each table its own name"))
                continue
            if t.name in tables:
                campaign_tables[t.name] = tables[t.name]
                continue
            try:
                table = tables_mod.load(t.name, rules_dir, t.path)
            except TableError as exc:
                diags.append(tables_mod.diagnostic(exc, t.span, t.path))
                declared.setdefault(t.name, t)
                continue
            declared.setdefault(t.name, t)
            tables[t.name] = table
            campaign_tables[t.name] = table
        failed = {t.name for t in c.tables if t.name not in campaign_tables}
        ClauseChecker(Scope.of(rules, c, campaign_tables, failed, diags)).run()
    return _unique_sorted(diags), tables


def _unique_sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(set(diags), key=Diagnostic.sort_key)


def check_many(files: list[ast.RulesFile], rules_dir: Path) -> list[Diagnostic]:
    """What only shows across files (each file is checked by `check`): a campaign declared
    in two files (reported at the second) and a point kind declared differently."""
    diags: list[Diagnostic] = []
    campaigns: dict[str, ast.Campaign] = {}
    kinds: dict[str, ast.KindDecl] = {}
    for rules in files:
        for k in rules.kinds:
            first = kinds.get(k.name)
            if first is None:
                kinds[k.name] = k
            elif first.span.path != k.span.path and _kind_key(first) != _kind_key(k):
                diags.append(at(k.span, f"kind {k.name} is declared differently in {first.span}",
                                "declare a kind once, or identically"))
        for c in rules.campaigns:
            first = campaigns.get(c.name)
            if first is None:
                campaigns[c.name] = c
            elif first.span.path != c.span.path:
                diags.append(at(c.span, f"campaign {c.name} is already declared in {first.span}",
                                "each campaign has one file; rename one of them"))
    diags.extend(campaign_deps.check_references(campaigns))
    return _unique_sorted(diags)
