"""Trailing-stop arithmetic of the `PositionMonitor` (pure functions, no state of their own).

A trailing stop follows the best mid seen since the position was added (the highest for a long,
the lowest for a short), `TrailingStop.distance` price units behind it, and only ever tightens, in
whole `TrailingStop.step`s (so the broker sees a few modifies, not one per tick). Prices on the hot
path are floats (the best mid, the stop as a float for the comparison); the stop it returns is the
`Decimal` confirmed stop plus whole `Decimal` steps, so the level sent to the broker stays exact.
"""

from __future__ import annotations

import math
from decimal import Decimal

from joe.execution.protection import TrailingStop


def better(best: float, price: float, sign: int) -> float:
    """The best price so far for a position of direction `sign` (+1 long: the higher, -1 short: the
    lower); `best` is NaN before the first price."""
    if math.isnan(best):
        return price
    return max(best, price) if sign > 0 else min(best, price)


def tightened_stop(
    stop: Decimal,
    stop_f: float,
    best: float,
    sign: int,
    trailing: TrailingStop,
    refused: Decimal | None = None,
) -> Decimal | None:
    """The stop to ask the broker for, or None when it should stay where it is.

    `stop` is the broker-confirmed stop (`stop_f` the same as a float), `best` the best mid seen
    (`better`), `sign` +1 long / -1 short. The stop moves by the largest whole number k >= 1 of
    `trailing.step`s with stop + k*step <= best - distance (long; mirrored for a short). A level the
    broker refused (`refused`) is not asked again: only a level beyond it is.
    """
    distance = float(trailing.distance)
    room = (best - distance - stop_f) if sign > 0 else (stop_f - best - distance)
    k = math.floor(room / float(trailing.step) + 1e-9)
    if k < 1:
        return None
    new = stop + sign * k * trailing.step
    if refused is not None and (new - refused) * sign <= 0:
        return None
    return new
