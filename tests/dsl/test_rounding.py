"""Every rounding mode of the rules language, pinned by hand-written values: `floor`
(toward minus infinity), `ceil` (toward plus infinity), `trunc` (toward zero) and
`round` (half away from zero: 2.5 -> 3, -2.5 -> -3, unlike Python's round), each
without and with a step, on positive and negative halves, on values just either side
of a half, and on exact values. Once through the runtime's functions (`SCALARS`, and
`scalar`, which specialises a literal step), once through small .rules programs run
by the real engine."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction as F

import pytest

from points.dsl import runtime
from points.dsl.loader import load_rules
from points.engine.workflow import Runner
from tests.support import new_world

# x -> (floor, ceil, trunc, round) of x
TO_WHOLE = {
    F(5, 2): (2, 3, 2, 3),
    F(-5, 2): (-3, -2, -2, -3),
    F(7, 2): (3, 4, 3, 4),
    F(-7, 2): (-4, -3, -3, -4),
    F(1, 2): (0, 1, 0, 1),
    F(-1, 2): (-1, 0, 0, -1),
    F(12, 5): (2, 3, 2, 2),       # 2.4
    F(-12, 5): (-3, -2, -2, -2),
    F(13, 5): (2, 3, 2, 3),       # 2.6
    F(-13, 5): (-3, -2, -2, -3),
    F(2499, 1000): (2, 3, 2, 2),  # just under a half
    F(-2501, 1000): (-3, -2, -2, -3),
    3: (3, 3, 3, 3),
    -3: (-3, -3, -3, -3),
    F(6, 2): (3, 3, 3, 3),        # a whole Fraction
    0: (0, 0, 0, 0),
}

# (x, step) -> (floor, ceil, trunc, round) of x to a multiple of step
TO_STEP = {
    (2500, 1000): (2000, 3000, 2000, 3000),
    (-2500, 1000): (-3000, -2000, -2000, -3000),
    (1500, 1000): (1000, 2000, 1000, 2000),
    (-1500, 1000): (-2000, -1000, -1000, -2000),
    (1499, 1000): (1000, 2000, 1000, 1000),
    (-1499, 1000): (-2000, -1000, -1000, -1000),
    (-999, 1000): (-1000, 0, 0, -1000),
    (2000, 1000): (2000, 2000, 2000, 2000),
    (-2000, 1000): (-2000, -2000, -2000, -2000),
    (F(25, 2), 5): (10, 15, 10, 15),            # 12.5 to a multiple of 5
    (F(-25, 2), 5): (-15, -10, -10, -15),
    (F(2501, 2), 100): (1200, 1300, 1200, 1300),  # 1250.5
    (F(2499, 2), 100): (1200, 1300, 1200, 1200),  # 1249.5
    (F(7, 4), F(1, 2)): (F(3, 2), 2, F(3, 2), 2),  # 1.75 to a multiple of 0.5 (50%)
    (F(-7, 4), F(1, 2)): (-2, F(-3, 2), F(-3, 2), -2),
}

MODES = ("floor", "ceil", "trunc", "round")


def same(a, b) -> bool:
    """Equal and of the same type: a whole result is an int, never a whole Fraction."""
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("x", TO_WHOLE, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_to_a_whole_number(mode, x):
    expected = TO_WHOLE[x][MODES.index(mode)]
    assert same(runtime.SCALARS[mode](x), expected)
    assert same(runtime.SCALARS[mode](x, 1), expected)


@pytest.mark.parametrize("x, step", TO_STEP, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_to_a_step(mode, x, step):
    expected = TO_STEP[x, step][MODES.index(mode)]
    assert same(runtime.SCALARS[mode](x, step), expected)
    # as compiled for a literal step (the closure specialised for int steps)
    closure = runtime.scalar(mode, [lambda env: x, lambda env: step], [x, step])
    assert same(closure(None), expected)


@pytest.mark.parametrize("mode", MODES)
def test_none_stays_none(mode):
    assert runtime.SCALARS[mode](None) is None
    assert runtime.SCALARS[mode](None, 1_000) is None


def test_round_is_not_pythons_bankers_rounding():
    assert round(2.5) == 2 and round(-0.5) == 0  # what the language must not do
    assert [runtime.SCALARS["round"](F(n, 2)) for n in (-5, -3, -1, 1, 3, 5)] == [-3, -2, -1, 1, 2, 3]


# ---------------------------------------------------------------- through the engine

# One campaign per mode. x = (spend - 500) / 10, so a payment of 525 yen is x = 2.5 and
# one of 475 yen is x = -2.5; the award is 1,000 + the rounded value (awards are
# positive). The `_step` campaigns round (spend - 500) * 10 to a multiple of 100: the
# same halves, through the literal-step closure on ints.
CAMPAIGN = """\
campaign r-{name} "rounding: {name}"
  window 2026-03-01 .. 2026-03-31
  stream pay = wesmo_payment where date in window
  value spend = sum(pay.amount)
  award a = 1_000 + {expr} limited
    when spend > 0
    on 2026-04-10
    expires 2026-12-31
"""

# spend -> x = (spend - 500) / 10
SPENDS = {525: F(5, 2), 475: F(-5, 2), 535: F(7, 2), 465: F(-7, 2), 505: F(1, 2), 495: F(-1, 2),
          524: F(12, 5), 476: F(-12, 5), 526: F(13, 5), 474: F(-13, 5), 530: 3, 470: -3}


@pytest.fixture(scope="module")
def rounded(tmp_path_factory):
    """{(campaign, spend): points paid} after one run of every rounding campaign."""
    tmp = tmp_path_factory.mktemp("rounding")
    folder = tmp / "rules"
    folder.mkdir()
    for mode in MODES:
        (folder / f"r-{mode}.rules").write_text(
            CAMPAIGN.format(name=mode, expr=f"{mode}((spend - 500) / 10)"), encoding="utf-8")
        (folder / f"r-{mode}-step.rules").write_text(
            CAMPAIGN.format(name=f"{mode}-step", expr=f"{mode}((spend - 500) * 10, 100)"), encoding="utf-8")
    world = new_world(tmp)
    world.add(*({"id": f"p{spend}", "type": "wesmo_payment", "member": f"M{spend}",
                 "at": "2026-03-10T12:00:00", "amount": spend} for spend in SPENDS))
    Runner(world.conn, load_rules(folder), dt.date(2026, 4, 30)).run()
    return {(c, spend): world.paid(c, f"M{spend}")
            for c in [f"r-{m}" for m in MODES] + [f"r-{m}-step" for m in MODES] for spend in SPENDS}


@pytest.mark.parametrize("spend", SPENDS)
@pytest.mark.parametrize("mode", MODES)
def test_the_engine_pays_the_rounded_amount(rounded, mode, spend):
    x = SPENDS[spend]
    assert rounded[f"r-{mode}", spend] == 1_000 + TO_WHOLE[x][MODES.index(mode)]
    # (spend - 500) * 10 = 100 x: rounding it to a multiple of 100 is 100 times rounding x
    assert rounded[f"r-{mode}-step", spend] == 1_000 + 100 * TO_WHOLE[x][MODES.index(mode)]


def test_the_engine_pays_round_half_away_from_zero(rounded):
    """The four halves spelled out, as a reader of the campaign terms would check them."""
    assert [rounded["r-round", s] - 1_000 for s in (525, 475, 535, 465)] == [3, -3, 4, -4]
    assert [rounded["r-round-step", s] - 1_000 for s in (525, 475, 535, 465)] == [300, -300, 400, -400]
