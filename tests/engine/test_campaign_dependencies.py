"""One campaign reading another's award: `awarded("gold-status", "gold")` (net points
paid) and `award_date(...)` per member; the reader settled after the campaign it reads
on the same day; unknown campaigns or awards and loops refused by check."""

from __future__ import annotations

from points.dsl.loader import check_files, load_rules
from tests.support import new_world, card_payment as pay

STATUS = '''campaign gold-status "gold: 100,000 yen in 2025"
  window 2025-01-01 .. 2025-12-31
  stream p = card_payment where date in window undone by refund
  award gold = 100 basic when sum(p.amount) >= 100_000 on 2026-01-10
'''
BONUS = '''campaign gold-bonus "gold members: 5% of January 2026 (a status good for 30 days)"
  window 2026-01-01 .. 2026-01-31
  stream q = card_payment where date in window
  value since = award_date("gold-status", "gold")
  award extra = floor(sum(q.amount) * 5%) limited
    when awarded("gold-status", "gold") > 0 and since + 30 days >= 2026-02-01
    on 2026-01-10
'''


def folder(tmp_path, **files):
    d = tmp_path / "rules"
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.rules").write_text(text, encoding="utf-8")
    return d


def test_a_status_earned_in_one_campaign_changes_another(tmp_path):
    rules = load_rules(folder(tmp_path, status=STATUS, bonus=BONUS))
    # gold-bonus sorts before gold-status by name: it must still settle after it
    assert rules.run_order == ("gold-status", "gold-bonus")
    w = new_world(tmp_path)
    w.add(pay("a", "m1", 100_000, "2025-06-01T10:00:00"), pay("b", "m1", 2_000, "2026-01-05T10:00:00"),
          pay("c", "m2", 99_999, "2025-06-01T10:00:00"), pay("d", "m2", 2_000, "2026-01-05T10:00:00"),
          # m3 is gold, but its status is taken back (refund) before the bonus is paid again
          pay("e", "m3", 150_000, "2025-06-01T10:00:00"), pay("f", "m3", 2_000, "2026-01-05T10:00:00"),
          {"id": "g", "type": "refund", "member": "m3", "at": "2026-01-20T10:00:00", "ref": "e"},
          pay("h", "m3", 1_000, "2026-01-25T10:00:00"))
    w.run("2026-03-31", rules)
    assert w.balance("m1") == {"basic": 100, "limited": 100, "charge_only": 0}  # gold on the 10th: 5% of 2,000
    assert w.balance("m2") == {"basic": 0, "limited": 0, "charge_only": 0}
    # m3: paid on the 10th as gold (100 bonus); the refund takes gold back on the 20th, and
    # its next bonus checkpoint (the 25th) takes the bonus back too
    assert w.paid("gold-status", "m3") == 0 and w.paid("gold-bonus", "m3") == 0


def errors(tmp_path, **files):
    d = folder(tmp_path, **files)
    _, found, _ = check_files(sorted(d.glob("*.rules")), d)
    return [d.message for d in found if d.is_error]


def test_references_are_checked_across_files(tmp_path):
    assert errors(tmp_path / "a", status=STATUS, bonus=BONUS) == []
    assert errors(tmp_path / "b", bonus=BONUS) == ["no campaign gold-status in the rules folder"] * 2
    assert errors(tmp_path / "c", status=STATUS.replace("award gold", "award platinum"), bonus=BONUS) == [
        "campaign gold-status has no award gold"] * 2


def test_a_loop_between_campaigns_is_refused(tmp_path):
    loop = STATUS.replace("when sum(p.amount) >= 100_000", 'when awarded("gold-bonus", "extra") >= 0')
    assert errors(tmp_path, status=loop, bonus=BONUS) == [
        "campaigns read each other's awards in a loop: gold-bonus -> gold-status -> gold-bonus"]


def test_per_member_only_and_never_itself(tmp_path):
    found = errors(tmp_path, status=STATUS, bonus=BONUS.replace(
        "  stream q = card_payment where date in window",
        '  stream q = card_payment where date in window and awarded("gold-status", "gold") > 0'))
    assert found == ["awarded() reads another campaign's awards per member: use it in a value or a condition, "
                     "not in a stream or `sum over`"]
    found = errors(tmp_path / "b", status=STATUS.replace("on 2026-01-10", 'on 2026-01-10\n'
                                                          '  award again = 1 basic when awarded("gold-status", "gold") > 0'))
    assert found == ['awarded() names this campaign: use the award\'s name itself']
