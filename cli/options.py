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
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import apsw
import click

from points.dsl.errors import RulesError
from points.dsl.errors import RunError
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
    if isinstance(exc, (apsw.CorruptError, apsw.NotADBError)):
        text = f"database damaged: {text}"
    elif isinstance(exc, apsw.Error) and not isinstance(exc, RulesError):
        text = f"database: {text}"
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def report_user_errors(func: Callable) -> Callable:
    """Decorator: a known user error becomes `error: ...` on stderr and exit 1;
    bytes of a damaged database that the code could not decode, `error: database
    damaged: ...` (see ledger.damage); a closed stdout, a quiet exit 0."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:  # `points export ... | head`: the reader has all it wants
            _silence_stdout()
            raise click.exceptions.Exit(0) from None
        except RulesError as exc:  # multi-line: path:line:col, source line, caret
            click.echo(exc.render(), err=True)
            raise click.exceptions.Exit(1) from None
        except _user_errors() as exc:
            message = error_message(exc)
            if isinstance(exc, apsw.Error) and not isinstance(
                    exc, (apsw.BusyError, apsw.LockedError, apsw.CorruptError, apsw.NotADBError)):
                damage = _damage()  # e.g. "malformed JSON" from SQL reading a damaged cell
                if damage is not None:
                    message = f"database damaged: {' '.join(damage.split())}"
            click.echo(f"error: {message}", err=True)
            raise click.exceptions.Exit(1) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            damage = _damage()
            if damage is None:
                raise  # not the file: a bug of ours, shown as one
            click.echo(f"error: database damaged: {' '.join(damage.split())}", err=True)
            raise click.exceptions.Exit(1) from exc

    return wrapper


def _damage() -> str | None:
    """What is wrong with the database this command opened (None: nothing found)."""
    opened = _opened()
    path = opened["path"] if opened is not None else db_path()  # it may have failed opening
    if not path.is_file():
        return None
    from points.ledger.damage import diagnose

    return diagnose(path)


def _opened() -> dict | None:
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().meta.get("points.opened") if ctx is not None else None


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


INTERRUPTED = 130  # 128 + SIGINT, as shells report it
TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill PID`, a service manager stopping us): handled as Ctrl-C is, so
    every `finally` and `with` cleans up, but the exit status is 143."""


def terminate_on_sigterm() -> None:
    """Make SIGTERM raise Terminated in the main thread (see cli.main.main)."""
    def raise_terminated(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, raise_terminated)


def _interrupted(ctx: click.Context) -> None:
    """Ctrl-C: say what this command committed before it, and how to go on."""
    opened = ctx.meta.get("points.opened")
    text = "interrupted: nothing was written"
    if opened is not None and opened.get("writable"):
        now = _heads(opened["path"])
        if now is None:
            text = "interrupted: what was committed could not be read back"
        else:
            entries = now[0] - opened["heads"][0]
            events = now[1] - opened["heads"][1]
            text = (f"interrupted: {entries:,} journal entries and {events:,} events were committed "
                    "before the interrupt (each step commits whole or not at all); "
                    "run the same command again to resume")
    try:
        click.echo(text, err=True)
    except OSError:
        pass


def _heads(path: Path) -> tuple[int, int] | None:
    try:
        conn = db.connect(path, readonly=True)
    except (db.DatabaseError, apsw.Error, OSError):
        return None
    try:
        return (conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0],
                conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
    except apsw.Error:
        return None
    finally:
        conn.close()


def _db_after_subcommand(ctx: click.Context, param: click.Parameter, value) -> None:
    if value is not None:
        ctx.find_root().params["db"] = value


def db_option() -> click.Option:
    """`--db PATH` after the subcommand too (`points balance W1 --db p.db`)."""
    return click.Option(["--db"], type=click.Path(dir_okay=True, path_type=Path), default=None,
                        expose_value=False, is_eager=True, callback=_db_after_subcommand,
                        metavar="PATH", help="The points database (same as `points --db PATH`).")


class PointsGroup(click.Group):
    """The `points` group: every subcommand runs under `report_user_errors`,
    accepts `--db` after its name, and exits 130 on Ctrl-C (143 on SIGTERM)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "db" for p in cmd.params):
            cmd.params.append(db_option())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return report_user_errors(super().invoke)(ctx)
        except KeyboardInterrupt as exc:
            _interrupted(ctx)
            raise click.exceptions.Exit(TERMINATED if isinstance(exc, Terminated) else INTERRUPTED) from None


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
                        help="Rules folder: every .rules and .events file in it and the tables in DIR/data/. "
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


def open_db(readonly: bool, path: Path | None = None, create: bool = False) -> apsw.Connection:
    """The database of `--db`: read-only for read commands (never created or changed);
    for writing, an existing points database only (`create`: init and demo), so a
    typo in --db, an empty file or another program's SQLite file is refused
    before anything is written."""
    path = path or db_path()
    conn = db.connect(path, readonly=readonly, create=create)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # for a damage report, and for Ctrl-C: what this command committed
        opened = ctx.find_root().meta["points.opened"] = {"path": path, "writable": not readonly}
        if not readonly:
            opened["heads"] = (conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0],
                               conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
    return conn


def require_member(conn: apsw.Connection, member: str) -> None:
    """An unknown member (no event, no account) is a finding, not an empty answer."""
    if not db.member_known(conn, member):
        raise Finding(f"unknown member {member!r}: no event and no entry names them")


# ---------------------------------------------------------------- output


def echo_json(value: Any) -> None:
    """JSON on stdout: indented, keys in the order built, non-ASCII kept as is."""
    click.echo(json_encoder().encode(value))


def json_encoder() -> json.JSONEncoder:
    """The encoder of `echo_json` (its `iterencode` gives the same text in pieces)."""
    return json.JSONEncoder(ensure_ascii=False, indent=2, default=_json_default)


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
