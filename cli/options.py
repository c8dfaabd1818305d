"""What every `points` command shares: error handling, option types and decorators,
opening the database, JSON output.

The group itself is in `cli/main.py`; the commands in `cli/commands_*.py` import
from here (never from `main`), so the command line has no import cycle.

Exit codes: 0 ok, 1 a finding (bad rules, bad events, a failed verify, an
unknown member or campaign, any user error), 2 a usage error (click's own).
A user error never prints a traceback: `PointsGroup.invoke` turns every known
error into one `error: ...` line on stderr and exit status 1.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import apsw
import click

from points.dsl.errors import RulesError
from points.engine.workflow import RunError
from points.ledger import db
from points.ledger.errors import LedgerError
from points.ledger.events import EventError

DEFAULT_DB = "./points.db"

# ---------------------------------------------------------------- errors


class Finding(click.ClickException):
    """A finding the command already explained (or explains in `message`): exit 1."""

    exit_code = 1

    def show(self, file=None) -> None:  # one line, no "Error:" prefix of click's own
        if self.message:
            click.echo(f"error: {self.message}", err=True)


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [
        LedgerError, RulesError, db.DatabaseError, RunError, EventError, OSError, apsw.Error,
    ]
    for module, name in (("points.engine.explain", "ExplainError"),):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def error_message(exc: BaseException) -> str:
    """One line for a user error (the first line of a multi-line message)."""
    if isinstance(exc, RulesError):
        text = exc.render()
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, apsw.Error) and not isinstance(exc, RulesError):
        text = f"database: {text}"
    return text


def report_user_errors(func: Callable) -> Callable:
    """Decorator: a known user error becomes `error: ...` on stderr and exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:  # `points export ... | head`: stop quietly
            _silence_stdout()
            raise click.exceptions.Exit(1) from None
        except RulesError as exc:  # multi-line: path:line:col, source line, caret
            click.echo(exc.render(), err=True)
            raise click.exceptions.Exit(1) from None
        except _user_errors() as exc:
            click.echo(f"error: {error_message(exc)}", err=True)
            raise click.exceptions.Exit(1) from None

    return wrapper


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class PointsGroup(click.Group):
    """The `points` group: every subcommand runs under `report_user_errors`."""

    def invoke(self, ctx: click.Context) -> Any:
        return report_user_errors(super().invoke)(ctx)


# ---------------------------------------------------------------- option types


class DateType(click.ParamType):
    """A calendar day, YYYY-MM-DD (Asia/Tokyo). A bad value is a usage error (exit 2)."""

    name = "DATE"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            if len(value) != 10:
                raise ValueError
            return dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


DATE = DateType()


def json_option(func: Callable) -> Callable:
    """`--json`: print the result as JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as JSON (stable keys) instead of text.")(func)


def as_of_option(func: Callable) -> Callable:
    """`--as-of DATE`: the state at the end of that day (Asia/Tokyo)."""
    return click.option("--as-of", "as_of", type=DATE, default=None, metavar="DATE",
                        help="State at the end of this day (Asia/Tokyo); default: everything.")(func)


def rules_option(func: Callable) -> Callable:
    """`--rules DIR`: the rules folder (default `rules/` here, else the bundled rules)."""
    return click.option("--rules", "rules_dir", type=click.Path(file_okay=False, path_type=Path),
                        default=None, metavar="DIR",
                        help="Rules folder: every .rules file in it and the tables in DIR/data/. "
                             "Default: ./rules if it exists, else the bundled rules.")(func)


def bundled_rules_dir() -> Path:
    """The folder of the installed `rules` package (the seed programs)."""
    from points import rules

    return Path(rules.__file__).resolve().parent


def default_rules_dir(rules_dir: Path | None) -> Path:
    if rules_dir is not None:
        return rules_dir
    here = Path("rules")
    return here if here.is_dir() else bundled_rules_dir()


def load_rules(rules_dir: Path | None):
    """The rule set of `--rules DIR` (RulesError propagates: rendered, exit 1)."""
    from points.dsl.loader import load_rules as _load

    return _load(default_rules_dir(rules_dir))


# ---------------------------------------------------------------- database


def db_path(ctx: click.Context | None = None) -> Path:
    ctx = ctx or click.get_current_context()
    return Path(ctx.find_root().params.get("db") or DEFAULT_DB)


def open_db(readonly: bool, path: Path | None = None) -> apsw.Connection:
    """The database of `--db` (read-only for read commands: never created or changed)."""
    path = path or db_path()
    if path.is_dir():
        raise db.DatabaseError(f"{path}: is a directory, not a points database")
    return db.connect(path, readonly=readonly)


# ---------------------------------------------------------------- output


def echo_json(value: Any) -> None:
    """JSON on stdout: indented, keys in the order built, non-ASCII kept as is."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, Path)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
