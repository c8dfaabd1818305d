"""`points run` writes its report as it reads it: refusals beyond a few are kept in a
TEMP table (engine.run_log.RunLog) and streamed out. The text and JSON printed are
the same bytes whether the rows came from memory or from the table."""

import json

from points.engine.run_log import RunLog
from tests.cli.conftest import EVENTS, write_jsonl

# Seven redemptions nobody can pay (W9 has no points), dated in a scrambled order.
REFUSED = [{"id": f"x{i}", "type": "redemption", "member": "W9", "at": f"2026-02-{10 + (i * 3) % 7:02d}T10:00:00",
            "points": 100 + i, "use": "fare"} for i in range(7)]


def _run(points, db, *extra):
    result = points("run", "--until", "2026-04-01", "--allow-future", *extra, db=db)
    assert result.exit_code == 0, result.output
    return result.output


def test_run_report_is_the_same_from_memory_and_from_the_table(points, monkeypatch):
    write_jsonl(points.folder / "events.jsonl", EVENTS + REFUSED)
    outputs = {}
    for in_memory in (RunLog.IN_MEMORY, 2):
        monkeypatch.setattr(RunLog, "IN_MEMORY", in_memory)
        for fmt in ((), ("--json",)):
            db = f"p{in_memory}{len(fmt)}.db"
            assert points("init", db=db).exit_code == 0
            assert points("import", "events.jsonl", db=db).exit_code == 0
            outputs[(in_memory, fmt)] = _run(points, db, *fmt)
    assert outputs[(RunLog.IN_MEMORY, ())] == outputs[(2, ())]
    assert outputs[(RunLog.IN_MEMORY, ("--json",))] == outputs[(2, ("--json",))]
    refused = json.loads(outputs[(2, ("--json",))])["redemptions"]["refused"]
    # in the order the run met them: by day, as redemptions are executed
    by_day = sorted(REFUSED, key=lambda e: e["at"])
    assert [r["event"] for r in refused if r["member"] == "W9"] == [e["id"] for e in by_day]
    text = outputs[(2, ())]
    assert text.count("refused: x") == 7 and text.endswith("\n") and not text.endswith("\n\n")
