"""Lark's parse tree -> frozen AST nodes with spans: one Transformer, one method per
grammar rule (`grammar.lark`). Used by `dsl.parser`."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from lark import Token, Transformer, v_args

from points.dsl import ast


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
                raise InvalidLiteral(token, f"invalid escape \\u{body[i + 2: i + 6]} in a string (a lone surrogate)")
            out.append(chr(code))
            i += 6
        else:
            raise InvalidLiteral(token, f"invalid escape \\{nxt} in a string (use \\\" \\\\ \\n \\t or \\uXXXX)")
    return "".join(out)


def _int(token: Token) -> int:
    return int(str(token).replace("_", ""))


class InvalidLiteral(Exception):
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
            raise InvalidLiteral(tok, f"not a valid date: {tok}") from None

    def date_lit(self, meta, c):
        return ast.Literal(self._date(c[0]), self._span(meta))

    def time_lit(self, meta, c):
        text = str(c[0])
        try:
            value = dt.time.fromisoformat(text if text.count(":") == 2 else text + ":00")
        except ValueError:
            raise InvalidLiteral(c[0], f"not a valid time of day: {text}") from None
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
            raise InvalidLiteral(c[0], f"expected `sum over STREAM by FIELD: (...)`, not `{c[0]} over`")
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
        policy = c[2] if len(c) > 2 else "all or nothing"
        return ("budget", ast.Budget(_int(c[0]), str(c[1]), self._span(meta), policy), self._span(meta))

    def all_or_nothing(self, meta, c):
        return "all or nothing"

    def first_come_first_served(self, meta, c):
        return "first come first served"

    def pro_rata(self, meta, c):
        return "pro rata"

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

    def credit(self, meta, c):
        return ("credit", str(c[0]))

    def undo(self, meta, c):
        return ("undo", tuple(str(x) for x in c))

    def stream(self, meta, c):
        name, etype = str(c[0]), c[1]
        where, fields, undo, credit = None, [], (), None
        for part in c[2:]:
            if isinstance(part, ast.FieldDef):
                fields.append(part)
            elif part[0] == "credit":
                credit = part[1]
            elif part[0] == "where":
                where = part[1]
            else:  # `undone by` before or after the fields, once or more
                undo = undo + tuple(u for u in part[1] if u not in undo)
        node = ast.Stream(name, str(etype), where, tuple(fields), undo, self._span(meta), self._tok_span(etype),
                          credit)
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
