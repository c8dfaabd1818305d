"""`points verify`: everything checked, with counts, the rules of each run and the head.

The report is what an auditor signs: the chains and rules checked by
ledger.verify, the stored rules files against their hashes (ledger.rulesets),
every run replayed with its own rules (engine.replay), and the heads of both
chains, which anyone can keep outside the file and check later with
`--expect-head` (a journal cut short or rewritten no longer holds that hash).
"""

from __future__ import annotations

import threading
from pathlib import Path

from points.engine.replay import replay
from points.ledger import db, rulesets
from points.ledger.hashing import GENESIS
from points.ledger.verify import PARALLEL_MIN_ENTRIES, verify
from points.ledger.verify_threads import second_connection


def heads(conn) -> dict:
    """The last entry and the last event, each with its chain hash."""
    row = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    ev = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return {"entry": row[0] if row else 0, "sha256": row[1] if row else GENESIS,
            "events": {"event": ev[0] if ev else 0, "sha256": ev[1] if ev else GENESIS}}


def _counts(conn) -> dict:
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "lots": one("SELECT COUNT(*) FROM postings WHERE expires IS NOT NULL"),
        "budgets": one("SELECT COUNT(DISTINCT account) FROM postings WHERE account LIKE 'campaign:%'"),
        "receivables": one("SELECT COUNT(DISTINCT account) FROM postings WHERE account LIKE 'receivable:%'"),
    }


def audit(conn, rules_dir: Path | None = None, expect_head: str | None = None,
          compare_dir: Path | None = None) -> dict:
    """Run every check; a JSON-able report (`ok`, `problems`, counts, runs, head)."""
    # One read transaction: every check, the replay and the counts see one state.
    with db.transaction(conn, immediate=False):
        chain, derived = _checks_and_replay(conn, rules_dir)
        return _report(conn, chain, derived, expect_head, compare_dir)


