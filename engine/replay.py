"""The auditor's re-derivation: replay every run on a scratch database and compare.

Every `run` leaves a marker entry with its date, the last event it saw (the
watermark) and the content hash of every rules file it used. Replaying the same
runs, in order, over the same events (imported up to each watermark) with the
same rules must produce the same entries, bit for bit: same keys, same postings,
same hashes. A rules file whose content changed since a run is a finding too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from points.dsl.errors import RulesError
from points.dsl.loader import load_rules
from points.engine.runs import run_markers
from points.engine.workflow import Runner
from points.ledger import db

EVENT_COLUMNS = "seq, id, type, member, at, day, time, weekday, amount, ref, body, source, prev_hash, hash"


def rederive(conn, rules_dir: Path) -> list[str]:
    """Problems found re-deriving the journal from events + rules (empty: all identical)."""
    markers = run_markers(conn)
    total = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    if not markers:
        return [] if total == 0 else [f"{total} entries but no run recorded: nothing to re-derive them from"]
    try:
        rules = load_rules(rules_dir)
    except RulesError as exc:
        return [f"rules in {rules_dir} do not load: {exc.diagnostics[0].message}"]
    problems = []
    for marker in markers:
        seq = marker.seq
        for name, digest in marker.rules.items():
            now = rules.hashes.get(name)
            if now != digest:
                what = "is missing" if now is None else f"changed (sha256 {digest[:12]}… then, {now[:12]}… now)"
                problems.append(f"entry {seq}: rules file {name} {what} since this run")
        extra = set(rules.hashes) - set(marker.rules)
        for name in sorted(extra):
            problems.append(f"entry {seq}: rules file {name} was not part of this run")
    if problems:
        return problems

    with tempfile.TemporaryDirectory(prefix="points-verify-") as tmp:
        scratch = db.connect(Path(tmp) / "replay.db")
        try:
            copied = 0
            for marker in markers:
                wm = marker.watermark
                rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
                                    (copied, wm))
                with db.transaction(scratch):
                    scratch.executemany(f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 14)})", rows)
                copied = max(copied, wm)
                Runner(scratch, rules, marker.until).run()
            return compare(conn, scratch)
        finally:
            scratch.close()


def compare(original, replayed) -> list[str]:
    """The first entries whose hash differs between two journals."""
    a = original.execute("SELECT seq, key, hash FROM entries ORDER BY seq")
    b = replayed.execute("SELECT seq, key, hash FROM entries ORDER BY seq")
    for left, right in zip(a, b):
        if left != right:
            return [f"entry {left[0]}: re-derived entry differs (stored key {left[1]}, "
                    f"re-derived key {right[1]})"]
    n_a = original.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    n_b = replayed.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    if n_a != n_b:
        return [f"the journal has {n_a} entries, re-deriving gives {n_b}"]
    return []
