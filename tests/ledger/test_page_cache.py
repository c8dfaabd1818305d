"""db.page_cache: the cache size for a block, and how much a transaction may change
before SQLite writes its pages to the WAL mid-transaction (`dirty_kib`)."""

import os

from points.ledger import db


def _fill(conn, rows: int) -> None:
    # ~1 KiB a row: `rows` KiB of changed pages, all in one transaction
    conn.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    conn.executemany("INSERT INTO filler VALUES (randomblob(1000))", [()] * rows)


def _wal_bytes(path) -> int:
    wal = str(path) + "-wal"
    return os.path.getsize(wal) if os.path.exists(wal) else 0


def test_settings_come_back_after_the_block(tmp_path):
    conn = db.connect(tmp_path / "p.db")
    before = (conn.execute("PRAGMA cache_size").fetchone(), conn.execute("PRAGMA cache_spill").fetchone())
    with db.page_cache(conn, 1024, dirty_kib=8192):
        assert conn.execute("PRAGMA cache_size").fetchone() == (-1024,)
        assert conn.execute("PRAGMA cache_spill").fetchone() == (8192 * 1024 // 4096,)
    after = (conn.execute("PRAGMA cache_size").fetchone(), conn.execute("PRAGMA cache_spill").fetchone())
    assert after == before


def test_a_transaction_within_dirty_kib_is_not_spilled(tmp_path):
    # 4 MiB changed under a 1 MiB cache: spilled to the WAL before COMMIT by default,
    # kept in memory until COMMIT when dirty_kib allows 8 MiB
    spilled = {}
    for name, dirty in (("default", None), ("bounded", 8192)):
        path = tmp_path / f"{name}.db"
        conn = db.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with db.page_cache(conn, 1024, dirty_kib=dirty):
            conn.execute("BEGIN IMMEDIATE")
            _fill(conn, 4096)
            spilled[name] = _wal_bytes(path)
            conn.execute("COMMIT")
        assert conn.execute("SELECT count(*) FROM filler").fetchone() == (4096,)
        conn.close()
    assert spilled["default"] > 1024 * 1024
    assert spilled["bounded"] == 0
