"""verify's rule checks on journals whose hash chain is intact.

A forger writes entries straight into the tables with correct hashes, so only
the arithmetic and lot rules can catch what it did: each test breaks one rule
in one entry and expects verify to name that entry first.
"""

from __future__ import annotations

import apsw
import pytest

from points.ledger import db
from points.ledger.hashing import GENESIS, entry_hash
from points.ledger.verify import verify

BUDGET = "campaign:c1:budget"
W1 = "member:W1:basic"
W2 = "member:W2:basic"


class Forger:
    """Appends hash-chained entries without any of Journal's validation."""

    def __init__(self, path, *, zero_sum_trigger: bool = True) -> None:
        self.path = path
        self.conn = db.connect(path)
        if not zero_sum_trigger:
            self.conn.execute("DROP TRIGGER entries_zero_sum")
        self.seq = 0
        self.pid = 0
        self.prev = GENESIS

    def entry(self, postings, effective="2024-01-01", *, reverses=None, idx=None,
              **cells) -> tuple[int, list[int]]:
        """postings: (account, kind, amount[, expires[, lot]]); cells: other entry columns
        (key, recorded, campaign, rule, rules_hash, step, events, memo). Returns (seq,
        posting ids)."""
        self.seq += 1
        rows = []
        for i, p in enumerate(postings):
            account, kind, amount, expires, lot = (tuple(p) + (None, None))[:5]
            self.pid += 1
            rows.append((self.pid, self.seq, i if idx is None else idx[i], account, kind, amount,
                         expires, lot))
        given = {"key": f"k{self.seq}", "recorded": effective, "campaign": None, "rule": None,
                 "rules_hash": None, "step": None, "events": "[]", "memo": "{}", **cells}
        erow = (self.seq, given["key"], effective, given["recorded"], given["campaign"],
                given["rule"], given["rules_hash"], given["step"], given["events"], reverses,
                given["memo"], self.prev)
        h = entry_hash(erow, rows)
        self.conn.executemany("INSERT INTO postings VALUES (?,?,?,?,?,?,?,?)", rows)
        self.conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", erow + (h,))
        self.prev = h
        return self.seq, [r[0] for r in rows]

    def fund(self, amount=1000, kind="basic", effective="2024-01-01") -> int:
        return self.entry([("system:funding", kind, -amount), (BUDGET, kind, amount)], effective)[0]

    def grant(self, amount, account=W1, kind="basic", effective="2024-01-02",
              expires="2024-12-31") -> int:
        """Returns the id of the lot (the member credit)."""
        _, ids = self.entry([(BUDGET, kind, -amount), (account, kind, amount, expires)], effective)
        return ids[1]

    def draw(self, lot, amount, account=W1, kind="basic", effective="2024-02-01") -> int:
        return self.entry([(account, kind, -amount, None, lot), ("system:redeemed", kind, amount)],
                          effective)[0]

    def report(self):
        self.conn.close()
        ro = db.connect(self.path, readonly=True)
        try:
            return verify(ro)
        finally:
            ro.close()


@pytest.fixture
def forger(tmp_path):
    return Forger(tmp_path / "points.db")


def named(report, seq: int, *words: str) -> bool:
    """The first problem names entry `seq` and one problem about it has all the words."""
    assert not report.ok
    assert report.first_bad.startswith(f"entry {seq}:"), report.problems
    return any(p.startswith(f"entry {seq}:") and all(w in p for w in words) for p in report.problems)


def test_a_forged_valid_journal_passes(forger):
    forger.fund()
    lot = forger.grant(100)
    forger.draw(lot, 60)
    forger.draw(lot, 40, effective="2024-12-31")  # the lot can be spent on its expiry day
    forger.entry([], effective="2024-12-31")  # a record-only entry
    report = forger.report()
    assert report.ok, report.problems
    assert (report.checked_entries, report.checked_postings) == (5, 8)


