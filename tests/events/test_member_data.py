"""Member data from `member_profile` events: each attribute as it holds on a day."""

from __future__ import annotations

import datetime as dt

import pytest

from points.ledger import db
from points.ledger.event_catalogue import load_catalogue
from points.ledger.events import import_records
from points.ledger.member_data import attribute_names, attribute_sql, attributes_as_of

D = dt.date


def profile(id_, at, member="W1", **fields):
    return (f"t:{id_}", {"id": id_, "type": "member_profile", "member": member, "at": at, **fields})


@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "p.db")
    report = import_records(c, [
        profile("P1", "2026-01-05T09:00:00", birthday="1985-04-12", tier="gold"),
        profile("P2", "2026-03-20T09:00:00", valid_from="2026-04-01", tier="platinum"),
        profile("P3", "2026-02-01T09:00:00", valid_from="2026-04-01", status="staff"),
        profile("P4", "2026-02-02T09:00:00", valid_from="2026-04-01", status="retired"),
        profile("Q1", "2026-01-31T23:30:00-01:00", member="W2", home_station="Osaka"),
        profile("Q2", "2026-05-01T09:00:00", member="W2", home_station="Kyoto"),
        ("t:X", {"id": "X", "type": "cancel", "member": "W2", "at": "2026-05-02T09:00:00", "ref": "Q2"}),
    ])
    assert report.errors == ()
    yield c
    c.close()


def test_attributes_hold_from_valid_from_and_a_later_one_overrides(conn):
    assert attributes_as_of(conn, "W1", D(2026, 1, 4)) == {
        "birthday": None, "tier": None, "status": None, "home_station": None}
    assert attributes_as_of(conn, "W1", D(2026, 1, 5)) == {
        "birthday": "1985-04-12", "tier": "gold", "status": None, "home_station": None}
    assert attributes_as_of(conn, "W1", D(2026, 3, 31))["tier"] == "gold"  # P2 imported, not yet valid
    on = attributes_as_of(conn, "W1", D(2026, 4, 1))
    # The tier changes, the birthday (not in P2) stays; same valid_from: the later import wins.
    assert on == {"birthday": "1985-04-12", "tier": "platinum", "status": "retired", "home_station": None}


def test_valid_from_defaults_to_the_tokyo_day_and_undone_profiles_set_nothing(conn):
    # Q1 is 2026-02-01T08:30 in Tokyo: it holds from 2026-02-01, not 01-31.
    assert attributes_as_of(conn, "W2", D(2026, 1, 31))["home_station"] is None
    assert attributes_as_of(conn, "W2", D(2026, 2, 1))["home_station"] == "Osaka"
    assert attributes_as_of(conn, "W2", D(2026, 6, 1))["home_station"] == "Osaka"  # Q2 was cancelled
    assert attributes_as_of(conn, "W3", D(2026, 6, 1))["tier"] is None


def test_a_rules_folder_declares_more_attributes(tmp_path, conn):
    (tmp_path / "profile.events").write_text(
        "event member_profile\n  valid_from: date, default date of at\n  tier: text\n"
        "  card_brand: one of (visa, jcb)\n")
    catalogue = load_catalogue(tmp_path)
    assert attribute_names(catalogue) == ("tier", "card_brand")
    assert import_records(conn, [profile("P9", "2026-06-01T09:00:00", card_brand="jcb")],
                          catalogue=catalogue).errors == ()
    assert attributes_as_of(conn, "W1", D(2026, 6, 1), catalogue) == {"tier": "platinum", "card_brand": "jcb"}


def test_attribute_sql_works_per_row_and_refuses_odd_names(conn):
    sql = f"SELECT member, {attribute_sql('tier', 'm.member', 'm.day')} FROM (SELECT 'W1' AS member," \
          " '2026-04-01' AS day UNION ALL SELECT 'W1', '2026-02-01') m"
    assert list(conn.execute(sql)) == [("W1", "platinum"), ("W1", "gold")]
    for bad in ("valid_from", "Tier", "tier'; --", ""):
        with pytest.raises(ValueError):
            attribute_sql(bad, "m", "d")
