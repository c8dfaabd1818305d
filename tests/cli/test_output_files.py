"""`-o FILE` (export, report html): never the database, never an SQLite file; a plain
file replaced atomically; messages name FILE, never a temporary file."""

from __future__ import annotations

import contextlib
import os
import sqlite3

import pytest

OUTPUTS = [("report", "html", "-o"), ("export", "--format", "jsonl", "-o"),
           ("export", "--format", "csv", "-o"), ("export", "--format", "beancount", "-o"),
           ("export", "--format", "bundle", "-o")]


def _files(folder):
    """Every file but the database's, by bytes; the database by its content (SQLite may
    checkpoint its -wal file into it and rewrites the -shm index on any open)."""
    db = folder / "points.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        dump = "\n".join(conn.iterdump())
    files = {p.name: p.read_bytes() for p in folder.iterdir()
             if p.is_file() and not p.is_symlink() and not p.name.startswith("points.db")}
    return files, dump, sorted(p.name for p in folder.iterdir() if not p.name.startswith("points.db-"))


@pytest.mark.parametrize("args", OUTPUTS)
def test_the_output_is_never_the_database(ran, args):
    os.symlink("points.db", ran.folder / "link.db")
    before = _files(ran.folder)
    for target in ("points.db", "./points.db", str(ran.db), "points.db-wal"):
        result = ran(*args, target)
        assert result.exit_code == 1, result.output
        assert result.output.splitlines() == [result.output.rstrip("\n")]  # one line
        assert result.output.startswith(f"error: {os.path.normpath(target)}: is the database"), result.output
    result = ran(*args, "link.db")
    assert result.exit_code == 1 and "is the database" in result.output
    assert _files(ran.folder) == before  # journal bytes unchanged, no temporary file left


@pytest.mark.parametrize("args", OUTPUTS)
def test_an_existing_sqlite_database_is_not_replaced(ran, args):
    assert ran("export", "--format", "bundle", "-o", "old.points").exit_code == 0
    assert ran("init", db="other.db").exit_code == 0
    before = _files(ran.folder)
    for target in ("old.points", "other.db"):
        result = ran(*args, target)
        assert result.exit_code == 1
        assert result.output == f"error: {target}: is an SQLite database; not replaced (remove it first " \
                                "or choose another output file)\n"
    assert _files(ran.folder) == before


@pytest.mark.parametrize("args", OUTPUTS)
def test_a_plain_file_is_replaced_and_no_temporary_file_stays(ran, args):
    (ran.folder / "out").write_text("old text")
    (ran.folder / "out.tmp").write_text("not ours")  # the old fixed temporary name
    result = ran(*args, "out")
    assert result.exit_code == 0, result.output
    assert (ran.folder / "out").read_bytes() != b"old text"
    assert (ran.folder / "out.tmp").read_text() == "not ours"
    assert [p.name for p in ran.folder.iterdir() if p.name.endswith(".tmp")] == ["out.tmp"]


@pytest.mark.parametrize("args", OUTPUTS)
def test_a_missing_folder_names_the_users_path(ran, args):
    result = ran(*args, "nosuch/x.out")
    assert result.exit_code == 1
    assert result.output == "error: nosuch: no such folder for x.out\n"
    assert ".tmp" not in result.output
