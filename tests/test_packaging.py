"""The installed distribution is one import package, `points` (issue 11).

Built as a real wheel (setuptools in an isolated build, as `pip install .` does), so this
checks what site-packages would get, not what the checkout happens to have on sys.path.
"""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


@pytest.mark.slow
def test_only_points_is_installed_at_top_level(wheel_names):
    top = {name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"points"}


@pytest.mark.slow
def test_the_wheel_holds_each_part_and_the_bundled_rules_but_no_bench_or_tests(wheel_names):
    for module in ("points/__init__.py", "points/ledger/journal.py", "points/dsl/grammar.lark",
                   "points/engine/workflow.py", "points/cli/main.py",
                   "points/rules/yearend-2025.rules", "points/rules/data/jwest_merchants.csv",
                   "points/rules/samples/events.jsonl", "points/rules/catalogue.events"):
        assert module in wheel_names
    assert not [n for n in wheel_names if "/bench/" in n or "/tests/" in n or n.startswith(("bench/", "tests/"))]
