"""A broker's grids, as pure functions: prices on the tick grid, sizes on the size step.

Used wherever Joe books or shows a price or a size for an instrument whose broker states its
dealing rules (Capital.com `dealingRules` + `tickSize`, spec §6.4): the risk sizing, the paper
book and the signals it reports. Sizes are floored (never more risk than sized) and refused below
the broker's minimum; a stop rounds away from the entry (never tighter than asked), a fill against
the trader (never better than the cost model), a target and a mark to the nearest tick.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from joe.core.models import ZERO, Direction, Signal


def on_grid(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """`value` on the multiples of `step` (a `decimal` rounding mode), quantized to the step's
    places; `value` unchanged when `step` <= 0 (no grid stated)."""
    if step <= 0:
        return value
    return ((value / step).to_integral_value(rounding) * step).quantize(step)


def floor_size(quantity: Decimal, step: Decimal, min_size: Decimal = ZERO) -> Decimal:
    """`quantity` (>= 0) floored to the size `step`; ZERO when that is below `min_size`."""
    q = on_grid(quantity, step, ROUND_DOWN) if step > 0 else quantity
    return q if q > 0 and q >= min_size else ZERO


def size_refusal(symbol: str, quantity: Decimal, step: Decimal, min_size: Decimal) -> str | None:
    """Why `quantity` cannot be traded on the broker's size grid (None: it can, once floored)."""
    if floor_size(quantity, step, min_size) > 0:
        return None
    return (
        f"size {quantity.normalize():f} of {symbol} is below the broker's minimum deal size "
        f"{min_size.normalize():f} (size step {step.normalize():f}): not traded"
    )


def signal_on_grid(signal: Signal, tick: Decimal) -> Signal:
    """`signal` with entry and target on the nearest tick, the stop away from the entry and the
    trail distance up. Raises `ValueError` when the levels collapse onto each other on the grid."""
    if tick <= 0:
        return signal
    away = ROUND_FLOOR if signal.direction is Direction.LONG else ROUND_CEILING
    return replace(
        signal,
        entry=on_grid(signal.entry, tick),
        stop_loss=on_grid(signal.stop_loss, tick, away),
        take_profit=on_grid(signal.take_profit, tick),
        trailing_distance=None
        if signal.trailing_distance is None
        else on_grid(signal.trailing_distance, tick, ROUND_CEILING),
    )
