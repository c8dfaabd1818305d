"""The `points` command line: the click group, with every command registered on it.

The commands live in `cli/commands_*.py` (write, read, report, demo); what they share
(errors, options, the database, JSON output) in `cli/options.py`; output helpers in
`cli/format.py`, the journal exporters in `cli/export.py`. The application is thin: it
parses options, calls the library (`points.ledger`, `points.dsl`, `points.engine`) and
formats what comes back.

Exit codes: 0 ok, 1 a finding (bad rules, bad events, a failed verify, an
unknown member or campaign, any user error), 2 a usage error (click's own).
A user error never prints a traceback: `PointsGroup.invoke` turns every known
error into one `error: ...` line on stderr and exit status 1.
"""

from __future__ import annotations

from pathlib import Path

import click

from points.cli import commands_demo, commands_read, commands_report, commands_reports, commands_write
from points.cli.options import DEFAULT_DB, INTERRUPTED, TERMINATED, PointsGroup, Terminated, terminate_on_sigterm

# ---------------------------------------------------------------- the group


@click.group(cls=PointsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", type=click.Path(dir_okay=True, path_type=Path), default=DEFAULT_DB,
              envvar="POINTS_DB", show_default=True, metavar="PATH",
              help="The points database (SQLite file). Env: POINTS_DB.")
@click.version_option(package_name="points-ledger", message="points %(version)s")
def cli(db: Path) -> None:
    """A double-entry loyalty-points ledger with a rules language.

    Import events, check and run the campaign rules, and look at balances,
    histories, explanations and budgets; verify and export the journal.

    \b
    Example:
      points demo
      points --db points.db init
      points import events.jsonl
      points run --until 2026-03-31
      points balance W0001
    """


for _module in (commands_write, commands_read, commands_report, commands_reports, commands_demo):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """The console script: `cli`, with a Ctrl-C outside any command (while starting or
    exiting) also exit 130 and one line, instead of Python's traceback; SIGTERM is
    handled like Ctrl-C (same cleanup, same line) but exits 143."""
    terminate_on_sigterm()
    try:
        cli()
    except KeyboardInterrupt as exc:
        try:
            click.echo("interrupted: nothing was written", err=True)
        finally:
            raise SystemExit(TERMINATED if isinstance(exc, Terminated) else INTERRUPTED) from None


if __name__ == "__main__":  # pragma: no cover - `python -m points.cli.main`
    main()
