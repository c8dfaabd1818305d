import datetime as dt

import apsw
import pytest

from points.ledger import db
from points.ledger.errors import (BudgetExceeded, IdempotencyConflict, InsufficientPoints,
                           InvalidEntry, UnbalancedEntry)
from points.ledger.hashing import entry_canonical, fast_canonical
from points.ledger.journal import Journal
from points.ledger.model import NewEntry, Posting
from points.ledger.verify import verify
from tests import support

D = dt.date
BUDGET = "campaign:c1:budget"


@pytest.fixture
def path(tmp_path):
    return tmp_path / "points.db"


@pytest.fixture
def j(path):
    return Journal(db.connect(path))


def count(j, table):
    return j.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def grant(j, member, kind, amount, expires, eff, key, source="system:funding"):
    return support.grant(j, member, kind, amount, expires, eff, key=key, source=source)


def test_zero_sum_refused_in_python_and_by_trigger(j):
    bad = NewEntry("k1", D(2024, 1, 1), [Posting("system:funding", "basic", -10),
                                         Posting("system:redeemed", "basic", 9)])
    with pytest.raises(UnbalancedEntry):
        j.append([bad])
    # mixing kinds does not balance either
    bad2 = NewEntry("k2", D(2024, 1, 1), [Posting("system:funding", "basic", -10),
                                          Posting("system:redeemed", "limited", 10)])
    with pytest.raises(UnbalancedEntry):
        j.append([bad2])
    assert count(j, "postings") == 0
    c = j.conn
    c.execute("INSERT INTO postings VALUES (1, 1, 0, 'system:funding', 'basic', -10, NULL, NULL)")
    with pytest.raises(apsw.ConstraintError, match="zero"):
        c.execute("INSERT INTO entries(seq,key,effective,recorded,events,memo,prev_hash,hash)"
                  " VALUES (1,'x','2024-01-01','2024-01-01','[]','{}','0','0')")


def test_member_credit_needs_expires_and_debit_needs_lot(j):
    with pytest.raises(InvalidEntry, match="expires"):
        j.append([NewEntry("a", D(2024, 1, 1), [Posting("system:funding", "basic", -5),
                                                Posting("member:W1:basic", "basic", 5)])])
    e = grant(j, "W1", "basic", 5, D(2024, 12, 31), D(2024, 1, 1), "g")
    with pytest.raises(InvalidEntry, match="lot"):
        j.append([NewEntry("b", D(2024, 1, 2), [Posting("member:W1:basic", "basic", -5),
                                                Posting("system:redeemed", "basic", 5)])])
    with pytest.raises(InvalidEntry, match="lot"):  # lot of another account
        j.append([NewEntry("c", D(2024, 1, 2), [
            Posting("member:W2:basic", "basic", -5, lot=e.postings[1].id),
            Posting("system:redeemed", "basic", 5)])])
    with pytest.raises(InsufficientPoints):  # lot overdrawn
        j.append([NewEntry("d", D(2024, 1, 2), [
            Posting("member:W1:basic", "basic", -6, lot=e.postings[1].id),
            Posting("system:redeemed", "basic", 6)])])
    assert count(j, "entries") == 1


def test_idempotency_noop_and_conflict(j):
    e1 = j.fund_budget("c1", "basic", 100, D(2024, 1, 1))
    e2 = j.fund_budget("c1", "basic", 100, D(2024, 1, 1), recorded="2024-02-01")
    assert e2 == e1 and count(j, "entries") == 1
    with pytest.raises(IdempotencyConflict):
        j.fund_budget("c1", "basic", 101, D(2024, 1, 1))
    g = grant(j, "W1", "basic", 10, D(2024, 6, 30), D(2024, 1, 2), "g1", BUDGET)
    assert grant(j, "W1", "basic", 10, D(2024, 6, 30), D(2024, 1, 2), "g1", BUDGET) == g
    with pytest.raises(IdempotencyConflict):
        grant(j, "W1", "basic", 11, D(2024, 6, 30), D(2024, 1, 2), "g1", BUDGET)
    r = j.redeem("W1", 4, "fare", D(2024, 1, 3), key="redeem:E1")
    assert j.redeem("W1", 4, "fare", D(2024, 1, 3), key="redeem:E1") == r
    with pytest.raises(IdempotencyConflict):
        j.redeem("W1", 4, "charge", D(2024, 1, 3), key="redeem:E1")
    assert count(j, "entries") == 3


