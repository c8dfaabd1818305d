"""Opening an events input once, so that pipes, FIFOs, `/dev/stdin` and `-`
(standard input) stream like files.

The format is sniffed from the first block when the name does not say it;
that block is then given back to the reader from memory (a pipe cannot be
read twice -- reopening it was how `points import /dev/stdin` used to import
nothing).
"""

from __future__ import annotations

import os
import stat
import sys

JSONL_EXTENSIONS = (".jsonl", ".json", ".ndjson")
CSV_EXTENSIONS = (".csv",)
STDIN = "-"  # the path that means standard input
STDIN_LABEL = "<stdin>"  # what errors and the `source` column call it
_SNIFF_LIMIT = 1 << 20  # blank bytes read, at most, to find the format
MAX_LINE = 65536  # bytes of one line (one event)


class EventError(Exception):
    """Raised when an events file cannot be read at all (from `line` on, if given)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line

    def where(self, path) -> str:
        return f"{path}:{self.line}" if self.line else f"{path}"


def _too_long(line: int) -> EventError:
    return EventError(f"line longer than {MAX_LINE:,} bytes (the limit of one event);"
                      " the rest of the input was not read", line=line)


class Input:
    """One events input (a path, or STDIN), opened once: its format, whether it
    is a regular file (and its size), and a stream that replays what was
    read to sniff the format."""

    def __init__(self, path: str | os.PathLike, fmt: str | None = None) -> None:
        self.path = os.fspath(path)
        self.label = STDIN_LABEL if self.path == STDIN else self.path
        self.format = fmt
        self.size: int | None = None  # bytes, for a regular file
        self.stream: _Replay | None = None

    def open(self) -> "Input":
        """Open and sniff; raises EventError if the input cannot be read."""
        raw = sys.stdin.buffer if self.path == STDIN else _open(self.path)
        try:
            mode = os.fstat(raw.fileno()).st_mode
            if stat.S_ISREG(mode):
                self.size = os.fstat(raw.fileno()).st_size
        except (OSError, ValueError, AttributeError):  # e.g. a test's stdin without a descriptor
            pass
        name = self.path.lower()
        prefix = b""
        if self.format is None:
            if name.endswith(JSONL_EXTENSIONS):
                self.format = "jsonl"
            elif name.endswith(CSV_EXTENSIONS):
                self.format = "csv"
            else:
                self.format, prefix = _sniff(raw)
        self.stream = _Replay(raw, prefix, close=self.path != STDIN)
        return self

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


class _Replay:
    """A binary stream that first gives back `prefix` (already read), then the rest."""

    def __init__(self, raw, prefix: bytes, close: bool) -> None:
        self.raw, self.prefix, self.closes = raw, prefix, close
        self.bytes_read = len(prefix)

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
            return out
        try:
            block = self.raw.read(n)
        except OSError as exc:
            raise EventError(f"cannot read: {exc.strerror or exc}") from None
        self.bytes_read += len(block)
        return block

    def close(self) -> None:
        if self.closes:
            self.raw.close()


def _sniff(raw) -> tuple[str, bytes]:
    """'jsonl' or 'csv' by the first non-blank byte ('{': JSON Lines), and the bytes read."""
    prefix = b""
    while len(prefix) < _SNIFF_LIMIT:
        try:
            block = raw.read(65536)
        except OSError as exc:
            raise EventError(f"cannot read: {exc.strerror or exc}") from None
        if not block:
            break
        prefix += block
        text = prefix.lstrip(b" \t\r\n\xef\xbb\xbf")
        if text:
            return ("jsonl" if text[:1] == b"{" else "csv"), prefix
    return "jsonl", prefix


def _open(path: str | os.PathLike):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise EventError("no such file") from None
    except IsADirectoryError:
        raise EventError("is a directory, not an events file") from None
    except PermissionError:
        raise EventError("permission denied") from None
    except OSError as exc:
        raise EventError(f"cannot open: {exc.strerror or exc}") from None
