"""Issue 15 through the command line: balances and the reports agree with each other and with
`campaigns`, CSV reads as a table, the HTML page needs nothing from the network."""

import csv
import io
import json
import re

import pytest

from tests.acceptance.cli import points

KINDS = ("basic", "limited", "charge_only")


def read_json(db, cwd, *args):
    r = points(*args, "--json", cwd=cwd, db=db)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def read_csv(db, cwd, *args):
    r = points(*args, "--csv", cwd=cwd, db=db)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert len(rows) >= 2, r.stdout
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body), r.stdout
    return header, body


@pytest.mark.parametrize("as_of", [None, "2026-03-31", "2025-03-31"])
def test_trial_balance_sums_to_zero_per_kind_and_agrees_with_balances(demo_db, workdir, as_of):
    extra = ("--as-of", as_of) if as_of else ()
    trial = read_json(demo_db, workdir, "report", "trial-balance", *extra)
    assert trial["balanced"] is True
    for kind in KINDS:
        assert sum(c["amounts"][kind] for c in trial["classes"]) == 0
    by_class = {c["class"]: c["amounts"] for c in trial["classes"]}
    balances = read_json(demo_db, workdir, "balances", *extra)
    for kind in KINDS:
        assert sum(m["balances"][kind] for m in balances["members"]) == balances["totals"]["balances"][kind]
        assert by_class["members"][kind] == balances["totals"]["balances"][kind]
        assert by_class["receivables"][kind] == -balances["totals"]["owed"][kind]
    text = points("report", "trial-balance", *extra, cwd=workdir, db=demo_db)
    assert "sums to zero per kind: yes" in text.stdout


def test_the_demo_as_of_march_2026_holds_points(demo_db, workdir):
    balances = read_json(demo_db, workdir, "balances", "--as-of", "2026-03-31", "--min", "1")
    assert balances["totals"]["balances"]["basic"] > 0
    assert all(max(m["balances"].values()) >= 1 for m in balances["members"])
    liability = read_json(demo_db, workdir, "report", "liability", "--as-of", "2026-03-31")
    assert liability["outstanding_total"] == balances["totals"]["balances"]
    assert sum(o["points"] for o in liability["outstanding"] if o["kind"] == "basic") == \
        balances["totals"]["balances"]["basic"]


def test_payouts_agree_with_campaigns(demo_db, workdir):
    payouts = read_json(demo_db, workdir, "report", "payouts")
    campaigns = read_json(demo_db, workdir, "campaigns")["campaigns"]
    seen = set()
    for c in payouts["campaigns"]:
        net = {}
        for p in c["periods"]:
            assert p["net"] == p["gross"] - p["reversed"]
            net[p["kind"]] = net.get(p["kind"], 0) + p["net"]
        paid = {k: v for k, v in campaigns[c["campaign"]]["points_paid"].items() if v}
        assert {k: v for k, v in net.items() if v} == paid, c["campaign"]
        seen.add(c["campaign"])
    assert seen == set(campaigns)


@pytest.mark.parametrize("args", [
    ("balances",), ("report", "trial-balance"), ("report", "payouts"), ("report", "liability"),
])
def test_csv_has_a_header_and_unformatted_numbers(demo_db, workdir, args):
    header, body = read_csv(demo_db, workdir, *args)
    assert len(set(header)) == len(header)
    for row in body:
        for cell in row:
            assert not re.fullmatch(r"-?\d{1,3}(,\d{3})+", cell), (header, row)


def test_balances_kind_filter(demo_db, workdir):
    only = read_json(demo_db, workdir, "balances", "--as-of", "2026-03-31", "--kind", "basic", "--min", "1000")
    assert only["members"]
    assert all(m["balances"]["basic"] >= 1000 for m in only["members"])


@pytest.mark.slow
def test_html_report_is_one_self_contained_page(demo_db, workdir):
    out = workdir / "report.html"
    r = points("report", "html", "-o", out, "--as-of", "2026-03-31", cwd=workdir, db=demo_db)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert page.count("<svg") >= 4
    assert "<table" in page
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", page, re.I)
