"""Text -> AST. The grammar is `grammar.lark`; syntax errors are named, not token lists."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import attrs
import lark
from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from points.dsl import ast, limits
from points.dsl.errors import Diagnostic, RulesError
from points.dsl.transform import ToAst, InvalidLiteral

GRAMMAR = Path(__file__).with_name("grammar.lark")
MAX_SYNTAX_ERRORS = 20


def _cache_file() -> str | bool:
    """Where lark keeps its analysis of the grammar between processes (it rebuilds it when
    the grammar, the options, lark or Python differ): the user's cache folder; no cache
    when that folder cannot be made. Building the tables costs every command that reads
    rules more than loading them."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "points")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.path.join(folder, f"grammar-lark-{lark.__version__}.cache")


@functools.cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=_cache_file(),
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
    plain = _foreign_syntax(exc)
    if plain is not None:
        message, hint = plain
    elif label is not None:
        message = f"{label.__doc__} ({found})"
        hint = label.hint
    else:
        message = f"syntax error: {found}"
        hint = None
    return Diagnostic(path, line, column or 1, message, hint)


# Characters and tokens of other languages: what to write instead.
_FOREIGN_CHARACTERS = {
    "&": ("`&&` is not part of the rules language", "write `and`"),
    "|": ("`||` is not part of the rules language", "write `or`"),
    "!": ("`!` is not part of the rules language", "write `not x` (and `!=` for not equal)"),
    "'": ("text is written in double quotes", 'e.g. `product != "EX旅パック"`'),
    ";": ("`;` is not part of the rules language", "each clause starts with its keyword; no separator"),
    "{": ("braces are not part of the rules language", "clauses follow each other; group with ( )"),
}
_FOREIGN_TOKENS = {
    "=": ("`=` gives a name its value; to compare write `==`", "e.g. `when spend == 5_000`"),
    "/": (None, "a comment starts with `#`"),
}


def _foreign_syntax(exc: UnexpectedInput) -> tuple[str, str] | None:
    if isinstance(exc, UnexpectedCharacters):
        return _FOREIGN_CHARACTERS.get(exc.char)
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedToken) and token is not None and str(token) in _FOREIGN_TOKENS:
        message, hint = _FOREIGN_TOKENS[str(token)]
        return (message or f"syntax error: unexpected `{token}`"), hint
    return None


# A clause keyword at the start of a line: where parsing resumes after a syntax error.
_CLAUSE_START = re.compile(
    r"[ \t]*(campaign|kind|document|window|budget|entry|every|pay|table|stream|value|award|mission)\b")
_TOP_START = re.compile(r"[ \t]*(campaign|kind)\b")


def _after_keyword(text: str, column: int) -> bool:
    """Whether (1-based) `column` is the word right after a clause keyword at the start of
    the line: keywords are not reserved, so `stream` after an unfinished `amount >` was
    read as a name, and the error shows at the next word."""
    return bool(re.fullmatch(_CLAUSE_START.pattern + r"[ \t]+", text[:column - 1]))


def _skip_broken_clause(lines: list[str], line: int, column: int, keyword_read_as_name: bool = False) -> bool:
    """Blank the clause holding the error at (line, column) (1-based), keeping every line
    in place so that later errors keep their positions. False if nothing changed."""
    i = max(0, min(line, len(lines)) - 1)
    starts = [n for n, text in enumerate(lines) if _CLAUSE_START.match(text)]
    at_clause_start = i in starts and i < len(lines) and (
        column <= len(lines[i]) - len(lines[i].lstrip()) + 1
        or (keyword_read_as_name and _after_keyword(lines[i], column)))
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


# The names a blanked clause declared: a later error about one of them is a consequence
# of the syntax error, not an error of its own.
_DECLARES = re.compile(r"^\s*(?:stream|value|award|mission|table)\s+([A-Za-z_][A-Za-z0-9_]*)")