def test_batch_is_all_or_nothing(j):
    good = NewEntry("ok", D(2024, 1, 1), [Posting("system:funding", "basic", -1),
                                          Posting("system:redeemed", "basic", 1)])
    bad = NewEntry("bad", D(2024, 1, 1), [Posting("system:funding", "basic", -1)])
    with pytest.raises(UnbalancedEntry):
        j.append([good, bad])
    assert count(j, "entries") == 0 and count(j, "postings") == 0


@pytest.mark.parametrize("table", ["entries", "postings", "events"])
def test_append_only_triggers(j, table):
    j.fund_budget("c1", "basic", 100, D(2024, 1, 1))
    if table == "events":
        j.conn.execute(
            "INSERT INTO events(id,type,member,at,day,time,weekday,body,source,prev_hash,hash)"
            " VALUES ('E1','t','W1','2024-01-01T00:00:00','2024-01-01','00:00:00',0,'{}','f:1','0','0')")
    with pytest.raises(apsw.ConstraintError, match="append-only"):
        j.conn.execute(f"UPDATE {table} SET rowid = rowid")
    with pytest.raises(apsw.ConstraintError, match="append-only"):
        j.conn.execute(f"DELETE FROM {table}")


def test_redeem_fifo_by_expiry_with_kind_tiebreak(j):
    a = grant(j, "W1", "basic", 100, D(2024, 3, 31), D(2024, 1, 1), "a")
    b = grant(j, "W1", "limited", 100, D(2024, 3, 31), D(2024, 1, 2), "b")
    c = grant(j, "W1", "limited", 100, D(2024, 2, 28), D(2024, 1, 3), "c")
    d = grant(j, "W1", "basic", 100, D(2024, 3, 31), D(2024, 1, 4), "d")
    r = j.redeem("W1", 250, "fare", D(2024, 1, 10), key="r")
    drawn = [(p.lot, -p.amount) for p in r.postings if p.lot]
    assert drawn == [(c.postings[1].id, 100), (b.postings[1].id, 100), (a.postings[1].id, 50)]
    assert {p.kind: p.amount for p in r.postings if p.account == "system:redeemed"} == {
        "limited": 200, "basic": 50}
    # charge cannot use limited points
    r2 = j.redeem("W1", 60, "charge", D(2024, 1, 10), key="r2")
    assert [(p.lot, -p.amount) for p in r2.postings if p.lot] == [
        (a.postings[1].id, 50), (d.postings[1].id, 10)]
    assert j.balance("W1") == {"basic": 90, "limited": 0, "charge_only": 0}


def test_expired_lots_not_spendable(j):
    grant(j, "W1", "basic", 100, D(2024, 1, 31), D(2024, 1, 1), "a")
    j.redeem("W1", 10, "fare", D(2024, 1, 31), key="on-expiry-day")  # still spendable on D
    with pytest.raises(InsufficientPoints, match="0 points spendable"):
        j.redeem("W1", 10, "fare", D(2024, 2, 1), key="late")
    assert count(j, "entries") == 2


def test_insufficient_points_refused_nothing_posted(j):
    grant(j, "W1", "limited", 100, D(2024, 12, 31), D(2024, 1, 1), "a")
    grant(j, "W1", "charge_only", 100, D(2024, 12, 31), D(2024, 1, 1), "b")
    before = (count(j, "entries"), count(j, "postings"))
    with pytest.raises(InsufficientPoints, match=r"100 points spendable for fare.*150 requested"):
        j.redeem("W1", 150, "fare", D(2024, 2, 1), key="r")
    assert (count(j, "entries"), count(j, "postings")) == before


