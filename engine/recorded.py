"""What a run records about its rules, and rules changed on purpose (amendments).

Before its first step a run (`engine.workflow.Runner.run`):
1. takes the database's run lock, so runs happen one after the other: the
   journal is then a sequence of whole runs, each ended by its marker, which
   `verify` can replay in order (two `points run` started together queue here);
2. stores the exact bytes of its rules set (ledger.rulesets) and names the set,
   and each campaign's terms (its rules file and the tables it reads, by hash),
   in its marker;
3. compares the terms of every campaign that has posted entries with those of
   the latest run that had it: a change is refused (`TermsChanged`, naming the
   file and both hashes) unless the operator gave `--amend "REASON"`. Then an
   `amend` entry records who, why, when and both hashes, and the keys of the
   entries the changed campaigns post in this run carry `~amend<seq>` of that
   entry: the differences are adjustments linked to the amendment. Each period of a
   changed campaign is settled again on the day of its latest entry (not at its past
   checkpoints), against everything already paid or taken back, so an amendment needs
   --until on or after the campaign's latest entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from points.dsl.errors import RunError
from points.dsl.loader import load_rules
from points.engine.runs import run_markers
from points.ledger import rulesets
from points.ledger.model import NewEntry


class TermsChanged(RunError):
    """Raised when the terms of a campaign with posted entries changed without --amend."""


@contextlib.contextmanager
def run_lock(conn) -> Iterator[None]:
    """An exclusive lock on `<database>.run-lock` while the block runs (blocking).

    A database without a file (in memory) or a folder where the lock cannot be
    made runs unlocked: nothing else can reach the former, and SQLite's own
    write lock still keeps every step atomic in the latter.
    """
    name = conn.filename
    if not name:
        yield
        return
    try:
        fd = os.open(name + ".run-lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def campaign_terms(rules, files: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """campaign -> {path: sha256} of its rules file and every table it reads."""
    out = {}
    for lc in rules.campaigns:
        paths = {lc.file} | {t.path for t in lc.plan.tables.values()}
        out[lc.name] = {p: files.get(p) for p in sorted(paths)}
    return out


def _previous_terms(conn, name: str, file: str) -> tuple[int, dict] | None:
    """(marker seq, terms) of the latest run that had campaign `name`."""
    for m in reversed(run_markers(conn)):
        if m.campaigns is not None:
            if name in m.campaigns:
                return m.seq, dict(m.campaigns[name])
        elif file in m.rules:  # a run recorded before full sets: its file only
            return m.seq, {file: m.rules[file]}
    return None


def _has_entries(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM entries WHERE campaign = ? LIMIT 1", (name,)).fetchone() is not None


def changed_terms(conn, rules, files: dict[str, str]) -> list[dict]:
    """Every (campaign, path, before, after) whose terms differ from its latest run."""
    out = []
    for lc in rules.campaigns:
        if not _has_entries(conn, lc.name):
            continue
        before = _previous_terms(conn, lc.name, lc.file)
        if before is None:
            continue
        seq, old = before
        new = campaign_terms(rules, files)[lc.name]
        if before[1].keys() <= {lc.file}:  # legacy marker: compare the rules file only
            new = {lc.file: new.get(lc.file)}
        for path, a, b in rulesets.diff_sets(old, new):
            out.append({"campaign": lc.name, "path": path, "before": a, "after": b, "run": seq})
    return out


def _describe(c: dict) -> str:
    return (f"campaign {c['campaign']} has posted entries and {c['path']} changed "
            f"(sha256 {c['before'] or 'absent'} in run entry {c['run']}, {c['after'] or 'absent'} now)")


def _unsealed_amendment(conn, digest: str):
    """An amendment to this very set written after the last marker (a run that was
    interrupted): its resume reuses it instead of recording a second one."""
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries WHERE step = 'run'").fetchone()
    row = conn.execute("SELECT seq, memo FROM entries WHERE step = 'amend' AND seq > ? "
                       "ORDER BY seq DESC LIMIT 1", (last,)).fetchone()
    if row is not None and json.loads(row[1]).get("ruleset") == digest:
        return row[0], json.loads(row[1])
    return None


def start(runner, amend, check: bool) -> tuple[dict, dict[str, str]]:
    """Record the run's rules set and settle its terms (inside the run lock).

    `amend`: None, the operator's reason (str), or a stored amendment Entry that a
    replay re-posts as it was. Returns (what the marker adds, campaign -> key tag).
    """
    conn, rules = runner.conn, runner.rules
    snap = runner.snapshot
    files = snap.files
    digest = rulesets.record(conn, snap)
    (head,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()
    conn.execute("INSERT INTO run_starts(head, until, watermark, ruleset) VALUES (?, ?, ?, ?)",
                 (head, runner.until.isoformat(), runner.wm, digest))
    extra = {"ruleset": digest, "files": files, "campaigns": campaign_terms(rules, files)}
    tags: dict[str, str] = {}
    amendment = None
    if amend is not None and not isinstance(amend, str):  # a replay: the entry as recorded
        amendment = runner.journal.entry_by_key(amend.key) or runner.journal.append([NewEntry(
            key=amend.key, effective=amend.effective, postings=(), recorded=amend.recorded,
            step="amend", memo=amend.memo)])[0]  # (already there: an interrupted run wrote it)
        seq, memo = amendment.seq, amend.memo
    elif check:
        changes = changed_terms(conn, rules, files)
        if changes and amend is None:
            raise TermsChanged("; ".join(_describe(c) for c in changes)
                               + '; to post the differences, run again with --amend "REASON"')
        if not changes:
            return extra, tags
        late = _latest_effective(conn, {c["campaign"] for c in changes})
        if late is not None and late > runner.until.isoformat():
            raise TermsChanged(f"the changed campaigns have entries up to {late}, after --until "
                               f"{runner.until.isoformat()}: amend with --until {late} or later")
        found = _unsealed_amendment(conn, digest)
        if found is not None:
            seq, memo = found
        else:
            memo = {"reason": amend.strip() or "(no reason given)", "by": _who(),
                    "at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ruleset": digest, "changes": changes}
            entry = runner.journal.append([NewEntry(
                key=f"amend:{head + 1}", effective=runner.until, postings=(),
                recorded=runner.recorded, step="amend", memo=memo)])[0]
            seq = entry.seq
    else:
        return extra, tags
    for c in memo.get("changes", ()):
        tags[c["campaign"]] = f"~amend{seq}"
    extra["amendment"] = seq
    return extra, tags


def amended_campaigns(conn) -> dict[str, int]:
    """campaign -> seq of the latest amendment that changed its terms. A run after an
    amendment settles such a campaign's periods the way the amendment did (collapsed on
    one day, engine.workflow.Runner.amended_checkpoints): its adjustments are dated on
    that day, so recomputing an earlier checkpoint would not see them and would post
    the same difference again."""
    out: dict[str, int] = {}
    for seq, memo in conn.execute("SELECT seq, memo FROM entries WHERE step = 'amend' ORDER BY seq"):
        for c in json.loads(memo).get("changes", ()):
            out[c["campaign"]] = seq
    return out


def _latest_effective(conn, campaigns: set[str]) -> str | None:
    marks = ",".join("?" * len(campaigns))
    return conn.execute(f"SELECT MAX(effective) FROM entries WHERE campaign IN ({marks})",
                        tuple(sorted(campaigns))).fetchone()[0]


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def latest_recorded_rules(conn):
    """(RuleSet, RunMarker) of the rules set the latest run recorded, loaded from the
    database (its tables are read into memory, so the folder it is rebuilt in goes);
    None when no run recorded one."""
    m = next((m for m in reversed(run_markers(conn)) if m.ruleset), None)
    if m is None:
        return None
    with tempfile.TemporaryDirectory(prefix="points-rules-") as tmp:
        return load_rules(rulesets.materialize(conn, m.ruleset, Path(tmp) / "rules")), m


def run_of_entry(markers, seq: int):
    """The marker of the run that wrote entry `seq` (the first marker after it), or None."""
    return next((m for m in markers if m.seq >= seq), None)