def test_overdrawn_lot(forger):
    forger.fund()
    lot = forger.grant(100)
    forger.draw(lot, 60)
    seq = forger.draw(lot, 41)
    forger.draw(lot, 1)
    report = forger.report()
    assert named(report, seq, f"lot {lot}", "below zero")
    assert any(p.startswith(f"entry {seq + 1}:") for p in report.problems), report.problems


@pytest.mark.parametrize("effective", ["2024-01-01", "2025-01-01"])
def test_draw_while_the_lot_is_not_open(forger, effective):
    forger.fund()
    lot = forger.grant(100, effective="2024-01-02", expires="2024-12-31")
    seq = forger.draw(lot, 10, effective=effective)
    assert named(forger.report(), seq, f"lot {lot}", "not open")


def test_draw_from_another_members_lot(forger):
    forger.fund()
    lot = forger.grant(100, account=W2)
    seq = forger.draw(lot, 10, account=W1)
    assert named(forger.report(), seq, "another account")


def test_draw_from_another_kinds_lot(forger):
    forger.fund(kind="limited")
    lot = forger.grant(100, account="member:W1:limited", kind="limited")
    forger.fund()
    seq = forger.draw(lot, 10, account=W1, kind="basic")
    assert named(forger.report(), seq, "another account or kind")


def test_draw_naming_a_posting_that_is_not_a_lot(forger):
    fund = forger.fund()
    forger.grant(100)
    seq = forger.draw(2, 10)  # posting 2 is the budget's credit in the funding entry
    assert fund == 1
    assert named(forger.report(), seq, "known lot")


def test_draw_naming_a_lot_opened_later(forger):
    forger.fund()
    seq = forger.draw(6, 10, effective="2024-01-02")  # posting 6 is the next entry's credit
    assert forger.grant(100, effective="2024-01-02") == 6
    assert named(forger.report(), seq, "known lot")


def test_member_debit_without_lot(forger):
    forger.fund()
    forger.grant(100)
    seq = forger.draw(None, 10)
    assert named(forger.report(), seq, "known lot")


def test_member_credit_without_expires(forger):
    forger.fund()
    seq, _ = forger.entry([(BUDGET, "basic", -5), (W1, "basic", 5)])
    assert named(forger.report(), seq, "without expires")


def test_member_credit_expiring_before_it_is_effective(forger):
    forger.fund()
    forger.grant(5, effective="2024-03-01", expires="2024-02-28")
    assert named(forger.report(), 2, "expires")


def test_expires_or_lot_on_a_non_member_account(forger):
    forger.fund()
    seq, _ = forger.entry([("system:funding", "basic", -5, "2024-12-31"), (BUDGET, "basic", 5)])
    assert named(forger.report(), seq, "non-member")


def test_budget_below_zero(forger):
    forger.fund(100)
    forger.grant(60)
    forger.grant(40)
    forger.grant(1)
    report = forger.report()
    assert named(report, 4, BUDGET, "below zero")


def test_a_budget_refilled_within_the_entry_is_not_below_zero(forger):
    forger.fund(100)
    forger.entry([(BUDGET, "basic", -150), ("system:funding", "basic", -50),
                  (BUDGET, "basic", 50), (W1, "basic", 150, "2024-12-31")])
    assert forger.report().ok


def test_positive_receivable(forger):
    forger.fund()
    seq, _ = forger.entry([("system:funding", "basic", -5), ("receivable:W1:basic", "basic", 5)])
    assert named(forger.report(), seq, "receivable", "positive")


def test_entry_not_summing_to_zero_per_kind(tmp_path):
    forger = Forger(tmp_path / "points.db", zero_sum_trigger=False)
    forger.fund()
    seq, _ = forger.entry([("system:funding", "basic", -5), ("system:redeemed", "limited", 5)])
    assert named(forger.report(), seq, "sum to zero")


