"""Signals and streams (issue 14): Ctrl-C exits 130 and says what was committed, a
closed pipe exits quietly, data on stdout and diagnostics on stderr, and no scratch
file outlives a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import ENV, ROOT, generate_events, write_jsonl

CLI = [sys.executable, "-m", "points.cli.main"]


def _points(db: Path, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--db", str(db), *map(str, args)], cwd=ROOT, env=kw.pop("env", ENV),
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("signals")
    db = d / "points.db"
    events = write_jsonl(d / "events.jsonl", generate_events(1500, seed=3))
    assert _points(db, "init").returncode == 0
    p = _points(db, "import", events)
    assert p.returncode == 0, p.stderr
    return db


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_what_was_committed(loaded, tmp_path):
    db = tmp_path / "p.db"
    db.write_bytes(loaded.read_bytes())
    proc = subprocess.Popen([*CLI, "--db", str(db), "run", "--until", "2027-12-31", "--allow-future",
                             "--rules", str(ROOT / "rules")], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from points.ledger import db as ledger_db

    t0 = time.monotonic()
    while True:  # interrupt once the run has committed something
        assert proc.poll() is None and time.monotonic() - t0 < 120, proc.stderr.read() if proc.stderr else ""
        conn = ledger_db.connect(db, readonly=True)
        n = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        conn.close()
        if n:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt")
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), err
    assert "run the same command again to resume" in lines[0]
    again = _points(db, "run", "--until", "2027-12-31", "--allow-future", "--rules", ROOT / "rules")
    assert again.returncode == 0, again.stderr
    assert _points(db, "verify").returncode == 0


def test_ctrl_c_before_any_write_says_nothing_was_written(loaded, tmp_path):
    # an interrupt before the database is opened: nothing can have been written
    code = ("import sys, points.cli.main as m\n"
            "import points.cli.commands_read as r\n"
            "def boom(*a, **k):\n    raise KeyboardInterrupt\n"
            "r.open_db = boom\n"
            "sys.argv = ['points', '--db', sys.argv[1], 'balance', 'M00001']\nm.cli()\n")
    p = subprocess.run([sys.executable, "-c", code, str(loaded)], cwd=ROOT, env=ENV, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 130, p.stderr
    assert p.stderr == "interrupted: nothing was written\n"


def test_a_closed_pipe_exits_quietly(loaded):
    proc = subprocess.Popen([*CLI, "--db", str(loaded), "export", "--format", "jsonl"], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader has what it wanted (`| head -1`)
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 0, err
    assert err == ""


def test_diagnostics_go_to_stderr_and_data_to_stdout(loaded, tmp_path):
    p = _points(tmp_path / "nope.db", "balance", "M00001")
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("error: no points database at ")
    ok = _points(loaded, "balance", "M00001", "--json")
    assert ok.returncode in (0, 1)
    if ok.returncode == 0:
        assert ok.stdout.startswith("{") and ok.stderr == ""


def _scratch_files(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


@pytest.fixture(scope="module")
def settled(loaded, tmp_path_factory) -> Path:
    """`loaded` with every campaign run: verify has runs to replay."""
    db = tmp_path_factory.mktemp("settled") / "points.db"
    db.write_bytes(loaded.read_bytes())
    p = _points(db, "run", "--until", "2027-12-31", "--allow-future", "--rules", ROOT / "rules")
    assert p.returncode == 0, p.stderr
    return db


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_no_scratch_file_outlives_a_killed_verify_or_dry_run(loaded, settled, tmp_path, sig):
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    env = dict(ENV, TMPDIR=str(tmp), SQLITE_TMPDIR=str(tmp))
    # The child signals itself as its first replayed (verify) or dry (run) step starts on
    # the scratch database, after some work: the scratch file exists at that moment.
    code = ("import os, signal, sys\n"
            "SIG = int(sys.argv[1])\n"
            "from points.engine import workflow\n"
            "run = workflow.Runner.run\n"
            "def run_then_die(self):\n"
            "    self.progress = lambda done, total: done > 3 and os.kill(os.getpid(), SIG)\n"
            "    return run(self)\n"
            "workflow.Runner.run = run_then_die\n"
            "from points.cli.main import main\n"
            "sys.argv = ['points', *sys.argv[2:]]\n"
            "main()\n")
    for db, args in ((settled, ["verify"]),  # replays the run on a scratch database
                     (loaded, ["run", "--until", "2027-12-31", "--allow-future", "--dry-run"])):
        proc = subprocess.run([sys.executable, "-c", code, str(int(sig)), "--db", str(db), *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        expected = {signal.SIGKILL: -9, signal.SIGINT: 130, signal.SIGTERM: 143}[sig]
        assert proc.returncode == expected, (args, proc.returncode, proc.stderr)
        if sig != signal.SIGKILL:
            assert proc.stderr.startswith("interrupted: ") and len(proc.stderr.splitlines()) == 1, proc.stderr
        # nothing at all survives: the database copy is delete-on-close and verify's rules
        # folders are gone before the replay starts
        assert _scratch_files(tmp) == [], (args, _scratch_files(tmp))
    assert _points(settled, "verify", env=env).returncode == 0
    assert _scratch_files(tmp) == [], _scratch_files(tmp)
