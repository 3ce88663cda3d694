"""What a strategy is, and the one place signals are built (geometry, rounding, ids).

A strategy looks at the bars of a few symbols up to and including row `as_of_index` of a panel
and returns `Signal`s dated that bar. Entry is the bar's close; the stop is `atr_stop_multiple`
ATRs away; the target is `reward_risk` times the stop distance on the other side; a trailing
distance (when the strategy trails) is also ATR-based.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.regime import RegimeLabel
from joe.core.ids import signal_id
from joe.core.models import Direction, Signal


@dataclass(frozen=True)
class StrategyParams:
    """Exit geometry shared by all strategies (from `config.pipeline`)."""

    atr_period: int = 14
    atr_stop_multiple: float = 2.0
    reward_risk: float = 2.0
    trail_multiple: float | None = None  # None: trail at the stop distance when a strategy trails


@runtime_checkable
class Strategy(Protocol):
    """A signal generator for the regimes it suits."""

    name: str
    suited_regimes: frozenset[RegimeLabel]

    def generate(
        self, panel: Panel, symbols: Sequence[str], as_of_index: int, features: Features | None = None
    ) -> list[Signal]:
        """Signals for `symbols` dated row `as_of_index`, using only rows <= `as_of_index`."""
        ...


def price_quantum(price: float) -> Decimal:
    """Rounding step for prices: 4 decimals at or above 1, 8 below (FX crosses, small coins)."""
    return Decimal("0.0001") if abs(price) >= 1 else Decimal("0.00000001")


def to_price(x: float, quantum: Decimal) -> Decimal:
    """A float price as a Decimal rounded to `quantum`."""
    return Decimal(repr(float(x))).quantize(quantum)


def clamp01(x: float) -> float:
    """`x` limited to 0..1 (NaN → 0)."""
    if not math.isfinite(x):
        return 0.0
    return max(0.0, min(1.0, x))


def build_signal(
    *,
    strategy: str,
    panel: Panel,
    symbol: str,
    t: int,
    direction: Direction,
    entry: float,
    atr: float,
    params: StrategyParams,
    confidence: float,
    reason: str,
    trail: bool,
    meta: dict[str, Any] | None = None,
) -> Signal | None:
    """A `Signal` with ATR-based stop/target (and trail), or None when the geometry degenerates.

    Degenerate: non-finite inputs, a stop or target at or below zero, or a stop distance that
    rounds to nothing.
    """
    if not (math.isfinite(entry) and math.isfinite(atr)) or entry <= 0 or atr <= 0:
        return None
    q = price_quantum(entry)
    d = direction.sign
    risk = params.atr_stop_multiple * atr
    stop = entry - d * risk
    target = entry + d * params.reward_risk * risk
    if stop <= 0 or target <= 0:
        return None
    e, s = to_price(entry, q), to_price(stop, q)
    # The target comes from the *rounded* stop distance, so reward/risk is exact to one quantum.
    tp = (e + d * Decimal(repr(params.reward_risk)) * abs(e - s)).quantize(q)
    ok = tp > 0 and ((s < e < tp) if direction is Direction.LONG else (tp < e < s))
    if not ok:
        return None
    trailing = None
    if trail:
        trailing = to_price((params.trail_multiple or params.atr_stop_multiple) * atr, q)
        if trailing <= 0:
            trailing = None
    as_of = panel.date_at(t)
    info = {"atr": atr, "stop_distance": risk}
    info.update(meta or {})
    return Signal(
        signal_id=signal_id(strategy, symbol, as_of.date().isoformat(), direction.value),
        symbol=symbol,
        strategy=strategy,
        direction=direction,
        entry=e,
        stop_loss=s,
        take_profit=tp,
        confidence=round(clamp01(confidence), 4),
        reason=reason,
        as_of=as_of,
        trailing_distance=trailing,
        meta=info,
    )


def px(x: float) -> str:
    """A price for a reason sentence."""
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.5f}"
