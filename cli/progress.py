"""Progress on long work (import, run, verify, export, report html).

Shown on stderr, and only when stderr is a terminal: stdout stays the command's
output (`points export > journal.jsonl` still shows progress, and a piped or
logged run prints nothing extra). `POINTS_NO_PROGRESS=1` turns it off.

Two forms: `bar(label)` yields a `progress(done, total)` callback for work that
can count itself (the run engine), drawn with click.progressbar; `activity(label)`
shows the label with the elapsed time, for work that cannot (verify, import).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Callable, Iterator, TextIO

import click

Callback = Callable[[int, int], None]


def enabled(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    if os.environ.get("POINTS_NO_PROGRESS"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def bar(label: str, stream: TextIO | None = None) -> Iterator[Callback | None]:
    """A `progress(done, total)` callback drawing a bar on stderr; None when not shown."""
    stream = stream or sys.stderr
    if not enabled(stream):
        yield None
        return
    state: dict = {"bar": None, "done": 0}

    def progress(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=max(total, 1), label=label, show_pos=True,
                                             file=stream)
            state["bar"].__enter__()
        state["bar"].length = max(total, 1)
        state["bar"].update(max(done - state["done"], 0))
        state["done"] = done

    try:
        yield progress
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


@contextlib.contextmanager
def activity(label: str, stream: TextIO | None = None, every: float = 0.5) -> Iterator[None]:
    """`label... 12 s` on one stderr line while the block runs, erased when it ends."""
    stream = stream or sys.stderr
    if not enabled(stream):
        yield
        return
    stop = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not stop.wait(every):
            stream.write(f"\r{label}... {time.monotonic() - start:,.0f} s")
            stream.flush()

    stream.write(f"\r{label}...")
    stream.flush()
    thread = threading.Thread(target=tick, name="points-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        stream.write("\r\033[K")  # erase the line: the command's own output follows
        stream.flush()
