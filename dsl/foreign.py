"""What rule writers try that is not part of the language, and what to write instead.

Names and functions from spreadsheets, SQL and programming languages; the checker and
the parser say plainly that the construct is not in the language and name the form
that does the job.
"""

from __future__ import annotations

from points.dsl import ast

WEEKDAY_HINT = ("weekdays are written mon, tue, wed, thu, fri, sat, sun: "
                "e.g. `weekday == sat` or `weekday in [sat, sun]`")
_WEEKDAY_WORDS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                  "mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays", "sundays",
                  "weekend", "weekends", "weekday_name"}
_WEEKDAY_SHORT = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


def weekday_hint(name: str) -> str | None:
    """A hint when `name` is a weekday written otherwise than the language's mon..sun."""
    low = name.lower()
    if low in _WEEKDAY_WORDS or (low in _WEEKDAY_SHORT and name != low):
        if low.startswith("weekend"):
            return "a weekend is `weekday in [sat, sun]`; " + WEEKDAY_HINT
        return WEEKDAY_HINT
    return None


# function -> what to write instead
FUNCTIONS = {
    "avg": "an average is `sum(s.f) / count(s)`, rounded: `floor(sum(s.f) / count(s))`",
    "average": "an average is `sum(s.f) / count(s)`, rounded: `floor(sum(s.f) / count(s))`",
    "mean": "an average is `sum(s.f) / count(s)`, rounded: `floor(sum(s.f) / count(s))`",
    "if": "a choice is written `A if CONDITION else B`",
    "iif": "a choice is written `A if CONDITION else B`",
    "case": "a choice is written `A if CONDITION else B` (chain them for more)",
    "countif": "count some events with `count(s where CONDITION)`",
    "sumif": "add up some events with `sum(s where ...)`: declare a stream with that filter, "
             "or use `sum over`; per event, `field x = amount if CONDITION else 0`",
    "len": "the number of events is `count(s)`",
    "length": "the number of events is `count(s)`",
    "size": "the number of events is `count(s)`",
    "coalesce": "write `x if x != none else DEFAULT`",
    "ifnull": "write `x if x != none else DEFAULT`",
    "mod": "there is no remainder operator; round instead: `trunc(x, 1_000)` drops the part under 1,000",
    "rounddown": "round down with `floor(x)` (or `floor(x, 100)` to a step)",
    "roundup": "round up with `ceil(x)`",
    "round_down": "round down with `floor(x)`",
    "round_up": "round up with `ceil(x)`",
    "int": "numbers are whole already; round a fraction with floor(), ceil(), trunc() or round()",
    "today": "there is no clock in the rules: a campaign is evaluated at its periods and payment "
             "dates; use `period`, `window` or a date",
    "now": "there is no clock in the rules: use `period`, `window` or a date",
    "date_add": "add days to a date with `DATE + 30 days`",
    "dateadd": "add days to a date with `DATE + 30 days`",
    "datediff": "the days between two dates are `days_between(EARLIER, LATER)`",
    "date_diff": "the days between two dates are `days_between(EARLIER, LATER)`",
    "rank": "an event's rank in its stream is `nth`, in an aggregate's filter: `count(s where nth >= 11)`",
    "row_number": "an event's rank in its stream is `nth`, in an aggregate's filter: `count(s where nth >= 11)`",
    "percent": "a percentage is written `5%`: `floor(amount * 5%)`",
}

# name -> what to write instead
NAMES = {
    "today": FUNCTIONS["today"],
    "now": FUNCTIONS["now"],
    "null": "nothing is written `none`",
    "nil": "nothing is written `none`",
    "None": "nothing is written `none`",
    "True": "true is written `true`",
    "False": "false is written `false`",
    "and_": "write `and`",
    "elif": "a chain of choices is `A if C1 else B if C2 else D`",
    "rank": FUNCTIONS["rank"],
}


def not_in_language(word: str, table: dict) -> str | None:
    found = table.get(word) or table.get(word.lower())
    return f"`{word}` is not part of the rules language: {found}" if found else None


def dashed(scope, n: ast.BinOp, ctx) -> bool:
    """`jwest-card.monthly`, `first-day`: a dash between two words with no space reads
    as a minus; said plainly when a side is not a known name."""
    left, right = n.left, n.right
    while isinstance(left, ast.BinOp) and left.op != "-":  # `a + first-day`: the name before the dash
        left = left.right
    if not (isinstance(left, ast.Name) and isinstance(right, (ast.Name, ast.Dotted))):
        return False
    if not (left.span.end_line == right.span.line and left.span.end_column + 1 == right.span.column):
        return False
    known = set(scope.values) | set(scope.awards) | set(ctx.fields or {}) | set(ctx.key_types or {})
    right_name = right.name if isinstance(right, ast.Name) else right.base
    if left.name in known and (right_name in known or right_name in scope.streams):
        return False
    span = ast.Span(n.span.path, left.span.line, left.span.column, right.span.end_line, right.span.end_column)
    text = f"{left.name}-{right.name}" if isinstance(right, ast.Name) else f"{left.name}-{right.base}.{right.attr}"
    if isinstance(right, ast.Dotted):
        scope.err(span, f"`{text}` reads as `{left.name} - {right.base}.{right.attr}`: another "
                   "campaign's award is read with awarded() or award_date()",
                   f'e.g. `awarded("{left.name}-{right.base}", "{right.attr}") > 0`')
    else:
        scope.err(span, f"`{text}` reads as `{left.name} - {right.name}`: names are written with "
                   f"`_`, as in `{left.name}_{right.name}`", "a dash is a minus; write `a - b` with spaces")
    return True

def foreign_name(scope, n: ast.Name) -> bool:
    """A weekday written otherwise, or a name from another language: said plainly."""
    hint = weekday_hint(n.name)
    if hint:
        scope.err(n.span, f"unknown name {n.name}: not a weekday of the language", hint)
        return True
    said = not_in_language(n.name, NAMES)
    if said:
        scope.err(n.span, said)
        return True
    return False
