"""Run markers: the record a `run --until` leaves once every step of it is done.

A marker is an entry without postings (step `run`, key `run:<until>:<watermark>:
<rules digest>`) holding the run's date, the last event it saw and the content hash
of every rules file it used. The run engine writes it and reads it back to skip the
steps an identical earlier run finished; `verify` replays the runs it lists; the
read commands ask it for "the latest run". Only this module knows its layout.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Mapping

import attrs

from points.ledger.model import NewEntry

__all__ = ["RunMarker", "completed_until", "latest_run", "marker_entry", "run_markers"]

# Markers are found through the entries' key index (every marker key starts "run:").
_MARKERS = "SELECT seq, memo FROM entries WHERE key >= 'run:' AND key < 'run;'"


@attrs.frozen
class RunMarker:
    seq: int
    until: dt.date
    watermark: int  # the last event seq the run saw
    rules: Mapping[str, str]  # rules file -> sha256 of its content


def marker_entry(until: dt.date, watermark: int, hashes: Mapping[str, str],
                 recorded: str | dt.date | None = None) -> NewEntry:
    """The marker of a run over events up to `watermark` with rules of those hashes."""
    digest = hashlib.sha256(json.dumps(sorted(hashes.items())).encode()).hexdigest()
    return NewEntry(
        key=f"run:{until.isoformat()}:{watermark}:{digest[:16]}", effective=until, postings=(),
        recorded=recorded, step="run",
        memo={"until": until.isoformat(), "watermark": watermark, "rules": dict(sorted(hashes.items()))})


def _marker(seq: int, memo: str) -> RunMarker:
    m = json.loads(memo)
    return RunMarker(seq, dt.date.fromisoformat(m["until"]), m["watermark"], m.get("rules", {}))


def run_markers(conn) -> list[RunMarker]:
    """Every run's marker, in the order the runs finished."""
    return [_marker(seq, memo) for seq, memo in conn.execute(_MARKERS + " ORDER BY seq")]


def latest_run(conn) -> RunMarker | None:
    """The marker of the run that finished last (None: no run yet)."""
    row = conn.execute(_MARKERS + " ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else _marker(*row)


def completed_until(conn, watermark: int, hashes: Mapping[str, str]) -> dt.date | None:
    """The last day an earlier run finished with these very events and rules: every
    step dated up to it is done (a marker is written only after all its steps)."""
    rules = dict(sorted(hashes.items()))
    done = [m.until for m in run_markers(conn) if m.watermark == watermark and m.rules == rules]
    return max(done, default=None)
