import datetime as dt

import apsw
import pytest

from points.ledger import db
from points.ledger.journal import Journal
from points.ledger.verify import verify
from tests.support import grant

D = dt.date


def build(path):
    conn = db.connect(path)
    j = Journal(conn)
    j.fund_budget("c1", "basic", 1000, D(2024, 1, 1))
    for i in range(5):
        grant(j, f"W{i}", "basic", 100, D(2024, 3, 31), D(2024, 1, 2 + i), key=f"g{i}",
                source="campaign:c1:budget", memo={"i": i})
    j.redeem("W1", 40, "fare", D(2024, 2, 1), key="r")
    conn.close()


@pytest.mark.parametrize("column, sql", [
    ("amount", "UPDATE postings SET amount = amount + 1 WHERE entry = 4 AND idx = 1"),
    ("account", "UPDATE postings SET account = 'member:W9:basic' WHERE entry = 4 AND idx = 1"),
    ("effective", "UPDATE entries SET effective = '2024-01-09' WHERE seq = 4"),
    ("memo", "UPDATE entries SET memo = '{\"i\":9}' WHERE seq = 4"),
    ("hash", "UPDATE entries SET hash = '" + "f" * 64 + "' WHERE seq = 4"),
])
def test_tampering_is_detected_and_named(tmp_path, column, sql):
    path = tmp_path / "points.db"
    build(path)
    assert verify(db.connect(path, readonly=True)).ok
    raw = apsw.Connection(str(path))
    table = "postings" if "postings" in sql else "entries"
    raw.execute(f"DROP TRIGGER {table}_no_update")
    raw.execute(sql)
    raw.close()
    report = verify(db.connect(path, readonly=True))
    assert not report.ok
    assert report.first_bad.startswith("entry 4:"), report.first_bad


def test_deleted_posting_is_detected(tmp_path):
    path = tmp_path / "points.db"
    build(path)
    raw = apsw.Connection(str(path))
    raw.execute("DROP TRIGGER postings_no_delete")
    raw.execute("DELETE FROM postings WHERE entry = 7 AND idx = 0")
    raw.close()
    report = verify(db.connect(path, readonly=True))
    assert not report.ok and report.first_bad.startswith("entry 7:")
