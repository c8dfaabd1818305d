"""The parser's grammar tables cached by lark between processes (dsl.parser._cache_file):
a process that loads them parses exactly as one that builds them, and a damaged or
unwritable cache only means building them again."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import RULES

SCRIPT = (
    "import sys; from points.dsl.parser import parse, _cache_file; "
    "text = open(sys.argv[1], encoding='utf-8').read(); "
    "print(_cache_file()); print(repr(parse(text, 'jwest-card.rules')))"
)


def parse_in_child(cache_home) -> tuple[str, str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(RULES / "jwest-card.rules")], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stderr == ""
    where, tree = out.stdout.split("\n", 1)
    return where, tree


def test_a_cached_grammar_parses_as_a_built_one(tmp_path):
    where, built = parse_in_child(tmp_path)
    assert where.startswith(str(tmp_path / "points")) and os.path.getsize(where) > 0
    _, loaded = parse_in_child(tmp_path)
    assert loaded == built
    size = os.path.getsize(where)
    with open(where, "r+b") as f:  # damaged (a write cut short): ignored, built and written again
        f.truncate(size // 2)
    _, again = parse_in_child(tmp_path)
    assert again == built and os.path.getsize(where) > size // 2  # (pickled sets: not byte-equal)
    blocked = tmp_path / "file"  # the cache folder cannot be made: no cache, same result
    blocked.write_text("")
    where, plain = parse_in_child(blocked)
    assert where == "False" and plain == built
