"""Commands that write the database: init, import, run."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from points.cli import progress
from points.cli.format import plural, pts
from points.cli.options import DATE, Finding, echo_json, json_option, load_rules, open_db, rules_option, stdout_is_tty


@click.command("init")
@click.pass_context
def init_cmd(ctx: click.Context) -> None:
    """Create the points database (idempotent) and print its path.

    The file is created readable and writable by its owner only, in a folder
    that must already exist (folders are never created). Running `init` on an
    existing points database changes nothing; any other file (another
    program's SQLite database, a text file) is refused and left as it is.

    \b
    Example:
      points --db points.db init
    """
    from points.cli.options import db_path

    path = db_path(ctx)
    open_db(readonly=False, path=path, create=True).close()
    click.echo(str(path))


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, allow_dash=True))
@rules_option
@click.option("--max-errors", "max_errors", type=click.IntRange(min=0), default=20, show_default=True,
              metavar="N", help="Print at most N problems (all are counted, by reason).")
@json_option
def import_cmd(files: tuple[str, ...], rules_dir: Path | None, max_errors: int, as_json: bool) -> None:
    """Import events files (JSON Lines or CSV with a header); `-` reads standard input.

    Each line is checked against the event types declared in the rules
    folder's *.events files (its own types added to, or replacing, the
    bundled catalogue; see docs/events.md). All or nothing: if any line of
    any file is bad, the first --max-errors problems are printed as
    `file:line: reason` on stderr (with more, a count of all by reason),
    nothing is imported and the exit status is 1. An input with no event is an error
    too. Pipes, FIFOs and /dev/stdin are read as a stream. Re-importing a
    file is a no-op (its events are skipped).

    \b
    Example:
      points import events.jsonl more-events.csv
      cat events.jsonl | points import -
      points import --rules rules/ --json events.jsonl
    """
    from points.cli.options import default_rules_dir
    from points.ledger.event_catalogue import load_catalogue
    from points.ledger.event_decl import DeclError
    from points.ledger.events import import_files

    try:
        catalogue = load_catalogue(default_rules_dir(rules_dir))
    except DeclError as exc:
        for path, line, col, message in exc.problems:
            click.echo(f"{path}:{line}:{col}: {message}", err=True)
        raise Finding("the event declarations of the rules folder are invalid; nothing imported") from None
    conn = open_db(readonly=False)
    with progress.activity("importing"):  # stderr, only on a terminal
        report = import_files(conn, files, catalogue=catalogue, max_errors=max_errors)
    if as_json:
        echo_json({
            "added": report.added,
            "skipped": report.skipped,
            "errors": list(report.errors),
            "error_count": report.error_count,
            "reasons": dict(report.reasons),
            "files": [{"path": f.path, "format": f.format, "records": f.records,
                       "added": f.added, "skipped": f.skipped, "errors": len(f.errors)}
                      for f in report.per_file],
        })
        if report.error_count:
            raise click.exceptions.Exit(1)
        return
    if report.error_count:
        for line in report.errors:  # diagnostics: stderr (stdout carries only results)
            click.echo(line, err=True)
        n = report.error_count
        if n > len(report.errors):
            click.echo(f"... and {n - len(report.errors):,} more (--max-errors N shows more)", err=True)
        if n > len(report.errors):  # some not shown: what they are, counted by reason
            click.echo("by reason:", err=True)
            for reason, count in report.reasons[:50]:
                click.echo(f"  {count:>9,}  {reason}", err=True)
            if len(report.reasons) > 50:
                click.echo(f"  ... and {len(report.reasons) - 50:,} more reasons", err=True)
        # The last line: the one-line verdict.
        click.echo(f"error: {n:,} problem{'s' if n != 1 else ''} in the input; nothing imported", err=True)
        raise click.exceptions.Exit(1)
    for f in report.per_file:
        click.echo(f"{f.path}: imported {f.added:,} events ({f.skipped:,} skipped)")
    if len(report.per_file) != 1:
        click.echo(f"total: imported {report.added:,} events ({report.skipped:,} skipped)")


# The last --until a run accepts: dates far beyond any campaign make date arithmetic
# (expiry a year after payment...) leave the calendar's range.
LATEST_UNTIL = dt.date(2999, 12, 31)


def _reason(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An amendment is recorded for good: an empty or blank reason is a usage error."""
    if value is not None and not value.strip():
        raise click.BadParameter("needs a reason (the amendment records it), not an empty text")
    return value


@click.command("run")
@click.option("--until", "until", type=DATE, required=True, metavar="DATE",
              help="Execute every step dated on or before this day.")
@click.option("--allow-future", is_flag=True,
              help="Allow an --until after today (Asia/Tokyo): simulations, tests.")
