"""Black-box acceptance: the installed `points` console script on real files.

These tests know only the contracts (DESIGN.md, the README, docs/): every command runs as a
subprocess with its working directory an empty temporary folder, so no ./rules is found
unless a test makes one.
"""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

BUNDLED = Path(__file__).resolve().parents[2] / "rules"
SAMPLE_EVENTS = BUNDLED / "samples" / "events.jsonl"


def points_exe():
    """The console script installed beside this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).parent / "points"
    return str(beside) if beside.exists() else shutil.which("points")


def points(*args, cwd, input=None, db=None, timeout=120):
    cmd = [points_exe()]
    if db is not None:
        cmd += ["--db", str(db)]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, text=True, timeout=timeout)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_clean_refusal(result, code=1):
    """A user error: the exit code, a reason on stderr, never a traceback, nothing on stdout."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip(), "a refusal says why on stderr"
    assert result.stdout == ""


def copy_rules(dest, names, tables=True):
    """A rules folder with some of the bundled campaigns, the catalogue and the tables."""
    dest.mkdir()
    for name in names:
        shutil.copy(BUNDLED / name, dest / name)
    shutil.copy(BUNDLED / "catalogue.events", dest / "catalogue.events")
    if tables:
        (dest / "data").mkdir()
        for csv in (BUNDLED / "data").glob("*.csv"):
            shutil.copy(csv, dest / "data" / csv.name)
    return dest
