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

This module checks a campaign's clauses (header, streams, awards, dates) and files;
expressions are typed in `dsl.check_expressions`, cycles and unreachable awards are
found in `dsl.check_reachability`, and `dsl.check_common` holds what they share.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl import tables as tables_mod
from points.dsl.check_common import (
    CLAUSE_WORDS, Ctx, MAX_PAY_YEARS_AFTER, ORDERED_OPS, closest, conjuncts, did_you_mean, is_date_lit,
)
from points.dsl.check_expressions import ExpressionChecks
from points.dsl.check_reachability import ReachabilityChecks
from points.dsl.errors import Diagnostic, at
from points.dsl.tables import Table, TableError
from points.ledger.kinds import KIND_NAMES


class _CampaignChecker(ExpressionChecks, ReachabilityChecks):
    def __init__(self, rules: ast.RulesFile, campaign: ast.Campaign, tables: dict[str, Table],
                 diags: list[Diagnostic]):
        self.rules = rules
        self.c = campaign
        self.tables = tables
        self.diags = diags
        self.streams = {}
        for s in campaign.streams:
            self.streams.setdefault(s.name, s)
        self.values = {}
        for v in campaign.values:
            self.values.setdefault(v.name, v)
        self.awards = {}
        for a in campaign.awards:
            self.awards.setdefault(a.name, a)
        self._value_types: dict[str, str] = {}
        self._in_progress: set[str] = set()
        self._field_types: dict[tuple[str, str], str] = {}
        self._field_progress: set[tuple[str, str]] = set()
        self._stream_deps: dict[str, dict[str, ast.Span]] = {s.name: {} for s in campaign.streams}
        self.window = self._dates(campaign.window)
        self.dead_streams: dict[str, str] = {}
        self.failed_tables: set[str] = set()  # declared, but could not be loaded (already reported)

    # ------------------------------------------------------------ helpers
    def err(self, span, message: str, hint: str | None = None) -> None:
        self.diags.append(at(span, message, hint))

    def text(self, node) -> str:
        s = node.span
        lines = self.rules.source.splitlines()
        if not (1 <= s.line <= len(lines)) or not (1 <= s.end_line <= len(lines)):
            return "?"
        if s.line == s.end_line:
            out = lines[s.line - 1][s.column - 1:s.end_column - 1]
        else:
            parts = [lines[s.line - 1][s.column - 1:]] + lines[s.line:s.end_line - 1] + \
                [lines[s.end_line - 1][:s.end_column - 1]]
            out = " ".join(p.strip() for p in parts)
        return " ".join(out.split())

    def _dates(self, rng: ast.DateRange | None) -> tuple[dt.date, dt.date] | None:
        if rng is None or not (is_date_lit(rng.low) and is_date_lit(rng.high)):
            return None
        return rng.low.value, rng.high.value

    def stream_field_names(self, stream: ast.Stream) -> dict[str, None] | None:
        if stream.event_type not in sym.EVENT_TYPES:
            return None
        names = dict.fromkeys(sym.event_fields(stream.event_type))
        names.update(dict.fromkeys(f.name for f in stream.fields))
        return names

    def field_type(self, stream: ast.Stream, name: str) -> str | None:
        """Type of field `name` of `stream` (event field or `field` definition); None if absent."""
        if stream.event_type not in sym.EVENT_TYPES:
            return sym.ANY
        for i, f in enumerate(stream.fields):
            if f.name == name:
                return self._def_type(stream, i)
        return sym.event_fields(stream.event_type).get(name)

    def _def_type(self, stream: ast.Stream, index: int) -> str:
        f = stream.fields[index]
        key = (stream.name, f.name)
        if key in self._field_types:
            return self._field_types[key]
        if key in self._field_progress:
            return sym.ANY
        self._field_progress.add(key)
        visible = dict(sym.event_fields(stream.event_type))
        for earlier in stream.fields[:index]:
            if earlier.name not in visible:
                visible[earlier.name] = sym.ANY  # typed lazily in name()
        ctx = Ctx("event", stream=stream, fields=visible)
        ty = self.expr(f.expr, ctx)
        self._field_progress.discard(key)
        self._field_types[key] = ty
        return ty

    # ------------------------------------------------------------ the campaign
    def run(self) -> None:
        c = self.c
        self.check_header()
        self.check_names()
        for s in c.streams:
            self.check_stream(s)
        for v in c.values:
            self.value_type(v.name)
        for a in c.awards:
            self.check_award(a)
        self.check_stream_cycles()
        self.check_value_cycles()
        self.check_unreachable()

    def check_header(self) -> None:
        c = self.c
        for tag, span in c.duplicates:
            word = CLAUSE_WORDS.get(tag, tag)
            self.err(span, f"duplicate `{word}` clause: a campaign has at most one",
                     "keep one and delete the others")
        if c.window is None and c.cycle is None:
            self.err(c.span, f"campaign {c.name} has neither a window nor a cycle",
                     "add `window FIRST_DAY .. LAST_DAY`, or `every month from day A to day B` "
                     "for a standing monthly program")
        if c.window is not None:
            self.check_date_range(c.window, "window")
            if not c.window.inclusive_end:
                self.err(c.window.span, "a campaign window is written with `..` (both days included)",
                         "write the last day of the campaign: `window 2025-12-26 .. 2026-01-04`")
        if c.entry is not None:
            self.check_date_range(c.entry.within, "entry period")
        if c.cycle is not None:
            cy = c.cycle
            bad = False
            for day in (cy.start_day, cy.end_day):
                if not 1 <= day <= 28:
                    self.err(cy.span, f"day {day} of a monthly cycle must be between 1 and 28",
                             "every month has days 1 to 28")
                    bad = True
            if not bad and cy.start_day != cy.end_day + 1:
                self.err(cy.span,
                         f"a monthly cycle from day {cy.start_day} to day {cy.end_day} would leave gaps "
                         "or overlap between periods",
                         f"a period runs from day A of a month to day B of the next: A must be B + 1, "
                         f"e.g. `every month from day {min(cy.end_day, 27) + 1} to day {min(cy.end_day, 27)}`")
        if c.budget is not None:
            b = c.budget
            if b.amount <= 0:
                self.err(b.span, "a budget must be more than 0 points")
            if b.kind not in KIND_NAMES:
                self.err(b.span, f"unknown point kind {b.kind}", did_you_mean(b.kind, KIND_NAMES))
        if c.payday is not None:
            self.check_pay(c.payday, None)

    def check_date_range(self, rng: ast.DateRange, what: str) -> None:
        ok = True
        for end in (rng.low, rng.high):
            if not is_date_lit(end):
                self.err(end.span, f"the {what} is bounded by dates like 2025-12-26, not `{self.text(end)}`")
                ok = False
        if ok:
            lo, hi = rng.low.value, rng.high.value
            if hi < lo or (hi == lo and not rng.inclusive_end):
                self.err(rng.span, f"the {what} is empty: {lo} is after {hi}"
                         if hi < lo else f"the {what} is empty: {lo} ..< {hi}",
                         "write the first day, then the last day")

    def check_names(self) -> None:
        """Streams, values, awards and tables share one namespace."""
        seen: dict[str, str] = {}
        entries = ([("table", t.name, t.span) for t in self.c.tables]
                   + [("stream", s.name, s.span) for s in self.c.streams]
                   + [("value", v.name, v.span) for v in self.c.values]
                   + [("mission" if a.is_mission else "award", a.name, a.span) for a in self.c.awards])
        entries.sort(key=lambda e: (e[2].line, e[2].column))
        for what, name, span in entries:
            if what == "table":
                pass  # duplicate tables are reported by the file checker
            elif name in seen:
                self.err(span, f"{name} is already declared (as a {seen[name]})",
                         "streams, values, awards and missions need distinct names")
                continue
            if name in sym.WEEKDAYS or name in sym.RANGE_NAMES:
                self.err(span, f"{name} is a reserved word (a weekday or a date range) and cannot name a {what}")
            seen.setdefault(name, what)

    # ------------------------------------------------------------ streams
    def check_stream(self, s: ast.Stream) -> None:
        known = s.event_type in sym.EVENT_TYPES
        if not known:
            best = closest(s.event_type, sym.EVENT_TYPES)
            self.err(s.type_span or s.span, f"unknown event type {s.event_type}",
                     (f"did you mean {best}? " if best else "") + "event types: " + ", ".join(sym.EVENT_TYPES))
        for u in s.undone_by:
            if u not in sym.UNDO_TYPES:
                self.err(s.span, f"`undone by {u}`: only {', '.join(sym.UNDO_TYPES)} events undo another event",
                         did_you_mean(u, sym.UNDO_TYPES, listing=False))
        event_fields = sym.event_fields(s.event_type) if known else {}
        seen: set[str] = set()
        for i, f in enumerate(s.fields):
            if f.name in seen:
                self.err(f.span, f"field {f.name} is already defined in stream {s.name}")
            elif f.name in event_fields:
                self.err(f.span, f"field {f.name} would hide the event field {f.name} of {s.event_type}",
                         "choose another name")
            elif f.name in sym.WEEKDAYS or f.name in sym.RANGE_NAMES:
                self.err(f.span, f"{f.name} is a reserved word and cannot name a field")
            elif f.name in self.values:
                self.err(f.span, f"field {f.name} has the name of a value: in this stream the value "
                         "would be used instead", "choose another name")
            seen.add(f.name)
            if known:
                self._def_type(s, i)
        if s.where is not None:
            ctx = Ctx("event", stream=s, fields=self.stream_field_names_typed(s) if known else None)
            ty = self.expr(s.where, ctx)
            self.need_bool(s.where, ty, "a stream's `where`")
            self.check_stream_dates(s)

    def stream_field_names_typed(self, s: ast.Stream) -> dict[str, str]:
        out = dict(sym.event_fields(s.event_type))
        for f in s.fields:
            out.setdefault(f.name, self._field_types.get((s.name, f.name), sym.ANY))
        return out

    def need_bool(self, node, ty: str, what: str) -> None:
        if ty not in (sym.BOOL, sym.ANY):
            self.err(node.span, f"{what} must be a condition (true or false), not {ty}",
                     "compare it, e.g. `amount >= 500`")

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
            msg = (f"`{self.text(lo_node)}` contradicts itself" if lo_node is hi_node
                   else f"`{self.text(lo_node)}` and `{self.text(hi_node)}` contradict")
            self.err(s.where.span, f"stream {s.name} never matches an event: {msg}")
            self.dead_streams[s.name] = msg
            return
        if self.window is None:
            return
        ws, we = self.window
        last = we
        for d in [self.c.payday] + [a.pay for a in self.c.awards]:
            if isinstance(d, ast.PayFixed) and d.date > last:
                last = d.date
        if (hi is not None and hi < ws) or (lo is not None and lo > last):
            node = hi_node if hi is not None and hi < ws else lo_node
            msg = f"`{self.text(node)}` is outside the campaign window {ws} .. {we}"
            self.err(node.span, f"stream {s.name} never matches an event of the campaign: {msg}",
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
    def value_type(self, name: str) -> str:
        if name in self._value_types:
            return self._value_types[name]
        if name in self._in_progress:
            return sym.ANY  # a cycle: reported by check_value_cycles
        self._in_progress.add(name)
        node = self.values[name]
        ty = self.expr(node.expr, Ctx("member"))
        self._in_progress.discard(name)
        self._value_types[name] = ty
        return ty

    def check_award(self, a: ast.Award) -> None:
        word = "mission" if a.is_mission else "award"
        if a.kind not in KIND_NAMES:
            best = closest(a.kind, KIND_NAMES)
            self.err(a.kind_span or a.span, f"unknown point kind {a.kind}",
                     (f"did you mean {best}? " if best else "") + "kinds: " + ", ".join(KIND_NAMES))
        ty = self.expr(a.amount, Ctx("member"))
        if ty not in sym.NUMERIC and ty != sym.ANY:
            self.err(a.amount.span, f"the amount of {word} {a.name} must be a number of points, not {ty}")
        if a.when is not None:
            self.need_bool(a.when, self.expr(a.when, Ctx("member")), f"the `when` of {word} {a.name}")
        if a.pay is not None:
            self.check_pay(a.pay, a)
        pay = a.pay or self.c.payday
        fixed = pay.date if isinstance(pay, ast.PayFixed) else None
        if isinstance(a.expiry, ast.ExpiresOn):
            if fixed is not None and a.expiry.date < fixed:
                self.err(a.expiry.span, f"{word} {a.name} would expire on {a.expiry.date}, before it is paid "
                         f"on {fixed}", "a step dated outside its campaign: check the year")
            elif fixed is None and self.window and a.expiry.date <= self.window[1]:
                self.err(a.expiry.span, f"{word} {a.name} would expire on {a.expiry.date}, before the campaign "
                         f"window ends ({self.window[1]})", "a step dated outside its campaign: check the year")
        elif isinstance(a.expiry, ast.ExpiresAfter) and not 1 <= a.expiry.months <= 120:
            self.err(a.expiry.span, f"`expires {a.expiry.months} months after payment`: the number of "
                     "months must be between 1 and 120")
        if a.lottery is not None:
            lot = a.lottery
            if lot.winners is not None and lot.winners < 1:
                self.err(lot.span, "a lottery needs at least 1 winner")
            if not (isinstance(pay, (ast.PayFixed, ast.PayAfterPeriod)) or (pay is None and self.c.cycle)):
                self.err(lot.span, f"the lottery of {word} {a.name} needs a fixed payment date, "
                         "the day of the draw",
                         "add `on 2026-02-05` to the award, or `pay on DATE` to the campaign")
            if lot.winners is None:
                b = self.c.budget
                if b is None:
                    self.err(lot.span, "`by lottery within budget` needs a `budget` clause",
                             f"e.g. `budget 100_000_000 {a.kind}`")
                elif b.kind != a.kind:
                    self.err(lot.span, f"`by lottery within budget`: the budget is in {b.kind} points, "
                             f"the {word} pays {a.kind}")

    def check_pay(self, pay, award: ast.Award | None) -> None:
        if isinstance(pay, ast.PayFixed):
            if self.window is not None:
                ws, we = self.window
                if pay.date < ws:
                    self.err(pay.span, f"a step dated outside its campaign: payment on {pay.date} is before "
                             f"the campaign starts ({ws})", "check the year")
                elif pay.date > we.replace(year=we.year + MAX_PAY_YEARS_AFTER) if not (
                        we.month == 2 and we.day == 29) else pay.date > we + dt.timedelta(days=731):
                    self.err(pay.span, f"a step dated outside its campaign: payment on {pay.date} is more "
                             f"than {MAX_PAY_YEARS_AFTER} years after the campaign ends ({we})", "check the year")
        elif isinstance(pay, ast.PayAfterPeriod):
            if self.c.cycle is None:
                self.err(pay.span, "`on day N after period end` needs a monthly cycle "
                         "(`every month from day A to day B`)", "use `on DATE` for a campaign with a window")
            if not 1 <= pay.day <= 31:
                self.err(pay.span, f"day {pay.day} is not a day of a month (1 to 31)")
        elif isinstance(pay, ast.PayMonthAfter):
            if not 1 <= pay.day <= 31:
                self.err(pay.span, f"day {pay.day} is not a day of a month (1 to 31)")
            ty = self.expr(pay.after, Ctx("member"))
            if ty not in (sym.DATE, sym.ANY):
                self.err(pay.after.span, f"`on day N of month after ...` needs a date, not {ty}",
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
                diags.append(at(t.span, str(exc), "tables are CSV files in the rules folder, e.g. \"data/stores.csv\""))
                declared.setdefault(t.name, t)
                continue
            declared.setdefault(t.name, t)
            tables[t.name] = table
            campaign_tables[t.name] = table
        checker = _CampaignChecker(rules, c, campaign_tables, diags)
        checker.failed_tables = {t.name for t in c.tables if t.name not in campaign_tables}
        checker.run()
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
    return _unique_sorted(diags)
