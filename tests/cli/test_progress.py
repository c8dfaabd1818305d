"""Progress on long work: on stderr when it is a terminal, nothing at all otherwise."""

from __future__ import annotations

import io
import time

from points.cli import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_activity_on_a_terminal_shows_the_label_and_erases_it(monkeypatch):
    monkeypatch.delenv("POINTS_NO_PROGRESS", raising=False)
    tty = Terminal()
    with progress.activity("verifying", stream=tty, every=0.01):
        time.sleep(0.05)
    text = tty.getvalue()
    assert text.startswith("\rverifying...") and " s" in text
    assert text.endswith("\r\033[K")


def test_nothing_when_piped_or_turned_off(monkeypatch):
    piped = io.StringIO()
    with progress.activity("verifying", stream=piped, every=0.01):
        time.sleep(0.03)
    with progress.bar("running", stream=piped) as advance:
        assert advance is None
    assert piped.getvalue() == ""
    monkeypatch.setenv("POINTS_NO_PROGRESS", "1")
    tty = Terminal()
    with progress.activity("verifying", stream=tty), progress.bar("running", stream=tty) as advance:
        assert advance is None
    assert tty.getvalue() == ""


def test_bar_counts_to_the_total(monkeypatch):
    monkeypatch.delenv("POINTS_NO_PROGRESS", raising=False)
    tty = Terminal()
    with progress.bar("running", stream=tty) as advance:
        for done in range(0, 11):
            advance(done, 10)
    text = tty.getvalue()
    assert "running" in text and "10/10" in text


def test_import_shows_progress_on_a_terminal_stderr_only(tmp_path):
    """A real child process: stderr a pseudo-terminal, stdout a pipe."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("points")
    events = Path(__file__).resolve().parents[2] / "rules" / "samples" / "events.jsonl"
    db = tmp_path / "p.db"
    env = {k: v for k, v in os.environ.items() if k != "POINTS_NO_PROGRESS"}
    subprocess.run([exe, "--db", db, "init"], check=True, capture_output=True)
    master, slave = pty.openpty()
    done = subprocess.run([exe, "--db", db, "import", events], stdout=subprocess.PIPE, stderr=slave,
                          env=env, timeout=120)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    assert done.returncode == 0
    assert b"importing..." in err and err.endswith(b"\r\x1b[K")
    assert done.stdout.decode().startswith(f"{events}: imported ") and b"importing" not in done.stdout
