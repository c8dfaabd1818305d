"""The run's memory does not hold every member: paid state one member at a time, lottery
candidates and awarded members in TEMP tables, expiry one date at a time. Each test
checks the structure that bounds memory and that results are those of the plain
Python computation it replaces."""

import datetime as dt
import hashlib

from points.engine.lottery import LotteryCandidates
from points.engine.paid import PaidHistory
from points.engine.settlement import Checkpointer
from points.engine.workflow import MemberTally, RunLog
from points.ledger.accounts import FUNDING
from points.ledger.journal import Journal
from points.ledger.kinds import RANK
from tests.engine.test_workflow import pay, rules_dir, run
from tests.support import grant

# Member ids whose byte order and code-point order must agree with Python's: a prefix,
# a punctuation mark below ':' and a digit, non-ASCII letters of 2 and 3 UTF-8 bytes.
AWKWARD = ["W1", "W1-a", "W10", "W1.b", "Wz", "é", "Ω", "中", "a"]

TWO_AWARDS = """
campaign t "test"
  window 2026-03-01 .. 2026-03-31
  stream pay = wesmo_payment where date in window undone by cancel
  value spend = sum(pay.amount)
  award a = spend limited when spend > 0 on 2026-04-10 expires 2026-06-30
  award b = 10 limited when spend >= 100 on 2026-04-10 expires 2026-07-31
"""


def test_a_checkpoint_holds_the_paid_state_of_one_member_at_a_time(world, tmp_path, monkeypatch):
    rules = rules_dir(tmp_path, TWO_AWARDS)
    world.add(*[pay(f"p{i}", m, "2026-03-05T10:00:00", 100 + i) for i, m in enumerate(AWKWARD)])
    run(world, rules, "2026-04-30")
    # A cancellation after payment: a late checkpoint for one member; and a new watermark,
    # so the payment day is settled again against what everyone was already paid.
    world.add({"id": "c1", "type": "cancel", "member": "W10", "at": "2026-04-20T10:00:00", "ref": "p2"})
    seen = []
    settle = Checkpointer.settle

    def spy(self, award, env, pay_date=None):
        seen.append((env.member, {m for _, m in self.paid}, {m for _, m in self.grants}))
        return settle(self, award, env, pay_date)

    monkeypatch.setattr(Checkpointer, "settle", spy)
    run(world, rules, "2026-04-30")
    assert {m for m, _, _ in seen} == set(AWKWARD)
    for member, paid_members, grant_members in seen:
        assert paid_members == {member} and grant_members == {member}
    # Everyone was paid once, W10 lost its payment after the fact (both awards).
    assert world.paid("t", "W10") == 0
    assert all(world.paid("t", m) == 100 + i + 10 for i, m in enumerate(AWKWARD) if m != "W10")


def test_paid_history_reads_members_in_python_order_whole_or_by_member(world):
    j = Journal(world.conn)
    expected = {}
    for i, m in enumerate(AWKWARD):
        for n in range(2):
            grant(j, m, "limited", 10 * i + n + 1, dt.date(2026, 6, 30), dt.date(2026, 4, 10),
                    key=f"g:{m}:{n}", source=FUNDING, campaign="t", step=f"main:{'ab'[n]}",
                    memo={"member": m})
            expected[(("ab"[n]), m)] = 10 * i + n + 1
    grant(j, "W1", "limited", 999, dt.date(2026, 6, 30), dt.date(2026, 4, 11), key="later",
            source=FUNDING, campaign="t", step="main:a", memo={"member": "W1"})  # after the day
    for members in (None, AWKWARD, ["Ω", "W1"]):
        history = PaidHistory(world.conn, "t", "main", dt.date(2026, 4, 10), members, ["limited"])
        for m in sorted(members or AWKWARD):
            paid, grants = {}, {}
            history.load(m, paid, grants)
            assert paid == {k: v for k, v in expected.items() if k[1] == m}
            assert {k: [g[1] for g in v] for k, v in grants.items()} == {k: [v] for k, v in paid.items()}


