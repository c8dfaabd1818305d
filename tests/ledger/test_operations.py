"""The ledger rules of `points.ledger.operations`, the builders the journal and the run
engine share: each entry is also appended, so the journal's own checks agree."""

import datetime as dt

import pytest

from points.engine.lottery import pick_winners
from points.ledger import db, operations
from points.ledger.errors import InsufficientPoints, InvalidAccount
from points.ledger.journal import Journal
from tests.support import grant

D = dt.date


@pytest.fixture
def j(tmp_path):
    return Journal(db.connect(tmp_path / "points.db"))


def lines(entry):
    return [(p.account, p.amount, p.expires, p.lot) for p in entry.postings]


def test_a_grant_pays_back_what_the_member_owes_before_opening_a_lot(j):
    g = grant(j, "W1", "basic", 100, D(2024, 6, 30), D(2024, 1, 1), key="g")
    j.redeem("W1", 80, "fare", D(2024, 1, 2), key="spend")
    j.reverse(g.seq, 100, D(2024, 1, 3), key="back")  # 20 left in the lot, 80 owed
    assert j.receivable("W1")["basic"] == 80
    partly = operations.grant(key="g2", effective=D(2024, 1, 4), source="system:funding",
                              member="W1", kind="basic", amount=50, owed=80, expires=None)
    assert lines(partly) == [("system:funding", -50, None, None), ("receivable:W1:basic", 50, None, None)]
    j.append([partly])
    rest = operations.grant(key="g3", effective=D(2024, 1, 5), source="system:funding",
                            member="W1", kind="basic", amount=50, owed=30, expires=D(2024, 7, 31))
    assert lines(rest) == [("system:funding", -50, None, None), ("receivable:W1:basic", 30, None, None),
                           ("member:W1:basic", 20, D(2024, 7, 31), None)]
    j.append([rest])
    assert j.receivable("W1")["basic"] == 0 and j.balance("W1")["basic"] == 20


def test_a_grant_comes_from_a_budget_or_funding_only():
    with pytest.raises(InvalidAccount, match="grant source"):
        operations.grant(key="g", effective=D(2024, 1, 1), source="system:redeemed", member="W1",
                         kind="basic", amount=1, owed=0, expires=D(2024, 2, 1))


def test_a_budget_pays_a_grant_whole_or_not_at_all():
    assert operations.budget_shortfall("c1", "basic", 100, 100) is None
    assert operations.budget_shortfall("c1", "basic", 100, 101) == (
        "budget of c1 has 100 basic points left, 101 needed")


def test_redemption_spends_the_earliest_expiry_then_the_more_restricted_kind_then_the_older_lot():
    lots = [[1, "basic", "2024-03-31", 10], [2, "limited", "2024-03-31", 10],
            [3, "basic", "2024-02-29", 5], [4, "basic", "2024-03-31", 10]]
    entry = operations.redemption(key="r", member="W1", points=22, use="fare", lots=lots,
                                  effective=D(2024, 1, 10))
    assert [(p.lot, p.amount) for p in entry.postings if p.lot] == [(3, -5), (2, -10), (1, -7)]
    assert [(p.account, p.kind, p.amount) for p in entry.postings if not p.lot] == [
        ("system:redeemed", "limited", 10), ("system:redeemed", "basic", 12)]
    with pytest.raises(InsufficientPoints, match=r"has 35 points spendable .* \(limited 10, basic 25\), 36 requested"):
        operations.redemption(key="r", member="W1", points=36, use="fare", lots=lots,
                              effective=D(2024, 1, 10))


def test_a_reversal_takes_the_grants_own_lot_first_then_by_expiry_then_owes_the_rest(j):
    early = grant(j, "W1", "basic", 10, D(2024, 2, 29), D(2024, 1, 1), key="early")
    g = grant(j, "W1", "basic", 30, D(2024, 6, 30), D(2024, 1, 2), key="g")
    j.redeem("W1", 35, "fare", D(2024, 1, 3), key="spend")  # early's 10, then 25 of g
    entry = j.reverse(g.seq, 30, D(2024, 1, 4), key="back")
    assert [(p.account, p.amount, p.lot) for p in entry.postings] == [
        ("system:funding", 30, None), ("member:W1:basic", -5, g.postings[1].id),
        ("receivable:W1:basic", -25, None)]
    assert early.postings[1].id not in {p.lot for p in entry.postings}


def test_a_lottery_draws_a_count_or_in_order_while_the_full_award_fits():
    order = [("A", 50), ("B", 60), ("C", 10), ("D", 40)]
    assert pick_winners(order, 2, None) == (["A", "B", "C", "D"], ["A", "B"])
    # B does not fit the 100 left: the draw ends there, C's smaller award does not jump it.
    assert pick_winners(order, None, 100) == (["A", "B", "C", "D"], ["A"])
    assert pick_winners(order, None, 160) == (["A", "B", "C", "D"], ["A", "B", "C", "D"])
