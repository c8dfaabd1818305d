"""Replay in place: the runs re-derived against the stored journal itself.

The full replay (engine.replay) copies the events to a scratch database, writes
every re-derived entry there, then compares the two journals. While nothing
differs, the scratch journal *is* the stored journal up to the entry being
re-derived. This replay uses that: on a scratch connection the names `events`,
`entries` and `postings` are TEMP views of the stored database (attached
read-only): the events up to the step's watermark, the entries up to a cursor
and the postings up to the last posting id written. Every entry and posting row the run writes goes to an INSTEAD OF
trigger that compares it, column by column, with the stored row of the same seq
(posting id), then moves the cursor past it; a row that differs in anything, or
has no stored row, is noted. So the run reads exactly what it would read from
its own scratch journal for as long as every row matched.

The answer is trusted only when every row written matched and the cursor ends
at the last entry to re-derive (a stored entry that the replay did not write
leaves it short): then the full replay would have written the very same rows
and found no difference. Otherwise, or on any error, the caller runs the full
replay, which lists the differences. Nothing is copied and nothing is written
to an index of the journal.
"""

from __future__ import annotations

from urllib.parse import quote

import apsw

from points.engine.workflow import Runner
from points.ledger import db
from points.ledger.journal import Journal

__all__ = ["replay_in_place"]

_LAST_ROWS = ("SELECT (SELECT max(seq) FROM {s}entries), (SELECT max(id) FROM {s}postings),"
              " (SELECT max(seq) FROM {s}events)")

_SETUP = """
CREATE TEMP TABLE replay_at (seq INTEGER NOT NULL, pid INTEGER NOT NULL, postings INTEGER NOT NULL,
                             stop INTEGER NOT NULL);
INSERT INTO temp.replay_at VALUES (0, 0, 0, 0);
CREATE TEMP TABLE replay_differs (seq INTEGER);
CREATE TEMP VIEW entries AS
  SELECT * FROM src.entries WHERE seq <= (SELECT seq FROM temp.replay_at);
CREATE TEMP VIEW postings AS
  SELECT * FROM src.postings WHERE id <= (SELECT pid FROM temp.replay_at);
CREATE TEMP TRIGGER replay_entry INSTEAD OF INSERT ON entries BEGIN
  SELECT RAISE(ABORT, '{stop}') WHERE NEW.seq > (SELECT stop FROM temp.replay_at);
  INSERT INTO temp.replay_differs SELECT NEW.seq
  WHERE NEW.seq IS NOT (SELECT seq + 1 FROM temp.replay_at) OR NOT EXISTS (
    SELECT 1 FROM src.entries s WHERE s.seq = NEW.seq AND s.hash IS NEW.hash
      AND s.prev_hash IS NEW.prev_hash AND s.key IS NEW.key AND s.effective IS NEW.effective
      AND s.recorded IS NEW.recorded AND s.campaign IS NEW.campaign AND s.rule IS NEW.rule
      AND s.rules_hash IS NEW.rules_hash AND s.step IS NEW.step AND s.events IS NEW.events
      AND s.reverses IS NEW.reverses AND s.memo IS NEW.memo);
  UPDATE temp.replay_at SET seq = NEW.seq;
END;
CREATE TEMP TRIGGER replay_posting INSTEAD OF INSERT ON postings BEGIN
  INSERT INTO temp.replay_differs SELECT NEW.entry
  WHERE NEW.entry <= (SELECT stop FROM temp.replay_at) AND NOT EXISTS (
    SELECT 1 FROM src.postings s WHERE s.id IS NEW.id AND s.entry IS NEW.entry
      AND s.idx IS NEW.idx AND s.account IS NEW.account AND s.kind IS NEW.kind
      AND s.amount IS NEW.amount AND s.expires IS NEW.expires AND s.lot IS NEW.lot);
  UPDATE temp.replay_at SET pid = NEW.id, postings = postings + 1;
END;
"""

NO_STOP = 2**62


def replay_in_place(conn: apsw.Connection, steps: list[dict], upto: int, stop_text: str) -> bool:
    """True if replaying `steps` (engine.replay's) re-derives entries 1..upto exactly as
    stored; False if anything differs or could not be tried (then do the full replay)."""
    if not conn.filename or upto <= 0:
        return False
    scratch = db.scratch(uri=True)
    try:
        scratch.execute("ATTACH DATABASE ? AS src", (f"file:{quote(conn.filename)}?mode=ro",))
        # The stored journal is read here as a run reads its own file: same page cache.
        scratch.execute(f"PRAGMA src.cache_size=-{Runner.RUN_CACHE_KIB}")
        # Inside one read transaction, so the views see one state: the one `conn` reads.
        scratch.execute("BEGIN")
        if (scratch.execute(_LAST_ROWS.format(s="src.")).fetchone()
                != conn.execute(_LAST_ROWS.format(s="")).fetchone()):
            return False
        scratch.execute("COMMIT")
        scratch.execute(_SETUP.replace("{stop}", stop_text))
        return _replay(conn, scratch, steps, upto, stop_text)
    except apsw.Error:
        return False
    finally:
        scratch.close()


def _replay(conn, scratch, steps: list[dict], upto: int, stop_text: str) -> bool:
    original = Journal(conn)
    for step in steps:
        scratch.execute("DROP VIEW IF EXISTS temp.events")
        scratch.execute(f"CREATE TEMP VIEW events AS SELECT * FROM src.events"
                        f" WHERE seq <= {int(step['watermark'])}")
        stop = NO_STOP if step["stop"] is None else int(step["stop"])
        scratch.execute("UPDATE temp.replay_at SET stop = ?", (stop,))
        amend = original.entry(step["amendment"]) if step["amendment"] else None
        runner = Runner(scratch, step["rules"], step["until"], amend=amend, check_terms=False,
                        snapshot=step["snapshot"])
        try:
            runner.run()
        except Exception as exc:  # noqa: BLE001 -- an interrupted run stops at our trigger
            if step["stop"] is None or stop_text not in str(exc):
                return False
        if scratch.execute("SELECT 1 FROM temp.replay_differs LIMIT 1").fetchone():
            return False
    at, pid, n = scratch.execute("SELECT seq, pid, postings FROM temp.replay_at").fetchone()
    (stored,) = conn.execute("SELECT COUNT(*) FROM entries WHERE seq <= ?", (upto,)).fetchone()
    # Every posting written matched the stored one of its id; none of the stored ones
    # up to `upto` was left out.
    (stored_postings,) = conn.execute("SELECT COUNT(*) FROM postings WHERE entry <= ?",
                                      (upto,)).fetchone()
    return at == upto == stored and n == stored_postings
