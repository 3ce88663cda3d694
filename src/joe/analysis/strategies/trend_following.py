"""Trend following: ride an established, strong trend with an ATR trailing stop.

LONG when close > EMA(20) > SMA(50), the EMA(20) is higher than 5 bars ago and ADX >= 20;
SHORT mirrored. Confidence grows with ADX (20 → 40) and the distance from the SMA(50) (0 → 10%).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from joe.analysis.features import Features, finite
from joe.analysis.panel import Panel
from joe.analysis.regime import RegimeLabel
from joe.analysis.strategies.base import Candidate, StrategyParams, clamp01, propose, px, signals
from joe.core.models import Direction, Signal


@dataclass
class TrendFollowing:
    """EMA/SMA alignment plus ADX strength; trails its stop."""

    params: StrategyParams = field(default_factory=StrategyParams)
    fast: int = 20
    slow: int = 50
    adx_min: float = 20.0
    name: str = "trend_following"
    suited_regimes: frozenset[RegimeLabel] = frozenset(
        {RegimeLabel.BULL_QUIET, RegimeLabel.BULL_VOLATILE, RegimeLabel.BEAR, RegimeLabel.CRISIS}
    )

    def generate(
        self, panel: Panel, symbols: Sequence[str], as_of_index: int, features: Features | None = None
    ) -> list[Signal]:
        return signals(self.candidates(panel, symbols, as_of_index, features), panel, as_of_index)

    def candidates(
        self, panel: Panel, symbols: Sequence[str], as_of_index: int, features: Features | None = None
    ) -> list[Candidate]:
        """`generate`'s calls before their signals are built (`Candidate`)."""
        f = features or Features(panel)
        t = as_of_index
        out: list[Candidate] = []
        period = self.params.atr_period
        readings = zip(
            symbols,
            f.values_at("close", t, symbols),
            f.values_at("ema", t, symbols, self.fast),
            f.values_at("ema", t - 5, symbols, self.fast),
            f.values_at("sma", t, symbols, self.slow),
            f.values_at("adx", t, symbols, period),
            f.values_at("atr", t, symbols, period),
            strict=True,
        )
        for sym, close, fast, fast_prev, slow, adx, atr in readings:
            if not finite(close, fast, fast_prev, slow, adx, atr) or adx < self.adx_min:
                continue
            if close > fast > slow and fast > fast_prev:
                direction, rel = Direction.LONG, "above"
            elif close < fast < slow and fast < fast_prev:
                direction, rel = Direction.SHORT, "below"
            else:
                continue
            conf = 0.4 + 0.3 * clamp01((adx - 20.0) / 20.0) + 0.3 * clamp01(abs(close / slow - 1.0) / 0.10)
            c = propose(
                strategy=self.name,
                symbol=sym,
                direction=direction,
                entry=close,
                atr=atr,
                params=self.params,
                confidence=conf,
                reason=partial(self._reason, direction, rel, close, fast, slow, adx, atr),
                trail=True,
                meta={"adx": adx, "ema_fast": fast, "sma_slow": slow},
            )
            if c is not None:
                out.append(c)
        return out

    def _reason(
        self, direction: Direction, rel: str, close: float, fast: float, slow: float, adx: float, atr: float
    ) -> str:
        return (
            f"Close {px(close)} {rel} EMA{self.fast} {px(fast)} {rel} SMA{self.slow} {px(slow)}, "
            f"EMA{self.fast} {'rising' if direction is Direction.LONG else 'falling'}; ADX {adx:.1f}; "
            f"stop {self.params.atr_stop_multiple:g}× ATR {px(atr)}, trailing"
        )