@click.option("--dry-run", is_flag=True,
              help="Print what the run would post and change nothing (run on a private copy).")
@rules_option
@click.option("--amend", "amend", default=None, metavar="REASON", callback=_reason,
              help="Accept changed terms (a rules file or table) of campaigns that have posted "
                   "entries: record an amendment with REASON and post the differences.")
@json_option
def run_cmd(until: dt.date, allow_future: bool, dry_run: bool, rules_dir: Path | None,
            amend: str | None, as_json: bool) -> None:
    """Execute every campaign step due on or before --until, exactly once.

    Funds budgets, settles awards (lotteries included), posts corrections for
    late cancellations, redeems points and expires lots, in date order. A
    re-run with the same events is a no-op; an interrupted run resumes.
    Each run records the exact rules files and tables it used in the
    database. Adding a campaign file needs nothing; changing the terms of a
    campaign that has posted entries is refused (naming the file and both
    hashes) unless `--amend "REASON"`: then an amendment (who, why, when, both
    hashes) is recorded and the differences are posted as adjustments.

    \b
    Example:
      points run --until 2026-03-31
      points run --until 2028-12-31 --allow-future --rules rules/ --json
      points run --until 2026-03-31 --amend "cap raised to 5,000 (press release 2026-03-02)"
      points run --until 2026-03-31 --dry-run

    An --until after today (Asia/Tokyo) is refused unless --allow-future: a
    typo (2062 for 2026) would expire every lot due before it. A lottery draw
    (final: winners are never undrawn) of a period whose events are not known
    complete (see close-events) refuses the run before anything is written.
    --dry-run prints the same report and changes nothing.
    """
    from points.engine.workflow import Runner

    from points.engine import guards
    from points.ledger import db

    check_until(until, allow_future)
    rules = load_rules(rules_dir)
    if dry_run:  # the real file is only read; the run writes to a copy nobody keeps
        source = open_db(readonly=True)
        conn = db.scratch_copy(source)
        source.close()
    else:
        conn = open_db(readonly=False)
    refused = guards.refusal(conn, rules, until) or guards.invalid_award(conn, rules, until)
    if refused is not None:
        raise Finding(refused)
    late = guards.late_events(conn, rules)
    provisional = guards.provisional(conn, rules, until)
    if stdout_is_tty() and not as_json:
        with _Progress() as progress:
            report = Runner(conn, rules, until, progress=progress, amend=amend).run()
    else:
        report = Runner(conn, rules, until, amend=amend).run()
    data = run_report_dict(report)
    data.update(dry_run=dry_run, late_events=late, provisional=provisional)
    # Written as it is made: a big run's refusals are read from the run's TEMP tables
    # (engine.run_log) while printing, never held as one string.
    if as_json:
        _echo_chunks(json_chunks(data))
    else:
        _echo_chunks(line + "\n" for line in run_report_lines(data))


def check_until(until: dt.date, allow_future: bool) -> None:
    """Refuse an --until in the future (a typo expires lots for good) or out of range."""
    from points.cli.format import today

    if until > LATEST_UNTIL:
        raise Finding(f"--until {until}: after {LATEST_UNTIL}, the last date a run accepts")
    now = today()
    if until > now and not allow_future:
        raise Finding(f"--until {until} is after today ({now}, Asia/Tokyo); "
                      "pass --allow-future to run into the future")


class _Progress:
    """A click progress bar fed by Runner's progress(done, total) callback."""

    def __init__(self) -> None:
        self.bar = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if not progress.enabled():  # stderr piped or logged: nothing
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="running", show_pos=True, file=sys.stderr)
            self.bar.__enter__()
        self.bar.length = total
        self.bar.update(max(done - self.done, 0))
        self.done = done

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def run_report_dict(report) -> dict:
    """RunReport -> a JSON-able dict (campaigns sorted by name)."""
    campaigns = {}
    for name in sorted(report.campaigns):
        c = report.campaigns[name]
        campaigns[name] = {
            "entries": c.entries,
            "points": c.points,
            "members": len(c.members),
            "draws": c.draws,
            "winners": c.winners,
            "reversals": c.reversals,
            "reversed_points": c.reversed_points,
            "refused": _Rows(c.refused, lambda row: dict(zip(("member", "award", "points", "reason"), row))),
        }
    return {
        "until": report.until.isoformat(),
        "watermark": report.watermark,
        "entries": report.entries,
        "campaigns": campaigns,
        "redemptions": {
            "done": report.redemptions,
            "points": report.redeemed_points,
            "refused": _Rows(report.refused_redemptions,
                             lambda row: dict(zip(("event", "member", "reason"), row))),
        },
        "expiries": {"entries": report.expiries, "points": report.expired_points},
    }


