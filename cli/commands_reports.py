"""Reports over the whole journal: `balances` and the `report` group
(trial-balance, payouts, liability, html).

The figures come from `points.ledger.reports` and `points.ledger.payouts`; this
module only turns them into text, JSON (shapes in docs/reports.md) or CSV (a header
row, one row per record, plain integers, empty cells for "none").
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Iterable, Sequence

import click

from points.cli import progress
from points.cli.format import DASH, KIND_ORDER, pts, table
from points.cli.options import Finding, as_of_option, db_path, echo_json, open_db
from points.ledger import payouts as payouts_mod
from points.ledger import reports


def output_options(func):
    """`--json` / `--csv`: the result as JSON or as CSV instead of text (not both)."""
    func = click.option("--csv", "as_csv", is_flag=True,
                        help="Print CSV: a header row, one row per record, plain numbers.")(func)
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as JSON (stable keys) instead of text.")(func)


def _form(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together")
    return "json" if as_json else "csv" if as_csv else "text"


def write_csv(header: Sequence[str], rows: Iterable[Sequence]) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if c is None else c for c in r])
    sys.stdout.flush()


def _when(as_of: dt.date | None) -> str:
    return f"at the end of {as_of}" if as_of else "all entries"


def _day(as_of: dt.date | None) -> str | None:
    return as_of.isoformat() if as_of else None


# ---------------------------------------------------------------- balances


def balances_dict(b: reports.Balances, kind: str | None, min_points: int | None) -> dict:
    return {
        "as_of": _day(b.as_of), "kind": kind, "min": min_points,
        "members": [{"member": m.member, "balances": m.balances, "owed": m.owed} for m in b.members],
        "totals": {"members": len(b.members), "balances": b.totals, "owed": b.owed},
    }


@click.command("balances")
@as_of_option
@click.option("--kind", type=click.Choice(KIND_ORDER), default=None,
              help="Only members who hold or owe points of this kind (--min then counts this kind).")
@click.option("--min", "min_points", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only members with at least N points (of --kind, else of some kind).")
@output_options
def balances_cmd(as_of: dt.date | None, kind: str | None, min_points: int | None, as_json: bool,
                 as_csv: bool) -> None:
    """Every member's points per kind and what they owe, with the totals.

    A member is listed once the journal has an account for them (also at zero,
    after their points expired). `owed` is the receivable: points a member owes
    back after a reversal took more than they had; later earnings pay it first.
    Totals are over the members listed.

    \b
    Example:
      points balances
      points balances --as-of 2026-03-31 --kind basic --min 1000
      points balances --csv > balances.csv
    """
    form = _form(as_json, as_csv)
    b = reports.member_balances(open_db(readonly=True), as_of, kind=kind, min_points=min_points)
    if form == "json":
        echo_json(balances_dict(b, kind, min_points))
        return
    if form == "csv":
        write_csv(["member", *KIND_ORDER, "owed", *(f"owed_{k}" for k in KIND_ORDER)],
                  ([m.member, *(m.balances[k] for k in KIND_ORDER), m.owed_total,
                    *(m.owed[k] for k in KIND_ORDER)] for m in b.members))
        return
    click.echo(f"balances, {_when(as_of)}: {len(b.members):,} members")
    rows = [["member", *KIND_ORDER, "owed"]]
    for m in b.members:
        rows.append([m.member, *(pts(m.balances[k]) for k in KIND_ORDER), _owed(m.owed)])
    rows.append(["total", *(pts(b.totals[k]) for k in KIND_ORDER), _owed(b.owed)])
    click.echo(table(rows, right={1, 2, 3, 4}))


def _owed(owed: dict[str, int]) -> str:
    return ", ".join(f"{pts(v)} {k}" for k, v in owed.items() if v) or "0"


# ---------------------------------------------------------------- report group


@click.group("report")
def report_group() -> None:
    """Reports over the whole journal for operations, finance and auditors.

    trial-balance: every account class per kind, summing to zero per kind;
    payouts: per campaign and period, gross, reversed, net, members, winners
    and budget left; liability: outstanding points by expiry month and points
    issued, redeemed and expired per month; html: all of them in one page
    with charts. Each takes --as-of DATE; the tables take --json or --csv.

    \b
    Example:
      points report trial-balance
      points report payouts --campaign yearend-2025 --csv
      points report html -o report.html
    """


def trial_balance_dict(tb: reports.TrialBalance) -> dict:
    return {
        "as_of": _day(tb.as_of), "kinds": list(KIND_ORDER),
        "classes": [{"class": name, "label": label, "accounts": accounts, "amounts": tb.classes[name]}
                    for name, accounts, label in reports.CLASSES],
        "total": tb.total, "balanced": tb.balanced,
    }


@report_group.command("trial-balance")
@as_of_option
@output_options
def trial_balance_cmd(as_of: dt.date | None, as_json: bool, as_csv: bool) -> None:
    """Every account class per kind; the classes sum to zero per kind.

    Classes: member balances, receivables (negative: owed by members),
    campaign budgets, funding (negative: everything the issuer put in),
    redeemed and expired. Member balances plus receivables equal the totals
    of `points balances`. Exit status 1 if some kind does not sum to zero.

    \b
    Example:
      points report trial-balance
      points report trial-balance --as-of 2026-03-31 --json
    """
    form = _form(as_json, as_csv)
    tb = reports.trial_balance(open_db(readonly=True), as_of)
    if form == "json":
        echo_json(trial_balance_dict(tb))
    elif form == "csv":
        write_csv(["class", "accounts", *KIND_ORDER],
                  ([name, accounts, *(tb.classes[name][k] for k in KIND_ORDER)]
                   for name, accounts, _ in reports.CLASSES))
    else:
        click.echo(f"trial balance, {_when(as_of)}")
        rows = [["class", "accounts", *KIND_ORDER]]
        for name, accounts, label in reports.CLASSES:
            rows.append([label, accounts, *(pts(tb.classes[name][k]) for k in KIND_ORDER)])
        rows.append(["total", "", *(pts(tb.total[k]) for k in KIND_ORDER)])
        click.echo(table(rows, right={2, 3, 4}))
        if tb.balanced:
            click.echo(f"sums to zero per kind: yes ({', '.join(KIND_ORDER)})")
        else:
            off = ", ".join(f"{k} {tb.total[k]:+,}" for k in KIND_ORDER if tb.total[k])
            click.echo(f"sums to zero per kind: NO ({off})")
    if not tb.balanced:
        raise click.exceptions.Exit(1)


def payouts_dict(found: list[payouts_mod.CampaignPayout], as_of: dt.date | None) -> dict:
    return {"as_of": _day(as_of), "campaigns": [{
        "campaign": c.campaign,
        "budget": None if c.budget is None else {"kind": c.budget_kind, "funded": c.budget,
                                                  "left": c.budget_left},
        "members": c.members,
        "periods": [{"period": r.period, "kind": r.kind, "first_day": r.first_day, "gross": r.gross,
                     "reversed": r.reversed, "net": r.net, "members": r.members, "winners": r.winners,
                     "budget": r.budget, "budget_left": r.budget_left} for r in c.rows],
        "total": {"gross": c.total("gross"), "reversed": c.total("reversed"), "net": c.total("net")},
    } for c in found]}


PAYOUT_FIELDS = ("campaign", "period", "kind", "first_day", "gross", "reversed", "net", "members",
                 "winners", "budget", "budget_left")


@report_group.command("payouts")
@click.option("--campaign", default=None, metavar="NAME", help="Only this campaign.")
@as_of_option
@output_options
def payouts_cmd(campaign: str | None, as_of: dt.date | None, as_json: bool, as_csv: bool) -> None:
    """Per campaign and period: points paid, reversed, net, members, winners, budget left.

    Read from the journal alone (no rules needed): gross is what the awards
    credited, reversed what later reversals took back, net the difference
    (the `paid` of `points campaigns`). Members: those with a positive net in
    that period and kind; winners: lottery winners drawn for awards of that
    kind; budget left: after that period's payments (periods in date order).

    \b
    Example:
      points report payouts
      points report payouts --campaign jwest-card --as-of 2025-12-31 --csv
    """
    form = _form(as_json, as_csv)
    conn = open_db(readonly=True)
    found = payouts_mod.payouts(conn, as_of, campaign)
    if campaign is not None and not found:
        names = ", ".join(payouts_mod.campaign_names(conn, as_of)) or "none"
        until = f" up to {as_of}" if as_of else ""
        raise Finding(f"no entries for campaign {campaign!r}{until} (campaigns with entries: {names})")
    if form == "json":
        echo_json(payouts_dict(found, as_of))
        return
    if form == "csv":
        write_csv(PAYOUT_FIELDS, ([getattr(r, f) for f in PAYOUT_FIELDS] for c in found for r in c.rows))
        return
    click.echo(f"payouts, {_when(as_of)}")
    for c in found:
        budget = "no budget" if c.budget is None else \
            f"budget {pts(c.budget)} {c.budget_kind}, {pts(c.budget_left)} left"
        click.echo(f"{c.campaign}: {budget}; {c.members:,} members paid")
        rows = [["period", "kind", "from", "gross", "reversed", "net", "members", "winners", "budget left"]]
        for r in c.rows:
            rows.append([r.period, r.kind, r.first_day, pts(r.gross), pts(r.reversed), pts(r.net),
                         f"{r.members:,}", pts(r.winners), pts(r.budget_left)])
        click.echo(table(rows, right={3, 4, 5, 6, 7, 8}))


def liability_dict(li: reports.Liability) -> dict:
    return {
        "as_of": _day(li.as_of),
        "outstanding": [{"kind": k, "expires": m, "points": n} for (k, m), n in li.outstanding.items()],
        "outstanding_total": li.outstanding_by_kind(), "owed": li.owed,
        "months": [{"month": f.month, "kind": f.kind, "issued": f.issued, "reversed": f.reversed,
                    "redeemed": f.redeemed, "expired": f.expired, "net": f.net} for f in li.flows],
    }


def liability_rows(li: reports.Liability) -> list[list]:
    """One row per (month, kind): that month's flows and the outstanding points expiring in it."""
    flows = {(f.month, f.kind): f for f in li.flows}
    keys = set(flows) | {(m, k) for (k, m) in li.outstanding}
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    out = []
    for month, kind in sorted(keys, key=lambda x: (x[0], rank[x[1]])):
        f = flows.get((month, kind))
        nums = [f.issued, f.reversed, f.redeemed, f.expired, f.net] if f else [0] * 5
        out.append([month, kind, *nums, li.outstanding.get((kind, month), 0)])
    return out


