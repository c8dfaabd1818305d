"""Text -> AST. The grammar is `grammar.lark`; syntax errors are named, not token lists."""

from __future__ import annotations

import datetime as dt
import functools
import re
from fractions import Fraction
from pathlib import Path

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from points.dsl import ast, limits
from points.dsl.errors import Diagnostic, RulesError

GRAMMAR = Path(__file__).with_name("grammar.lark")
MAX_SYNTAX_ERRORS = 20


@functools.cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


# ---------------------------------------------------------------- named syntax errors
# Each class is recognised by lark's match_examples: a broken snippet that fails in
# the same parser state as the user's file gives the user's error its name.

class RulesSyntaxError(Exception):
    """Base of the named syntax errors; its docstring is the message shown."""

    hint: str | None = None


class MissingExpression(RulesSyntaxError):
    """expected a value or condition here"""

    hint = "write a number, a name, a date or an expression such as sum(stream.amount)"


class MissingKind(RulesSyntaxError):
    """an award needs a point kind after its amount"""

    hint = "e.g. `award prize = 500 basic` (kinds: basic, limited, charge_only)"


class UnclosedBracket(RulesSyntaxError):
    """a bracket or parenthesis is not closed"""

    hint = "check that every ( and [ has its ) and ]"


class MissingEquals(RulesSyntaxError):
    """expected '=' after the name"""

    hint = "e.g. `value spend = sum(booking.amount)`"


class UnknownClause(RulesSyntaxError):
    """not a clause of a campaign"""

    hint = ("clauses start with: document, window, budget, entry, every, pay, table, "
            "stream, value, award, mission")


class BadCampaignHeader(RulesSyntaxError):
    """a campaign starts with `campaign name \"title\"`"""

    hint = 'e.g. `campaign yearend-2025 "年末年始キャンペーン"` (lower-case name with dashes)'


class MissingRangeEnd(RulesSyntaxError):
    """a date or time range needs both ends: `A .. B` or `A ..< B`"""


class BadAwardOption(RulesSyntaxError):
    """expected an award option: when, on, expires or by lottery"""


SYNTAX_EXAMPLES: dict[type[RulesSyntaxError], list[str]] = {
    MissingExpression: [
        'campaign a "t" value x =',
        'campaign a "t" value x = 1 +',
        'campaign a "t" value x = (',
        'campaign a "t" award p = 1 basic when',
        'campaign a "t" stream s = e where',
        'campaign a "t" value x = 1 if',
        'campaign a "t" value x = a and',
        'campaign a "t" value x = a >=',
        'campaign a "t" value x = f(1,',
        'campaign a "t" value x = 1 value',
        'campaign a "t" value x = a == value',
    ],
    MissingKind: [
        'campaign a "t" award p = 1 when',
        'campaign a "t" award p = 1',
        'campaign a "t" award p = 1 on',
        'campaign a "t" mission p "x" = 1 expires',
    ],
    UnclosedBracket: [
        'campaign a "t" value x = (1',
        'campaign a "t" value x = f(1',
        'campaign a "t" value x = [1',
        'campaign a "t" value x = (1 award',
        'campaign a "t" value x = [1, 2 value',
    ],
    MissingEquals: [
        'campaign a "t" value x 1',
        'campaign a "t" award p 1',
        'campaign a "t" stream s e',
        'campaign a "t" value x',
    ],
    UnknownClause: [
        'campaign a "t" foo',
        'campaign a "t" value x = 1 foo',
        'campaign a "t" value x = 1 1',
        'campaign a "t" window 2025-01-01 .. 2025-01-02 foo',
    ],
    BadCampaignHeader: [
        'campaign',
        'campaign "t"',
        'campaign a',
        'campaign a value',
        'foo',
    ],
    MissingRangeEnd: [
        'campaign a "t" window 2025-01-01',
        'campaign a "t" window 2025-01-01 ..',
        'campaign a "t" value x = date in 2025-01-01 ..',
    ],
    BadAwardOption: [
        'campaign a "t" award p = 1 basic foo',
        'campaign a "t" award p = 1 basic by',
        'campaign a "t" award p = 1 basic expires',
    ],
}


# Token types shown by kind in messages; any other token is a keyword or a symbol, shown as written.
_TOKEN_KINDS = {"NAME": "name", "CAMPAIGN_NAME": "name", "INT": "number", "DECIMAL": "number",
                "STRING": "text", "DATE": "date", "TIME": "time"}


