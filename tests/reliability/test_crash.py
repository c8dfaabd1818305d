"""Crash safety: a run killed with SIGKILL at random moments leaves a verifiable
journal with no partial entry, and re-running it to the same date produces the
journal of an uninterrupted run, entry for entry (seq, key, hash)."""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.helpers import (
    CHECK_AND_FINISH_SCRIPT, ENV, ROOT, RULES, RUN_SCRIPT, UNTIL, generate_events, write_jsonl,
)

SEED = int(os.environ.get("RELIABILITY_SEED", "20260205"))
UNIFORM_KILLS = int(os.environ.get("RELIABILITY_UNIFORM_KILLS", "30"))
PER_PHASE_KILLS = int(os.environ.get("RELIABILITY_PHASE_KILLS", "4"))
MEMBERS = int(os.environ.get("RELIABILITY_CRASH_MEMBERS", "300"))
TARGET_PHASES = ("import", "settlement", "lottery", "expiry", "redemption")


def run_child(work: Path, events: Path, marks: Path, kill_after: float | str | None):
    """Start the run script; SIGKILL it after `kill_after` seconds (a float), or let it kill
    itself at a journal append ("<phase>:<n>:<before|after>"). Returns (rc, secs, phase)."""
    t0 = time.monotonic()
    env = dict(ENV, RELIABILITY_KILL=kill_after) if isinstance(kill_after, str) else ENV
    proc = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, work / "points.db", events, UNTIL,
                             RULES, marks], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if isinstance(kill_after, str):
        proc.communicate(timeout=120)
        kill_after = None
        if proc.returncode == 0:
            raise AssertionError(f"the child did not reach its kill point {env['RELIABILITY_KILL']}")
    elif kill_after is None:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        return 0, time.monotonic() - t0, "done"
    # The clock starts when the child begins its work (the import): Python start-up and
    # loading the rules (about 0.4 s, longer when children run in parallel) write nothing.
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if marks.exists() and " import" in marks.read_text():
            break
        time.sleep(0.002)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    secs = time.monotonic() - t0
    lines = marks.read_text().split("\n") if marks.exists() else []
    last = [l for l in lines if l.strip() and not l.startswith("#")]
    phase = last[-1].split()[1] if last else "startup"
    return proc.returncode, secs, phase


def phase_windows(marks: Path) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """(work time, phase -> [(start, end)]) in seconds after the child began its import."""
    rows = [l.split() for l in marks.read_text().split("\n") if l.strip() and l[0] != "#"]
    start = next(float(t) for t, phase in rows if phase == "import")
    out = collections.defaultdict(list)
    for (t, phase), (t2, _) in zip(rows, rows[1:]):
        out[phase].append((float(t) - start, float(t2) - start))
    return float(rows[-1][0]) - start, out


