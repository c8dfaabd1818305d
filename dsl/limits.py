"""Rules files and tables are hostile input: the limits every one must keep.

A rules folder may come from anyone who can write to it, so reading it must not
hang, exhaust memory, overflow a 64-bit integer in the journal, or print a file
from elsewhere. Each limit is checked before the text goes further (the parser,
the checker, SQLite) and reported as `file:line:col: message`:

- files: only regular files inside the rules folder (a symbolic link must stay
  inside it); a FIFO or device is never opened for reading (opened non-blocking
  and refused by its type), and at most MAX_RULES_BYTES / MAX_TABLE_BYTES are read;
- string literals: at most MAX_STRING characters;
- digits: ASCII 0-9 only (a full-width １ is not a number);
- integer literals: at most MAX_INT (budgets and awards are stored as SQLite's
  64-bit integers);
- nesting: the parse tree at most MAX_DEPTH levels deep (the checker, compiler and
  evaluator recurse over it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from points.dsl.errors import Diagnostic

MAX_RULES_BYTES = 1 << 20      # 1 MiB: the seed programs are a few KiB each
MAX_TABLE_BYTES = 16 << 20     # 16 MiB of CSV
MAX_STRING = 4096              # characters in one string literal
MAX_INT = 2**63 - 1            # SQLite INTEGER
MAX_DEPTH = 100                # levels of the parse tree (expressions nest inside clauses)

__all__ = ["MAX_DEPTH", "MAX_INT", "MAX_RULES_BYTES", "MAX_STRING", "MAX_TABLE_BYTES",
           "FileRefused", "inside", "read_limited", "scan_source", "tree_depth"]


class FileRefused(Exception):
    """A rules file or table that is not a regular file inside its folder, or too big."""


def inside(path: Path, folder: Path) -> Path:
    """`path` resolved (symbolic links followed), refused unless it stays in `folder`."""
    base = folder.resolve()
    target = path.resolve()
    if target != base and base not in target.parents:
        raise FileRefused("a symbolic link out of the rules folder (not read)")
    return target


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    Opened non-blocking, so a FIFO cannot hang the open, and refused by its type
    (fstat of what was opened: no race with a file swapped in after a check)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused("not a regular file (a FIFO, device or folder is not read)")
        if st.st_size > limit:
            raise FileRefused(f"{st.st_size:,} bytes, more than the {limit:,} bytes allowed")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # grew while being read
                raise FileRefused(f"more than the {limit:,} bytes allowed")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def scan_source(source: str, path: str) -> list[Diagnostic]:
    """Lexical limits of a rules text: string length, ASCII digits, integer size.

    Strings and comments are skipped as the grammar skips them (a string is
    `"..."` with backslash escapes on one line; a comment runs from # to the end
    of the line), so a full-width digit inside a title is fine."""
    out: list[Diagnostic] = []
    for lineno, line in enumerate(source.split("\n"), start=1):
        i, n = 0, len(line)
        while i < n:
            ch = line[i]
            if ch == "#":
                break
            if ch == '"':
                j = i + 1
                while j < n and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                if j - i - 1 > MAX_STRING:
                    out.append(Diagnostic(path, lineno, i + 1,
                                          f"string literal of {j - i - 1:,} characters; at most "
                                          f"{MAX_STRING:,} are allowed"))
                i = j + 1
                continue
            if ch.isdigit() and not ("0" <= ch <= "9"):
                out.append(Diagnostic(path, lineno, i + 1,
                                      f"{ch!r} is not an ASCII digit; write numbers with 0-9"))
                i += 1
                continue
            if "0" <= ch <= "9" and not (i and (line[i - 1].isalnum() or line[i - 1] == "_")):
                j = i
                while j < n and ("0" <= line[j] <= "9" or line[j] == "_"):
                    j += 1
                digits = line[i:j].replace("_", "")
                if len(digits) > 19 or int(digits) > MAX_INT:
                    shown = digits if len(digits) <= 60 else f"{digits[:12]}...({len(digits):,} digits)"
                    out.append(Diagnostic(path, lineno, i + 1,
                                          f"integer {shown} is too large: at most {MAX_INT:_} "
                                          "(points and yen are 64-bit integers)"))
                i = j
                continue
            i += 1
    return out


def tree_depth(tree, path: str) -> Diagnostic | None:
    """The first place where a lark tree is more than MAX_DEPTH levels deep (an
    iterative walk: the tree itself may be too deep for recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        children = getattr(node, "children", None)
        if children is None:
            continue
        if depth > MAX_DEPTH:
            meta = getattr(node, "meta", None)
            line = getattr(meta, "line", 1) if meta is not None and not getattr(meta, "empty", True) else 1
            col = getattr(meta, "column", 1) if meta is not None and not getattr(meta, "empty", True) else 1
            return Diagnostic(path, line, col, f"nested more than {MAX_DEPTH} levels deep; "
                                               "split the expression into named values")
        stack.extend((c, depth + 1) for c in children)
    return None
