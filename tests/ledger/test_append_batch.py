"""Journal.append's one-pass batch path: hashes by the reference encoder, lots opened
and drawn from in the same batch, append_seqs."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.ledger import db
from points.ledger.errors import IdempotencyConflict, InsufficientPoints, InvalidEntry
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
