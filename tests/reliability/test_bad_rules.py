"""Mutated rules files: `load_rules` either succeeds or raises RulesError whose
diagnostics point inside the file (path:line:col) -- never another exception,
never a hang. Rules that still load are run on a tiny event set: the only
exceptions allowed are RunError and LedgerError."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from points.dsl.errors import RulesError
from points.dsl.loader import load_rules
from points.engine.workflow import RunError, Runner
from points.ledger import db, events
from points.ledger.errors import LedgerError
from points.ledger.verify import verify
from tests.reliability.helpers import RULES, UNTIL, generate_events

RULE_FILES = sorted(p.name for p in RULES.glob("*.rules"))
PER_EXAMPLE_SECONDS = 20

TOKEN = re.compile(r'"[^"\n]*"|\d{4}-\d{2}-\d{2}|\d[\d_]*%?|[A-Za-z_][\w-]*|\.\.<?|[<>=!]=|\S')
NUMBER = re.compile(r"(?<![\w-])\d[\d_]*(?![\w-])")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
NAME = re.compile(r"\b[a-z_][a-z0-9_]*\b")
SNIPPETS = ["(", ")", "[", "]", ",", ":", "=", "==", "..", "..<", "%", "*", "/", "-", '"', "\n",
            "  ", "\t", "if", "else", "and", "or", "not", "when", "award", "stream", "value",
            "campaign", "budget", "where", "undone by", "by lottery", "within budget", "expires",
            "on", "table", "from", "sum(", "count(", "min(", "max(", "none", "true", "#", "0",
            "-1", "99999999999999999999999", "2026-02-30", "2026-13-01", "１２３", "ポイント",
            "__import__('os')", "`id`", "'", "\\", "\x00", "$x", "{", "}"]


@st.composite
def mutation(draw, text: str) -> str:
    """One edit of the text: characters or tokens deleted, inserted, swapped, replaced."""
    how = draw(st.sampled_from(["delete chars", "insert", "swap tokens", "delete token",
                                "duplicate token", "number", "date", "name", "line"]))
    tokens = [m for m in TOKEN.finditer(text)]
    if how == "delete chars":
        i = draw(st.integers(0, len(text) - 1))
        n = draw(st.integers(1, 12))
        return text[:i] + text[i + n:]
    if how == "insert":
        i = draw(st.integers(0, len(text)))
        s = draw(st.one_of(st.sampled_from(SNIPPETS), st.text(min_size=1, max_size=4)))
        return text[:i] + s + text[i:]
    if how in ("swap tokens", "delete token", "duplicate token"):
        a = draw(st.integers(0, len(tokens) - 1))
        ta = tokens[a]
        if how == "delete token":
            return text[:ta.start()] + text[ta.end():]
        if how == "duplicate token":
            return text[:ta.end()] + " " + ta.group() + text[ta.end():]
        b = draw(st.integers(0, len(tokens) - 1))
        ta, tb = sorted([ta, tokens[b]], key=lambda m: m.start())
        if ta.start() == tb.start():
            return text
        return (text[:ta.start()] + tb.group() + text[ta.end():tb.start()] + ta.group()
                + text[tb.end():])
    if how == "line":  # delete, duplicate or swap whole lines
        lines = text.split("\n")
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["del", "dup", "swap"]))
        if op == "del":
            del lines[i]
        elif op == "dup":
            lines.insert(j, lines[i])
        else:
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    pattern = {"number": NUMBER, "date": DATE, "name": NAME}[how]
    found = list(pattern.finditer(text))
    if not found:
        return text
    m = draw(st.sampled_from(found))
    if how == "number":
        new = str(draw(st.one_of(st.integers(-10, 10), st.integers(-10 ** 25, 10 ** 25),
                                 st.sampled_from([0, 1, 10 ** 18, 2 ** 63, -2 ** 63]))))
        if draw(st.booleans()):
            new += draw(st.sampled_from(["%", "_000", ".5", "e3"]))
    elif how == "date":
        new = draw(st.one_of(
            st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat),
            st.sampled_from(["2026-02-29", "2025-02-29", "2026-00-10", "2026-04-31", "0000-01-01"])))
    else:
        names = sorted({x.group() for x in NAME.finditer(text)})
        new = draw(st.one_of(st.sampled_from(names),
                             st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)))
    return text[:m.start()] + new + text[m.end():]


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise Hang after `seconds` of this process's CPU time (not wall time: on a shared,
    loaded machine a slow but finite example must not pass for a hang)."""
    def fire(signum, frame):
        raise Hang(f"no answer after {seconds} s of CPU time")

    old = signal.signal(signal.SIGPROF, fire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory) -> Path:
    """A database holding a tiny event set (12 members, every campaign's event types)."""
    path = tmp_path_factory.mktemp("rules-events") / "events.db"
    conn = db.connect(path)
    rep = events.import_records(conn, [(f"t:{i}", e) for i, e in enumerate(generate_events(12, 3))])
    assert not rep.errors, rep.errors
    conn.close()
    return path


