"""dsl.wholeness: which awards the text proves whole, within 64 bits and free of
division by zero (then the run does not evaluate them ahead, engine.guards), and
which it does not. Each case is a variant of the seed card program loaded by the
real loader; the engine side is tests/engine/test_award_validation.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from points.dsl.loader import load_rules
from points.dsl.wholeness import MAX_POINTS, evaluate, prove_awards
from tests.reliability.helpers import copy_rules

BASE = "value base = trunc(total, 1_000) / 1_000 * 5"


def _proof(tmp_path: Path, old: str = BASE, new: str = BASE, award: str = "monthly"):
    folder = copy_rules(tmp_path / "rules")
    path = folder / "jwest-card.rules"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    rules = load_rules(folder)
    lc = rules.campaign("jwest-card")
    return prove_awards(lc.plan.campaign, lc.plan.tables, rules.catalogue)[award]


def test_the_seed_card_award_is_proven_whole_and_bounded(tmp_path):
    proof = _proof(tmp_path)
    assert proof.whole, proof.reason
    # total = two sums of at most n amounts of at most 10**12 each: the peak grows with n
    assert evaluate(proof.peak, 1) >= 2 * 10**12
    assert proof.safe(1_000_000)
    assert not proof.safe(10**8)  # 2 * 10**20: a sum that SQLite could not hold


@pytest.mark.parametrize("new, why", [
    ("value base = total / 7", "a multiple of 1/7"),
    ("value base = trunc(total, 1_000) / 3_000 * 5", "a multiple of 5/3"),
    ("value base = total * 50%", "a multiple of 1/2"),
    ("value base = total / (total - total)", "division"),
    ("value base = floor(total / count(purchase))", "division"),
])
def test_awards_not_proven_whole(tmp_path, new, why):
    proof = _proof(tmp_path, new=new)
    assert not proof.whole and why in proof.reason
    assert not proof.safe(1)


@pytest.mark.parametrize("new", [
    "value base = floor(total * 2%)",            # rounded to a whole number
    "value base = round(total * 5 / 1_000, 1)",
    "value base = trunc(total, 2_000) / 1_000 * 5",  # 2,000 / 1,000: still whole
    "value base = ceil(total / 3, 10) / 5",      # a multiple of 10 over 5
    "value base = min(trunc(total, 1_000) / 1_000, 30_000) * 5",
    "value base = (total * 2 if total > 100 else 0) / 2",
])
def test_awards_proven_whole(tmp_path, new):
    proof = _proof(tmp_path, new=new)
    assert proof.whole, proof.reason
    assert proof.safe(1000)


def test_an_award_beyond_64_bits_is_not_safe_even_though_whole(tmp_path):
    proof = _proof(tmp_path, new="value base = total * 9_000_000_000_000_000_000")
    assert proof.whole and not proof.safe(1)
    assert evaluate(proof.peak, 1) > MAX_POINTS


def test_a_literal_cap_bounds_the_award_whatever_the_events(tmp_path):
    proof = _proof(tmp_path, "award monthly \"ご利用ポイント(通常分+ボーナス分)\" = max(base + bonus, 0)",
                   "award monthly \"ご利用ポイント(通常分+ボーナス分)\" = min(max(base + bonus, 0), 30_000)")
    assert proof.whole
    # the cap bounds the award, but the sums it is computed from still grow with n
    assert proof.safe(1_000_000) and not proof.safe(10**8)


def test_tiers_partition_the_events_so_their_sum_grows_like_one_sum(tmp_path):
    # n tiers of at most n events each, but together n events: linear, not quadratic
    own = _proof(tmp_path, "value bonus = sum over purchase by multiplier: "
                 "(trunc(sum(amount), 1_000) / 1_000 * 5 * (multiplier - 1))",
                 "value bonus = sum over purchase by multiplier: (sum(amount) * 2 + 1)")
    assert own.whole and len(own.peak) == 2
    assert own.safe(1_000_000)


def test_check_warns_about_an_award_that_is_a_multiple_of_a_fraction(tmp_path):
    from click.testing import CliRunner

    from points.cli.main import cli

    folder = copy_rules(tmp_path / "rules")
    runner = CliRunner()
    clean = runner.invoke(cli, ["check", str(folder)])
    assert clean.exit_code == 0 and "warning" not in clean.output
    path = folder / "jwest-card.rules"
    path.write_text(path.read_text(encoding="utf-8").replace(BASE, "value base = total / 7", 1), encoding="utf-8")
    result = runner.invoke(cli, ["check", str(folder)])
    assert result.exit_code == 0  # a warning: the data decides, and the run refuses it then
    assert "jwest-card.rules:" in result.output
    assert "warning: award monthly may not be a whole number of points (a multiple of 1/7)" in result.output
