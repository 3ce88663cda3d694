"""What a strategy is, and the one place signals are built (geometry, rounding, ids).

A strategy looks at the bars of a few symbols up to and including row `as_of_index` of a panel
and returns `Signal`s dated that bar. Entry is the bar's close; the stop is `atr_stop_multiple`
ATRs away; the target is `reward_risk` times the stop distance on the other side; a trailing
distance (when the strategy trails) is also ATR-based.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, runtime_checkable

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


class Candidate(NamedTuple):
    """A strategy's call on one symbol before its `Signal` is built: what the engine needs to pick
    and rank calls (symbol, direction, confidence), and what builds the signal of a kept one.

    The engine keeps at most `max_signals` of the day's calls; building a `Signal` (Decimal levels,
    id, reason sentence) costs far more than deciding, so only the kept calls are built
    (`Candidate.signal`), each once. `confidence` is the signal's own (clamped to 0..1, rounded to 4
    places). A candidate exists only when its geometry does not degenerate (`propose`).
    `prebuilt`: the signal of a strategy that only implements `generate` (a plug-in), used as is.
    A named tuple: made for every call of every strategy each day, it is a tuple's cost to create.
    """

    strategy: str
    symbol: str
    direction: Direction
    confidence: float
    entry: float = math.nan  # price units
    atr: float = math.nan  # price units
    params: StrategyParams = StrategyParams()
    trail: bool = False
    reason: Callable[[], str] = str
    meta: dict[str, Any] | None = None
    prebuilt: Signal | None = None

    def signal(
        self, as_of: datetime, extra_meta: dict[str, Any] | None = None, score: float | None = None
    ) -> Signal:
        """The `Signal` dated `as_of` (the bar's date), its meta followed by `extra_meta`, its `score`."""
        if self.prebuilt is not None:
            meta = dict(self.prebuilt.meta)
            meta.update(extra_meta or {})
            if score is None:  # the plug-in's own score stays
                return dataclasses.replace(self.prebuilt, meta=meta)
            return dataclasses.replace(self.prebuilt, meta=meta, score=score)
        levels = geometry(self.entry, self.atr, self.direction, self.params, self.trail)
        if levels is None:  # `propose` made no candidate for such a geometry
            raise ValueError(f"degenerate geometry for {self.strategy} on {self.symbol}")
        e, s, tp, trailing = levels
        info: dict[str, Any] = {"atr": self.atr, "stop_distance": self.params.atr_stop_multiple * self.atr}
        info.update(self.meta or {})
        info.update(extra_meta or {})
        return Signal(
            signal_id=signal_id(self.strategy, self.symbol, as_of.date().isoformat(), self.direction.value),
            symbol=self.symbol,
            strategy=self.strategy,
            direction=self.direction,
            entry=e,
            stop_loss=s,
            take_profit=tp,
            confidence=self.confidence,
            reason=self.reason(),
            as_of=as_of,
            trailing_distance=trailing,
            score=score,
            meta=info,
        )


def geometry(
    entry: float, atr: float, direction: Direction, params: StrategyParams, trail: bool
) -> tuple[Decimal, Decimal, Decimal, Decimal | None] | None:
    """(entry, stop, target, trailing distance) as Decimal prices for a signal at `entry` with an
    `atr` (both price units), or None when the geometry degenerates: non-finite inputs, a stop or
    target at or below zero, or a stop distance that rounds to nothing. Trailing is None when the
    strategy does not trail (or its distance rounds to nothing)."""
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
    return e, s, tp, trailing


def surely_valid(entry: float, atr: float, direction: Direction, params: StrategyParams) -> bool:
    """A float test that implies `geometry(...) is not None`, without its Decimal arithmetic (most
    calls are never built: the engine keeps the best few). False says "not sure": ask `geometry`.

    Rounding moves each of entry and stop by at most half a quantum q (plus a few ulps for `repr`
    and the float stop), so the rounded stop distance D is within `slack` = 2q + 8 ulps of the float
    one; with D > slack, rr·D > 4q (the target at least a quantum beyond the entry) and, for a short,
    the target still 4q + slack above zero, the rounded levels keep their order (the property test
    in tests/analysis/test_strategy_candidates.py holds it to `geometry`)."""
    if not (math.isfinite(entry) and math.isfinite(atr)) or entry <= 0 or atr <= 0 or entry >= 1e12:
        return False  # (beyond 1e12 the Decimal context's precision is `geometry`'s own question)
    rr = params.reward_risk
    if not (math.isfinite(rr) and rr > 0):
        return False
    q = 1e-4 if entry >= 1 else 1e-8
    d = direction.sign
    risk = params.atr_stop_multiple * atr
    stop = entry - d * risk
    target = entry + d * rr * risk
    if not (stop > 0 and target > 0 and math.isfinite(stop) and math.isfinite(target)):
        return False
    gap = abs(entry - stop)
    slack = 2 * q + 8 * math.ulp(max(entry, stop, gap))
    if not (gap > 2 * slack and rr * (gap - slack) > 4 * q):
        return False
    return d > 0 or entry - rr * (gap + slack) * (1 + 1e-9) > 4 * q + slack


def propose(
    *,
    strategy: str,
    symbol: str,
    direction: Direction,
    entry: float,
    atr: float,
    params: StrategyParams,
    confidence: float,
    reason: Callable[[], str],
    trail: bool,
    meta: dict[str, Any] | None = None,
) -> Candidate | None:
    """A `Candidate` whose signal has an ATR-based stop/target (and trail) from `entry` and `atr`
    (price units), or None when that geometry degenerates (`geometry`). `reason` formats the
    signal's sentence, called only when the signal is built."""
    valid = surely_valid(entry, atr, direction, params)
    if not valid and geometry(entry, atr, direction, params, trail) is None:
        return None
    return Candidate(
        strategy, symbol, direction, round(clamp01(confidence), 4), entry, atr, params, trail, reason, meta
    )


def signals(candidates: Sequence[Candidate], panel: Panel, t: int) -> list[Signal]:
    """The signals of `candidates`, dated row `t` of `panel`."""
    if not candidates:
        return []
    as_of = panel.date_at(t)
    return [c.signal(as_of) for c in candidates]


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
    """A `Signal` dated row `t` with ATR-based stop/target (and trail), or None when the geometry
    degenerates (`geometry`): `propose` and `Candidate.signal` in one step."""
    c = propose(
        strategy=strategy,
        symbol=symbol,
        direction=direction,
        entry=entry,
        atr=atr,
        params=params,
        confidence=confidence,
        reason=lambda: reason,
        trail=trail,
        meta=meta,
    )
    return None if c is None else c.signal(panel.date_at(t))


def px(x: float) -> str:
    """A price for a reason sentence."""
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.5f}"
