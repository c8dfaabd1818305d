"""Awards to a member named by an event field: a stream `credited to FIELD` counts its
events for that member (a referrer), with caps per beneficiary; both sides of a referral
are paid; a cancelled referral pays neither, also after payment."""

from __future__ import annotations

from points.dsl.loader import check_files, load_rules
from tests.support import new_world

DECLARATION = """event referral
    referrer: text, required
"""
RULES = '''campaign refer-a-friend "1,000 points to both sides, at most 3 friends per referrer"
  window 2026-05-01 .. 2026-05-31
  stream invited = referral where date in window undone by cancel
  stream referred = referral credited to referrer where date in window undone by cancel
  award welcome "invited" = 1_000 basic when exists(invited) on 2026-06-10
  award thanks "referrer" = 1_000 * min(count(referred), 3) basic when count(referred) > 0 on 2026-06-10
'''


def folder(tmp_path, rules: str = RULES):
    d = tmp_path / "rules"
    d.mkdir(parents=True, exist_ok=True)
    (d / "referral.events").write_text(DECLARATION, encoding="utf-8")
    (d / "refer.rules").write_text(rules, encoding="utf-8")
    return d


def referral(id_, member, referrer, at):
    return {"id": id_, "type": "referral", "member": member, "referrer": referrer, "at": at}


def test_both_sides_are_paid_and_the_referrer_is_capped(tmp_path):
    d = folder(tmp_path)
    w = new_world(tmp_path)
    from points.ledger import events
    from points.ledger.event_catalogue import load_catalogue
    records = [referral(f"r{i}", f"new{i}", "r1", f"2026-05-0{i}T10:00:00") for i in range(1, 5)]
    records += [referral("r5", "new5", "r2", "2026-05-06T10:00:00"),
                {"id": "c5", "type": "cancel", "member": "new5", "at": "2026-05-07T10:00:00", "ref": "r5"},
                referral("r6", "new6", "r3", "2026-05-08T10:00:00")]
    report = events.import_records(w.conn, [(f"t:{i}", r) for i, r in enumerate(records, 1)],
                                   catalogue=load_catalogue(d))
    assert not report.errors, report.errors
    rules = load_rules(d)
    w.run("2026-06-20", rules)
    assert [w.paid("refer-a-friend", f"new{i}") for i in range(1, 7)] == [1_000] * 4 + [0, 1_000]
    assert w.paid("refer-a-friend", "r1") == 3_000  # 4 friends, at most 3
    assert w.paid("refer-a-friend", "r2") == 0  # its one referral was cancelled
    # r3's referral is cancelled after payment: both sides are taken back
    report = events.import_records(w.conn, [("t:late", {"id": "c6", "type": "cancel", "member": "new6",
                                                        "at": "2026-06-15T10:00:00", "ref": "r6"})],
                                   catalogue=load_catalogue(d))
    assert not report.errors
    w.run("2026-06-30", rules)
    assert w.paid("refer-a-friend", "r3") == 0 and w.paid("refer-a-friend", "new6") == 0


def test_credited_to_must_name_a_text_field(tmp_path):
    d = folder(tmp_path, RULES.replace("credited to referrer", "credited to amount"))
    _, found, _ = check_files([d / "refer.rules"], d)
    assert [x.message for x in found] == [
        "`credited to amount`: the events are credited to the member a text field of referral names, "
        "and amount is not one"]
