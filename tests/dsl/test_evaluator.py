"""The evaluator's main query: a `sum over` folded into the same pass as the member's
other aggregates, and lookups by a unique key joined once per row, must give every
member exactly what the separate tier query with correlated lookups gives (the plan
compiled with both turned off is the reference)."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil

import apsw
import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.engine.calendar import periods_of
from points.dsl.compiler import compile_campaign
from points.dsl.evaluator import evaluate, id_list, source_events
from points.dsl.loader import load_rules
from points.ledger import db, events
from tests.support import RULES

FOLD_RULES = '''
campaign fold "every aggregate beside a sum over"
  every month from day 16 to day 15
  pay on day 26 after period end
  table jwest_merchants from "data/jwest_merchants.csv"

  stream purchase = card_payment
    where date in period
    field rate = (lookup standard in jwest_merchants where merchant == merchant else 1)
    field cheap = amount < 5000
    undone by cancel, refund
  stream cashback = card_cashback where date in period undone by cancel

  value total = sum(purchase.amount) + sum(cashback.amount)
  value n = count(purchase where amount < 0)
  value big = any(purchase where amount >= 5000)
  value small = all(purchase.cheap)
  value lowest = min(purchase.amount)
  value highest = max(purchase.rate)
  value first_day = first(purchase.date)
  value last_day = last(purchase.at)
  value backs = exists(cashback)
  value bonus = sum over purchase by rate: (trunc(sum(amount), 1_000) / 1_000 * (rate - 1))

  award monthly "m" = max(total / 1_000 + bonus + n, 0) basic
    when total > 0 and (big or small or backs) and lowest != 0 and highest >= 1
    expires 12 months after payment
'''


def separate_plan(plan):
    """The same campaign with the `sum over` as its own side query and every lookup a
    correlated subquery."""
    return compile_campaign(plan.campaign, plan.tables, fold=False, join_lookups=False)


def rules_with(tmp_path, text: str):
    folder = tmp_path / "rules"
    shutil.copytree(RULES / "data", folder / "data")
    (folder / "c.rules").write_text(text, encoding="utf-8")
    return load_rules(folder)


def card_events(seed: int, n: int = 700, members: int = 30) -> list[dict]:
    """Payments at listed and unlisted merchants over two cycles and a bit, returns,
    cash-backs, and refunds/cancels naming earlier payments or cash-backs."""
    rng = random.Random(seed)
    merchants = ["other", "kitte_osaka", "mobile_icoca", "daimaru_umeda_food", "shop1", "shop2"]
    out, undoable = [], []
    start = dt.date(2025, 6, 10)
    for i in range(n):
        member = f"M{rng.randrange(members):03d}"
        at = f"{start + dt.timedelta(days=rng.randrange(70))}T{rng.randrange(24):02d}:00:00"
        r = rng.random()
        if r < 0.05 and undoable:
            ref, who = undoable[rng.randrange(len(undoable))]
            out.append({"id": f"E{i}", "type": rng.choice(["cancel", "refund"]), "member": who,
                        "at": "2025-09-01T00:00:00", "ref": ref})
            continue
        if r < 0.15:
            out.append({"id": f"E{i}", "type": "card_cashback", "member": member, "at": at,
                        "amount": -rng.randrange(1, 3000)})
        else:
            amount = rng.randrange(-4000, 12000) or 1
            out.append({"id": f"E{i}", "type": "card_payment", "member": member, "at": at,
                        "amount": amount, "merchant": rng.choice(merchants),
                        "card": rng.choice(["standard", "osc"])})
        undoable.append((f"E{i}", member))
    return out


def everything(conn, plan, period, asof, wm, member=None):
    return [(env.member, dict(env.slots, __events__=source_events(env)), env.values(),
             {name: a.when(env) for name, a in plan.awards.items()})
            for env in evaluate(conn, plan, period, asof, wm, member=member)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_folded_main_query_equals_the_separate_tier_query(tmp_path, seed):
    rules = rules_with(tmp_path, FOLD_RULES)
    lc = rules.campaign("fold")
    folded = lc.plan
    assert folded.folded is not None and not folded.side
    separate = separate_plan(folded)
    assert separate.folded is None and len(separate.side) == 1
    assert "LEFT JOIN" in folded.main_sql and "LEFT JOIN" not in separate.main_sql
    conn = db.connect(tmp_path / "p.db")
    report = events.import_records(conn, [(f"t:{i}", r) for i, r in enumerate(card_events(seed), 1)])
    assert not report.errors, report.errors
    wm = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    periods = periods_of(conn, folded, dt.date(2025, 9, 30), wm)
    assert len(periods) >= 3
    for asof in (dt.date(2025, 8, 26), dt.date(2025, 9, 30)):
        for period in periods:
            got = everything(conn, folded, period, asof, wm)
            assert got == everything(conn, separate, period, asof, wm)
            assert any(values["bonus"] for _, _, values, _ in got)  # tiers did count
            some = sorted({m for m, *_ in got})[::3]
            assert everything(conn, folded, period, asof, wm, member=some) == \
                everything(conn, separate, period, asof, wm, member=some)
            assert everything(conn, folded, period, asof, wm, member=some[0]) == \
                everything(conn, separate, period, asof, wm, member=some[0])


@pytest.mark.parametrize("value, folds", [
    ("sum(purchase.amount)", True),
    ("count_distinct(purchase.merchant)", False),  # distinct counts do not add up across tiers
    ("distinct_days(purchase)", False),
    ("sum(purchase.double)", True),  # whole numbers per event: partial sums add up exactly
])
def test_only_aggregates_that_merge_exactly_are_folded(tmp_path, value, folds):
    text = FOLD_RULES.replace("    undone by cancel, refund\n",
                              "    field double = amount * 2 - rate\n    undone by cancel, refund\n", 1)
    text = text.replace("value n = count(purchase where amount < 0)", f"value n = {value}")
    plan = rules_with(tmp_path, text).campaign("fold").plan
    assert (plan.folded is not None) is folds


def test_the_card_program_is_folded():
    from tests.support import real_rules
    plan = real_rules().campaign("jwest-card").plan
    assert plan.folded is not None and not plan.side


def test_a_lookup_by_a_key_that_is_not_unique_stays_a_subquery(tmp_path):
    """Two rows share a key, told apart by a range condition (a lookup by equal keys
    alone with duplicates is a `check` error, tests/dsl/test_table_cells.py): the
    lookup takes the first match (as the subquery's LIMIT 1 does); a join would count
    the event twice."""
    text = FOLD_RULES.replace(
        '  table jwest_merchants from "data/jwest_merchants.csv"\n',
        '  table jwest_merchants from "data/jwest_merchants.csv"\n  table dup from "data/dup.csv"\n').replace(
        "    field cheap = amount < 5000\n",
        "    field cheap = amount < 5000\n    field extra = (lookup n in dup where merchant == merchant and n >= 0"
        " else 0)\n").replace(
        "value n = count(purchase where amount < 0)", "value n = sum(purchase.extra)")
    folder = tmp_path / "rules"
    shutil.copytree(RULES / "data", folder / "data")
    (folder / "data" / "dup.csv").write_text("merchant,n\nother,1\nshop1,2\nother,5\n", encoding="utf-8")
    (folder / "c.rules").write_text(text, encoding="utf-8")
    plan = load_rules(folder).campaign("fold").plan
    assert plan.main_sql.count("LEFT JOIN") == 1  # jwest_merchants only
    conn = db.connect(tmp_path / "p.db")
    report = events.import_records(conn, [(f"t:{i}", r) for i, r in enumerate(card_events(4), 1)])
    assert not report.errors, report.errors
    wm = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    separate = separate_plan(plan)
    for period in periods_of(conn, plan, dt.date(2025, 9, 30), wm):
        got = everything(conn, plan, period, dt.date(2025, 9, 30), wm)
        assert got == everything(conn, separate, period, dt.date(2025, 9, 30), wm)
        assert any(slots.get("a2") for _, slots, _, _ in got)


def test_periods_are_those_of_every_visible_event_day(tmp_path):
    """periods_of jumps from day to day on the (type, day) index: it must find the same
    days as reading every event, with the watermark and the date cut-off applied."""
    plan = rules_with(tmp_path, FOLD_RULES).campaign("fold").plan
    conn = db.connect(tmp_path / "p.db")
    events.import_records(conn, [(f"t:{i}", r) for i, r in enumerate(card_events(5), 1)])
    top = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    for wm in (0, 1, 17, top // 2, top):
        for until in (dt.date(2025, 6, 15), dt.date(2025, 6, 16), dt.date(2025, 7, 20), dt.date(2025, 12, 31)):
            days = {dt.date.fromisoformat(d) for (d,) in conn.execute(
                "SELECT day FROM events WHERE type IN ('card_payment', 'card_cashback') AND day <= ? AND seq <= ?",
                (until.isoformat(), wm))}
            want = sorted({(d.year, d.month) if d.day <= 15 else ((d.replace(day=1) + dt.timedelta(days=31)).year,
                                                                   (d.replace(day=1) + dt.timedelta(days=31)).month)
                           for d in days})
            got = [(p.end.year, p.end.month) for p in periods_of(conn, plan, until, wm)]
            assert got == want


def test_reading_by_index_or_the_whole_table_gives_the_same_members(tmp_path, monkeypatch):
    """For everyone, the evaluator reads the period's rows through the (type, day) index or
    in one pass over the table, whichever reads less; both must give the same result."""
    import points.dsl.evaluator as ev

    rules = rules_with(tmp_path, FOLD_RULES)
    plan = rules.campaign("fold").plan
    separate = separate_plan(plan)
    conn = db.connect(tmp_path / "p.db")
    events.import_records(conn, [(f"t:{i}", r) for i, r in enumerate(card_events(6), 1)])
    wm = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    asof = dt.date(2025, 9, 30)
    results = {}
    for share, way in ((0, "by_index"), (10**9, "by_table")):
        monkeypatch.setattr(ev, "WHOLE_TABLE_SHARE", share)
        seen = []
        monkeypatch.setattr(ev, "_sql", lambda t, m, scan, _sql=ev._sql: seen.append(scan) or _sql(t, m, scan))
        results[way] = [everything(conn, p, period, asof, wm)
                        for period in periods_of(conn, plan, asof, wm) for p in (plan, separate)]
        ways = {getattr(scans, way) for scans in (plan.main_scans, separate.main_scans, separate.side[0].scans)}
        assert seen and set(seen) <= ways
    assert results["by_index"] == results["by_table"]
    assert results["by_index"][0::2] == results["by_index"][1::2]  # folded == separate, period by period


@given(st.lists(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8), max_size=6))
def test_id_lists_read_as_json_does(ids):
    """source_events splits SQLite's json_group_array text itself when nothing is escaped:
    the same strings as json.loads, whatever characters the ids hold."""
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, id TEXT)")
    conn.executemany("INSERT INTO t (id) VALUES (?)", [(i,) for i in ids])
    (text,) = conn.execute("SELECT json_group_array(id) FROM (SELECT id FROM t ORDER BY n)").fetchone()
    assert id_list(text) == json.loads(text) == ids


ALL_ANY_RULES = '''
campaign quantifiers "all / any over a filtered stream"
  window 2025-06-01 .. 2025-06-30

  stream purchase = card_payment where date in 2025-06-01 .. 2025-06-30

  value small_only = all(purchase where amount < 5000)
  value some_big = any(purchase where amount >= 5000)

  award a "every purchase small" = 10 basic when small_only on 2025-07-10 expires 2026-03-31
  award b "one purchase big" = 20 basic when some_big on 2025-07-10 expires 2026-03-31
'''


def test_all_and_any_of_a_filtered_stream_test_every_event(tmp_path):
    """all(s where c) is true when every event of s satisfies c (and for no event at
    all); any(s where c) when one does. Checked against the events themselves."""
    rules = rules_with(tmp_path, ALL_ANY_RULES)
    plan = rules.campaign("quantifiers").plan
    conn = db.connect(tmp_path / "p.db")
    amounts = {"S1": [100, 4999], "S2": [100, 5000], "S3": [7000], "S4": [5000, 9000, 1]}
    records = [{"id": f"{m}-{i}", "type": "card_payment", "member": m, "at": f"2025-06-{i + 1:02d}T12:00:00",
                "amount": a, "merchant": "other", "card": "standard"}
               for m, xs in amounts.items() for i, a in enumerate(xs)]
    report = events.import_records(conn, [(f"t:{i}", r) for i, r in enumerate(records, 1)])
    assert not report.errors, report.errors
    wm = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    (period,) = periods_of(conn, plan, dt.date(2025, 7, 10), wm)
    got = {env.member: env.values() for env in evaluate(conn, plan, period, dt.date(2025, 7, 10), wm)}
    assert {m: (v["small_only"], v["some_big"]) for m, v in got.items()} == {
        m: (all(a < 5000 for a in xs), any(a >= 5000 for a in xs)) for m, xs in amounts.items()}


@pytest.mark.parametrize("body, in_sql", [
    ("trunc(sum(amount), 1_000) / 1_000 * (rate - 1)", True),
    ("floor(sum(amount), 500) / 100 - rate", True),
    ("round(sum(amount), 1_000) / 1_000 * rate", True),
    ("-ceil(sum(amount), 300) / 3 + count(purchase)", True),
    ("sum(amount) * rate * 3_074_457_345_618_258_601", True),  # overflows SQLite: the closure's value
    ("sum(amount) / 1_000", False),  # not exact in integers
    ("trunc(sum(amount), 1_000) / 3", False),  # nor this
    ("max(sum(amount), 0) * rate", False),  # not a function SQL computes here
])
def test_a_tier_body_computed_by_sqlite_equals_the_closure(tmp_path, body, in_sql):
    """dsl.compile_tier: a folded `sum over` body that SQLite computes exactly is a column
    of the tier row; the members' values must be the closure's (the separate tier query,
    one closure call per tier, is the reference), overflow included."""
    text = FOLD_RULES.replace(
        "value bonus = sum over purchase by rate: (trunc(sum(amount), 1_000) / 1_000 * (rate - 1))",
        f"value bonus = sum over purchase by rate: ({body})")
    text = text.replace("max(total / 1_000 + bonus + n, 0)", "max(trunc(total, 1_000) / 1_000 + n, 0)")
    plan = rules_with(tmp_path, text).campaign("fold").plan
    assert plan.folded is not None and (plan.folded.group.body_sql is not None) is in_sql
    separate = separate_plan(plan)
    conn = db.connect(tmp_path / "p.db")
    report = events.import_records(conn, [(f"t:{i}", r) for i, r in enumerate(card_events(5), 1)])
    assert not report.errors, report.errors
    wm = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    for period in periods_of(conn, plan, dt.date(2025, 9, 30), wm):
        got = everything(conn, plan, period, dt.date(2025, 9, 30), wm)
        assert got == everything(conn, separate, period, dt.date(2025, 9, 30), wm)
        assert any(values["bonus"] for _, _, values, _ in got)
