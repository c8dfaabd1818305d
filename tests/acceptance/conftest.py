"""Fixtures of the acceptance tests: an empty working folder, sample databases."""

import shutil

import pytest

from tests.acceptance.cli import SAMPLE_EVENTS, points


def pytest_collection_modifyitems(config, items):
    """Every acceptance test is `slow`: each runs the installed `points` script in a child
    process (~0.4 s of start-up apiece), so the folder is ~40 s of the quick loop. CI runs
    them all; `pytest tests/acceptance` runs them alone."""
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def workdir(tmp_path):
    """An empty folder to run `points` in (no ./rules, no ./points.db)."""
    d = tmp_path / "cwd"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def loaded_db(tmp_path_factory):
    """A database with the bundled sample events imported and nothing run (copy before use)."""
    d = tmp_path_factory.mktemp("loaded")
    db = d / "points.db"
    assert points("init", cwd=d, db=db).returncode == 0
    r = points("import", SAMPLE_EVENTS, cwd=d, db=db)
    assert r.returncode == 0, r.stderr
    return db


@pytest.fixture
def fresh_loaded(loaded_db, tmp_path):
    db = tmp_path / "loaded.db"
    shutil.copy(loaded_db, db)
    return db


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """The demo journal (every seed program run until 2028-12-31); read-only use only."""
    d = tmp_path_factory.mktemp("demo")
    db = d / "demo.db"
    r = points("demo", "--db", db, cwd=d)
    assert r.returncode == 0, r.stderr
    return db
