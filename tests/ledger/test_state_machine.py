import datetime as dt
import functools
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from points.ledger import db
from points.ledger.accounts import budget_account
from points.ledger.errors import BudgetExceeded, InsufficientPoints
from points.ledger.journal import Journal
from points.ledger.verify import verify
from tests import support

MEMBERS = ("W1", "W2", "W3")
KINDS = ("basic", "limited", "charge_only")
USES = ("fare", "charge", "shopping", "wesmo")
CAMPAIGNS = ("c1", "c2")


def _operation(journal, name):
    """The journal's operation `name`; a grant as the run engine makes it (see support.grant)."""
    if name == "grant":
        return functools.partial(support.grant, journal)
    return getattr(journal, name)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-sm-"))
        self.j = Journal(db.connect(self.dir / "a.db"))
        self.today = dt.date(2024, 1, 1)
        self.ops = []  # successful operations, to replay
        self.n = 0
        self.grants = {}  # seq -> points still reversible

    def _do(self, name, *args, **kwargs):
        result = _operation(self.j, name)(*args, **kwargs)
        self.ops.append((name, args, kwargs))
        return result

    def _counts(self):
        c = self.j.conn
        return (c.execute("SELECT COUNT(*) FROM entries").fetchone()[0],
                c.execute("SELECT COUNT(*) FROM postings").fetchone()[0])

    @rule(days=st.integers(0, 40))
    def advance(self, days):
        self.today += dt.timedelta(days=days)

    @rule(campaign=st.sampled_from(CAMPAIGNS), kind=st.sampled_from(KINDS),
          amount=st.integers(1, 500))
    def fund(self, campaign, kind, amount):
        if self.j.entry_by_key(f"fund:{campaign}:{kind}") is None:
            self._do("fund_budget", campaign, kind, amount, self.today)

    @rule(member=st.sampled_from(MEMBERS), kind=st.sampled_from(KINDS),
          amount=st.integers(1, 300), life=st.integers(0, 90),
          source=st.sampled_from(("system:funding",) + CAMPAIGNS))
    def grant(self, member, kind, amount, life, source):
        if source != "system:funding":
            source = budget_account(source)
        self.n += 1
        before = self._counts()
        try:
            e = self._do("grant", member, kind, amount, self.today + dt.timedelta(days=life),
                         self.today, key=f"g{self.n}", source=source, events=(f"E{self.n}",))
        except BudgetExceeded:
            assert self._counts() == before
            assert self.j.account_balance(source, kind) < amount
            return
        self.grants[e.seq] = amount

    @rule(member=st.sampled_from(MEMBERS), points=st.integers(1, 400), use=st.sampled_from(USES))
    def redeem(self, member, points, use):
        self.n += 1
        before = self._counts()
        try:
            self._do("redeem", member, points, use, self.today, key=f"redeem:E{self.n}")
        except InsufficientPoints:
            assert self._counts() == before

    @rule()
    def expire(self):
        self._do("expire", self.today)
        for m in MEMBERS:
            assert all(l.expires > self.today for l in self.j.lots(m))

    @precondition(lambda self: self.grants)
    @rule(data=st.data())
    def reverse(self, data):
        seq = data.draw(st.sampled_from(sorted(self.grants)))
        left = self.grants[seq]
        if not left:
            return
        amount = data.draw(st.integers(1, left))
        self.n += 1
        self._do("reverse", seq, amount, self.today, key=f"rev{self.n}")
        self.grants[seq] -= amount

    @invariant()
    def books_are_consistent(self):
        c = self.j.conn
        assert c.execute("SELECT entry, kind FROM postings GROUP BY entry, kind"
                         " HAVING SUM(amount) != 0").fetchall() == []
        assert c.execute("SELECT account, kind FROM postings WHERE account LIKE 'campaign:%'"
                         " GROUP BY account, kind HAVING SUM(amount) < 0").fetchall() == []
        assert c.execute("SELECT account, kind FROM postings WHERE account LIKE 'receivable:%'"
                         " GROUP BY account, kind HAVING SUM(amount) > 0").fetchall() == []
        for m in MEMBERS:
            bal = self.j.balance(m)
            lots = self.j.lots(m)
            for k in KINDS:
                assert bal[k] == sum(l.remaining for l in lots if l.kind == k)
        rep = verify(c)
        assert rep.ok, rep.problems

    def teardown(self):
        try:
            hashes = [h for (h,) in self.j.conn.execute("SELECT hash FROM entries ORDER BY seq")]
            j2 = Journal(db.connect(self.dir / "b.db"))
            for name, args, kwargs in self.ops:
                _operation(j2, name)(*args, **kwargs)
            again = [h for (h,) in j2.conn.execute("SELECT hash FROM entries ORDER BY seq")]
            assert again == hashes
            j2.conn.close()
            self.j.conn.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


LedgerMachine.TestCase.settings = settings(stateful_step_count=30)
TestLedgerMachine = LedgerMachine.TestCase
