"""The auditor's re-derivation: replay every run with its own rules and compare.

Every `run` leaves a marker entry with its date, the last event it saw (the
watermark), the hash of the rules set it used and every file of that set by hash
(engine.recorded; the bytes are in the database, ledger.rulesets). Runs happen one
after the other (the run lock), so the journal is a sequence of whole runs.
Replaying the same runs, in order, on a scratch database, over the same events
(imported up to each watermark), each with the rules folder rebuilt from its
recorded set (and its amendment entry re-posted as recorded), must produce the
same entries, bit for bit: same keys, same postings, same hashes. No rules folder
is needed. A marker written before rules sets were recorded names only its rules
files' hashes: such a run is replayed with the given folder if those match.

Every start of a run is recorded too (`run_starts`: the journal's head, the date,
the watermark and the rules set). A run that was interrupted and then resumed by a
different run (another date, or after more events were imported) is replayed with
its own parameters exactly as far as it went -- up to the entry where the next run
started -- then the next run. Entries after the last marker belong to a run that is
still going or was interrupted (its next `points run` resumes it and writes the
marker): they are re-derived the same way, as far as they go, and are no finding.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path

import attrs

from points.dsl.errors import RulesError
from points.dsl.loader import load_rules
from points.engine.replay_inplace import replay_in_place
from points.engine.runs import ended_runs, run_markers
from points.engine.workflow import Runner
from points.ledger import db, rulesets
from points.ledger.journal import Journal

EVENT_COLUMNS = "seq, id, type, member, at, day, time, weekday, amount, ref, body, source, prev_hash, hash"
MAX_DIFFERENCES = 25  # differing entries listed in full; all are counted

__all__ = ["Rederivation", "rederive", "replay", "run_markers"]


@attrs.define
class Rederivation:
    problems: list[str] = attrs.field(factory=list)
    runs: list[dict] = attrs.field(factory=list)   # per run: seq, until, watermark, ruleset...
    rederived: int = 0     # entries compared with their re-derivation
    pending: int = 0       # entries after the last run marker (a run going on or interrupted)
    pending_rederived: bool = False  # those re-derived too (their run's start was recorded)
    differing: int = 0     # entries whose content differs from their re-derivation


def rederive(conn, rules_dir: Path | None = None) -> list[str]:
    """Problems found re-deriving the journal (empty: all identical)."""
    return replay(conn, rules_dir).problems


def replay(conn, rules_dir: Path | None = None) -> Rederivation:
    """Replay every run with its recorded rules (see module docstring)."""
    out = Rederivation()
    marks = run_markers(conn)
    (total,) = conn.execute("SELECT COUNT(*) FROM entries").fetchone()
    sealed = marks[-1].seq if marks else 0
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()
    out.pending = last - sealed
    starts = _run_starts(conn)
    gone = [a["head"] for a in starts if a["head"] > last]
    if gone:
        out.problems.append(f"a run started after entry {max(gone)} but the journal ends at entry "
                            f"{last}: entries were removed")
        return out
    held = {m.seq for m in marks}
    lost = [seq for seq in ended_runs(conn) if seq not in held]
    if lost:
        out.problems.append(
            f"a run finished with its marker at entry {lost[0]} (recorded in run_ends), but the "
            + (f"journal ends at entry {last}" if lost[0] > last else "entry is no longer a run marker")
            + ": entries were removed")
        return out
    steps = _steps(conn, marks, starts, last)
    upto = max([sealed] + [s["stop"] for s in steps if s["stop"] is not None])
    if not steps:
        return out
    _sweep_scratch()
    loaded: dict[str, object] = {}
    snaps: dict[int, rulesets.Snapshot] = {}  # by loaded RuleSet (cached in `loaded`)
    for m in marks:
        out.runs.append({"entry": m.seq, "until": m.until.isoformat(), "watermark": m.watermark,
                         "ruleset": m.ruleset, "files": dict(m.files or m.rules),
                         "amendment": m.amendment})
    # The recorded sets are rebuilt as folders only to be loaded; each is loaded and read
    # into memory (rules, tables, the snapshot its run records), and the folders go before
    # the replay, the long part, starts. A SIGKILL while they exist leaves them for the
    # next verify to sweep (_sweep_scratch); SIGINT or SIGTERM removes them.
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as tmp:
        for step in steps:
            m = step["marker"]
            step["rules"] = (_rules_of(conn, m, rules_dir, Path(tmp), loaded, out.problems) if m
                             else _set_rules(conn, step["label"], step["ruleset"], Path(tmp), loaded,
                                             out.problems))
            rules = step["rules"]
            if rules is not None and id(rules) not in snaps:
                snaps[id(rules)] = rulesets.snapshot_of(rules)
            step["snapshot"] = snaps.get(id(rules))
    if out.problems:
        return out
    # The usual case, a journal that re-derives exactly, is settled in place (nothing
    # copied or written); anything else is replayed in full below, which lists it.
    if replay_in_place(conn, steps, upto, STOP):
        out.rederived = upto
        out.pending_rederived = upto > sealed
        return out
    # Delete-on-close (ledger.db.scratch): the replayed journal is never left in $TMPDIR,
    # even by a killed verify.
    scratch = db.scratch()
    try:
        copied = 0
        original = Journal(conn)
        for step in steps:
            rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ?"
                                " ORDER BY seq", (copied, step["watermark"]))
            with db.transaction(scratch):
                scratch.executemany(
                    f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 14)})", rows)
            copied = max(copied, step["watermark"])
            amend = original.entry(step["amendment"]) if step["amendment"] else None
            runner = Runner(scratch, step["rules"], step["until"], amend=amend, check_terms=False,
                            snapshot=step["snapshot"])
            if step["stop"] is None:
                runner.run()
                continue
            # An interrupted run: replayed exactly as far as it went -- its next write
            # past the entry where the run after it started is refused, as the crash did.
            scratch.execute(f"CREATE TEMP TRIGGER replay_stop BEFORE INSERT ON main.entries "
                            f"WHEN NEW.seq > {int(step['stop'])} "
                            f"BEGIN SELECT RAISE(ABORT, '{STOP}'); END")
            try:
                runner.run()
            except Exception as exc:  # noqa: BLE001 -- only our own stop is expected
                if STOP not in str(exc):
                    raise
            # (the journal keeps a balance cache only when its own commit succeeds)
            scratch.execute("DROP TRIGGER temp.replay_stop")
        compare(conn, scratch, upto, out)
        out.pending_rederived = upto > sealed
    finally:
        scratch.close()
    return out


SCRATCH_PREFIX = "points-verify-"


def _sweep_scratch() -> None:
    """Remove the rules folders that a killed verify (SIGKILL: no cleanup ran) left in
    $TMPDIR: those named after a process that no longer exists."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