@pytest.fixture(scope="module")
def crash_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash")
    events = write_jsonl(d / "events.jsonl", generate_events(MEMBERS, seed=SEED))
    ref = d / "ref"
    ref.mkdir()
    _, secs, _ = run_child(ref, events, ref / "marks", None)
    out = subprocess.run([sys.executable, "-c", "import sys, json; from ledger import db;"
                          "from tests.reliability.helpers import journal;"
                          "print(json.dumps(journal(db.connect(sys.argv[1], readonly=True))))",
                          ref / "points.db"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    reference = [tuple(x) for x in json.loads(out.stdout)]
    t_work, windows = phase_windows(ref / "marks")
    appends = json.loads(next(l for l in (ref / "marks").read_text().split("\n")
                              if l.startswith("#points "))[len("#points "):])
    return d, events, secs, t_work, windows, appends, reference


def one_kill(d: Path, events: Path, i: int, delay: float, reference):
    work = d / f"kill{i:03d}"
    work.mkdir()
    rc, secs, phase = run_child(work, events, work / "marks", delay)
    if not (work / "points.db").exists():  # killed before the file was created: nothing to check
        return {"i": i, "delay": delay, "phase": phase, "rc": rc, "no_db": True}
    p = subprocess.run([sys.executable, "-c", CHECK_AND_FINISH_SCRIPT, work / "points.db", events,
                        UNTIL, RULES], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    res.update(i=i, delay=delay, phase=phase, rc=rc)
    res["same_journal"] = [tuple(x) for x in res.pop("journal")] == reference
    return res


@pytest.mark.slow
def test_sigkill_at_random_moments_then_rerun_gives_the_uninterrupted_journal(crash_data, figures):
    d, events, t_full, t_work, windows, appends, reference = crash_data
    rng = random.Random(SEED)
    # 1. timer kills: uniform over the first nine tenths of the work of an uninterrupted
    # run (import + run): a child that runs faster than the reference did (the machine
    # was busier then) would finish before a kill in the last tenth and test nothing.
    delays: list = [rng.uniform(0, 0.9 * t_work) for _ in range(UNIFORM_KILLS)]
    # 2. timer kills aimed at the import, as timed by the reference run
    for _ in range(PER_PHASE_KILLS):
        a, b = rng.choice(windows["import"])
        delays.append(rng.uniform(a, b))
    delays.append("import:0:after")  # the import committed, the run not started
    # 3. exact kills at the n-th journal append of each phase, before or inside it
    for phase in TARGET_PHASES[1:]:
        for _ in range(PER_PHASE_KILLS if appends.get(phase) else 0):
            delays.append(f"{phase}:{rng.randint(1, appends[phase])}:{rng.choice(['before', 'after'])}")
    while len(delays) < 52:  # a phase without kill points (the engine changed): more timer kills
        delays.append(rng.uniform(0, 0.9 * t_work))
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda a: one_kill(d, events, *a, reference), enumerate(delays)))
    wall = time.monotonic() - t0

    failures = []
    for r in results:
        if r.get("no_db"):
            continue
        b = r["before"]
        if not b["ok"]:
            failures.append(f"kill {r['i']} ({r['phase']}, {r['delay']}): verify after kill: {b['problems']}")
        if b["partial"]:
            failures.append(f"kill {r['i']} ({r['phase']}): partial entries {b['partial']}")
        if not r["after_ok"]:
            failures.append(f"kill {r['i']}: verify after re-run: {r['after_problems']}")
        if not r["same_journal"]:
            failures.append(f"kill {r['i']} ({r['phase']}, {r['delay']}): re-run journal differs")
    landed = collections.Counter(r["phase"] for r in results)
    landed_timer = collections.Counter(r["phase"] for r in results if isinstance(r["delay"], float))
    killed = sum(1 for r in results if r["rc"] == -signal.SIGKILL)
    figures("crash", {
        "kill_points": len(results), "killed_by_sigkill": killed,
        "finished_before_kill": sum(1 for r in results if r["rc"] == 0),
        "landed_in_phase": dict(landed), "landed_in_phase_timer_kills": dict(landed_timer),
        "timer_kills": sum(isinstance(x, float) for x in delays),
        "kill_point_kills": sum(isinstance(x, str) for x in delays), "kill_points_per_phase": appends, "uninterrupted_run_s": round(t_full, 3),
        "uninterrupted_work_s (import+run)": round(t_work, 3),
        "phase_time_s": {k: round(sum(b - a for a, b in v), 3) for k, v in windows.items()},
        "events": sum(1 for _ in open(events)), "reference_entries": len(reference),
        "entries_at_kill_min_max": [min(r.get("before", {}).get("entries", 0) for r in results),
                                    max(r.get("before", {}).get("entries", 0) for r in results)],
        "wall_s": round(wall, 1), "seed": SEED,
    })
    assert not failures, "\n".join(failures)
    assert len(results) >= 50
    assert killed >= 45
    for phase in ("import", "settlement", "lottery", "expiry"):
        assert landed[phase] >= 1, (phase, dict(landed))
