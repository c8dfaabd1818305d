"""Run markers: the record a `run --until` leaves once every step of it is done.

A marker is an entry without postings (step `run`, key `run:<until>:<watermark>:
<rules digest>`) holding the run's date, the last event it saw and the content hash
of every rules file it used; since rules sets are recorded (engine.recorded), also
the hash of the whole set (`ruleset`: the digest in the key), every file of it by
hash (`files`), each campaign's terms (`campaigns`) and its amendment entry, if any. The run engine writes it and reads it back to skip the
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

__all__ = ["RunMarker", "completed_until", "ended_runs", "latest_run", "marker_entry", "run_markers",
           "seal"]

# Markers are found through the entries' key index (every marker key starts "run:").
_MARKERS = "SELECT seq, memo FROM entries WHERE key >= 'run:' AND key < 'run;'"


@attrs.frozen
class RunMarker:
    seq: int
    until: dt.date
    watermark: int  # the last event seq the run saw
    rules: Mapping[str, str]  # rules file -> sha256 of its content
    ruleset: str | None = None  # sha256 of the recorded rules set (None: before sets were recorded)
    files: Mapping[str, str] = attrs.field(factory=dict)  # every file of the set -> sha256
    campaigns: Mapping[str, Mapping[str, str]] | None = None  # campaign -> {path: sha256}
    amendment: int | None = None  # seq of the amendment entry this run wrote


def marker_entry(until: dt.date, watermark: int, hashes: Mapping[str, str],
                 recorded: str | dt.date | None = None, extra: Mapping | None = None) -> NewEntry:
    """The marker of a run over events up to `watermark` with rules of those hashes;
    `extra`: the recorded set (`ruleset`, `files`, `campaigns`, `amendment`)."""
    extra = dict(extra or {})
    digest = extra.get("ruleset") or hashlib.sha256(
        json.dumps(sorted(hashes.items())).encode()).hexdigest()
    return NewEntry(
        key=f"run:{until.isoformat()}:{watermark}:{digest[:16]}", effective=until, postings=(),
        recorded=recorded, step="run",
        memo={"until": until.isoformat(), "watermark": watermark,
              "rules": dict(sorted(hashes.items())), **extra})


def _marker(seq: int, memo: str) -> RunMarker:
    m = json.loads(memo)
    return RunMarker(seq, dt.date.fromisoformat(m["until"]), m["watermark"], m.get("rules", {}),
                     m.get("ruleset"), m.get("files") or {}, m.get("campaigns"), m.get("amendment"))


def seal(conn, seq: int) -> None:
    """Record that the run whose marker is entry `seq` finished (table run_ends; in the
    marker's transaction). An identical re-run finds its marker sealed already."""
    conn.execute("INSERT OR IGNORE INTO run_ends(marker) VALUES (?)", (seq,))


def ended_runs(conn) -> list[int]:
    """The marker seq of every run recorded as finished (none in a database made
    before run ends were recorded, or opened read-only without the table)."""
    try:
        return [seq for (seq,) in conn.execute("SELECT marker FROM run_ends ORDER BY marker")]
    except Exception:  # noqa: BLE001 -- an older read-only database has no such table
        return []


def run_markers(conn) -> list[RunMarker]:
    """Every run's marker, in the order the runs finished."""
    return [_marker(seq, memo) for seq, memo in conn.execute(_MARKERS + " ORDER BY seq")]


def latest_run(conn) -> RunMarker | None:
    """The marker of the run that finished last (None: no run yet)."""
    row = conn.execute(_MARKERS + " ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else _marker(*row)


def completed_until(conn, watermark: int, hashes: Mapping[str, str],
                    ruleset: str | None = None) -> dt.date | None:
    """The last day an earlier run finished with these very events and rules: every
    step dated up to it is done (a marker is written only after all its steps). Rules
    are the same when the recorded sets are (tables included); without a set on
    either side (a marker made before sets were recorded), when the rules files are."""
    rules = dict(sorted(hashes.items()))
    done = [m.until for m in run_markers(conn) if m.watermark == watermark
            and (m.ruleset == ruleset if m.ruleset is not None and ruleset is not None
                 else m.rules == rules)]
    return max(done, default=None)