def check_diagnostics(exc: RulesError, folder: Path, lines_of: dict[str, int]) -> None:
    assert exc.diagnostics, "RulesError without diagnostics"
    for d in exc.diagnostics:
        p = Path(d.path)
        assert p == folder or folder in p.parents, f"diagnostic outside the folder: {d}"
        if p.suffix == ".rules":
            n = lines_of.get(p.name)
            assert n is not None, d
            assert 1 <= d.line <= n + 1, f"line {d.line} of {n}: {d}"
            assert d.column >= 1, d
        text = d.format(exc.sources.get(d.path))
        assert text.startswith(f"{d.path}:{d.line}:{d.column}: "), text


def load_and_run(folder: Path, tiny_db: Path, stats: dict) -> None:
    lines_of = {p.name: len(p.read_text(encoding="utf-8", errors="replace").split("\n"))
                for p in folder.glob("*.rules")}
    with time_limit(PER_EXAMPLE_SECONDS):
        try:
            rules = load_rules(folder)
        except RulesError as exc:
            stats["rejected"] += 1
            check_diagnostics(exc, folder, lines_of)
            return
        stats["loaded"] += 1
        path = folder.parent / "run.db"
        shutil.copyfile(tiny_db, path)
        conn = db.connect(path)
        try:
            Runner(conn, rules, dt.date.fromisoformat(UNTIL)).run()
            stats["ran"] += 1
        except (RunError, LedgerError):
            stats["run_refused"] += 1
        finally:
            assert verify(conn).ok
            conn.close()
            path.unlink()


@pytest.mark.parametrize("rule_file", RULE_FILES)
def test_mutated_rules_load_or_fail_with_located_diagnostics(rule_file, tmp_path_factory, tiny_db,
                                                             figures):
    original = (RULES / rule_file).read_text(encoding="utf-8")
    stats = {"rejected": 0, "loaded": 0, "ran": 0, "run_refused": 0, "examples": 0}

    @settings(derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        text = data.draw(mutation(original), label="mutated")
        if data.draw(st.booleans(), label="second edit"):
            text = data.draw(mutation(text), label="mutated twice")
        stats["examples"] += 1
        folder = tmp_path_factory.mktemp("rules") / "rules"
        folder.mkdir()
        shutil.copytree(RULES / "data", folder / "data",
                        ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
        (folder / rule_file).write_text(text, encoding="utf-8", errors="surrogatepass")
        load_and_run(folder, tiny_db, stats)

    check()
    figures(f"bad_rules_{rule_file}", stats)
    assert stats["examples"] >= settings.default.max_examples // 2


def test_unmutated_rules_load_and_run(tmp_path, tiny_db):
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder, ignore=shutil.ignore_patterns("__pycache__", "__init__.py",
                                                                 "samples"))
    stats = {"rejected": 0, "loaded": 0, "ran": 0, "run_refused": 0}
    load_and_run(folder, tiny_db, stats)
    assert stats["ran"] == 1


@pytest.mark.parametrize("escape", ["\\x", "\\u12", "\\N{nope}", "\\ud800"])
def test_bad_escape_in_a_string_is_a_located_diagnostic(tmp_path, escape):
    folder = tmp_path / "rules"
    folder.mkdir()
    text = (RULES / "yearend-2025.rules").read_text(encoding="utf-8")
    text = text.replace('"000_c518e4f38ecdfe62.txt"', f'"{escape}"')
    assert escape in text
    (folder / "yearend-2025.rules").write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(folder)
    line = next(i for i, l in enumerate(text.split("\n"), 1) if escape in l)
    assert any(d.line == line for d in info.value.diagnostics), info.value.diagnostics
