"""Rules as recorded data: the exact bytes of every rules set a run used.

A rules set is every `*.rules` and `*.events` file of a rules folder, every
`data/*.csv` table and any other table a campaign reads (a path inside the
folder). Each run stores:

- `rule_files`: each file's bytes once, addressed by its sha256 (the same table
  in a hundred runs is stored once);
- `rule_sets`: the set, addressed by the sha256 of its canonical JSON
  `{"path": "sha256", ...}` (sorted paths, compact);

and its run marker entry names the set's hash and every `path: sha256`, so the
set is hashed into the journal's chain. Both tables are append-only (the same
triggers as the journal's). `verify` checks every stored file against its hash
and rebuilds a run's rules folder from them (`materialize`) to replay the run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Iterable

import attrs

from points.ledger.errors import LedgerError

# Executed by ledger.db.connect beside the journal's schema.
SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_files (
    hash    TEXT PRIMARY KEY,     -- sha256 of content
    size    INTEGER NOT NULL,
    content BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_sets (
    hash  TEXT PRIMARY KEY,       -- sha256 of `files`
    files TEXT NOT NULL           -- canonical JSON {"relative/path": "sha256", ...}
);
-- Every start of a run (engine.recorded): what it was asked to do and the journal's
-- last entry when it started, so that verify can replay a run that was interrupted
-- and resumed by a different run exactly as far as it went.
CREATE TABLE IF NOT EXISTS run_starts (
    id        INTEGER PRIMARY KEY,
    head      INTEGER NOT NULL,   -- the journal's last seq when the run started
    until     TEXT NOT NULL,
    watermark INTEGER NOT NULL,
    ruleset   TEXT NOT NULL
);
-- Every run that finished: the seq of its marker entry, written in the marker's
-- transaction (engine.runs.seal). Kept beside the journal, so a journal cut back behind
-- the triggers to before a finished run is a finding even when no entry is left.
CREATE TABLE IF NOT EXISTS run_ends (
    marker INTEGER PRIMARY KEY    -- seq of the run's marker entry
);
""" + "\n".join(
    f"""
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;
"""
    for table in ("rule_files", "rule_sets", "run_starts", "run_ends"))


class RuleSetError(LedgerError):
    """Raised when a recorded rules set is missing or does not match its hashes."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def set_digest(files: dict[str, str]) -> str:
    """sha256 of the canonical JSON of {path: sha256} (sorted keys, compact, UTF-8)."""
    text = json.dumps(dict(sorted(files.items())), separators=(",", ":"), ensure_ascii=False)
    return _sha(text.encode())


@attrs.frozen
class Snapshot:
    """The bytes of every file of a rules set, by relative POSIX path."""

    contents: dict[str, bytes]

    @property
    def files(self) -> dict[str, str]:
        return {path: _sha(data) for path, data in sorted(self.contents.items())}

    @property
    def digest(self) -> str:
        return set_digest(self.files)


def set_paths(rules_dir: Path, extra: Iterable[str] = ()) -> list[str]:
    """The relative paths of a folder's rules set (`extra`: tables named by campaigns)."""
    found = {p.name for p in rules_dir.glob("*.rules") if p.is_file()}
    found |= {p.name for p in rules_dir.glob("*.events") if p.is_file()}
    found |= {f"data/{p.name}" for p in (rules_dir / "data").glob("*.csv") if p.is_file()}
    found |= {str(PurePosixPath(Path(x).as_posix())) for x in extra}
    return sorted(found)


def snapshot(rules_dir: Path, extra: Iterable[str] = ()) -> Snapshot:
    """Read every file of the rules set of `rules_dir` (see module docstring)."""
    rules_dir = Path(rules_dir)
    return Snapshot({p: (rules_dir / p).read_bytes() for p in set_paths(rules_dir, extra)})


def table_paths(rules) -> list[str]:
    """The tables the campaigns of a loaded RuleSet read (relative paths)."""
    return sorted({t.path for lc in rules.campaigns for t in lc.plan.tables.values()})


def snapshot_of(rules) -> Snapshot:
    """The rules set of a loaded RuleSet, read from its folder; refused if a `.rules` file
    changed between loading and reading (the run would not use what it records)."""
    snap = snapshot(rules.rules_dir, table_paths(rules))
    files = snap.files
    for name, digest in rules.hashes.items():
        if files.get(name) != digest:
            raise RuleSetError(f"{Path(rules.rules_dir) / name}: changed while the run was starting;"
                               " run again")
    return snap


