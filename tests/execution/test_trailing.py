"""The trailing-stop arithmetic (`joe.execution.trailing`): only tightens, in whole steps, never
closer to the best price than the distance, and never re-asks a refused level."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from joe.execution.protection import TrailingStop
from joe.execution.trailing import better, tightened_stop

_cents = st.integers(min_value=1, max_value=100_000).map(lambda c: Decimal(c) / 100)


def test_better_keeps_the_best_price_for_the_direction() -> None:
    assert better(math.nan, 10.0, 1) == 10.0
    assert better(10.0, 9.0, 1) == 10.0 and better(10.0, 11.0, 1) == 11.0
    assert better(10.0, 9.0, -1) == 9.0 and better(10.0, 11.0, -1) == 10.0


def test_a_long_stop_moves_by_whole_steps_behind_the_best_price() -> None:
    tr = TrailingStop(distance=Decimal("2"), step=Decimal("0.5"))
    assert tightened_stop(Decimal("95"), 95.0, 97.4, 1, tr) is None  # room 0.4 < one step
    assert tightened_stop(Decimal("95"), 95.0, 98.3, 1, tr) == Decimal("96.0")  # 2 steps, not 2.6
    assert tightened_stop(Decimal("105"), 105.0, 101.0, -1, tr) == Decimal("103.0")
    assert tightened_stop(Decimal("95"), 95.0, 98.3, 1, tr, refused=Decimal("96")) is None
    assert tightened_stop(Decimal("95"), 95.0, 98.6, 1, tr, refused=Decimal("96")) == Decimal("96.5")


@given(
    stop=_cents,
    move=st.integers(min_value=-5000, max_value=5000).map(lambda c: Decimal(c) / 100),
    distance=_cents,
    step=_cents,
    sign=st.sampled_from([1, -1]),
)
def test_the_stop_only_tightens_in_whole_steps_and_keeps_its_distance(
    stop: Decimal, move: Decimal, distance: Decimal, step: Decimal, sign: int
) -> None:
    best = stop + sign * distance + move  # the best mid, `move` beyond the untouched level
    tr = TrailingStop(distance=distance, step=step)
    new = tightened_stop(stop, float(stop), float(best), sign, tr)
    if new is None:
        assert (best - sign * distance - stop) * sign < step + Decimal("1e-6")
        return
    k = (new - stop) * sign / step
    assert k >= 1 and k == k.to_integral_value()  # tighter, by whole steps
    assert (best - new) * sign >= distance - Decimal("1e-6")  # never closer than the distance
    assert (best - new) * sign < distance + step + Decimal("1e-6")  # as tight as whole steps allow
