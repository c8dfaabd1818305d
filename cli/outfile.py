"""Writing the file of an `-o FILE` option: one rule for every command that has one.

FILE is never the database of `--db` (nor its -wal, -shm or -journal file, found
by resolved path and by os.path.samefile, so a symlink or hard link counts), and
never any other existing SQLite database (a points database, a bundle, another
program's file): both are refused with one line, exit 1, nothing written, because
replacing a journal loses it. Any other existing file is replaced atomically: the
output is written to a temporary file beside FILE (a fresh hidden name, so it can
clobber nothing) and renamed over FILE only once complete; on any error the
temporary file is removed and FILE is as it was. Messages name FILE, never the
temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator

from points.cli.options import Finding

SQLITE_MAGIC = b"SQLite format 3\x00"
DB_SIDECARS = ("", "-wal", "-shm", "-journal")


def _same(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def check_output(output: Path, database: Path) -> None:
    """Refuse an output path that would replace the database or any SQLite database,
    a folder, or a file in a folder that does not exist."""
    for suffix in DB_SIDECARS:
        if _same(output, Path(str(database) + suffix)):
            raise Finding(f"{output}: is the database{' ' + suffix[1:] + ' file' if suffix else ''} "
                          f"(--db {database}); choose another output file")
    if output.is_dir():
        raise Finding(f"{output}: is a directory")
    if output.exists() and _is_sqlite(output):
        raise Finding(f"{output}: is an SQLite database; not replaced (remove it first or "
                      "choose another output file)")
    folder = output.parent
    if not folder.is_dir():
        raise Finding(f"{folder}: no such folder for {output.name}")


@contextlib.contextmanager
def replacing(output: Path, database: Path) -> Iterator[Path]:
    """Check `output` (see check_output), then yield a temporary path beside it that
    does not exist yet; when the block ends without error the temporary file
    replaces `output` atomically, otherwise it is removed."""
    check_output(output, database)
    tmp = output.parent / f".{output.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        check_output(output, database)  # unchanged while the output was being made
        os.replace(tmp, output)
    except OSError as exc:
        raise Finding(f"{output}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