def record(conn, snap: Snapshot) -> str:
    """Store the set's files and the set (each once); returns the set's hash."""
    files = snap.files
    conn.executemany("INSERT OR IGNORE INTO rule_files(hash, size, content) VALUES (?, ?, ?)",
                     [(files[p], len(data), data) for p, data in sorted(snap.contents.items())])
    digest = set_digest(files)
    conn.execute("INSERT OR IGNORE INTO rule_sets(hash, files) VALUES (?, ?)",
                 (digest, json.dumps(files, separators=(",", ":"), ensure_ascii=False)))
    return digest


def has_tables(conn) -> bool:
    return conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                        "name IN ('rule_files', 'rule_sets')").fetchone()[0] == 2


def stored_set(conn, digest: str) -> dict[str, str]:
    """{path: sha256} of a recorded set (RuleSetError if it is missing or altered)."""
    row = conn.execute("SELECT files FROM rule_sets WHERE hash = ?", (digest,)).fetchone() \
        if has_tables(conn) else None
    if row is None:
        raise RuleSetError(f"rules set {digest} is not stored in the database")
    files = json.loads(row[0])
    if set_digest(files) != digest:
        raise RuleSetError(f"rules set {digest}: its file list does not match its hash")
    return files


def content(conn, file_hash: str) -> bytes:
    row = conn.execute("SELECT content FROM rule_files WHERE hash = ?", (file_hash,)).fetchone()
    if row is None:
        raise RuleSetError(f"rules file with sha256 {file_hash} is not stored in the database")
    data = bytes(row[0])
    if _sha(data) != file_hash:
        raise RuleSetError(f"stored rules file {file_hash}: its content does not match its hash")
    return data


def materialize(conn, digest: str, target: Path) -> Path:
    """Write the recorded set `digest` as a rules folder under `target`; returns it."""
    target = Path(target)
    for path, file_hash in stored_set(conn, digest).items():
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise RuleSetError(f"rules set {digest}: path {path!r} leaves the rules folder")
        dest = target.joinpath(*rel.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content(conn, file_hash))
    return target


def check_stored(conn) -> tuple[int, int, list[str]]:
    """(files, sets, problems): every stored file matches its hash, every set its list."""
    if not has_tables(conn):
        return 0, 0, []
    problems, n_files, n_sets = [], 0, 0
    for file_hash, size, data in conn.execute("SELECT hash, size, content FROM rule_files ORDER BY hash"):
        n_files += 1
        if not isinstance(data, (bytes, memoryview)) or _sha(bytes(data)) != file_hash \
                or size != len(data):
            problems.append(f"rules file {file_hash}: stored content does not match its hash")
    known = {h for (h,) in conn.execute("SELECT hash FROM rule_files")}
    for digest, files in conn.execute("SELECT hash, files FROM rule_sets ORDER BY hash"):
        n_sets += 1
        try:
            listed = json.loads(files)
            ok = set_digest(listed) == digest
        except (TypeError, ValueError, AttributeError):
            listed, ok = {}, False
        if not ok:
            problems.append(f"rules set {digest}: its file list does not match its hash")
        for path, h in sorted(listed.items()):
            if h not in known:
                problems.append(f"rules set {digest}: file {path} (sha256 {h}) is not stored")
    return n_files, n_sets, problems


def diff_sets(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(path, old sha256, new sha256) of every file that differs (None: absent)."""
    return [(p, old.get(p), new.get(p)) for p in sorted(set(old) | set(new))
            if old.get(p) != new.get(p)]


def first_difference(old: bytes, new: bytes) -> str:
    """Where two versions of a text file first differ: 'line N: OLD -> NEW' (shortened)."""
    a = old.decode("utf-8", "replace").splitlines()
    b = new.decode("utf-8", "replace").splitlines()
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else "(no line)"
        right = b[i] if i < len(b) else "(no line)"
        if left != right:
            return f"line {i + 1}: {_short(left)!r} -> {_short(right)!r}"
    return "same lines, different bytes (line endings or encoding)"


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