@pytest.mark.parametrize("account, kind, words", [
    ("member:W 1:basic", "basic", ("invalid account",)),
    ("member:W1:basic:x", "basic", ("invalid account",)),
    ("system:nothing", "basic", ("invalid account",)),
    ("campaign:c1:pot", "basic", ("invalid account",)),
    ("campaign:" + "c" * 65 + ":budget", "basic", ("invalid account",)),
    ("member:" + "é" * 65 + ":basic", "basic", ("invalid account",)),
    ("member:W\u30001:basic", "basic", ("invalid account",)),
    ("system:redeemed", "gold", ("unknown kind",)),
    ("member:W1:limited", "basic", ("kind basic on account",)),
])
def test_invalid_account_or_kind(tmp_path, account, kind, words):
    forger = Forger(tmp_path / "points.db", zero_sum_trigger=False)
    forger.fund()
    seq, _ = forger.entry([("system:funding", kind, -5), (account, kind, 5, "2024-12-31")])
    assert named(forger.report(), seq, *words)


def test_unusual_but_valid_member_ids_pass(forger):
    forger.fund()
    for member in ("é" * 64, 'W"1', "W\\1", "W\x001", "日本"):
        forger.grant(1, account=f"member:{member}:basic")
    report = forger.report()
    assert report.ok, report.problems


def test_reverses_must_name_an_earlier_entry(forger):
    forger.fund()
    seq, _ = forger.entry([("system:funding", "basic", -5), ("system:redeemed", "basic", 5)],
                          reverses=2)  # itself
    assert named(forger.report(), seq, "reverses")


def test_posting_indexes_must_run_from_zero(forger):
    forger.fund()
    seq, _ = forger.entry([("system:funding", "basic", -5), ("system:redeemed", "basic", 5)],
                          idx=[0, 2])
    assert named(forger.report(), seq, "idx")


def test_posting_of_no_entry(forger):
    forger.fund()
    forger.conn.execute("INSERT INTO postings VALUES (99, 77, 0, 'system:funding', 'basic', 0,"
                        " NULL, NULL)")
    forger.fund()
    assert named(forger.report(), 77, "posting 99", "no entry")


def test_first_bad_is_the_lowest_entry_whichever_check_finds_it(forger):
    forger.fund(100)
    lot = forger.grant(100)                        # 2
    forger.draw(lot, 60)                           # 3
    forger.draw(lot, 60)                           # 4: lot below zero
    forger.fund(10)                                # 5: its memo is tampered below
    forger.grant(50)                               # 6: budget below zero
    forger.conn.execute("DROP TRIGGER entries_no_update")
    forger.conn.execute("UPDATE entries SET memo = '{\"x\":1}' WHERE seq = 5")
    report = forger.report()
    assert report.first_bad.startswith("entry 4:"), report.problems
    # the dropped trigger too, after the entry problems (ledger.db.schema_problems)
    assert [p.split(":")[0] for p in report.problems] == ["entry 4", "entry 5", "entry 6", "schema"], \
        report.problems
    assert report.problems[-1] == "schema: trigger entries_no_update is missing"


def test_first_bad_is_the_lowest_entry_when_a_hash_breaks_before_a_rule(forger):
    forger.fund(100)
    lot = forger.grant(100)                        # 2: its amount is tampered below
    forger.draw(lot, 60)                           # 3
    forger.draw(lot, 60)                           # 4: lot below zero
    forger.conn.execute("DROP TRIGGER postings_no_update")
    forger.conn.execute(f"UPDATE postings SET amount = 101 WHERE id = {lot}")
    report = forger.report()
    assert report.first_bad.startswith("entry 2:"), report.problems


def test_read_only_connection_is_enough(forger):
    forger.fund()
    forger.conn.close()
    ro = db.connect(forger.path, readonly=True)
    assert verify(ro).ok
    with pytest.raises(apsw.ReadOnlyError):
        ro.execute("INSERT INTO meta VALUES ('x','y')")