def _checks_and_replay(conn, rules_dir: Path | None):
    """ledger.verify's checks and the replay; on a large journal (and a second CPU) the
    checks run on a second read-only connection in the same snapshot, in a thread beside
    the replay: the replay is mostly Python, the checks mostly SQLite (which apsw runs
    without the GIL), so the two overlap."""
    (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()
    helper = second_connection(conn) if last >= PARALLEL_MIN_ENTRIES else None
    if helper is None:
        return verify(conn), replay(conn, rules_dir)
    got: list = []

    def checks() -> None:
        try:
            got.append(verify(helper))
        except BaseException as exc:  # re-raised in the caller's thread
            got.append(exc)

    thread = threading.Thread(target=checks, name="verify-checks", daemon=True)
    thread.start()
    try:
        derived = replay(conn, rules_dir)
    except BaseException:
        helper.interrupt()  # stop the checks at once (Ctrl-C, SIGTERM, an error)
        raise
    finally:
        thread.join()
        helper.close()
    if isinstance(got[0], BaseException):
        raise got[0]
    return got[0], derived


def _report(conn, chain, derived, expect_head, compare_dir) -> dict:
    problems = list(chain.problems)
    n_files, n_sets, stored = rulesets.check_stored(conn)
    problems += stored
    problems += derived.problems
    head = heads(conn)
    if expect_head is not None:
        problems += _expect(conn, expect_head.strip().lower(), head)
    if compare_dir is not None:
        problems += compare_folder(conn, compare_dir)
    counts = _counts(conn)
    return {
        "ok": not problems,
        "entries": chain.checked_entries, "postings": chain.checked_postings,
        "events": chain.checked_events, "rederived": not derived.problems,
        "checked": {
            "entries": chain.checked_entries, "postings": chain.checked_postings,
            "events": chain.checked_events, "zero_sum_entries": chain.checked_entries,
            **counts, "rules_files": n_files, "rules_sets": n_sets,
            "runs_replayed": len(derived.runs) if not derived.problems or derived.rederived else 0,
            "entries_rederived": derived.rederived, "entries_pending": derived.pending,
            "pending_rederived": derived.pending_rederived,
        },
        "runs": derived.runs,
        "head": head,
        "expected_head": expect_head,
        "first_problem": problems[0] if problems else None,
        "problems": problems,
    }


def _expect(conn, wanted: str, head: dict) -> list[str]:
    if wanted == GENESIS:  # the prev-hash of entry 1: names no entry, so anchors nothing
        return [f"expected head {wanted} is the genesis value (the prev-hash of entry 1), not an "
                f"entry's hash: give a head printed by verify after a run (head is entry "
                f"{head['entry']} {head['sha256']})"]
    row = conn.execute("SELECT seq FROM entries WHERE hash = ?", (wanted,)).fetchone()
    if row is None:
        return [f"expected head {wanted} is not on the journal's chain (head is entry {head['entry']}"
                f" {head['sha256']}): the journal was cut short or rewritten"]
    return []


def compare_folder(conn, folder: Path) -> list[str]:
    """Each file or table of `folder` that differs from the latest run's rules set."""
    from points.engine.runs import run_markers

    latest = next((m for m in reversed(run_markers(conn)) if m.ruleset), None)
    if latest is None:
        return [f"{folder}: no run recorded its rules set: nothing to compare the folder with"]
    seq, recorded = latest.seq, dict(latest.files)
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: rules folder not found"]
    paths = set(rulesets.set_paths(folder)) | {p for p in recorded if (folder / p).is_file()}
    here = {p: rulesets.snapshot(folder, [p]).files[p] for p in sorted(paths)}
    out = []
    for path, old, new in rulesets.diff_sets(recorded, here):
        what = "table" if path.endswith(".csv") else (
            "event declarations" if path.endswith(".events") else "rules file")
        if new is None:
            out.append(f"{folder}: {what} {path} is missing (sha256 {old} in the latest run, entry {seq})")
        elif old is None:
            out.append(f"{folder}: {what} {path} was not in the latest run (entry {seq}); sha256 {new}")
        else:
            try:
                where = "; first difference at " + rulesets.first_difference(
                    rulesets.content(conn, old), (folder / path).read_bytes())
            except rulesets.RuleSetError:
                where = ""
            out.append(f"{folder}: {what} {path} differs from the latest run's (entry {seq}): "
                       f"sha256 {old} recorded, {new} in the folder{where}")
    return out


def render(data: dict) -> str:
    """The text report (see `points verify --help`)."""
    c = data["checked"]
    if data["ok"]:  # the verdict first: scripts read the first line
        lines = [f"ok: {c['entries']:,} entries, {c['postings']:,} postings, {c['events']:,} events "
                 f"verified; {c['runs_replayed']:,} runs replayed, {c['entries_rederived']:,} "
                 "entries re-derived"]
    else:
        lines = [f"FAILED: {data['first_problem']}", f"{len(data['problems'])} problem(s):"]
        lines += [f"  {p}" for p in data["problems"]]
    lines += [
        f"checked: {c['entries']:,} entries in the hash chain ({c['postings']:,} postings, zero sum "
        f"per kind), {c['lots']:,} lots, {c['budgets']:,} budgets, {c['receivables']:,} receivables, "
        f"{c['events']:,} events in the events chain, {c['rules_files']:,} stored rules files",
        f"re-derived: {c['runs_replayed']:,} runs replayed with their recorded rules, "
        f"{c['entries_rederived']:,} entries re-derived"
        + (f", {c['entries_pending']:,} of them after the last run (a run going on or "
           "interrupted; re-derived as far as it went)" if c["entries_pending"] and c["pending_rederived"]
           else f", {c['entries_pending']:,} after the last run (a run going on or interrupted, "
           "started before runs were recorded: not re-derived)" if c["entries_pending"] else ""),
    ]
    for r in data["runs"]:
        rules = (f"rules set {r['ruleset']} ({len(r['files'])} files)" if r.get("ruleset")
                 else f"rules files {', '.join(sorted(r['files']))} (no recorded set)")
        amend = f", amendment entry {r['amendment']}" if r.get("amendment") else ""
        lines.append(f"  run entry {r['entry']}: until {r['until']}, events up to #{r['watermark']}, "
                     f"{rules}{amend}")
    h = data["head"]
    lines.append(f"head: entry {h['entry']} sha256 {h['sha256']}")
    lines.append(f"events head: event {h['events']['event']} sha256 {h['events']['sha256']}")
    if data["expected_head"]:
        found = not any(p.startswith("expected head") for p in data["problems"])
        lines.append(f"expected head: {data['expected_head']} "
                     + ("found on the chain" if found else "NOT on the chain"))
    return "\n".join(lines)
