"""Fixtures of the reliability suite (see docs/reliability.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability.helpers import generate_events, write_jsonl

FIGURES = os.environ.get("RELIABILITY_FIGURES")  # a folder: each test writes its figures there


@pytest.fixture
def figures():
    """figures(name, dict): print measured figures and, if RELIABILITY_FIGURES is set,
    write them to <folder>/<name>.json for docs/reliability.md."""

    def record(name: str, data: dict) -> None:
        print(f"\n[figures] {name}: {json.dumps(data, sort_keys=True)}")
        if FIGURES:
            Path(FIGURES).mkdir(parents=True, exist_ok=True)
            (Path(FIGURES) / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True))

    return record


@pytest.fixture(scope="session")
def small_events(tmp_path_factory) -> Path:
    """A small data set (40 members, every shipped campaign) as a JSONL file."""
    d = tmp_path_factory.mktemp("small-events")
    return write_jsonl(d / "events.jsonl", generate_events(40, seed=7))