def parse_recovering(source: str, path: str = "<rules>") -> tuple[ast.RulesFile | None, list[Diagnostic], frozenset]:
    """Parse rules text: (the file, every syntax error, names declared by skipped clauses).

    After a syntax error the broken clause is blanked out (lines kept in place) and the
    file is parsed again, so each further error is a real one, not a consequence of the
    first; when the rest parses, the file is returned without the broken clauses, so
    that its semantic errors can be reported too (`dsl.loader.check_files`)."""
    errors: list[Diagnostic] = limits.scan_source(source, path)  # before lark sees the text
    if errors:
        return None, errors, frozenset()
    lines = source.split("\n")
    original = list(lines)
    text = source
    while True:
        try:
            tree = _parser().parse(text)
            too_deep = limits.tree_depth(tree, path)
            if too_deep is not None:
                return None, errors + [too_deep], frozenset()
            items = ToAst(path).transform(tree)
        except UnexpectedInput as exc:
            diag = _syntax_diagnostic(path, exc, source)
            # `amount >` then `stream ok`: `stream` was read as a name, the error is at `ok`
            token = getattr(exc, "token", None)
            read_as_name = isinstance(exc, UnexpectedToken) and token is not None and token.type == "NAME"
        except VisitError as exc:
            orig = exc.orig_exc
            if not isinstance(orig, InvalidLiteral):
                raise
            tok = orig.token
            diag = Diagnostic(path, tok.line, tok.column, orig.message,
                              end_column=tok.end_column if tok.end_line == tok.line else None)
            read_as_name = False
        except lark.exceptions.LarkError as exc:  # pragma: no cover - defensive
            errors.append(Diagnostic(path, 1, 1, f"syntax error: {exc}"))
            return None, errors, frozenset()
        else:
            kinds = tuple(i for i in items if isinstance(i, ast.KindDecl))
            campaigns = tuple(i for i in items if isinstance(i, ast.Campaign))
            blanked = frozenset(m.group(1) for old, new in zip(original, lines)
                                if old != new and (m := _DECLARES.match(old)))
            return ast.RulesFile(path, source, kinds, campaigns), errors, blanked
        if read_as_name and 1 <= diag.line <= len(lines) and _after_keyword(lines[diag.line - 1], diag.column) \
                and not diag.hint:
            word = lines[diag.line - 1].split()[0]
            diag = attrs.evolve(diag, hint=f"is the clause before it unfinished? `{word}` was read as part of "
                                           "its expression")
        if diag not in errors:
            errors.append(diag)
        if len(errors) >= MAX_SYNTAX_ERRORS or not _skip_broken_clause(lines, diag.line, diag.column, read_as_name):
            return None, errors, frozenset()
        text = "\n".join(lines)


def parse(source: str, path: str = "<rules>") -> ast.RulesFile:
    """Parse rules text into an AST; raises RulesError with every syntax error found."""
    rules, errors, _ = parse_recovering(source, path)
    if errors:
        raise RulesError(errors, {path: source})
    return rules


def read_source(path: str | Path, label: str) -> str:
    """A .rules file's text (UTF-8; a regular file within dsl.limits); RulesError if it
    cannot be read."""
    try:
        data = limits.read_limited(Path(path), limits.MAX_RULES_BYTES)
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text
    except limits.FileRefused as exc:
        raise RulesError([Diagnostic(label, 1, 1, str(exc))]) from None
    except FileNotFoundError:
        raise RulesError([Diagnostic(label, 1, 1, "no such rules file")]) from None
    except UnicodeDecodeError as exc:
        raise RulesError([Diagnostic(label, 1, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except OSError as exc:
        raise RulesError([Diagnostic(label, 1, 1, f"cannot read: {exc.strerror}")]) from None


def parse_file(path: str | Path, display: str | None = None) -> ast.RulesFile:
    """Read and parse one .rules file (UTF-8)."""
    label = display or str(path)
    return parse(read_source(path, label), label)
