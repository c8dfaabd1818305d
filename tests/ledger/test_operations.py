"""The ledger rules of `points.ledger.operations`, the builders the journal and the run
engine share: each entry is also appended, so the journal's own checks agree."""

import datetime as dt

import pytest

from points.engine.lottery import pick_winners
from points.ledger import db, operations
from points.ledger.accounts import FUNDING
from points.ledger.errors import InsufficientPoints, InvalidAccount, InvalidEntry
from points.ledger.hashing import canonical
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


@pytest.mark.parametrize("label", ["ご利用ポイント(通常分)", None, 'a "quoted"\\label\n'])
@pytest.mark.parametrize("owed,amount", [(0, 40), (15, 40), (40, 40), (90, 40)])
def test_grant_maker_builds_the_entry_grant_builds_and_the_same_hash(tmp_path, label, owed, amount):
    """A settlement builds its grants with grant_maker (shared parts prepared once, the
    memo's canonical text written directly): the entry, the stored rows and the hash
    chain must be exactly what `grant` gives."""
    fixed = dict(effective=D(2024, 2, 26), source="system:funding", kind="basic", recorded="2024-02-26",
                 campaign="c1", rule="c1.rules", rules_hash="ab" * 32, step="2024-02:monthly")
    memo = {"award": "monthly", "period": "2024-02", "label": label}
    make = operations.grant_maker(**fixed, memo=memo)
    made, plain = [], []
    for n, member in enumerate(["W1", "Wé\u3042", 'W"2']):
        args = dict(key=f"g{n}", member=member, amount=amount + n, owed=owed, expires=D(2025, 2, 28),
                    events=("e2", "e1"))
        made.append(make(args["key"], member, args["amount"], owed, args["expires"], args["events"], 1000 + n))
        plain.append(operations.grant(**fixed, **args, memo={**memo, "member": member, "target": 1000 + n}))
    assert made == plain  # same fields, same memo dict (a Memo is a dict)
    assert [m.memo.text for m in made] == [canonical(p.memo) for p in plain]
    hashes = []
    for entries in (made, plain):
        conn = db.connect(tmp_path / f"{len(hashes)}.db")
        j = Journal(conn)
        if owed:  # receivables to pay back, so that every shape of grant is written
            for m in ("W1", "Wé\u3042", 'W"2'):
                g = j.append([operations.grant(key=f"pre-{m}", effective=D(2024, 1, 1), source="system:funding",
                                               member=m, kind="basic", amount=owed, owed=0,
                                               expires=D(2024, 1, 31))])[0]
                j.reverse(g.seq, owed, D(2024, 2, 1), key=f"back-{m}")  # expired: all owed
        j.append(entries)
        hashes.append(list(conn.execute("SELECT key, memo, hash FROM entries ORDER BY seq")))
    assert hashes[0] == hashes[1]


def test_grant_maker_refuses_what_grant_refuses():
    with pytest.raises(InvalidAccount, match="grant source"):
        operations.grant_maker(effective=D(2024, 1, 1), source="system:redeemed", kind="basic", memo={})
    make = operations.grant_maker(effective=D(2024, 1, 1), source="system:funding", kind="basic", memo={})
    for bad in (0, -5, True, 2.0):
        with pytest.raises(InvalidEntry, match="grant amount must be a positive integer"):
            make("g", "W1", bad, 0, D(2024, 2, 1), (), 1)
    # A memo value the direct text does not cover falls back to a plain dict.
    odd = operations.grant_maker(effective=D(2024, 1, 1), source="system:funding", kind="basic",
                                 memo={"share": 0.5})("g", "W1", 5, 0, D(2024, 2, 1), (), 5)
    assert type(odd.memo) is dict and odd.memo == {"share": 0.5, "member": "W1", "target": 5}


def test_a_prepared_memo_cannot_be_changed_after_its_text_is_written():
    make = operations.grant_maker(effective=dt.date(2025, 2, 26), source=FUNDING, kind="basic",
                                  memo={"award": "monthly", "period": "2025-02"})
    memo = make("k", "W1", 10, 0, None, (), 10).memo
    assert memo.text == canonical(dict(memo))
    for change in (lambda m: m.__setitem__("target", 11), lambda m: m.update(target=11),
                   lambda m: m.pop("target"), lambda m: m.setdefault("x", 1), lambda m: m.clear()):
        with pytest.raises(TypeError):
            change(memo)
    assert memo["target"] == 10 and memo.text == canonical(dict(memo))