def test_budget_refused_nothing_posted(j):
    j.fund_budget("c1", "basic", 100, D(2024, 1, 1))
    grant(j, "W1", "basic", 60, D(2024, 12, 31), D(2024, 1, 2), "g1", BUDGET)
    with pytest.raises(BudgetExceeded, match="40"):
        grant(j, "W2", "basic", 41, D(2024, 12, 31), D(2024, 1, 2), "g2", BUDGET)
    batch = [NewEntry(f"b{i}", D(2024, 1, 3), [Posting(BUDGET, "basic", -30),
             Posting(f"member:W{i}:basic", "basic", 30, expires=D(2024, 12, 31))]) for i in range(2)]
    with pytest.raises(BudgetExceeded):
        j.append(batch)
    assert count(j, "entries") == 2
    assert j.account_balance(BUDGET, "basic") == 40
    grant(j, "W2", "basic", 40, D(2024, 12, 31), D(2024, 1, 2), "g3", BUDGET)
    assert j.account_balance(BUDGET, "basic") == 0


def test_partial_and_full_reversal(j):
    j.fund_budget("c1", "basic", 1000, D(2024, 1, 1))
    g = grant(j, "W1", "basic", 100, D(2024, 12, 31), D(2024, 1, 2), "g", BUDGET)
    r1 = j.reverse(g.seq, 30, D(2024, 1, 5), key="rev1")
    assert r1.reverses == g.seq
    assert [(p.account, p.amount, p.lot) for p in r1.postings] == [
        (BUDGET, 30, None), ("member:W1:basic", -30, g.postings[1].id)]
    j.redeem("W1", 50, "fare", D(2024, 1, 6), key="r")
    r2 = j.reverse(g.seq, 70, D(2024, 1, 7), key="rev2")  # only 20 left: 50 owed
    assert [(p.account, p.amount) for p in r2.postings] == [
        (BUDGET, 70), ("member:W1:basic", -20), ("receivable:W1:basic", -50)]
    assert j.balance("W1")["basic"] == 0
    assert j.receivable("W1") == {"basic": 50, "limited": 0, "charge_only": 0}
    assert j.account_balance(BUDGET, "basic") == 1000
    with pytest.raises(InvalidEntry, match="0 left"):
        j.reverse(g.seq, 1, D(2024, 1, 8), key="rev3")
    assert verify(j.conn).ok


def test_reversal_uses_own_lot_first(j):
    grant(j, "W1", "basic", 100, D(2024, 2, 1), D(2024, 1, 1), "a")
    b = grant(j, "W1", "basic", 100, D(2024, 12, 1), D(2024, 1, 1), "b")
    j.redeem("W1", 150, "fare", D(2024, 1, 2), key="r")  # a spent, 50 left in b
    c = grant(j, "W1", "basic", 100, D(2024, 6, 1), D(2024, 1, 3), "c")
    r = j.reverse(b.seq, 100, D(2024, 1, 5), key="rev")
    assert [(p.lot, p.amount) for p in r.postings if p.lot] == [
        (b.postings[1].id, -50), (c.postings[1].id, -50)]
    assert not j.receivable("W1")["basic"]


def test_receivable_paid_first_by_next_grant(j):
    g = grant(j, "W1", "basic", 100, D(2024, 12, 31), D(2024, 1, 1), "g")
    j.redeem("W1", 100, "fare", D(2024, 1, 2), key="r")
    j.reverse(g.seq, 80, D(2024, 1, 3), key="rev")
    assert j.receivable("W1")["basic"] == 80
    g2 = grant(j, "W1", "basic", 50, D(2024, 12, 31), D(2024, 1, 4), "g2")
    assert [(p.account, p.amount) for p in g2.postings] == [
        ("system:funding", -50), ("receivable:W1:basic", 50)]
    g3 = grant(j, "W1", "basic", 50, D(2024, 12, 31), D(2024, 1, 5), "g3")
    assert [(p.account, p.amount, p.expires) for p in g3.postings] == [
        ("system:funding", -50, None), ("receivable:W1:basic", 30, None),
        ("member:W1:basic", 20, D(2024, 12, 31))]
    assert j.receivable("W1")["basic"] == 0 and j.balance("W1")["basic"] == 20
    # another kind is not touched by a basic receivable
    assert verify(j.conn).ok


