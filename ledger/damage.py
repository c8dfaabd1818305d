"""What is wrong with a database file that a command could not read.

A command that meets bytes it cannot decode (text that is not UTF-8, JSON that
does not parse, a value of the wrong type, a b-tree SQLite calls corrupt) asks
`diagnose` whether the file is damaged before it reports anything: if it is, the
operator reads one line, `database damaged: ...`, and exit status 1; if it is
not, the error is a bug of ours and is shown as such. Only ever called on the
error path, so it may read the whole file.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from points.ledger import db

# What a damaged file makes the code raise while decoding rows.
DECODE_ERRORS = (UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError,
                 AttributeError, OverflowError, apsw.CorruptError, apsw.NotADBError)


def diagnose(path: str | Path) -> str | None:
    """The first sign of damage in the points database at `path`, or None."""
    try:
        conn = db.connect(path, readonly=True)
    except db.DatabaseError as exc:
        return str(exc).removeprefix("database damaged: ")
    except (apsw.Error, OSError) as exc:
        return f"{path}: {exc}"
    try:
        return _first_problem(conn)
    except DECODE_ERRORS + (apsw.Error,) as exc:
        return f"{path}: {type(exc).__name__}: {_short(exc)}"
    finally:
        conn.close()


def _first_problem(conn: apsw.Connection) -> str | None:
    found = db.integrity_problems(conn, limit=1) + db.schema_problems(conn)
    if found:
        return found[0]
    for table in ("meta", *db.JOURNAL_TABLES):
        for row in conn.execute(f'SELECT * FROM "{table}"'):  # decodes every text cell
            pass
    bad = conn.execute("SELECT seq FROM events WHERE NOT json_valid(body) LIMIT 1").fetchone() \
        or conn.execute("SELECT seq FROM entries WHERE NOT json_valid(memo) OR NOT json_valid(events) "
                        "LIMIT 1").fetchone()
    if bad:
        return f"row {bad[0]}: stored JSON does not parse"
    from points.ledger.verify import verify

    report = verify(conn)
    if not report.ok:
        return report.first_bad
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:200]
