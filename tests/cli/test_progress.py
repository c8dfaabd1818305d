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
