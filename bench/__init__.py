"""Benchmarks of the points engine: `python -m bench` (see bench/__main__.py)."""

import os


def remove_database(path: str) -> None:
    """Delete a benchmark's SQLite file and its WAL, shared-memory and rollback journal
    files, if there: each benchmark starts from a fresh file."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
