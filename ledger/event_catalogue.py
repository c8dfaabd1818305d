"""Catalogues: which event types apply to a rules folder.

A rules folder's catalogue is the bundled one (rules/catalogue.events, the
contract's table) with every type the folder's own `*.events` files declare
added, or replacing the bundled type of the same name (that is how a rule
writer adds a value to a choice). A folder with no `*.events` file uses the
bundled catalogue unchanged. The files are read as the rules are: only
regular files inside the folder, of a bounded size (see `_read`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from points.ledger.event_decl import CHOICE, DATETIME, TEXT, Catalogue, DeclError, EventType, FieldDecl, parse_events

MAX_EVENTS_BYTES = 1 << 20  # one *.events file (the bundled catalogue is 4 KiB)


def _kind_class(kind: str) -> str:
    """What a field's values are in JSON, CSV and rules: text, choices and datetimes are all text."""
    return TEXT if kind in (TEXT, CHOICE, DATETIME) else kind


def merge(base: Catalogue, own: list[EventType], files: tuple[str, ...] = ()) -> tuple[Catalogue, list]:
    """`base` with `own` types added or replacing the same-named ones; and the
    problems: a field name must have one kind of value across every type."""
    by_name = {t.name: t for t in own}
    types = [by_name.pop(t.name, t) for t in base.types] + list(by_name.values())
    errors = []
    first: dict[str, FieldDecl] = {}
    for t in types:
        for f in t.fields:
            seen = first.setdefault(f.name, f)
            if _kind_class(seen.kind) != _kind_class(f.kind) and f.where:
                path, _, line = f.where.rpartition(":")
                errors.append((path, int(line), 1,
                               f"field {f.name!r} is {f.kind} here but {seen.kind} in {seen.where or 'the bundled catalogue'}"
                               " (a field name has one kind of value in every event type)"))
    return Catalogue(tuple(types), base.files + files), errors


def read_catalogue(paths: list[Path], base: Catalogue | None = None, folder: Path | None = None) -> Catalogue:
    """The catalogue of `base` (default: empty) and the given `*.events` files; DeclError if any is bad."""
    catalogue, errors = read_catalogue_leniently(paths, base, folder)
    if errors:
        raise DeclError(errors)
    return catalogue


def _read(path: Path, folder: Path | None) -> str:
    """The text of a declaration file: a regular file (inside `folder`, if
    given) of at most MAX_EVENTS_BYTES, UTF-8. OSError/ValueError say why not.

    The same rules as dsl.limits applies to .rules files and tables: a link
    out of the folder is not followed (its content could be any file of the
    machine, echoed in an error), a FIFO is opened non-blocking and refused."""
    if folder is not None:
        base, target = folder.resolve(), path.resolve()
        if base not in target.parents:
            raise ValueError("a symbolic link out of the rules folder (not read)")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file (a FIFO, device or folder is not read)")
        data = os.read(fd, MAX_EVENTS_BYTES + 1)
        if len(data) > MAX_EVENTS_BYTES:
            raise ValueError(f"more than the {MAX_EVENTS_BYTES:,} bytes allowed")
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start + 1})") from None


def read_catalogue_leniently(paths: list[Path], base: Catalogue | None = None,
                             folder: Path | None = None) -> tuple[Catalogue, list]:
    """Like `read_catalogue`, but the problems come back beside the catalogue
    of every type declared without one (so that `check` can still check the
    rules that use those types)."""
    errors: list = []
    own: list[EventType] = []
    declared: dict[str, str] = {}
    for path in paths:
        label = str(path)
        try:
            text = _read(path, folder)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            errors.append((label, 1, 1, f"cannot read: {reason}"))
            continue
        types, problems = parse_events(text, label)
        errors += problems
        for t in types:
            if t.name in declared:
                line = int(t.where.rpartition(":")[2])
                errors.append((label, line, 7, f"event type {t.name!r} is already declared at {declared[t.name]}"))
                continue
            declared[t.name] = t.where
            own.append(t)
    catalogue, clashes = merge(base or Catalogue(()), own, tuple(str(p) for p in paths))
    return catalogue, errors + clashes


def events_files(rules_dir: Path) -> list[Path]:
    """The `*.events` files of a rules folder, by name: every one that is not a
    folder (a FIFO or a link out of the folder is then refused, never skipped)."""
    return sorted(p for p in Path(rules_dir).glob("*.events") if not p.is_dir())


_bundled: list[Catalogue] = []


def bundled_path() -> Path:
    """The bundled declaration: rules/catalogue.events of the installed package."""
    from points import rules

    return Path(rules.__file__).resolve().parent / "catalogue.events"


def bundled_catalogue() -> Catalogue:
    """The contract's catalogue (read once)."""
    if not _bundled:
        _bundled.append(read_catalogue([bundled_path()]))
    return _bundled[0]


def _own_files(rules_dir: str | Path) -> list[Path]:
    """The folder's *.events files, but not the bundled catalogue itself (the bundled folder)."""
    return [p for p in events_files(Path(rules_dir)) if p.resolve() != bundled_path()]


def load_catalogue(rules_dir: str | Path | None) -> Catalogue:
    """The catalogue of a rules folder: the bundled one, plus or replaced by the
    folder's own `*.events` types (none: the bundled one). DeclError if a file is bad."""
    if rules_dir is None:
        return bundled_catalogue()
    paths = _own_files(rules_dir)
    if not paths:
        return bundled_catalogue()
    return read_catalogue(paths, bundled_catalogue(), Path(rules_dir))


def load_catalogue_leniently(rules_dir: str | Path) -> tuple[Catalogue, list]:
    """`load_catalogue`, with the problems beside a catalogue of the good declarations."""
    paths = _own_files(rules_dir)
    if not paths:
        return bundled_catalogue(), []
    return read_catalogue_leniently(paths, bundled_catalogue(), Path(rules_dir))
