"""Issue 14's slips, each as an operator makes it: exit 1 (130 for Ctrl-C), one reason on
stderr, no traceback, and the database bytes unchanged (or no file created)."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.acceptance.cli import (
    BUNDLED, SAMPLE_EVENTS, assert_clean_refusal, copy_rules, digest, points, points_exe,
)

WITHDRAWN = '{{"id": "{id}", "type": "member_withdrawn", "member": "W1", "at": "{at}"}}\n'


def test_run_and_import_refuse_a_missing_database_and_create_nothing(workdir):
    for args in (["run", "--until", "2025-12-31"], ["import", SAMPLE_EVENTS]):
        r = points(*args, cwd=workdir, db=workdir / "nope.db")
        assert_clean_refusal(r)
        assert "no points database at" in r.stderr and "points init" in r.stderr
    assert list(workdir.iterdir()) == []


def test_init_does_not_create_folders(workdir):
    r = points("init", cwd=workdir, db=workdir / "no" / "such" / "p.db")
    assert_clean_refusal(r)
    assert not (workdir / "no").exists()


@pytest.mark.parametrize("kind", ["empty", "foreign", "text"])
def test_not_a_points_database_is_refused_and_left_alone(workdir, kind):
    db = workdir / "other.db"
    if kind == "empty":
        db.write_bytes(b"")
    elif kind == "text":
        db.write_text("hello\n")
    else:
        con = sqlite3.connect(db)
        con.execute("create table t(x)")
        con.commit()
        con.close()
    before = digest(db)
    commands = [["import", SAMPLE_EVENTS], ["run", "--until", "2025-12-31"]]
    if kind == "foreign":
        commands.append(["init"])
    for args in commands:
        assert_clean_refusal(points(*args, cwd=workdir, db=db))
        assert digest(db) == before


def test_demo_refuses_a_database_that_is_not_empty(fresh_loaded, workdir):
    before = digest(fresh_loaded)
    r = points("demo", "--db", fresh_loaded, cwd=workdir)
    assert_clean_refusal(r)
    assert digest(fresh_loaded) == before


@pytest.mark.parametrize("until", ["2062-03-31", "9999-11-30"])
def test_run_into_the_future_needs_allow_future(fresh_loaded, workdir, until):
    before = digest(fresh_loaded)
    r = points("run", "--until", until, cwd=workdir, db=fresh_loaded)
    assert_clean_refusal(r)
    assert digest(fresh_loaded) == before
    assert points("campaigns", cwd=workdir, db=fresh_loaded).returncode == 0


def test_allow_future_dry_run_reports_and_writes_nothing(fresh_loaded, workdir):
    before = digest(fresh_loaded)
    r = points("run", "--until", "2028-12-31", "--allow-future", "--dry-run", cwd=workdir, db=fresh_loaded)
    assert r.returncode == 0, r.stderr
    assert "yearend-2025" in r.stdout
    assert digest(fresh_loaded) == before


def test_a_lottery_before_the_events_are_in_is_refused(workdir):
    db = workdir / "p.db"
    assert points("init", cwd=workdir, db=db).returncode == 0
    before = digest(db)
    r = points("run", "--until", "2026-03-31", cwd=workdir, db=db)
    assert_clean_refusal(r)
    assert "lottery" in r.stderr
    assert digest(db) == before


@pytest.mark.parametrize("how", ["dash", "dev_stdin"])
def test_import_streams_from_a_pipe(workdir, how):
    db = workdir / "p.db"
    assert points("init", cwd=workdir, db=db).returncode == 0
    source = "-" if how == "dash" else "/dev/stdin"
    cat = subprocess.Popen(["cat", str(SAMPLE_EVENTS)], stdout=subprocess.PIPE)
    r = subprocess.run([points_exe(), "--db", str(db), "import", source], cwd=workdir,
                       stdin=cat.stdout, capture_output=True, text=True, timeout=60)
    cat.stdout.close()
    cat.wait()
    assert r.returncode == 0, r.stderr
    assert "imported 182 events" in r.stdout
    again = points("import", SAMPLE_EVENTS, cwd=workdir, db=db)
    assert "imported 0 events (182 skipped)" in again.stdout


def test_import_reads_a_fifo(workdir):
    db = workdir / "p.db"
    assert points("init", cwd=workdir, db=db).returncode == 0
    fifo = workdir / "events.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f'cat "{SAMPLE_EVENTS}" > "{fifo}"'])
    r = points("import", fifo, cwd=workdir, db=db, timeout=60)
    writer.wait(timeout=10)
    assert r.returncode == 0, r.stderr
    assert "imported 182 events" in r.stdout


BAD_INPUTS = {
    "duplicate key": '{"id": "a1", "type": "card_payment", "member": "W1", "at": "2025-08-20T10:00:00", '
                     '"amount": 1, "amount": 900000000, "merchant": "other", "card": "standard"}\n',
    "control char in id": WITHDRAWN.format(id="a\\u0001b", at="2025-08-20T10:00:00"),
    "trailing space in id": WITHDRAWN.format(id="a1 ", at="2025-08-20T10:00:00"),
    "id not NFC": WITHDRAWN.format(id="cafe\\u0301", at="2025-08-20T10:00:00"),
    "week date": WITHDRAWN.format(id="t1", at="2025-W34-3T10:00:00"),
    "basic format": WITHDRAWN.format(id="t1", at="20250820T100000"),
    "hour only": WITHDRAWN.format(id="t1", at="2025-08-20T10"),
    "space for T": WITHDRAWN.format(id="t1", at="2025-08-20 10:00:00"),
    "year 1999": WITHDRAWN.format(id="t1", at="1999-08-20T10:00:00"),
    "year 2100": WITHDRAWN.format(id="t1", at="2100-01-01T00:00:00"),
    "ref to another member": (
        '{"id": "b1", "type": "ex_booking", "member": "A", "at": "2025-12-27T10:00:00", "amount": 9000, '
        '"service": "ex", "ride_date": "2025-12-28", "segments": ["sanyo"], "product": "x", '
        '"ticketless": true, "payment": "credit_card", "phone_change": false, "railway_points": false}\n'
        '{"id": "c1", "type": "cancel", "member": "B", "at": "2025-12-28T10:00:00", "ref": "b1"}\n'),
    "empty file": "",
    "10 MB id": WITHDRAWN.format(id="x" * 10_000_000, at="2025-08-20T10:00:00"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_lenient_input_is_refused_with_file_and_line(fresh_loaded, workdir, name):
    path = workdir / "bad.jsonl"
    path.write_text(BAD_INPUTS[name])
    before = digest(fresh_loaded)
    r = points("import", path, cwd=workdir, db=fresh_loaded)
    assert_clean_refusal(r)
    assert r.stderr.startswith("bad.jsonl:") or str(path) in r.stderr.splitlines()[0]
    assert digest(fresh_loaded) == before


def test_csv_trims_nothing_either(fresh_loaded, workdir):
    path = workdir / "bad.csv"
    path.write_text("id,type,member,at\n a1,member_withdrawn,W1,2025-08-20T10:00:00\n")
    before = digest(fresh_loaded)
    assert_clean_refusal(points("import", path, cwd=workdir, db=fresh_loaded))
    assert digest(fresh_loaded) == before


def test_a_bad_csv_prints_a_capped_list_of_errors(fresh_loaded, workdir):
    path = workdir / "many.csv"
    rows = "".join(f"e{i},nosuch,W1,2025-08-20T10:00:00\n" for i in range(50_000))
    path.write_text("id,type,member,at\n" + rows)
    r = points("import", path, cwd=workdir, db=fresh_loaded)
    assert_clean_refusal(r)
    assert len(r.stderr.splitlines()) <= 40
    assert "50,000" in r.stderr or "50000" in r.stderr


def test_import_of_dev_zero_is_a_line_too_long(fresh_loaded, workdir):
    before = digest(fresh_loaded)
    r = points("import", "/dev/zero", cwd=workdir, db=fresh_loaded, timeout=60)
    assert_clean_refusal(r)
    assert digest(fresh_loaded) == before


@pytest.mark.parametrize("command", ["balance", "history", "explain"])
def test_an_unknown_member_is_a_finding(fresh_loaded, workdir, command):
    args = [command, "NOBODY"] + (["yearend-2025"] if command == "explain" else [])
    r = points(*args, cwd=workdir, db=fresh_loaded)
    assert_clean_refusal(r)
    assert "NOBODY" in r.stderr


def test_db_is_accepted_after_the_subcommand(fresh_loaded, workdir):
    r = points("balance", "W0101", "--json", "--db", fresh_loaded, cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["member"] == "W0101"


def test_a_closed_pipe_exits_quietly(demo_db, workdir):
    exe = points_exe()
    p = subprocess.Popen([exe, "--db", str(demo_db), "export", "--format", "jsonl"], cwd=workdir,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert p.returncode == 0, err
    assert "Traceback" not in err


def _rules_with_award(folder, expression):
    rules = copy_rules(folder, ["jwest-card.rules"])
    text = (BUNDLED / "yearend-2025.rules").read_text()
    original = "= min(spend, cap) basic"
    assert original in text
    (rules / "yearend-2025.rules").write_text(text.replace(original, f"= {expression} basic"))
    return rules


@pytest.mark.parametrize("expression, words", [
    ("min(spend / 0, cap)", "division by zero"),
    ("min(spend / 3, cap)", "not a whole number"),
])
def test_a_bad_award_stops_the_run_before_anything_is_written(fresh_loaded, workdir, expression, words):
    rules = _rules_with_award(workdir / "rules", expression)
    before = digest(fresh_loaded)
    r = points("run", "--until", "2026-06-30", "--rules", rules, cwd=workdir, db=fresh_loaded)
    assert_clean_refusal(r)
    assert words in r.stderr and "yearend-2025" in r.stderr
    assert digest(fresh_loaded) == before


@pytest.mark.parametrize("body, words", [
    ('campaign x "t"\n  budget 1' + "0" * 40 + " basic\n", "too large"),
    ('campaign x "t"\n  budget ' + "9" * 5000 + " basic\n", "too large"),
    ('campaign x "t"\n  budget \uff11\uff10\uff10 basic\n', "ASCII digit"),
])
def test_hostile_rules_get_file_line_col(workdir, body, words):
    path = workdir / "x.rules"
    path.write_text(body)
    r = points("check", "x.rules", cwd=workdir)
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    assert words in r.stdout + r.stderr
    assert (r.stdout + r.stderr).startswith("x.rules:2:")


def test_a_rules_file_linked_out_of_the_folder_is_not_read(workdir):
    folder = workdir / "rules"
    folder.mkdir()
    (folder / "x.rules").symlink_to("/etc/passwd")
    r = points("check", folder, cwd=workdir)
    assert r.returncode == 1
    assert "root:" not in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_deeply_nested_expression_is_no_recursion_error(workdir):
    text = (BUNDLED / "yearend-2025.rules").read_text()
    deep = "(" * 5000 + "spend" + ")" * 5000
    path = workdir / "deep.rules"
    path.write_text(text.replace("= min(spend, cap) basic", f"= min({deep}, cap) basic"))
    r = points("check", path, cwd=workdir)
    assert r.returncode in (0, 1)
    assert "Traceback" not in r.stdout + r.stderr


def _big_events(path, members=3000, per_member=10):
    with open(path, "w") as f:
        n = 0
        for m in range(members):
            for k in range(per_member):
                n += 1
                f.write(json.dumps({"id": f"p{n}", "type": "card_payment", "member": f"M{m}",
                                    "at": f"2025-{k % 12 + 1:02d}-10T10:00:00", "amount": 1000 + k,
                                    "merchant": "other", "card": "standard"}) + "\n")


@pytest.mark.slow
def test_ctrl_c_exits_130_and_a_rerun_resumes(workdir):
    db = workdir / "p.db"
    events = workdir / "big.jsonl"
    _big_events(events)
    assert points("init", cwd=workdir, db=db).returncode == 0
    assert points("import", events, cwd=workdir, db=db).returncode == 0
    p = subprocess.Popen([points_exe(), "--db", str(db), "run", "--until", "2025-12-31"], cwd=workdir,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
            started = con.execute("select count(*) from entries").fetchone()[0] > 0
            con.close()
        except sqlite3.Error:
            started = False
        if started:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert p.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err and len(err.strip().splitlines()) == 1
    assert points("verify", cwd=workdir, db=db).returncode == 0
    again = points("run", "--until", "2025-12-31", cwd=workdir, db=db)
    assert again.returncode == 0, again.stderr
    ok = points("verify", cwd=workdir, db=db)
    assert ok.returncode == 0, ok.stdout
    assert "30,004 entries" in ok.stdout.splitlines()[0]


@pytest.mark.slow
def test_byte_flipped_databases_never_give_a_traceback(demo_db, workdir):
    data = demo_db.read_bytes()
    rnd = random.Random(20261130)
    for i in range(6):
        damaged = bytearray(data)
        for _ in range(8):
            j = rnd.randrange(100, len(damaged))
            damaged[j] ^= 1 << rnd.randrange(8)
        db = workdir / f"damaged{i}.db"
        db.write_bytes(bytes(damaged))
        for args in (["verify"], ["balances", "--json"], ["export", "--format", "jsonl"]):
            r = points(*args, cwd=workdir, db=db)
            assert "Traceback" not in r.stderr, (i, args, r.stderr[-2000:])
            assert r.returncode in (0, 1), (i, args, r.returncode, r.stderr[-500:])
