"""The bundled demo data set rules/samples/events.jsonl (described in rules/samples/README.md):
it imports cleanly, runs through every seed campaign to 2028-12-31, and a few members come
out as computed by hand in the README."""

from __future__ import annotations

import datetime as dt

import pytest

from points.ledger import events
from points.ledger.verify import verify
from tests.support import RULES, new_world

SAMPLES = RULES / "samples" / "events.jsonl"
ZERO = {"basic": 0, "limited": 0, "charge_only": 0}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    world = new_world(tmp_path_factory.mktemp("samples"))
    report = events.import_files(world.conn, [SAMPLES])
    assert list(report.errors) == []
    run = world.run("2028-12-31")
    return world, report, run


def test_imports_with_zero_errors_and_verifies(demo):
    world, report, _ = demo
    assert list(report.errors) == []
    members = {m for (m,) in world.conn.execute("SELECT DISTINCT member FROM events")}
    assert len(members) >= 40
    types = {t for (t,) in world.conn.execute("SELECT DISTINCT type FROM events")}
    assert {"cancel", "refund", "stopover", "member_withdrawn", "redemption", "campaign_entry",
            "card_payment", "card_cashback", "wesmo_charge", "wesmo_payment", "video_view",
            "ex_booking", "icoca_charge", "mynapoint_application"} <= types
    assert verify(world.conn).ok


def test_every_campaign_pays_someone(demo):
    world, *_ = demo
    for campaign in ("yearend-2025", "yearend-2024", "wesmo-stamp-rally-2026", "jwest-card", "mynapoint-icoca"):
        assert any(p > 0 for *_, p in world.awards(campaign)), campaign


@pytest.mark.parametrize(
    "member, campaign, points",
    [
        # 003 worked examples (shipped rules: no point-up period, see the README)
        ("W0001", "jwest-card", 235),
        ("W0002", "jwest-card", 240),  # 340 with Tennoji MIO's point-up period
        ("W0003", "jwest-card", 385),  # 405 with LUCUA's point-up period
        ("W0004", "jwest-card", 385),
        ("W0005", "jwest-card", 370),
        ("W0006", "jwest-card", 170 + 15),
        ("W0007", "jwest-card", 80),
        ("W0008", "jwest-card", 200),
        # 000
        ("W0101", "yearend-2025", 30_000),
        ("W0103", "yearend-2025", 10_000),
        ("W0104", "yearend-2025", 0),
        ("W0106", "yearend-2025", 0),
        ("W0107", "yearend-2025", 12_000),  # 30,000 paid, 18,000 reversed after a refund
        ("W0108", "yearend-2025", 5_000),
        ("W0109", "yearend-2025", 0),
        ("W0110", "yearend-2025", 10_000),
        ("W0111", "yearend-2025", 0),
        ("W0112", "yearend-2025", 5_000),
        # 001
        ("W0201", "yearend-2024", 20_000),
        ("W0202", "yearend-2024", 6_000),
        ("W0203", "yearend-2024", 0),
        ("W0204", "yearend-2024", 0),
        ("W0205", "yearend-2024", 5_000),
        ("W0208", "yearend-2024", 5_000),
        ("W0209", "yearend-2024", 8_000),
        ("W0210", "yearend-2024", 5_000),
        ("W0212", "yearend-2024", 0),
        # 002
        ("W0301", "wesmo-stamp-rally-2026", 11_000),
        ("W0302", "wesmo-stamp-rally-2026", 10_000),
        ("W0303", "wesmo-stamp-rally-2026", 1_000),
        ("W0304", "wesmo-stamp-rally-2026", 1_900),
        ("W0305", "wesmo-stamp-rally-2026", 0),
        ("W0306", "wesmo-stamp-rally-2026", 400),
        ("W0307", "wesmo-stamp-rally-2026", 0),
        ("W0308", "wesmo-stamp-rally-2026", 200),
        ("W0310", "wesmo-stamp-rally-2026", 1_000),
        ("W0311", "wesmo-stamp-rally-2026", 200),
        # 004
        ("W0401", "mynapoint-icoca", 5_000),
        ("W0402", "mynapoint-icoca", 3_000),
        ("W0403", "mynapoint-icoca", 1_250),
        ("W0404", "mynapoint-icoca", 15_000),
        ("W0405", "mynapoint-icoca", 1_000),
        ("W0406", "mynapoint-icoca", 0),
        ("W0408", "mynapoint-icoca", 3_750),
    ],
)
def test_member_results(demo, member, campaign, points):
    world, *_ = demo
    assert world.paid(campaign, member) == points