@functools.cache
def _example_states() -> dict[int, type[RulesSyntaxError]]:
    """Parser state -> error class, from the examples (and the same examples after a clause).

    lark's match_examples also compares the depth of the parser stack, so an example
    only matches an error at the same nesting; this table is the fallback that
    matches on the state alone."""
    out: dict[int, type[RulesSyntaxError]] = {}
    for label, examples in SYNTAX_EXAMPLES.items():
        for example in examples:
            variants = (example, example.replace('campaign a "t"', 'campaign a "t" document "d"', 1))
            for text in variants:
                try:
                    _parser().parse(text)
                except UnexpectedInput as exc:
                    position = getattr(getattr(exc, "state", None), "position", None)
                    if position is not None:
                        out.setdefault(position, label)
    return out


def _describe(exc: UnexpectedInput) -> tuple[type[RulesSyntaxError] | None, str]:
    label = None
    try:
        label = exc.match_examples(_parser().parse, SYNTAX_EXAMPLES, use_accepts=True)
    except Exception:  # pragma: no cover - match_examples is best effort
        label = None
    if label is None:
        position = getattr(getattr(exc, "state", None), "position", None)
        label = _example_states().get(position)
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    if label is None and expected & {"RPAR", "RSQB"} and not expected & {"NAME", "INT", "STRING"}:
        label = UnclosedBracket
    if isinstance(exc, UnexpectedCharacters):
        found = f"unexpected character {exc.char!r}"
    elif isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        found = "unexpected end of file"
    else:
        token = exc.token
        kind = _TOKEN_KINDS.get(token.type)
        found = f"unexpected {kind} {str(token)!r}" if kind else f"unexpected `{token}`"
    return label, found


def _syntax_diagnostic(path: str, exc: UnexpectedInput, source: str) -> Diagnostic:
    label, found = _describe(exc)
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    if not isinstance(line, int) or line < 1:
        lines = source.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    if label is not None:
        message = f"{label.__doc__} ({found})"
        hint = label.hint
    else:
        message = f"syntax error: {found}"
        hint = None
    return Diagnostic(path, line, column or 1, message, hint)


