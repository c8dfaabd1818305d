"""Commands about rules and the whole journal: check, campaigns, verify, export."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import click

from points.cli import progress
from points.cli.format import DASH, pts, table
from points.cli.options import (Finding, db_path, default_rules_dir, echo_json, json_option, load_rules, open_db,
                      rules_option)

# ---------------------------------------------------------------- check


@click.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def check_cmd(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check rules files (or folders of them) without running anything.

    Every problem is printed as `path:line:col: message`, then the source
    line with a caret under the spot (and a hint when there is one); the exit
    status is then 1. A warning (`path:line:col: warning: ...`: a clause the
    engine ignores) is printed the same way but does not fail the check. Tables named by the rules are read from the file's
    folder (DIR/data/ for a folder).

    \b
    Example:
      points check rules/
      points check rules/yearend-2025.rules
    """
    from points.dsl.errors import Diagnostic
    from points.dsl.loader import check_files, rules_files

    groups: dict[Path, list[Path]] = defaultdict(list)
    diagnostics: list = []
    sources: dict[str, str] = {}
    for p in paths:
        if p.is_dir():
            found = rules_files(p)
            if not found:
                diagnostics.append(Diagnostic(str(p), 1, 1, "no .rules files in this folder"))
            groups[p].extend(found)
        elif p.is_file():
            groups[p.parent].append(p)
        else:
            diagnostics.append(Diagnostic(str(p), 1, 1, "no such file or folder"))
    files = campaigns = 0
    for folder, group in groups.items():
        if not group:
            continue
        parsed, found, srcs = check_files(group, folder)
        diagnostics.extend(found)
        sources.update(srcs)
        files += len(group)
        campaigns += sum(len(rules.campaigns) for _, rules, _ in parsed)
    diagnostics.sort(key=Diagnostic.sort_key)
    errors = [d for d in diagnostics if d.is_error]
    warnings = len(diagnostics) - len(errors)
    if as_json:
        echo_json({"ok": not errors, "files": files, "campaigns": campaigns,
                   "diagnostics": [{"path": d.path, "line": d.line, "column": d.column,
                                    "message": d.message, "hint": d.hint, "severity": d.severity}
                                   for d in diagnostics]})
    else:
        for d in diagnostics:
            click.echo(d.format(sources.get(d.path)))
        if not errors:
            more = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
            click.echo(f"ok: {files} files, {campaigns} campaigns{more}")
    if errors:
        raise click.exceptions.Exit(1)


# ---------------------------------------------------------------- campaigns


def _today() -> dt.date:
    from points.cli.format import today

    return today()


def campaign_dicts(conn, rules) -> dict:
    from points.engine.calendar import next_pay_date
    from points.engine.runs import latest_run
    from points.ledger.lots import expiring_points
    from points.ledger.payouts import payouts

    by_name = {p.campaign: p for p in payouts(conn)}
    last = latest_run(conn)
    latest = last.until if last else None
    horizon = latest or _today()
    out = {}
    for lc in rules.campaigns:
        c = lc.plan.campaign
        window = None
        if c.window is not None:
            window = {"from": c.window.low.value.isoformat(), "to": c.window.high.value.isoformat()}
        cycle = None if c.cycle is None else (
            {"calendar": c.cycle.calendar} if c.cycle.calendar
            else {"start_day": c.cycle.start_day, "end_day": c.cycle.end_day})
        nxt = next_pay_date(lc.plan, latest, _today())
        # Budget, points and members paid: the journal's payouts (ledger.payouts), the same
        # figures `report payouts` shows; a campaign with no entry yet has paid nothing.
        paid = by_name.get(lc.name)
        budget = None
        if c.budget is not None:
            funded = paid.budget if paid is not None and paid.budget is not None else 0
            remaining = paid.budget_left if paid is not None and paid.budget_left is not None else 0
            budget = {"kind": c.budget.kind, "total": c.budget.amount, "funded": funded,
                      "paid": funded - remaining, "remaining": remaining}
        points = paid.total("net") if paid is not None else {}
        # Winners of every draw, also one whose winners were paid nothing yet (payouts count
        # winners only under a kind they were paid in).
        winners = None
        has_lottery = any(a.lottery is not None for a in lc.plan.awards.values())
        if has_lottery:
            winners = 0
            for (memo,) in conn.execute(
                    "SELECT memo FROM entries WHERE campaign = ? AND key LIKE 'draw:%'", (lc.name,)):
                winners += len(json.loads(memo).get("winners", ()))
        expiring = {}
        for days in (30, 90):
            expiring[f"{days}_days"] = expiring_points(
                conn, lc.name, horizon, horizon + dt.timedelta(days=days))
        out[lc.name] = {
            "title": c.title,
            "file": lc.file,
            "window": window,
            "cycle": cycle,
            "next_step": nxt.isoformat() if nxt else None,
            "budget": budget,
            "points_paid": {k: v for k, v in sorted(points.items())},
            "members_paid": paid.members if paid is not None else 0,
            "winners": winners,
            "expiring": expiring,
        }
    return {"latest_run": latest.isoformat() if latest else None, "campaigns": out}