def test_lottery_candidates_give_the_digest_and_order_of_sorted_python_lists(world):
    names = AWKWARD + [f"M{i:03d}" for i in range(50)]
    candidates = LotteryCandidates(world.conn)
    candidates.FLUSH_EVERY = 7  # several flushes
    for i, m in enumerate(reversed(names)):
        candidates.add(m, i)
    amounts = {m: i for i, m in enumerate(reversed(names))}
    count, digest = candidates.digest()
    assert count == len(names)
    assert digest == hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
    seed = "s33d"
    order = sorted(sorted(names), key=lambda m: hashlib.sha256(f"{seed}|{m}".encode()).hexdigest())
    assert list(candidates.in_draw_order(seed)) == [(m, amounts[m]) for m in order]


def test_member_tally_counts_distinct_members_across_flushes(world):
    tally = MemberTally(world.conn)
    tally.FLUSH_EVERY = 3
    for m in AWKWARD * 3 + ["W1"]:
        tally.add(m)
    assert len(tally) == len(AWKWARD)
    assert len(MemberTally(world.conn)) == 0  # each tally its own table


def test_expiry_reads_one_expiry_date_per_call(world, tmp_path, monkeypatch):
    rules = rules_dir(tmp_path, TWO_AWARDS)
    world.add(*[pay(f"p{i}", m, "2026-03-05T10:00:00", 100 + i) for i, m in enumerate(AWKWARD)])
    calls = []
    expire_lots = Journal.expire_lots

    def spy(self, as_of, recorded=None, *, since=None, **kw):
        lots = {d for (d,) in self.conn.execute(
            "SELECT DISTINCT expires FROM postings WHERE expires <= ? AND expires > ?",
            (as_of.isoformat(), since.isoformat() if since else ""))}
        calls.append(lots)
        return expire_lots(self, as_of, recorded, since=since, **kw)

    monkeypatch.setattr(Journal, "expire_lots", spy)
    report = run(world, rules, "2026-12-31")  # both expiry dates (06-30, 07-31) at the last call
    assert calls == [{"2026-06-30"}, {"2026-07-31"}]
    assert report.expiries == 2 * len(AWKWARD)
    assert all(world.balance(m)["limited"] == 0 for m in AWKWARD)


def test_run_log_gives_its_rows_in_order_from_memory_and_table(world):
    rows = [(m, f"award-{i}", i * 10**12, f"reason {m} ✓") for i, m in enumerate(AWKWARD * 3)]
    log = RunLog(world.conn, 4)
    log.IN_MEMORY = 4  # several spills to the table, a tail in memory
    log.append(rows[0])
    log.extend(rows[1:])
    assert len(log) == len(rows) and log.stored > 0 and log.rows
    assert list(log) == rows
    assert list(log) == rows  # read again: nothing consumed
    empty = RunLog(world.conn, 3)
    assert len(empty) == 0 and list(empty) == []


def test_expiry_entries_in_day_then_member_order_chunk_by_chunk(world):
    j = Journal(world.conn)
    days = (dt.date(2026, 6, 30), dt.date(2026, 5, 31))
    for i, m in enumerate(reversed(AWKWARD)):
        for n, day in enumerate(days):
            for kind in ("limited", "basic"):
                grant(j, m, kind, 10 + i + n, day, dt.date(2026, 4, 10), key=f"g:{m}:{n}:{kind}",
                      source=FUNDING)
    before = world.conn.execute("SELECT MAX(seq) FROM entries").fetchone()[0]
    entries, points = j.expire_lots(dt.date(2026, 7, 1), recorded="2026-07-01", chunk=4)
    keys = [k for (k,) in world.conn.execute("SELECT key FROM entries WHERE seq > ? ORDER BY seq", (before,))]
    assert keys == [f"expire:{m}:{d}" for d, m in sorted((d.isoformat(), m) for d in days for m in AWKWARD)]
    assert entries == len(keys) and points == sum(2 * (20 + 2 * i + 1) for i in range(len(AWKWARD)))
    assert all(sum(world.balance(m).values()) == 0 for m in AWKWARD)
    # Within an entry the lots go most restricted kind first (kinds.RANK), as before.
    first = j.entry_by_key(keys[0])
    assert [p.kind for p in first.postings if p.account.startswith("member:")] == sorted(
        ("limited", "basic"), key=lambda k: RANK[k])
