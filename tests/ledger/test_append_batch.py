"""Journal.append's one-pass batch path: hashes by the reference encoder, lots opened
and drawn from in the same batch, append_seqs."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.ledger import db
from points.ledger.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    InvalidAccount,
    InvalidEntry,
    UnbalancedEntry,
)
from points.ledger.hashing import entry_hash
from points.ledger.journal import Journal
from points.ledger.model import NewEntry, Posting
from points.ledger.verify import verify

D = dt.date
BUDGET = "campaign:c1:budget"


@pytest.fixture
def j(tmp_path):
    journal = Journal(db.connect(tmp_path / "points.db"))
    journal.fund_budget("c1", "basic", 10_000, D(2024, 1, 1))
    return journal


def stored(j):
    """Every entry row (seq order) with its posting rows, as verify reads them."""
    out = []
    for erow in j.conn.execute(
            "SELECT seq,key,effective,recorded,campaign,rule,rules_hash,step,events,reverses,"
            "memo,prev_hash,hash FROM entries ORDER BY seq").fetchall():
        prows = j.conn.execute("SELECT id,entry,idx,account,kind,amount,expires,lot FROM postings"
                               " WHERE entry = ? ORDER BY idx", (erow[0],)).fetchall()
        out.append((erow, prows))
    return out


def grant(key, member, amount, expires=D(2024, 12, 31), effective=D(2024, 1, 2), **kw):
    return NewEntry(key, effective, [Posting(BUDGET, "basic", -amount),
                                     Posting(f"member:{member}:basic", "basic", amount,
                                             expires=expires)], **kw)


def spend(key, member, lot, amount, effective=D(2024, 1, 3)):
    return NewEntry(key, effective, [Posting(f"member:{member}:basic", "basic", -amount, lot=lot),
                                     Posting("system:redeemed", "basic", amount)])


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
member_id = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"),
                                  blacklist_characters=":\x1c\x1d\x1e\x1f\x85"),
                    min_size=1, max_size=8)
memo = st.none() | st.dictionaries(text, st.integers() | text | st.lists(text, max_size=2),
                                   max_size=3)


@given(st.lists(st.tuples(text, member_id, st.integers(1, 50), st.none() | text, st.none() | text,
                          st.lists(text, max_size=3), memo, st.none() | text),
                min_size=1, max_size=6, unique_by=lambda t: t[0]))
def test_hash_of_every_entry_is_the_reference_encoders(tmp_path_factory, specs):
    """Any strings (quotes, backslashes, non-ASCII, control characters) in any column:
    the stored hash is what hashing.entry_hash computes from the stored rows, and the
    returned Entry is the stored one."""
    j = Journal(db.connect(tmp_path_factory.mktemp("h") / "points.db"))
    j.fund_budget("c1", "basic", 10_000, D(2024, 1, 1))
    batch = [grant(key, member, amount, campaign=campaign, step=step, events=events, memo=m,
                   rule=rule, recorded=rule)
             for key, member, amount, campaign, step, events, m, rule in specs]
    written = j.append(batch)
    rows = stored(j)
    for erow, prows in rows:
        assert erow[12] == entry_hash(erow[:12], prows)
    assert [j.entry(e.seq) for e in written] == written
    assert verify(j.conn).ok


def test_append_seqs_writes_what_append_writes(tmp_path):
    batch = [grant("g1", "W1", 10, memo={"why": "é\"\\"}, events=["E1", "E2"]),
             grant("g2", "W2", 20, campaign="c1", rule="r.rules", step="award"),
             NewEntry("draw", D(2024, 1, 2), [], memo={"order": [3, 1]}),
             spend("s1", "W1", 4, 4)]
    full = Journal(db.connect(tmp_path / "a.db"))
    lean = Journal(db.connect(tmp_path / "b.db"))
    for jj in (full, lean):
        jj.fund_budget("c1", "basic", 10_000, D(2024, 1, 1))
    written = full.append(batch)
    seqs = lean.append_seqs(batch)
    assert seqs == [e.seq for e in written] == [2, 3, 4, 5]
    assert stored(full) == stored(lean)
    # no-ops: a stored key and a key repeated in the batch give the stored seq
    again = [batch[1], grant("g3", "W3", 5), grant("g3", "W3", 5)]
    assert lean.append_seqs(again) == [3, 6, 6]
    assert [e.seq for e in full.append(again)] == [3, 6, 6]
    assert stored(full) == stored(lean)
    with pytest.raises(IdempotencyConflict):
        lean.append_seqs([grant("g1", "W1", 11)])


def test_lot_opened_earlier_in_the_batch_can_be_drawn_from(j):
    # posting ids: funding 1-2, g1 3-4 (lot 4), s1 5-6
    written = j.append([grant("g1", "W1", 10), spend("s1", "W1", 4, 6), spend("s2", "W1", 4, 4)])
    assert written[0].postings[1].id == 4
    assert j.lots("W1") == []
    with pytest.raises(InsufficientPoints, match="lot 4 of member:W1:basic has 0 points left"):
        j.append([spend("s3", "W1", 4, 1)])


def test_lot_of_the_batch_not_overdrawn_and_not_drawn_before_it_opens(j):
    with pytest.raises(InsufficientPoints, match="lot 4 .* has 4 points left, 5 requested"):
        j.append([grant("g1", "W1", 10), spend("s1", "W1", 4, 6), spend("s2", "W1", 4, 5)])
    # the spend comes first: lot 6 (g1's credit) does not exist yet when it is drawn from
    with pytest.raises(InvalidEntry, match="draws from lot 6, which is not a lot of"):
        j.append([spend("s1", "W1", 6, 1), grant("g1", "W1", 10)])
    # an id of the batch that is not a member credit (g1's budget debit) is no lot
    with pytest.raises(InvalidEntry, match="draws from lot 3, which is not a lot of"):
        j.append([grant("g1", "W1", 10), spend("s1", "W1", 3, 1)])
    # a lot of the batch is spendable from its entry's effective date only
    with pytest.raises(InvalidEntry, match="is not spendable on 2024-01-01"):
        j.append([grant("g1", "W1", 10), spend("s1", "W1", 4, 1, effective=D(2024, 1, 1))])
    assert j.conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1


class _Date(dt.date):
    """A date subclass: accepted wherever a date is (only datetime is refused)."""


class _Int(int):
    """An int subclass (not bool): accepted as an amount and as a lot id."""


M = "member:W1:basic"


def _bad(postings=(), **fields):
    return NewEntry(fields.pop("key", "bad"), fields.pop("effective", D(2024, 1, 2)),
                    postings, **fields)


# Every refusal of an entry checked on its own, with the message that names where. The
# batch writer tests these inline and builds the message only on failure, so each case
# also checks that the inline test lets nothing through that the full check refuses.
@pytest.mark.parametrize("entry, error, message", [
    ("not an entry", InvalidEntry, "append takes NewEntry values, not str"),
    (_bad(key=""), InvalidEntry, "idempotency key must be a non-empty string, not ''"),
    (_bad(effective="2024-01-02"), InvalidEntry,
     "entry 'bad': effective must be a datetime.date, not '2024-01-02'"),
    (_bad(effective=dt.datetime(2024, 1, 2)), InvalidEntry,
     "entry 'bad': effective must be a datetime.date"),
    (_bad(rule=5), InvalidEntry, "entry 'bad': rule must be a string or None"),
    (_bad(step=b"award"), InvalidEntry, "entry 'bad': step must be a string or None"),
    (_bad(reverses=0), InvalidEntry, "entry 'bad': reverses must be an entry seq"),
    (_bad(reverses="3"), InvalidEntry, "entry 'bad': reverses must be an entry seq"),
    (_bad(memo={"x": object()}), InvalidEntry, "entry 'bad': memo is not JSON-serialisable"),
    (_bad(["p"]), InvalidEntry, "entry 'bad': posting 0 is not a Posting"),
    (_bad([Posting(5, "basic", 1)]), InvalidAccount,
     "entry 'bad', posting 0: account must be a string, not int"),
    (_bad([Posting("member:W 1:basic", "basic", 1)]), InvalidAccount,
     "entry 'bad', posting 0: invalid member id"),
    (_bad([Posting("system:redeemed", "gold", 1)]), InvalidEntry,
     "entry 'bad', posting 0: unknown point kind 'gold'"),
    (_bad([Posting(M, "limited", 1)]), InvalidEntry,
     "entry 'bad', posting 0: kind 'limited' on account member:W1:basic"),
    (_bad([Posting("system:redeemed", "basic", 0)]), InvalidEntry,
     "entry 'bad', posting 0: amount must be a non-zero integer, not 0"),
    (_bad([Posting("system:redeemed", "basic", True)]), InvalidEntry,
     "amount must be a non-zero integer, not True"),
    (_bad([Posting("system:redeemed", "basic", 1.0)]), InvalidEntry,
     "amount must be a non-zero integer, not 1.0"),
    (_bad([Posting(BUDGET, "basic", -1), Posting(M, "basic", 1)]), InvalidEntry,
     "entry 'bad', posting 1: a credit to member:W1:basic must carry expires (it opens a lot)"),
    (_bad([Posting(BUDGET, "basic", -1), Posting(M, "basic", 1, expires="2024-12-31")]),
     InvalidEntry, "entry 'bad', posting 1: expires must be a datetime.date"),
    (_bad([Posting(BUDGET, "basic", -1), Posting(M, "basic", 1, expires=D(2024, 1, 1))]),
     InvalidEntry, "posting 1: lot expires 2024-01-01 before the entry's effective date 2024-01-02"),
    (_bad([Posting(BUDGET, "basic", -1), Posting(M, "basic", 1, expires=D(2024, 2, 1), lot=2)]),
     InvalidEntry, "entry 'bad', posting 1: a credit has no lot"),
    (_bad([Posting(M, "basic", -1), Posting("system:redeemed", "basic", 1)]), InvalidEntry,
     "entry 'bad', posting 0: a debit of member:W1:basic must name the lot (posting id)"),
    (_bad([Posting(M, "basic", -1, lot=True)]), InvalidEntry,
     "posting 0: a debit of member:W1:basic must name the lot"),
    (_bad([Posting(M, "basic", -1, lot=2, expires=D(2024, 2, 1))]), InvalidEntry,
     "entry 'bad', posting 0: a debit has no expires"),
    (_bad([Posting(BUDGET, "basic", -1, lot=2)]), InvalidEntry,
     "entry 'bad', posting 0: only member accounts have expires/lot"),
    (_bad([Posting("system:redeemed", "basic", 1, expires=D(2024, 2, 1))]), InvalidEntry,
     "entry 'bad', posting 0: only member accounts have expires/lot"),
    (_bad([Posting(BUDGET, "basic", -2), Posting(M, "basic", 1, expires=D(2024, 2, 1))]),
     UnbalancedEntry, "entry 'bad' does not sum to zero per kind: basic -1"),
    (_bad(events=["E1", 2]), InvalidEntry, "entry 'bad': event ids must be strings, not 2"),
    (_bad(recorded=""), InvalidEntry, "recorded must be a date or a non-empty string, not ''"),
])
def test_each_refusal_names_the_entry_and_posting_and_writes_nothing(j, entry, error, message):
    head = j.head()
    with pytest.raises(error) as caught:
        j.append([grant("ok", "W1", 5), entry])
    assert message in str(caught.value)
    assert j.head() == head


def test_subclasses_of_date_and_int_are_stored_as_their_values(j):
    """The inline tests compare types exactly; a value they pass to the full check must
    still be written, and hash as the plain value would."""
    lot = j.append([grant("g1", "W1", 10)])[0].postings[1].id
    sub = j.append([
        NewEntry("g2", _Date(2024, 1, 2), [Posting(BUDGET, "basic", _Int(-3)),
                                           Posting(M, "basic", _Int(3), expires=_Date(2024, 5, 1))],
                 recorded=_Date(2024, 1, 5)),
        NewEntry("s1", D(2024, 1, 3), [Posting(M, "basic", -2, lot=_Int(lot)),
                                       Posting("system:redeemed", "basic", 2)])])
    rows = stored(j)
    assert rows[-2][0][2:4] == ("2024-01-02", "2024-01-05")
    assert rows[-2][1][1][5:7] == (3, "2024-05-01")
    assert rows[-1][1][0][7] == lot
    for erow, prows in rows:
        assert erow[12] == entry_hash(erow[:12], prows)
    assert [e.seq for e in sub] == [3, 4]
    assert verify(j.conn).ok
