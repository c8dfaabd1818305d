"""`points export`: jsonl, csv and a beancount ledger that bean-check accepts."""

from __future__ import annotations

import csv
import io
import json
import re

from beancount import loader

from points.cli.export import AccountNames


def _counts(points):
    import apsw

    conn = apsw.Connection(str(points.db), flags=apsw.SQLITE_OPEN_READONLY)
    entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    postings = conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0]
    empty = conn.execute("SELECT COUNT(*) FROM entries WHERE seq NOT IN (SELECT entry FROM postings)"
                         ).fetchone()[0]
    conn.close()
    return entries, postings, empty


def test_export_jsonl(ran):
    result = ran("export", "--format", "jsonl")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.output.splitlines()]
    entries, postings, _ = _counts(ran)
    assert [r["seq"] for r in rows] == list(range(1, entries + 1))
    assert sum(len(r["postings"]) for r in rows) == postings
    for r in rows:
        for kind in {p["kind"] for p in r["postings"]}:
            assert sum(p["amount"] for p in r["postings"] if p["kind"] == kind) == 0
    assert rows[1]["prev_hash"] == rows[0]["hash"]


def test_export_csv_to_file(ran):
    result = ran("export", "--format", "csv", "--output", "journal.csv")
    assert result.exit_code == 0
    text = (ran.folder / "journal.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    entries, postings, empty = _counts(ran)
    assert len(rows) == postings + empty
    assert {int(r["seq"]) for r in rows} == set(range(1, entries + 1))
    assert list(rows[0])[:3] == ["seq", "key", "effective"]


def test_export_beancount_loads_without_errors(ran):
    result = ran("export", "--format", "beancount")
    assert result.exit_code == 0
    text = result.output
    entries, errors, _ = loader.load_string(text)
    assert errors == [], [e.message for e in errors]
    txns = [e for e in entries if type(e).__name__ == "Transaction"]
    assert len(txns) == _counts(ran)[0]
    assert all("hash" in t.meta and "key" in t.meta and "seq" in t.meta for t in txns)
    assert "Equity:Campaigns:Yearend-2025:Budget" in text
    assert "Liabilities:Members:W2:Basic" in text
    # W1 and w1 would both be "W1": each gets a hash suffix; W1 owes a clawback.
    assert re.search(r"Assets:Receivable:W1-[0-9a-f]{8}:Basic", text)
    assert re.search(r"Liabilities:Members:W1-[0-9a-f]{8}:Basic", text)
    for commodity in ("PTBASIC", "PTLIMITED", "PTCHARGE"):
        assert f"commodity {commodity}" in text


def test_beancount_account_names_are_valid_and_distinct():
    accounts = ["member:W1:basic", "member:w1:basic", "member:会員_7:charge_only", "member:a_b:limited",
                "member:a-b:limited", "campaign:yearend-2025:budget", "receivable:W1:basic",
                "system:funding", "system:redeemed", "system:expired"]
    names = AccountNames(accounts)
    mapped = [names(a) for a in accounts]
    assert len(set(mapped)) == len(mapped)
    assert names("campaign:yearend-2025:budget") == "Equity:Campaigns:Yearend-2025:Budget"
    assert names("member:a-b:limited") == "Liabilities:Members:A-b:Limited"
    lines = [f"2020-01-01 open {m}" for m in mapped]
    _, errors, _ = loader.load_string("\n".join(lines) + "\n")
    assert errors == [], [e.message for e in errors]