STOP = "replay stops here"


def _run_starts(conn) -> list[dict]:
    """Every recorded start of a run, in order (none in a database made before them)."""
    try:
        rows = conn.execute("SELECT head, until, watermark, ruleset FROM run_starts ORDER BY id").fetchall()
    except Exception:  # noqa: BLE001 -- an older read-only database has no such table
        return []
    return [{"head": h, "until": dt.date.fromisoformat(u), "watermark": w, "ruleset": r}
            for h, u, w, r in rows]


def _steps(conn, marks, starts: list[dict], last: int) -> list[dict]:
    """The runs to replay, in order: per marker, any interrupted run before it (replayed
    up to where the next run started) then the run that wrote the marker; then the runs
    after the last marker (interrupted, or going on), each as far as it went."""
    steps, prev = [], 0
    for m in marks:
        tried = [a for a in starts if prev <= a["head"] < m.seq]
        done = (tried and (tried[-1]["until"], tried[-1]["watermark"], tried[-1]["ruleset"])
                == (m.until, m.watermark, m.ruleset))
        if done:
            heads = [a["head"] for a in tried[1:]]
            for a, stop in zip(tried[:-1], heads):
                steps.append(_partial(conn, a, stop))
        steps.append({"marker": m, "label": f"entry {m.seq}", "until": m.until,
                      "watermark": m.watermark, "ruleset": m.ruleset, "amendment": m.amendment,
                      "stop": None})
        prev = m.seq
    tried = [a for a in starts if a["head"] >= prev]
    if last > prev and tried:
        heads = [a["head"] for a in tried[1:]] + [last]
        steps += [_partial(conn, a, stop) for a, stop in zip(tried, heads)]
    return steps


def _partial(conn, a: dict, stop: int) -> dict:
    row = conn.execute("SELECT seq FROM entries WHERE step = 'amend' AND seq > ? AND seq <= ?"
                       " ORDER BY seq LIMIT 1", (a["head"], stop)).fetchone()
    return {"marker": None, "label": f"the run started after entry {a['head']}", "until": a["until"],
            "watermark": a["watermark"], "ruleset": a["ruleset"], "amendment": row[0] if row else None,
            "stop": stop}


def _set_rules(conn, label: str, digest: str, tmp: Path, loaded: dict, problems: list):
    """The loaded rules of a recorded set (cached by its hash)."""
    if digest in loaded:
        return loaded[digest]
    try:
        folder = rulesets.materialize(conn, digest, tmp / digest[:16])
        loaded[digest] = rules = load_rules(folder)
    except rulesets.RuleSetError as exc:
        problems.append(f"{label}: {exc}")
        return None
    except RulesError as exc:
        problems.append(f"{label}: the recorded rules set {digest[:16]}… does not load: "
                        f"{exc.diagnostics[0].message}")
        return None
    return rules