@click.command("campaigns")
@rules_option
@json_option
def campaigns_cmd(rules_dir: Path | None, as_json: bool) -> None:
    """Every campaign: window, next step, budget, members paid, winners, expiring points.

    The next step is the first payment date after the latest `run --until`;
    expiring points are those of the campaign's grants still unspent that
    expire within 30 / 90 days after that date.

    \b
    Example:
      points campaigns
      points campaigns --rules rules/ --json
    """
    rules = load_rules(rules_dir)
    data = campaign_dicts(open_db(readonly=True), rules)
    if as_json:
        echo_json(data)
        return
    click.echo(f"latest run: until {data['latest_run'] or DASH}")
    for name, c in data["campaigns"].items():
        click.echo(f"{name}  {c['title']}")
        if c["window"]:
            when = f"{c['window']['from']} .. {c['window']['to']}"
        elif c["cycle"]:
            when = (f"every calendar {c['cycle']['calendar']}" if c["cycle"].get("calendar")
                    else f"monthly, day {c['cycle']['start_day']} to day {c['cycle']['end_day']}")
        else:
            when = DASH
        rows = [["window", when], ["next step", c["next_step"] or DASH]]
        b = c["budget"]
        if b:
            rows.append(["budget", f"{pts(b['funded'])} {b['kind']} funded, {pts(b['paid'])} paid, "
                                   f"{pts(b['remaining'])} remaining"])
        else:
            rows.append(["budget", DASH])
        paid = ", ".join(f"{pts(v)} {k}" for k, v in c["points_paid"].items()) or "0"
        rows.append(["paid", f"{paid} to {c['members_paid']:,} members"])
        if c["winners"] is not None:
            rows.append(["winners", f"{c['winners']:,}"])
        rows.append(["expiring", f"{pts(c['expiring']['30_days'])} in 30 days, "
                                 f"{pts(c['expiring']['90_days'])} in 90 days"])
        click.echo(table(rows))


# ---------------------------------------------------------------- verify


def _entry_hash(ctx, param, value: str | None) -> str | None:
    """--expect-head: an entry's sha256, 64 hex digits (either case); else a usage error."""
    if value is None:
        return None
    text = value.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise click.BadParameter(f"{value!r} is not an entry hash: expected 64 hex digits, as "
                                 "printed by `points verify` (head: entry SEQ sha256 HEX)")
    return text.lower()


@click.command("verify")
@rules_option
@click.option("--expect-head", "expect_head", default=None, metavar="HEX", callback=_entry_hash,
              help="Fail unless this entry hash (64 hex digits, a head printed earlier) is still "
                   "on the chain.")