def _broken_journal(forger):
    """A journal with a problem of every pass, in several chain chunks."""
    forger.fund(100)
    lot = forger.grant(100)
    forger.draw(lot, 60)
    forger.draw(lot, 60)                                           # lot below zero
    for _ in range(6):
        forger.fund(10)
    forger.grant(500)                                              # budget below zero
    forger.entry([("system:funding", "basic", -5), ("member:W 1:basic", "basic", 5, "2025-01-01")])
    forger.entry([("system:funding", "basic", -5), ("system:redeemed", "basic", 5)], idx=[0, 3])
    for _ in range(4):
        forger.fund(10)
    forger.conn.execute("DROP TRIGGER entries_no_update")
    forger.conn.execute("UPDATE entries SET memo = '{\"x\":1}' WHERE seq = 9")


def test_two_connections_report_what_one_does(tmp_path, monkeypatch):
    import points.ledger.verify as verify_module
    import points.ledger.verify_threads as verify_threads

    forger = Forger(tmp_path / "points.db")
    _broken_journal(forger)
    one = forger.report()
    monkeypatch.setattr(verify_module, "PARALLEL_MIN_ENTRIES", 0)
    monkeypatch.setattr(verify_threads, "_cpus", lambda: 2)
    opened = []
    real_connection = apsw.Connection
    monkeypatch.setattr(apsw, "Connection", lambda *a, **k: opened.append(a) or real_connection(*a, **k))
    two = verify(db.connect(forger.path, readonly=True))
    assert len(opened) == 2  # the caller's and the helper's
    assert two == one
    assert [p.split(":")[0] for p in one.problems] == [
        "entry 4", "entry 9", "entry 11", "entry 12", "entry 13", "entry 14", "entry 15",
        "entry 16", "entry 17", "schema"], one.problems


def test_a_caller_inside_a_transaction_is_verified_on_its_own_connection(tmp_path, monkeypatch):
    """A second connection would not see the caller's uncommitted entries."""
    import points.ledger.verify as verify_module

    monkeypatch.setattr(verify_module, "PARALLEL_MIN_ENTRIES", 0)
    forger = Forger(tmp_path / "points.db")
    forger.fund(100)
    forger.conn.execute("BEGIN")
    forger.grant(50)
    forger.grant(60)  # budget below zero, not committed
    report = verify(forger.conn)
    forger.conn.execute("ROLLBACK")
    assert report.checked_entries == 3
    assert named(report, 3, "below zero")


def test_sqlite_builds_the_canonical_text_for_every_code_point(forger, monkeypatch):
    """verify's fast path (the hashed bytes built by SQLite) agrees with the reference
    encoder on every character, in entry and in posting cells: no entry falls back."""
    import points.ledger.verify_chain as verify_chain

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(chars), 8192):
        text = "".join(chars[start:start + 8192])
        forger.entry([(f"system:{text}", "basic", -1), (f"campaign:{text}", "basic", 1)],
                     key=f"{start}{text}", recorded=text, campaign=text, rule=text,
                     rules_hash=text, step=text, events=text, memo=text)
    fallbacks = []
    monkeypatch.setattr(verify_chain, "check_entry", lambda conn, seq, add: fallbacks.append(seq))
    forger.conn.close()
    ro = db.connect(forger.path, readonly=True)
    verify(ro)
    assert fallbacks == []


@pytest.mark.parametrize("table, column, value", [
    ("entries", "memo", b"{}"),               # SQLite cannot put a BLOB in JSON
    ("postings", "account", b"system:funding"),
    ("postings", "amount", 2**62),             # the entry's sum overflows 64 bits
])
def test_a_cell_sqlite_cannot_encode_is_named_and_the_walk_goes_on(forger, table, column, value):
    forger.fund()
    forger.fund()                              # 2: a cell SQLite raises on
    lot = forger.grant(100)
    forger.draw(lot, 150)                      # 4: lot below zero, found after entry 2
    forger.conn.execute(f"DROP TRIGGER {table}_no_update")
    # entry 2's row, or its postings (both: two amounts of 2**62 overflow the sum)
    where = "seq = 2" if table == "entries" else "entry = 2" if column == "amount" else "entry = 2 AND idx = 0"
    forger.conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,))
    report = forger.report()
    assert report.checked_entries == 4
    assert report.first_bad.startswith("entry 2:"), report.problems
    assert any(p.startswith("entry 4:") for p in report.problems), report.problems
