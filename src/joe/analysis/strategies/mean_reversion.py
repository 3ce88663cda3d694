"""Mean reversion: fade a stretched move outside the Bollinger bands.

LONG when close < lower band (20, 2σ) and RSI(14) <= 35; SHORT when close > upper band and
RSI(14) >= 65. Confidence grows with the RSI extreme (35 → 15) and the overshoot past the band
in ATR units (0 → 1 ATR). No trailing stop: the trade expects a snap back, not a run.
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
class MeanReversion:
    """Bollinger band + RSI extremes, faded."""

    params: StrategyParams = field(default_factory=StrategyParams)
    band_period: int = 20
    band_dev: float = 2.0
    rsi_low: float = 35.0
    rsi_high: float = 65.0
    name: str = "mean_reversion"
    suited_regimes: frozenset[RegimeLabel] = frozenset({RegimeLabel.RANGE, RegimeLabel.BULL_QUIET})

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
        bands = (self.band_period, self.band_dev)
        readings = zip(
            symbols,
            f.values_at("close", t, symbols),
            f.values_at("bb_upper", t, symbols, *bands),
            f.values_at("bb_lower", t, symbols, *bands),
            f.values_at("rsi", t, symbols, 14),
            f.values_at("atr", t, symbols, self.params.atr_period),
            strict=True,
        )
        for sym, close, upper, lower, rsi, atr in readings:
            if not finite(close, upper, lower, rsi, atr) or atr <= 0:
                continue
            if close < lower and rsi <= self.rsi_low:
                direction, band, over, rsi_depth = Direction.LONG, lower, lower - close, self.rsi_low - rsi
                where = "below the lower"
            elif close > upper and rsi >= self.rsi_high:
                direction, band, over, rsi_depth = Direction.SHORT, upper, close - upper, rsi - self.rsi_high
                where = "above the upper"
            else:
                continue
            conf = 0.4 + 0.3 * clamp01(rsi_depth / 20.0) + 0.3 * clamp01(over / atr)
            c = propose(
                strategy=self.name,
                symbol=sym,
                direction=direction,
                entry=close,
                atr=atr,
                params=self.params,
                confidence=conf,
                reason=partial(self._reason, close, where, band, rsi, atr),
                trail=False,
                meta={"rsi": rsi, "band": band},
            )
            if c is not None:
                out.append(c)
        return out

    def _reason(self, close: float, where: str, band: float, rsi: float, atr: float) -> str:
        return (
            f"Close {px(close)} {where} Bollinger band {px(band)} "
            f"({self.band_period}, {self.band_dev:g}σ) "
            f"with RSI {rsi:.1f}; fading back toward the mean; stop {self.params.atr_stop_multiple:g}× "
            f"ATR {px(atr)}"
        )
