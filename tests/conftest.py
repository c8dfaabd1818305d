import os

import pytest
from hypothesis import HealthCheck, settings

from tests.support import new_world

# Hypothesis settings profiles, chosen by HYPOTHESIS_PROFILE (default `dev`). Tests do not
# hard-code example counts: `dev` keeps `pytest -m "not slow"` a quick loop, `ci` (set
# by .ci/run) draws ten times as many, `thorough` is for a deliberate long search.
# No deadline anywhere: many examples open and write a SQLite file, and the machines
# these run on are shared, so per-example timing is noise, not a property of the code.
# Function-scoped fixtures (tmp_path, monkeypatch) are shared by the examples of one
# test on purpose (each example makes its own file or sets the same value), so that
# health check is off.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=20, **_COMMON)
settings.register_profile("ci", max_examples=200, print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=2000, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def world(tmp_path):
    """A fresh points database (events, journal) in a temporary folder."""
    return new_world(tmp_path)
