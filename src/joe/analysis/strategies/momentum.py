"""Momentum: buy 6-month winners that are still accelerating (sell losers, mirrored).

LONG when the 126-bar return >= +10%, close > SMA(50), MACD histogram > 0 and RSI(14) in 50..75
(strong but not exhausted); SHORT when the return <= -10%, close < SMA(50), histogram < 0 and RSI
in 25..50. Confidence grows with the return (10% → 40%) and the histogram in ATR units. Trails.
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
class Momentum:
    """Relative strength over 126 bars confirmed by MACD and RSI."""

    params: StrategyParams = field(default_factory=StrategyParams)
    lookback: int = 126
    min_return: float = 0.10
    name: str = "momentum"
    suited_regimes: frozenset[RegimeLabel] = frozenset(
        {RegimeLabel.BULL_QUIET, RegimeLabel.BULL_VOLATILE, RegimeLabel.BEAR}
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
        readings = zip(
            symbols,
            f.values_at("close", t, symbols),
            f.values_at("pct_change", t, symbols, self.lookback),
            f.values_at("sma", t, symbols, 50),
            f.values_at("macd_hist", t, symbols),
            f.values_at("rsi", t, symbols, 14),
            f.values_at("atr", t, symbols, self.params.atr_period),
            strict=True,
        )
        for sym, close, ret, sma, hist, rsi, atr in readings:
            if not finite(close, ret, sma, hist, rsi, atr) or atr <= 0:
                continue
            if ret >= self.min_return and close > sma and hist > 0 and 50.0 <= rsi <= 75.0:
                direction = Direction.LONG
            elif ret <= -self.min_return and close < sma and hist < 0 and 25.0 <= rsi <= 50.0:
                direction = Direction.SHORT
            else:
                continue
            conf = (
                0.4
                + 0.3 * clamp01((abs(ret) - self.min_return) / 0.30)
                + 0.3 * clamp01(abs(hist) / (0.5 * atr))
            )
            c = propose(
                strategy=self.name,
                symbol=sym,
                direction=direction,
                entry=close,
                atr=atr,
                params=self.params,
                confidence=conf,
                reason=partial(self._reason, direction, ret, close, sma, hist, rsi, atr),
                trail=True,
                meta={"return": ret, "rsi": rsi, "macd_hist": hist},
            )
            if c is not None:
                out.append(c)
        return out

    def _reason(
        self, direction: Direction, ret: float, close: float, sma: float, hist: float, rsi: float, atr: float
    ) -> str:
        return (
            f"{self.lookback}-day return {ret:+.1%} with close {px(close)} "
            f"{'above' if direction is Direction.LONG else 'below'} SMA50 {px(sma)}, MACD histogram "
            f"{hist:+.3g}, RSI {rsi:.1f}; stop {self.params.atr_stop_multiple:g}× ATR {px(atr)}, trailing"
        )