def test_expire_once_per_member_and_date(j):
    grant(j, "W1", "basic", 100, D(2024, 1, 31), D(2024, 1, 1), "a")
    grant(j, "W1", "limited", 50, D(2024, 1, 31), D(2024, 1, 1), "b")
    grant(j, "W2", "basic", 10, D(2024, 2, 29), D(2024, 1, 1), "c")
    j.redeem("W1", 30, "shopping", D(2024, 1, 20), key="r")
    out = j.expire(D(2024, 2, 1))
    assert [(e.key, e.effective) for e in out] == [("expire:W1:2024-01-31", D(2024, 1, 31))]
    assert {p.kind: p.amount for p in out[0].postings if p.account == "system:expired"} == {
        "limited": 20, "basic": 100}
    assert j.expire(D(2024, 2, 1)) == []
    assert j.balance("W1") == {"basic": 0, "limited": 0, "charge_only": 0}
    assert j.balance("W1", as_of=D(2024, 1, 30)) == {"basic": 100, "limited": 20, "charge_only": 0}
    assert [e.key for e in j.expire(D(2024, 3, 1))] == ["expire:W2:2024-02-29"]


def test_balance_and_lots_as_of(j):
    a = grant(j, "W1", "basic", 100, D(2024, 6, 30), D(2024, 1, 1), "a")
    grant(j, "W1", "limited", 40, D(2024, 3, 31), D(2024, 2, 1), "b")
    j.redeem("W1", 30, "fare", D(2024, 3, 1), key="r")
    assert j.balance("W1", D(2023, 12, 31)) == {"basic": 0, "limited": 0, "charge_only": 0}
    assert j.balance("W1", D(2024, 1, 31)) == {"basic": 100, "limited": 0, "charge_only": 0}
    assert j.balance("W1", D(2024, 2, 29)) == {"basic": 100, "limited": 40, "charge_only": 0}
    assert j.balance("W1", D(2024, 3, 1)) == {"basic": 100, "limited": 10, "charge_only": 0}
    lots = j.lots("W1", D(2024, 3, 1))
    assert [(l.kind, l.amount, l.remaining) for l in lots] == [("limited", 40, 10), ("basic", 100, 100)]
    assert lots[1].id == a.postings[1].id and lots[1].entry == a.seq
    assert [l.remaining for l in j.lots("W1", D(2024, 1, 15))] == [100]
    assert [e.key for e in j.entries(member="W1")] == ["a", "b", "r"]


def test_verify_good_journal_and_readonly(j, path):
    j.fund_budget("c1", "basic", 1000, D(2024, 1, 1))
    g = grant(j, "W1", "basic", 100, D(2024, 1, 31), D(2024, 1, 2), "g", BUDGET)
    j.redeem("W1", 10, "fare", D(2024, 1, 3), key="r")
    j.reverse(g.seq, 95, D(2024, 1, 4), key="rev")
    j.expire(D(2024, 2, 1))
    rep = verify(j.conn)
    assert rep.ok, rep.problems
    assert rep.checked_entries == 4 and rep.first_bad is None
    ro = db.connect(path, readonly=True)
    rep2 = verify(ro)
    assert rep2.ok and rep2.checked_postings == rep.checked_postings
    with pytest.raises(apsw.ReadOnlyError):
        ro.execute("INSERT INTO meta VALUES ('x','y')")


def test_hash_chain_and_canonical_encoding(j):
    e1 = j.fund_budget("c1", "basic", 1000, D(2024, 1, 1))
    e2 = grant(j, "W1", "basic", 100, D(2024, 1, 31), D(2024, 1, 2), "g", BUDGET)
    assert e1.prev_hash == "0" * 64 and e2.prev_hash == e1.hash
    erow = j.conn.execute("SELECT seq,key,effective,recorded,campaign,rule,rules_hash,step,"
                          "events,reverses,memo,prev_hash FROM entries WHERE seq=2").fetchone()
    prows = j.conn.execute("SELECT id,entry,idx,account,kind,amount,expires,lot FROM postings"
                           " WHERE entry=2 ORDER BY idx").fetchall()
    import hashlib
    text = entry_canonical(erow, prows)
    assert fast_canonical(erow, prows) == text
    assert hashlib.sha256((e1.hash + text).encode()).hexdigest() == e2.hash