def test_everything_has_expired_by_the_end(demo):
    world, *_ = demo
    members = [m for (m,) in world.conn.execute("SELECT DISTINCT member FROM events ORDER BY member")]
    for m in members:
        assert world.balance(m) == ZERO, m
        assert world.journal.lots(m) == [], m


def test_w0006_redemption_and_refusal(demo):
    # Cycle 2025-03: 170 paid 2025-03-26 (expires 2026-03-31); cycle 2025-04: 15 paid
    # 2025-04-26 (expires 2026-04-30). 100 redeemed 2025-05-01 from the earliest lot;
    # 200 asked on 2025-05-02 with 85 left: refused. 70 expire 2026-03-31, 15 on 2026-04-30.
    world, _, run = demo
    assert world.balance("W0006", "2025-03-26")["basic"] == 170
    assert world.balance("W0006", "2025-04-26")["basic"] == 185
    assert world.balance("W0006", "2025-05-02")["basic"] == 85
    assert world.balance("W0006", "2026-03-30")["basic"] == 85
    assert world.balance("W0006", "2026-03-31")["basic"] == 15
    assert world.balance("W0006", "2026-04-30")["basic"] == 0
    refused = {(event, member) for event, member, _ in run.refused_redemptions}
    assert ("W0006-07", "W0006") in refused


def test_refused_redemptions(demo):
    _, _, run = demo
    assert sorted(member for _, member, _ in run.refused_redemptions) == ["W0006", "W0113", "W0304", "W0407"]


def test_w0113_spends_then_expires(demo):
    world, *_ = demo
    assert world.balance("W0113", "2026-02-05")["basic"] == 10_000
    assert world.balance("W0113", "2026-03-01")["basic"] == 4_000
    assert world.balance("W0113", "2027-03-30")["basic"] == 4_000
    assert world.balance("W0113", "2027-03-31")["basic"] == 0


def test_w0210_clawback_becomes_a_receivable_paid_by_later_points(demo):
    # 11,000 paid 2025-02-15; 9,000 spent 2025-03-01; the refund of the 6,000 booking on
    # 2025-03-10 takes 6,000 back: 2,000 from the balance, 4,000 owed. The 50 J-WEST points of
    # cycle 2025-04 (paid 2025-04-26) go to the debt first: 3,950 still owed.
    world, *_ = demo
    j = world.journal
    assert j.balance("W0210", dt.date(2025, 3, 10))["basic"] == 0
    assert j.receivable("W0210", dt.date(2025, 3, 10))["basic"] == 4_000
    assert j.receivable("W0210", dt.date(2025, 4, 26))["basic"] == 3_950
    assert j.balance("W0210", dt.date(2025, 4, 26))["basic"] == 0


def test_w0304_limited_points_cannot_pay_a_charge(demo):
    world, *_ = demo
    assert world.balance("W0304", "2026-04-30")["limited"] == 1_900
    assert world.balance("W0304", "2026-05-10")["limited"] == 1_900  # the charge use was refused
    assert world.balance("W0304", "2026-05-11")["limited"] == 900
    assert world.balance("W0304", "2026-10-31")["limited"] == 0


def test_w0301_wins_the_lottery(demo):
    world, *_ = demo
    assert world.balance("W0301", "2026-04-30") == {"basic": 5_000, "limited": 6_000, "charge_only": 0}
    assert world.balance("W0302", "2026-04-30") == {"basic": 5_000, "limited": 5_000, "charge_only": 0}


def test_w0407_charge_only_points(demo):
    world, *_ = demo
    assert world.balance("W0407", "2022-10-18")["charge_only"] == 5_000
    assert world.balance("W0407", "2022-11-02")["charge_only"] == 2_000
    assert world.balance("W0407", "2023-10-30")["charge_only"] == 2_000
    assert world.balance("W0407", "2023-10-31")["charge_only"] == 0