# ---------------------------------------------------------------- tree -> AST

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def _unquote(token: Token) -> str:
    """A string literal's text. Escapes: \\" \\\\ \\n \\t and \\uXXXX; anything else is an error."""
    body = str(token)[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1: i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and len(body[i + 2: i + 6]) == 4 and all(c in "0123456789abcdefABCDEF" for c in body[i + 2: i + 6]):
            code = int(body[i + 2: i + 6], 16)
            if 0xD800 <= code <= 0xDFFF:
                raise _Invalid(token, f"invalid escape \\u{body[i + 2: i + 6]} in a string (a lone surrogate)")
            out.append(chr(code))
            i += 6
        else:
            raise _Invalid(token, f"invalid escape \\{nxt} in a string (use \\\" \\\\ \\n \\t or \\uXXXX)")
    return "".join(out)


def _int(token: Token) -> int:
    return int(str(token).replace("_", ""))


class _Invalid(Exception):
    """A literal that parses but is not a valid value (e.g. 2025-02-30)."""

    def __init__(self, token: Token, message: str):
        self.token = token
        self.message = message


@v_args(meta=True)
class ToAst(Transformer):
    """One pass from Lark's tree to frozen AST nodes with spans."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _span(self, meta) -> ast.Span:
        if getattr(meta, "empty", True):
            return ast.Span(self.path, 1, 1, 1, 1)
        return ast.Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> ast.Span:
        return ast.Span(self.path, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)

    # --- literals
    def int_lit(self, meta, c):
        return ast.Literal(_int(c[0]), self._span(meta))

    def percent_lit(self, meta, c):
        text = str(c[0]).replace("_", "")
        return ast.Literal(Fraction(text) / 100, self._span(meta))

    def str_lit(self, meta, c):
        return ast.Literal(_unquote(c[0]), self._span(meta))

    def _date(self, tok: Token) -> dt.date:
        try:
            return dt.date.fromisoformat(str(tok))
        except ValueError:
            raise _Invalid(tok, f"not a valid date: {tok}") from None

    def date_lit(self, meta, c):
        return ast.Literal(self._date(c[0]), self._span(meta))

    def time_lit(self, meta, c):
        text = str(c[0])
        try:
            value = dt.time.fromisoformat(text if text.count(":") == 2 else text + ":00")
        except ValueError:
            raise _Invalid(c[0], f"not a valid time of day: {text}") from None
        return ast.Literal(value, self._span(meta))

    def true_lit(self, meta, c):
        return ast.Literal(True, self._span(meta))

    def false_lit(self, meta, c):
        return ast.Literal(False, self._span(meta))

    def none_lit(self, meta, c):
        return ast.Literal(None, self._span(meta))

    def name(self, meta, c):
        return ast.Name(str(c[0]), self._span(meta))

    def dotted(self, meta, c):
        return ast.Dotted(str(c[0]), str(c[1]), self._span(meta))

    def call(self, meta, c):
        args = tuple(a for a in c[1:] if a is not None)
        return ast.Call(str(c[0]), args, self._span(meta))

    def filtered(self, meta, c):
        return ast.Filtered(str(c[0]), c[1], self._span(meta))

    def list_lit(self, meta, c):
        return ast.ListLit(tuple(x for x in c if x is not None), self._span(meta))

    # --- operators
    def neg(self, meta, c):
        return ast.Unary("neg", c[0], self._span(meta))

    def days(self, meta, c):
        return ast.Call("days", (c[0],), self._span(meta))

    def not_(self, meta, c):
        return ast.Unary("not", c[0], self._span(meta))

    def binop(self, meta, c):
        return ast.BinOp(str(c[1]), c[0], c[2], self._span(meta))

    def and_(self, meta, c):
        return ast.BinOp("and", c[0], c[1], self._span(meta))

    def or_(self, meta, c):
        return ast.BinOp("or", c[0], c[1], self._span(meta))

    def compare(self, meta, c):
        return ast.Compare(str(c[1]), c[0], c[2], self._span(meta))

    def in_(self, meta, c):
        return ast.Compare("in", c[0], c[1], self._span(meta))

    def not_in(self, meta, c):
        return ast.Compare("not in", c[0], c[1], self._span(meta))

    def has(self, meta, c):
        return ast.Compare("has", c[0], c[1], self._span(meta))

    def has_one_of(self, meta, c):
        return ast.Compare("has one of", c[0], c[1], self._span(meta))

    def in_range(self, meta, c):
        return ast.InRange(c[0], c[1], c[3], str(c[2]) == "..", self._span(meta))

    def conditional(self, meta, c):
        return ast.Conditional(c[1], c[0], c[2], self._span(meta))

    def group_sum(self, meta, c):
        if str(c[0]) != "sum":
            raise _Invalid(c[0], f"expected `sum over STREAM by FIELD: (...)`, not `{c[0]} over`")
        keys = [str(k) for k in c[2:-1]]
        return ast.GroupSum(str(c[1]), keys[0], c[-1], self._span(meta), tuple(keys[1:]))

    def lookup_cond(self, meta, c):
        return ast.LookupCond(str(c[0]), str(c[1]), c[2], self._span(meta))

    def lookup(self, meta, c):
        conds = tuple(x for x in c[2:-1])
        return ast.Lookup(str(c[0]), str(c[1]), conds, c[-1], self._span(meta))

    # --- declarations
    def kind_alias(self, meta, c):
        return ast.KindAlias(_unquote(c[0]), self._date(c[1]), self._span(meta))

    def kind_decl(self, meta, c):
        return ast.KindDecl(str(c[0]), _unquote(c[1]), tuple(c[2:]), self._span(meta))

    def date_range(self, meta, c):
        return ast.DateRange(c[0], c[2], str(c[1]) == "..", self._span(meta))

    def document(self, meta, c):
        return ("document", _unquote(c[0]), self._span(meta))

    def window(self, meta, c):
        return ("window", c[0], self._span(meta))

    def budget(self, meta, c):
        return ("budget", ast.Budget(_int(c[0]), str(c[1]), self._span(meta)), self._span(meta))

    def entry(self, meta, c):
        retro = len(c) > 1
        return ("entry", ast.EntryRequirement(c[0], retro, self._span(meta)), self._span(meta))

    def cycle(self, meta, c):
        return ("cycle", ast.Cycle(_int(c[0]), _int(c[1]), self._span(meta)), self._span(meta))

    def _calendar(self, meta, unit: str):
        return ("cycle", ast.Cycle(0, 0, self._span(meta), unit), self._span(meta))

    def calendar_month(self, meta, c):
        return self._calendar(meta, "month")

    def calendar_week(self, meta, c):
        return self._calendar(meta, "week")

    def calendar_year(self, meta, c):
        return self._calendar(meta, "year")

    def payday(self, meta, c):
        return ("payday", c[0], self._span(meta))

    def table_decl(self, meta, c):
        return ("table", ast.TableDecl(str(c[0]), _unquote(c[1]), self._span(meta)), self._span(meta))

    def where(self, meta, c):
        return ("where", c[0])

    def field_def(self, meta, c):
        return ast.FieldDef(str(c[0]), c[1], self._span(meta))

    def undo(self, meta, c):
        return ("undo", tuple(str(x) for x in c))

    def stream(self, meta, c):
        name, etype = str(c[0]), c[1]
        where, fields, undo = None, [], ()
        for part in c[2:]:
            if isinstance(part, ast.FieldDef):
                fields.append(part)
            elif part[0] == "where":
                where = part[1]
            else:
                undo = part[1]
        node = ast.Stream(name, str(etype), where, tuple(fields), undo, self._span(meta), self._tok_span(etype))
        return ("stream", node, self._span(meta))

    def value(self, meta, c):
        return ("value", ast.Value(str(c[0]), c[1], self._span(meta)), self._span(meta))

    def when(self, meta, c):
        return ("when", c[0])

    def pay_fixed(self, meta, c):
        return ast.PayFixed(self._date(c[0]), self._span(meta))

    def pay_month_after(self, meta, c):
        return ast.PayMonthAfter(_int(c[0]), c[1], self._span(meta))

    def pay_after_period(self, meta, c):
        return ast.PayAfterPeriod(_int(c[0]), self._span(meta))

    def expires_on(self, meta, c):
        return ast.ExpiresOn(self._date(c[0]), self._span(meta))

    def expires_after(self, meta, c):
        return ast.ExpiresAfter(_int(c[0]), self._span(meta))

    def lottery_seed(self, meta, c):
        return _unquote(c[0])

    def lottery_winners(self, meta, c):
        return ast.Lottery(_int(c[0]), c[1] if len(c) > 1 else None, self._span(meta))

    def lottery_budget(self, meta, c):
        return ast.Lottery(None, c[0] if c else None, self._span(meta))

    def award(self, meta, c):
        word, name = str(c[0]), str(c[1])
        rest = list(c[2:])
        label = None
        if isinstance(rest[0], Token):
            label = _unquote(rest.pop(0))
        amount, kind_tok = rest[0], rest[1]
        when = pay = expiry = lottery = None
        for opt in rest[2:]:
            if isinstance(opt, tuple) and opt[0] == "when":
                when = opt[1]
            elif isinstance(opt, (ast.PayFixed, ast.PayMonthAfter, ast.PayAfterPeriod)):
                pay = opt
            elif isinstance(opt, (ast.ExpiresOn, ast.ExpiresAfter)):
                expiry = opt
            elif isinstance(opt, ast.Lottery):
                lottery = opt
        node = ast.Award(name, label, amount, str(kind_tok), when, pay, expiry, lottery,
                         word == "mission", self._span(meta), self._tok_span(kind_tok))
        return ("award", node, self._span(meta))

    def campaign(self, meta, c):
        name, title = str(c[0]), _unquote(c[1])
        single: dict[str, object] = {}
        duplicates = []
        lists: dict[str, list] = {"table": [], "stream": [], "value": [], "award": []}
        for tag, node, span in c[2:]:
            if tag in lists:
                lists[tag].append(node)
            elif tag in single:
                duplicates.append((tag, span))
            else:
                single[tag] = node
        return ast.Campaign(
            name=name, title=title,
            document=single.get("document"), window=single.get("window"),
            budget=single.get("budget"), entry=single.get("entry"), cycle=single.get("cycle"),
            payday=single.get("payday"),
            tables=tuple(lists["table"]), streams=tuple(lists["stream"]),
            values=tuple(lists["value"]), awards=tuple(lists["award"]),
            span=self._span(meta), duplicates=tuple(duplicates),
        )

    def start(self, meta, c):
        return list(c)


# A clause keyword at the start of a line: where parsing resumes after a syntax error.
_CLAUSE_START = re.compile(
    r"[ \t]*(campaign|kind|document|window|budget|entry|every|pay|table|stream|value|award|mission)\b")
_TOP_START = re.compile(r"[ \t]*(campaign|kind)\b")


def _skip_broken_clause(lines: list[str], line: int, column: int) -> bool:
    """Blank the clause holding the error at (line, column) (1-based), keeping every line
    in place so that later errors keep their positions. False if nothing changed."""
    i = max(0, min(line, len(lines)) - 1)
    starts = [n for n, text in enumerate(lines) if _CLAUSE_START.match(text)]
    at_clause_start = (i in starts and i < len(lines)
                       and column <= len(lines[i]) - len(lines[i].lstrip()) + 1)
    if at_clause_start:
        # The error is the first word of a clause: the clause before it is unfinished.
        before = [n for n in starts if n < i]
        first, stop = (before[-1] if before else i), i
        if first == i:
            stop = i + 1
    else:
        before = [n for n in starts if n <= i]
        first = before[-1] if before else i
        after = [n for n in starts if n > i]
        stop = after[0] if after else len(lines)
    if _TOP_START.match(lines[first]) and lines[first].lstrip().startswith("campaign"):
        # A broken campaign header: skip the whole campaign.
        after = [n for n, text in enumerate(lines) if n > max(first, i) and _TOP_START.match(text)]
        stop = after[0] if after else len(lines)
    changed = False
    for n in range(first, max(stop, first + 1)):
        if n < len(lines) and lines[n].strip():
            lines[n] = ""
            changed = True
    return changed


def parse(source: str, path: str = "<rules>") -> ast.RulesFile:
    """Parse rules text into an AST; raises RulesError with every syntax error found.

    After an error the broken clause is blanked out (lines kept in place) and the
    file is parsed again, so each further error is a real one, not a consequence
    of the first."""
    errors: list[Diagnostic] = limits.scan_source(source, path)  # before lark sees the text
    if errors:
        raise RulesError(errors, {path: source})
    lines = source.split("\n")
    text = source
    while True:
        try:
            tree = _parser().parse(text)
            too_deep = limits.tree_depth(tree, path)
            if too_deep is not None:
                raise RulesError([too_deep], {path: source})
            items = ToAst(path).transform(tree)
        except UnexpectedInput as exc:
            diag = _syntax_diagnostic(path, exc, source)
        except VisitError as exc:
            orig = exc.orig_exc
            if not isinstance(orig, _Invalid):
                raise
            tok = orig.token
            diag = Diagnostic(path, tok.line, tok.column, orig.message,
                              end_column=tok.end_column if tok.end_line == tok.line else None)
        except lark.exceptions.LarkError as exc:  # pragma: no cover - defensive
            errors.append(Diagnostic(path, 1, 1, f"syntax error: {exc}"))
            break
        else:
            if not errors:
                kinds = tuple(i for i in items if isinstance(i, ast.KindDecl))
                campaigns = tuple(i for i in items if isinstance(i, ast.Campaign))
                return ast.RulesFile(path, source, kinds, campaigns)
            break
        if diag not in errors:
            errors.append(diag)
        if len(errors) >= MAX_SYNTAX_ERRORS or not _skip_broken_clause(lines, diag.line, diag.column):
            break
        text = "\n".join(lines)
    raise RulesError(errors, {path: source})


def parse_file(path: str | Path, display: str | None = None) -> ast.RulesFile:
    """Read and parse one .rules file (UTF-8; a regular file within dsl.limits)."""
    path = Path(path)
    label = display or str(path)
    try:
        data = limits.read_limited(path, limits.MAX_RULES_BYTES)
        source = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text
    except limits.FileRefused as exc:
        raise RulesError([Diagnostic(label, 1, 1, str(exc))]) from None
    except FileNotFoundError:
        raise RulesError([Diagnostic(label, 1, 1, "no such rules file")]) from None
    except UnicodeDecodeError as exc:
        raise RulesError([Diagnostic(label, 1, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except OSError as exc:
        raise RulesError([Diagnostic(label, 1, 1, f"cannot read: {exc.strerror}")]) from None
    return parse(source, label)
