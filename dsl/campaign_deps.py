"""Campaigns that read each other's awards (`awarded("gold-status", "gold")`): the
references checked across files (the campaign and its award exist, no loop) and the
order a run settles them in on one day (a campaign after those it reads)."""

from __future__ import annotations

from points.dsl import ast
from points.dsl import symbols as sym
from points.dsl.check_common import dependency_loops, walk
from points.dsl.errors import Diagnostic, at


def references(c: ast.Campaign) -> list[tuple[str, str, ast.Span]]:
    """(campaign, award, span) of every other campaign's award this campaign reads."""
    exprs = [v.expr for v in c.values]
    for a in c.awards:
        exprs += [a.amount, a.when]
        pay = a.pay or c.payday
        if isinstance(pay, ast.PayMonthAfter):
            exprs.append(pay.after)
    out = []
    for e in exprs:
        for x in walk(e):
            if (isinstance(x, ast.Call) and x.func in sym.CAMPAIGN_FUNCTIONS and len(x.args) == 2
                    and all(isinstance(a, ast.Literal) and isinstance(a.value, str) for a in x.args)):
                out.append((x.args[0].value, x.args[1].value, x.span))
    return out


def check_references(campaigns: dict[str, ast.Campaign]) -> list[Diagnostic]:
    diags = []
    deps: dict[str, dict[str, ast.Span]] = {}
    for name, c in campaigns.items():
        deps[name] = {}
        for other, award, span in references(c):
            if other == name:  # reported by the file's own check
                continue
            target = campaigns.get(other)
            if target is None:
                diags.append(at(span, f"no campaign {other} in the rules folder",
                                "known: " + ", ".join(sorted(campaigns))))
            elif award not in {a.name for a in target.awards}:
                diags.append(at(span, f"campaign {other} has no award {award}",
                                "its awards: " + ", ".join(a.name for a in target.awards)))
            else:
                deps[name].setdefault(other, span)
    for loop, span in dependency_loops(deps, sorted(deps)):
        diags.append(at(span, "campaigns read each other's awards in a loop: " + " -> ".join(loop),
                        "one of them must not depend on the other"))
    return diags


def run_order(campaigns: list[ast.Campaign]) -> tuple[str, ...]:
    """Campaign names in the order a day's checkpoints settle them: each after the
    campaigns whose awards it reads, by name otherwise (checked: no loop)."""
    names = {c.name: c for c in campaigns}
    deps = {c.name: sorted({o for o, _, _ in references(c) if o in names and o != c.name}) for c in campaigns}
    out: list[str] = []
    done: set[str] = set()

    def place(name: str, seen: frozenset) -> None:
        if name in done or name in seen:
            return
        for other in deps[name]:
            place(other, seen | {name})
        done.add(name)
        out.append(name)

    for name in sorted(names):
        place(name, frozenset())
    return tuple(out)