@report_group.command("liability")
@as_of_option
@output_options
def liability_cmd(as_of: dt.date | None, as_json: bool, as_csv: bool) -> None:
    """Points owed to members by kind and expiry month; issued, redeemed, expired per month.

    Outstanding: what is left of every lot, by the month it expires in (what
    finance books as a liability and forecasts as breakage). Per month (by
    effective date): points issued by campaigns, reversed back to them,
    redeemed and expired, and the net change. --csv: one row per month and
    kind with those flows and the outstanding points expiring that month.

    \b
    Example:
      points report liability
      points report liability --as-of 2026-03-31 --csv
    """
    form = _form(as_json, as_csv)
    li = reports.liability(open_db(readonly=True), as_of)
    if form == "json":
        echo_json(liability_dict(li))
        return
    if form == "csv":
        write_csv(["month", "kind", "issued", "reversed", "redeemed", "expired", "net",
                   "outstanding_expiring"], liability_rows(li))
        return
    click.echo(f"liability, {_when(as_of)}")
    total = li.outstanding_by_kind()
    click.echo("outstanding by expiry month: " + (", ".join(
        f"{pts(total[k])} {k}" for k in KIND_ORDER if total[k]) or "none"))
    if li.outstanding:
        rows = [["expires", "kind", "points"]]
        rows += [[m, k, pts(n)] for (k, m), n in li.outstanding.items()]
        click.echo(table(rows, right={2}))
    if any(li.owed.values()):
        click.echo("owed by members (receivables): " + _owed(li.owed))
    click.echo("per month:")
    rows = [["month", "kind", "issued", "reversed", "redeemed", "expired", "net"]]
    for f in li.flows:
        rows.append([f.month, f.kind, pts(f.issued), pts(f.reversed), pts(f.redeemed), pts(f.expired),
                     f"{f.net:+,}" if f.net else "0"])
    click.echo(table(rows, right={2, 3, 4, 5, 6}) if li.flows else f"  {DASH}")


@report_group.command("html")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              metavar="FILE",
              help="The HTML file to write (replaced if it exists; never a database, see docs/reliability.md).")
@as_of_option
def html_cmd(output: Path, as_of: dt.date | None) -> None:
    """One self-contained HTML page with every report and its charts.

    Charts: budget burn-down per campaign, outstanding points by expiry
    month, points issued / redeemed / expired per month, and the distribution
    of awards per campaign, each beside its table. The page loads nothing
    from the network (charts are inline SVG drawn by matplotlib).

    \b
    Example:
      points report html -o report.html
      points report html -o report-march.html --as-of 2026-03-31
    """
    from points.cli import html_report

    from points.cli.outfile import check_output, replacing

    conn = open_db(readonly=True)
    check_output(output, db_path())  # before the drawing, which takes seconds on a big journal
    with progress.activity("drawing the report"):
        text = html_report.render(conn, as_of)
    with replacing(output, db_path()) as tmp:
        tmp.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


COMMANDS = (balances_cmd, report_group)