class _Rows(list):
    """A JSON array made row by row from `source` (len() and iteration, e.g. an
    engine.run_log.RunLog) when it is encoded or iterated: a list to `json`, never
    filled. Equal to the list it stands for."""

    def __init__(self, source, make):
        super().__init__()
        self.source, self.make = source, make

    def __len__(self) -> int:
        return len(self.source)

    def __bool__(self) -> bool:
        return len(self.source) > 0

    def __iter__(self):
        return map(self.make, self.source)

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))


def json_chunks(value):
    """`echo_json`'s text in pieces (json's own encoder, same bytes), a newline last."""
    from points.cli.options import json_encoder

    yield from json_encoder().iterencode(value)
    yield "\n"


def _echo_chunks(chunks, size: int = 1 << 16) -> None:
    buf, n = [], 0
    for chunk in chunks:
        buf.append(chunk)
        n += len(chunk)
        if n >= size:
            click.echo("".join(buf), nl=False)
            buf, n = [], 0
    click.echo("".join(buf), nl=False)


def run_report_lines(data: dict):
    """The text report of a run, line by line."""
    first = (f"run until {data['until']} (events up to #{data['watermark']}): "
             f"{plural(data['entries'], 'new journal entry', 'new journal entries')}")
    if data.get("dry_run"):
        first = "dry run (nothing written): " + first.replace("new journal entr", "journal entr")
    yield first
    for name, c in data["campaigns"].items():
        if not (c["entries"] or c["draws"] or c["refused"]):
            continue
        line = (f"  {name}: {plural(c['entries'], 'entry', 'entries')}, {pts(c['points'])} points"
                f" to {plural(c['members'], 'member')}")
        if c["draws"]:
            line += f"; lottery: {plural(c['draws'], 'draw')}, {plural(c['winners'], 'winner')}"
        if c["reversals"]:
            line += f"; {plural(c['reversals'], 'reversal')} (-{pts(c['reversed_points'])} points)"
        yield line
        for r in c["refused"]:
            yield f"    refused: {r['member']} {r['award']} {pts(r['points'])} points: {r['reason']}"
    red = data["redemptions"]
    if red["done"] or red["refused"]:
        yield (f"  redemptions: {red['done']:,} done ({pts(red['points'])} points), "
               f"{len(red['refused']):,} refused")
        for r in red["refused"]:
            yield f"    refused: {r['event']} ({r['member']}): {r['reason']}"
    exp = data["expiries"]
    if exp["entries"]:
        yield f"  expiries: {plural(exp['entries'], 'entry', 'entries')}, {pts(exp['points'])} points expired"
    for late in data.get("late_events", ()):
        yield (f"  late: {plural(late['events'], 'event')} of {late['campaign']} period {late['period']} "
               f"arrived after {late['outcome']}")
    for p in data.get("provisional", ()):
        yield (f"  provisional: {p['campaign']} period {p['period']} paid from {p['pay']} on events "
               f"complete through {p['complete_through'] or 'no day'} (its events run to "
               f"{p['events_through']}): later events become corrections")
    if data["entries"] == 0:
        yield "  nothing to do: every step up to this date was already done"


@click.command("close-events")
@click.option("--through", "through", type=DATE, required=True, metavar="DATE",
              help="Every event up to the end of this day (Asia/Tokyo) is imported.")
@click.option("--note", default="", metavar="TEXT", help="Why (recorded with the declaration).")
@json_option
def close_events_cmd(through: dt.date, note: str, as_json: bool) -> None:
    """Declare the events complete through a day: the cut-off lottery draws wait for.

    A run refuses to draw a lottery whose period ends after the cut-off. Without
    a declaration the cut-off is the day of the latest imported event. Each
    declaration is kept (append-only); the latest one counts, so a mistaken
    one is corrected by declaring again.

    \b
    Example:
      points close-events --through 2026-01-31
      points close-events --through 2026-01-31 --note "January feed reconciled"
    """
    from points.cli.format import today
    from points.engine import guards

    if through > today():
        raise Finding(f"--through {through} is after today ({today()}, Asia/Tokyo): "
                      "events of days to come cannot be complete")
    conn = open_db(readonly=False)
    before = guards.cutoff(conn)
    guards.close_events(conn, through, note)
    data = {"through": through.isoformat(), "previous": before.day.isoformat() if before.day else None,
            "previous_source": before.source, "note": note}
    if as_json:
        echo_json(data)
    else:
        click.echo(f"events declared complete through {through} (before: "
                   f"{data['previous'] or 'none'}, {before.source})")


COMMANDS = (init_cmd, import_cmd, run_cmd, close_events_cmd)