@click.option("--bundle", "bundle", default=None, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify this bundle (from `export --format bundle`) instead of --db.")
@json_option
def verify_cmd(rules_dir: Path | None, expect_head: str | None, bundle: Path | None,
               as_json: bool) -> None:
    """Check the chains and every promise of the journal; replay every run.

    Opens the database read-only and needs no rules folder: it checks the
    events and entries hash chains, zero sum per kind, lots, budgets and
    receivables, the stored rules files against their hashes, then replays
    every run with the rules set that run recorded and compares every entry
    bit for bit (a difference is listed field by field). It prints what was
    checked with counts, the rules set of each run and the head of both
    chains (`head: entry SEQ sha256 HEX`; keep it: `--expect-head HEX` later
    fails if the journal no longer holds it). `--rules DIR` also reports each
    file or table of DIR that differs from the latest run's rules. To verify
    on another machine: `points export --format bundle -o FILE`, then
    `points --db FILE verify`. Any problem: exit status 1.

    \b
    Example:
      points verify
      points verify --expect-head 3f1c...e9 --json
      points verify --rules rules/
      points verify --bundle audit-2026-11.points
    """
    from points.engine.audit import audit, render

    conn = open_db(readonly=True, path=bundle)
    with progress.activity("verifying"):  # stderr, only on a terminal
        data = audit(conn, rules_dir=default_rules_dir(rules_dir), expect_head=expect_head,
                     compare_dir=rules_dir)
    if as_json:
        echo_json(data)
    else:
        click.echo(render(data))
    if not data["ok"]:
        raise click.exceptions.Exit(1)


# ---------------------------------------------------------------- export


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "beancount", "bundle"]), required=True,
              help="jsonl: one entry a line; csv: one posting a row; beancount: a ledger for "
                   "bean-check; bundle: the database with its events and recorded rules (-o needed).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Write to FILE instead of stdout (replaced if it exists; never a database).")
def export_cmd(fmt: str, output: Path | None) -> None:
    """Export the whole journal as JSON Lines, CSV, a beancount ledger or a bundle.

    jsonl: one object per entry with its postings; csv: one row per posting
    with the entry's columns; beancount: commodities PTBASIC, PTLIMITED,
    PTCHARGE, every account opened, signs from the issuer's side (member
    points are negative liabilities), one transaction per entry with seq, key,
    hash, source events, rules hash and lottery draw as metadata (loads in
    bean-check without errors); bundle: one file holding the events, the
    journal and every recorded rules set, which `points --db FILE verify` (or
    `points verify --bundle FILE`) verifies on any machine, needing nothing else.

    \b
    Example:
      points export --format jsonl > journal.jsonl
      points export --format beancount --output journal.beancount
      points export --format bundle -o audit-2026-11.points
    """
    from points.cli import export

    from points.cli.outfile import check_output, replacing

    if fmt == "bundle" and output is None:
        raise click.UsageError("--format bundle needs --output FILE (the bundle is a database file)")
    conn = open_db(readonly=True)
    if output is not None:
        check_output(output, db_path())  # before the export, which takes a while on a big journal
    if fmt == "bundle":
        with replacing(output, db_path()) as tmp:
            with progress.activity("exporting"):
                export.write_bundle(conn, tmp)
            tmp.chmod(0o600)  # as private as the database it copies
        click.echo(f"wrote {output}", err=True)
        return
    writer = {"jsonl": export.write_jsonl, "csv": export.write_csv,
              "beancount": export.write_beancount}[fmt]
    if output is None:
        with progress.activity("exporting"):
            writer(conn, sys.stdout)
        sys.stdout.flush()
        return
    with replacing(output, db_path()) as tmp:
        with open(tmp, "x", encoding="utf-8", newline="") as f, progress.activity("exporting"):
            writer(conn, f)
    click.echo(f"wrote {output}", err=True)


COMMANDS = (check_cmd, campaigns_cmd, verify_cmd, export_cmd)
