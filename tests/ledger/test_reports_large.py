"""The reports on a generated 100k-event journal (every seed program, late cancellations).

The trial balance must sum to zero per kind on any day, agree with the sum of every
member's balance and with the liability report; payouts must agree with the budget
accounts. Slow: importing and running 100k events takes a while.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from bench.workloads import mixed
from points.ledger import payouts, reports
from points.ledger.accounts import budget_account

pytestmark = pytest.mark.slow

DAYS = (dt.date(2025, 2, 28), dt.date(2026, 2, 5), dt.date(2026, 3, 31), dt.date(2026, 7, 1), None)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    from tests.support import new_world

    world = new_world(tmp_path_factory.mktemp("big"))
    records = list(mixed(100_000, 8_000, seed=15))
    rng = random.Random(15)
    bookings = [r for r in records if r["type"] == "ex_booking"]
    # Late cancellations (after the year-end payment): reversals, some beyond what is left.
    for i, r in enumerate(rng.sample(bookings, 300)):
        records.append({"id": f"K{i:06d}", "type": "cancel", "member": r["member"],
                        "at": "2026-03-05T12:00:00", "ref": r["id"]})
        records.append({"id": f"Q{i:06d}", "type": "redemption", "member": r["member"],
                        "at": "2026-03-01T12:00:00", "points": 3000, "use": "fare"})
    world.add(*records)
    world.run("2026-10-31")
    return world


@pytest.mark.parametrize("day", DAYS)
def test_trial_balance_is_zero_per_kind_and_agrees_with_balances(big, day):
    tb = reports.trial_balance(big.conn, day)
    assert tb.balanced and tb.total == reports.zero()
    assert any(tb.classes["members"].values()) or day == DAYS[0]
    b = reports.member_balances(big.conn, day)
    assert tb.classes["members"] == b.totals
    assert {k: -v for k, v in tb.classes["receivables"].items()} == b.owed
    li = reports.liability(big.conn, day)
    assert li.outstanding_by_kind() == tb.classes["members"]
    net = reports.zero()
    for f in li.flows:
        net[f.kind] += f.net
    assert net == {k: tb.classes["members"][k] + tb.classes["receivables"][k] for k in net}


def test_journal_is_big_enough_and_has_reversals_and_debts(big):
    (postings,) = big.conn.execute("SELECT COUNT(*) FROM postings").fetchone()
    assert postings > 20_000
    tb = reports.trial_balance(big.conn)
    assert tb.classes["receivables"]["basic"] < 0


def test_every_members_balance_matches_the_journal(big):
    b = reports.member_balances(big.conn, dt.date(2026, 3, 31))
    for m in random.Random(1).sample(b.members, 200):
        assert m.balances == big.journal.balance(m.member, dt.date(2026, 3, 31))
        assert m.owed == big.journal.receivable(m.member, dt.date(2026, 3, 31))


def test_payouts_agree_with_budget_accounts(big):
    found = payouts.payouts(big.conn)
    assert {c.campaign for c in found} >= {"yearend-2025", "jwest-card", "mynapoint-icoca"}
    for c in found:
        if c.budget is not None:
            left = big.journal.account_balance(budget_account(c.campaign), c.budget_kind)
            assert c.budget_left == left
            assert c.budget - left == c.total("net").get(c.budget_kind, 0)
        assert all(r.gross >= r.reversed >= 0 for r in c.rows)
    ye = next(c for c in found if c.campaign == "yearend-2025")
    assert ye.total("reversed")["basic"] > 0