def _rules_of(conn, m, rules_dir, tmp: Path, loaded: dict, problems: list):
    """The loaded rules of one run (a RunMarker): its recorded set, or (markers made
    before sets were recorded) the given folder."""
    seq, digest = m.seq, m.ruleset
    if digest is None:
        return _legacy_rules(m, rules_dir, loaded, problems)
    if digest in loaded:
        return loaded[digest]
    if rulesets.set_digest(dict(m.files)) != digest:
        problems.append(f"entry {seq}: the run marker's file list does not match its rules set hash")
        return None
    return _set_rules(conn, f"entry {seq}", digest, tmp, loaded, problems)


def _legacy_rules(m, rules_dir, loaded: dict, problems: list):
    seq = m.seq
    if rules_dir is None:
        problems.append(f"entry {seq}: this run recorded no rules set (it predates recorded rules):"
                        " give its rules folder with --rules DIR")
        return None
    key = f"folder:{rules_dir}"
    if key not in loaded:
        try:
            loaded[key] = load_rules(rules_dir)
        except RulesError as exc:
            problems.append(f"rules in {rules_dir} do not load: {exc.diagnostics[0].message}")
            return None
    rules = loaded[key]
    recorded_files = m.rules
    for name in sorted(set(recorded_files) | set(rules.hashes)):
        then, now = recorded_files.get(name), rules.hashes.get(name)
        if then != now:
            problems.append(f"entry {seq}: rules file {name}: sha256 {then or 'absent'} in this run, "
                            f"{now or 'absent'} in {rules_dir}")
    return rules


# ---------------------------------------------------------------- comparison

_FIELDS = ("key", "effective", "recorded", "campaign", "rule", "rules_hash", "step", "events",
           "reverses")


def compare(original, replayed, upto: int, out: Rederivation) -> None:
    """Compare entries 1..upto with their re-derivation; record every content difference."""
    a = original.execute("SELECT seq, hash FROM entries WHERE seq <= ? ORDER BY seq", (upto,))
    b = replayed.execute("SELECT seq, hash FROM entries ORDER BY seq")
    left_j, right_j = Journal(original), Journal(replayed)
    n = 0
    for left, right in zip(a, b):
        n += 1
        if left == right:
            continue
        fields = entry_differences(left_j.entry(left[0]), right_j.entry(right[0]))
        if not fields:  # same content: only the chain before it differs (already listed)
            continue
        out.differing += 1
        if out.differing <= MAX_DIFFERENCES:
            out.problems.append(f"entry {left[0]}: re-derived entry differs: " + "; ".join(fields))
    out.rederived = n
    if out.differing > MAX_DIFFERENCES:
        out.problems.append(f"... and {out.differing - MAX_DIFFERENCES} more differing entries")
    (n_b,) = replayed.execute("SELECT COUNT(*) FROM entries").fetchone()
    (n_a,) = original.execute("SELECT COUNT(*) FROM entries WHERE seq <= ?", (upto,)).fetchone()
    if n_a != n_b:
        extra = [f"{seq} ({key})" for seq, key in replayed.execute(
            "SELECT seq, key FROM entries WHERE seq > ? ORDER BY seq LIMIT 5", (n_a,))]
        more = f"; re-derived only: {', '.join(extra)}" if extra else ""
        out.problems.append(f"the journal has {n_a} entries up to its last run, re-deriving gives "
                            f"{n_b}{more}")


def entry_differences(stored, derived) -> list[str]:
    """'field: stored X, re-derived Y' for every field of two entries that differs
    (prev_hash and hash excepted: they follow from the entries before)."""
    out = []
    for name in _FIELDS:
        x, y = getattr(stored, name), getattr(derived, name)
        if x != y:
            out.append(f"{name}: stored {_show(x)}, re-derived {_show(y)}")
    mx = stored.memo if isinstance(stored.memo, dict) else {"": stored.memo}
    my = derived.memo if isinstance(derived.memo, dict) else {"": derived.memo}
    for k in sorted(set(mx) | set(my)):
        if mx.get(k) != my.get(k):
            out.append(f"memo.{k}: stored {_show(mx.get(k))}, re-derived {_show(my.get(k))}")
    px, py = stored.postings, derived.postings
    for i in range(max(len(px), len(py))):
        p = px[i] if i < len(px) else None
        q = py[i] if i < len(py) else None
        if p is None or q is None:
            out.append(f"posting {i}: stored {_posting(p)}, re-derived {_posting(q)}")
            continue
        for name in ("account", "kind", "amount", "expires", "lot"):
            if getattr(p, name) != getattr(q, name):
                out.append(f"posting {i} {name}: stored {_show(getattr(p, name))}, "
                           f"re-derived {_show(getattr(q, name))}")
    return out


def _posting(p) -> str:
    return "none" if p is None else f"{p.account} {p.kind} {p.amount:+d}"


def _show(value) -> str:
    if isinstance(value, (dt.date,)):
        return value.isoformat()
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:79] + "…"
