"""Checks that need the whole campaign: dependency cycles and awards that can never be cleared."""

from __future__ import annotations

from points.dsl import ast
from points.dsl.check_common import (
    NON_NEGATIVE_AGGREGATES, ORDERED_OPS, Scope, conjuncts, dependency_loops, int_lit, walk,
)


class ReachabilityChecker:
    """Cycles between streams and values, and unreachable awards."""

    def __init__(self, scope: Scope):
        self.s = scope

    # ------------------------------------------------------------ graphs
    def check_stream_cycles(self, deps: dict[str, dict]) -> None:
        for s, reads in deps.items():
            if s in reads:
                self.s.err(reads[s], f"stream {s} cannot use an aggregate of itself in its own filter "
                         "(through a value)", "aggregate another stream, or compute it per member")
        for loop, span in dependency_loops(deps, list(deps)):
            self.s.err(span, "streams depend on each other through their filters: " + " -> ".join(loop),
                       "a stream's filter may aggregate other streams, not in a loop")

    def check_value_cycles(self) -> None:
        nodes: dict[str, tuple[object, list]] = {}
        for v in self.s.c.values:
            nodes.setdefault(v.name, (v, [v.expr]))
        for a in self.s.c.awards:
            exprs = [a.amount] + ([a.when] if a.when is not None else [])
            if isinstance(a.pay, ast.PayMonthAfter):
                exprs.append(a.pay.after)
            nodes.setdefault(a.name, (a, exprs))
        deps = {}
        for name, (_, exprs) in nodes.items():
            out = []
            for e in exprs:
                for x in walk(e):
                    if isinstance(x, ast.Name) and x.name in nodes and x.name not in out:
                        out.append(x.name)
            deps[name] = out
        state: dict[str, int] = {}
        reported: set[frozenset] = set()

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for d in deps[name]:
                if state.get(d) == 1:
                    cycle = path[path.index(d):] + [d]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        first = min((nodes[x][0] for x in set(cycle)), key=lambda n: (n.span.line, n.span.column))
                        self.s.err(first.span, f"{first.name} depends on itself: " + " -> ".join(cycle),
                                 "a value cannot be computed from itself")
                elif state.get(d) is None:
                    visit(d, path + [d])
            state[name] = 2

        for name in nodes:
            if state.get(name) is None:
                visit(name, [name])

    # ------------------------------------------------------------ unreachable missions
    def check_unreachable(self, dead_streams: dict[str, str]) -> None:
        dead: dict[str, str] = {}
        for a in self.s.c.awards:
            if a.when is not None:
                reason = self._contradiction(a.when, dead_streams)
                if reason:
                    dead[a.name] = reason
                    self.s.err(a.when.span, f"{'mission' if a.is_mission else 'award'} {a.name} can never be "
                             f"cleared: {reason}")
        changed = True
        while changed:
            changed = False
            for a in self.s.c.awards:
                if a.name in dead or a.when is None:
                    continue
                for part in conjuncts(a.when):
                    if isinstance(part, ast.Name) and part.name in dead and part.name in self.s.awards \
                            and part.name != a.name:
                        other = self.s.awards[part.name]
                        reason = (f"it needs {'mission' if other.is_mission else 'award'} {part.name}, "
                                  "which can never be cleared")
                        dead[a.name] = reason
                        self.s.err(a.when.span, f"{'mission' if a.is_mission else 'award'} {a.name} can never "
                                 f"be cleared: {reason}")
                        changed = True
                        break

    def _contradiction(self, cond, dead_streams) -> str | None:
        bounds: dict = {}
        for part in conjuncts(cond):
            if isinstance(part, ast.Literal) and part.value is False:
                return "its condition is false" if part is cond else f"`{self.s.text(part)}` is never true"
            stream = self._needs_stream(part)
            if stream in dead_streams:
                return f"it needs events of stream {stream}, which never matches"
            for key, lo, hi in self._int_bounds(part):
                b = bounds.setdefault(key, {"lo": None, "hi": None})
                if isinstance(key, ast.Call) and key.func in NON_NEGATIVE_AGGREGATES and b["lo"] is None:
                    b["lo"] = (0, None)
                if lo is not None and (b["lo"] is None or lo > b["lo"][0]):
                    b["lo"] = (lo, part)
                if hi is not None and (b["hi"] is None or hi < b["hi"][0]):
                    b["hi"] = (hi, part)
                if b["lo"] is not None and b["hi"] is not None and b["lo"][0] > b["hi"][0]:
                    lo_part, hi_part = b["lo"][1], b["hi"][1]
                    if lo_part is None:
                        return f"`{self.s.text(hi_part)}` is never true ({key.func}() is never negative)"
                    if lo_part is hi_part:
                        return f"`{self.s.text(hi_part)}` is never true"
                    first, second = sorted([lo_part, hi_part], key=lambda p: (p.span.line, p.span.column))
                    return f"`{self.s.text(first)}` and `{self.s.text(second)}` contradict"
        return None

    def _needs_stream(self, part) -> str | None:
        """The stream a conjunct needs at least one event of, if obvious."""
        if isinstance(part, ast.Call) and part.func in ("exists", "any") and len(part.args) == 1:
            arg = part.args[0]
            return arg.name if isinstance(arg, ast.Name) else arg.stream if isinstance(arg, ast.Filtered) \
                else arg.base if isinstance(arg, ast.Dotted) else None
        if isinstance(part, ast.Compare) and part.op in (">=", ">") and isinstance(part.left, ast.Call) \
                and part.left.func in NON_NEGATIVE_AGGREGATES and len(part.left.args) == 1:
            n = int_lit(part.right)
            if n is not None and (n >= 1 if part.op == ">=" else n >= 0):
                arg = part.left.args[0]
                return arg.name if isinstance(arg, ast.Name) else arg.stream if isinstance(arg, ast.Filtered) \
                    else arg.base if isinstance(arg, ast.Dotted) else None
        return None

    def _int_bounds(self, part):
        """(expression, low, high) integer bounds that conjunct `part` puts on an expression."""
        if isinstance(part, ast.Compare) and part.op in ORDERED_OPS | {"=="}:
            left, right, op = part.left, part.right, part.op
            if int_lit(left) is not None and int_lit(right) is None:
                left, right = right, left
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            n = int_lit(right)
            if n is None or int_lit(left) is not None:
                return []
            if not isinstance(left, (ast.Call, ast.Name)):
                return []
            return [(left, *{"<": (None, n - 1), "<=": (None, n), ">": (n + 1, None), ">=": (n, None),
                             "==": (n, n)}[op])]
        if isinstance(part, ast.InRange) and isinstance(part.value, (ast.Call, ast.Name)):
            lo, hi = int_lit(part.low), int_lit(part.high)
            if lo is not None and hi is not None:
                return [(part.value, lo, hi if part.inclusive_end else hi - 1)]
        return []
