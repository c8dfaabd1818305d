"""`points demo`: the bundled sample events through every seed program, summarised."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import click

from points.cli.format import KIND_ORDER, pts, table
from points.cli.options import Finding, bundled_rules_dir, open_db

DEMO_UNTIL = dt.date(2028, 12, 31)  # the latest date any seed program needs


def sample_events_path() -> Path:
    """The bundled sample events: rules/samples/events.jsonl of the installed package."""
    return bundled_rules_dir() / "samples" / "events.jsonl"


def _demo_db(ctx: click.Context, db: Path | None) -> Path:
    if db is not None:
        return db
    root = ctx.find_root()
    if root.get_parameter_source("db") == click.core.ParameterSource.COMMANDLINE:
        return Path(root.params["db"])
    return Path(tempfile.mkdtemp(prefix="points-demo-")) / "points.db"


def _refuse_used(path: Path) -> None:
    """The demo writes 182 sample events and their entries for good: only into a new
    (or just initialised, empty) database, never into a ledger in use."""
    from points.ledger import db as ledger_db

    if not ledger_db.check_file(path, empty_ok=True) or path.stat().st_size == 0:
        return
    conn = ledger_db.connect(path, readonly=True)
    try:
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    finally:
        conn.close()
    if events or entries:
        raise Finding(f"{path}: not empty ({events:,} events, {entries:,} journal entries); "
                      "the demo needs a new database (leave out --db for a temporary one)")


@click.command("demo")
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="PATH", help="Database to use (default: a new one in a temporary folder).")
@click.pass_context
def demo_cmd(ctx: click.Context, db: Path | None) -> None:
    """Run every seed program over the bundled sample events and summarise.

    Creates a fresh database (in a temporary folder unless --db is given; a
    --db that holds any event or entry is refused, nothing written),
    imports rules/samples/events.jsonl, runs every bundled campaign until
    2028-12-31, and prints per campaign the points paid and members, a few
    members' balances and two explain traces. The database is kept: the
    last line shows how to explore it with the other commands.

    \b
    Example:
      points demo
      points demo --db demo.db && points --db demo.db balance W0001
    """
    from points.dsl.loader import load_rules
    from points.engine.workflow import Runner
    from points.ledger.events import import_files
    from points.ledger.journal import Journal

    events = sample_events_path()
    if not events.is_file():
        raise Finding(f"{events}: bundled sample events not found")
    path = _demo_db(ctx, db)
    _refuse_used(path)
    conn = open_db(readonly=False, path=path, create=True)
    click.echo(f"database: {path}")
    report = import_files(conn, [events])
    if report.errors:
        for line in report.errors:
            click.echo(line)
        raise Finding("the bundled sample events do not import")
    click.echo(f"imported {report.added:,} sample events ({report.skipped:,} already there) "
               f"from {events.parent.name}/{events.name}")
    rules = load_rules(bundled_rules_dir())
    run = Runner(conn, rules, DEMO_UNTIL).run()
    click.echo(f"ran {len(rules.campaigns)} campaigns until {DEMO_UNTIL}: {run.entries:,} journal entries")
    click.echo("")

    # Per campaign: net points paid (grants minus reversals) and members paid.
    per_campaign: dict[str, dict] = {}
    for campaign, account, amount in conn.execute(
            "SELECT e.campaign, p.account, SUM(p.amount) FROM postings p JOIN entries e ON e.seq = p.entry"
            " WHERE e.campaign IS NOT NULL AND (p.account LIKE 'member:%' OR p.account LIKE 'receivable:%')"
            " GROUP BY e.campaign, p.account"):
        c = per_campaign.setdefault(campaign, {"points": 0, "members": {}})
        member = account.split(":")[1]
        c["points"] += amount
        c["members"][member] = c["members"].get(member, 0) + amount
    rows = [["campaign", "points paid", "members", "winners"]]
    for lc in rules.campaigns:
        c = per_campaign.get(lc.name, {"points": 0, "members": {}})
        rep = run.campaigns.get(lc.name)
        winners = str(rep.winners) if rep is not None and rep.draws else ""
        rows.append([lc.name, pts(c["points"]), sum(1 for v in c["members"].values() if v > 0), winners])
    click.echo("points paid per campaign:")
    click.echo(table(rows, right={1, 2, 3}))
    if run.redemptions or run.refused_redemptions or run.expiries:
        click.echo(f"redemptions: {run.redemptions:,} ({pts(run.redeemed_points)} points), "
                   f"{len(run.refused_redemptions):,} refused; expired: {pts(run.expired_points)} points")
    click.echo("")

    # A few members: the three with the most points paid overall.
    totals: dict[str, int] = {}
    for c in per_campaign.values():
        for m, v in c["members"].items():
            totals[m] = totals.get(m, 0) + v
    top = sorted(totals, key=lambda m: (-totals[m], m))[:3]
    j = Journal(conn)
    if top:
        click.echo(f"three members, points in and out until {DEMO_UNTIL}:")
        rows = [["member", "received", "redeemed", "expired", "owes", *KIND_ORDER]]
        for m in top:
            flows = _member_flows(conn, m)
            bal = j.balance(m)
            owes = sum(j.receivable(m).values())
            rows.append([m, pts(totals[m]), pts(-flows.get("redeem", 0)), pts(-flows.get("expire", 0)),
                         pts(owes), *(pts(bal.get(k, 0)) for k in KIND_ORDER)])
        click.echo(table(rows, right={1, 2, 3, 4, 5, 6, 7}))
        click.echo("  (the last three columns: the balance per kind at the end)")
        click.echo("")

    # Two explain traces: the best-paid member of the two campaigns that paid most.
    ranked = sorted(per_campaign.items(), key=lambda kv: (-kv[1]["points"], kv[0]))[:2]
    try:
        from points.engine import explain as explain_mod
    except ImportError:
        explain_mod = None
    for campaign, c in ranked:
        if explain_mod is None or not c["members"]:
            break
        member = sorted(c["members"], key=lambda m: (-c["members"][m], m))[0]
        click.echo(f"$ points explain {member} {campaign}")
        click.echo(explain_mod.render(explain_mod.explain(conn, rules, member, campaign)))
        click.echo("")
    click.echo(f"explore: points --db {path} campaigns   (or balance, history, explain, verify)")


def _member_flows(conn, member: str) -> dict[str, int]:
    """Net points of a member's accounts per kind of entry (award, redeem, expire...)."""
    out: dict[str, int] = {}
    for prefix, amount in conn.execute(
            "SELECT substr(e.key, 1, instr(e.key, ':') - 1), SUM(p.amount) FROM postings p"
            " JOIN entries e ON e.seq = p.entry WHERE p.account IN (?, ?, ?)"
            " GROUP BY 1", tuple(f"member:{member}:{k}" for k in KIND_ORDER)):
        out[prefix] = amount
    return out


COMMANDS = (demo_cmd,)
