import pytest

from tests.support import new_world


@pytest.fixture
def world(tmp_path):
    """A fresh points database (events, journal) in a temporary folder."""
    return new_world(tmp_path)
