"""Breakout: a close through the prior N-day high (low) on heavy volume (Donchian / turtle style).

LONG when close > the highest high of the previous 55 bars and volume >= 1.5× its 20-day average;
SHORT mirrored on the 55-day low. Confidence grows with relative volume (1.5× → 3×) and ADX
(15 → 40). Trails its stop.
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
class Breakout:
    """Close beyond the prior channel on volume."""

    params: StrategyParams = field(default_factory=StrategyParams)
    channel: int = 55
    volume_multiple: float = 1.5
    name: str = "breakout"
    suited_regimes: frozenset[RegimeLabel] = frozenset(
        {RegimeLabel.BULL_QUIET, RegimeLabel.BULL_VOLATILE, RegimeLabel.RANGE}
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
            f.values_at("prior_high", t, symbols, self.channel),
            f.values_at("prior_low", t, symbols, self.channel),
            f.values_at("volume", t, symbols),
            f.values_at("avg_volume", t, symbols, 20),
            f.values_at("atr", t, symbols, period),
            f.values_at("adx", t, symbols, period),
            strict=True,
        )
        for sym, close, hi, lo, vol, avg_vol, atr, adx in readings:
            if not finite(close, hi, lo, vol, avg_vol, atr) or avg_vol <= 0:
                continue
            rel_vol = vol / avg_vol
            if rel_vol < self.volume_multiple:
                continue
            if close > hi:
                direction, level, word = Direction.LONG, hi, "high"
            elif close < lo:
                direction, level, word = Direction.SHORT, lo, "low"
            else:
                continue
            conf = 0.4 + 0.3 * clamp01((rel_vol - self.volume_multiple) / 1.5)
            conf += 0.3 * clamp01((adx - 15.0) / 25.0) if finite(adx) else 0.0
            c = propose(
                strategy=self.name,
                symbol=sym,
                direction=direction,
                entry=close,
                atr=atr,
                params=self.params,
                confidence=conf,
                reason=partial(self._reason, close, word, level, rel_vol, adx, atr),
                trail=True,
                meta={"level": level, "rel_volume": rel_vol, "adx": adx},
            )
            if c is not None:
                out.append(c)
        return out

    def _reason(self, close: float, word: str, level: float, rel_vol: float, adx: float, atr: float) -> str:
        adx_txt = f"; ADX {adx:.0f}" if finite(adx) else ""
        return (
            f"Close {px(close)} broke the {self.channel}-day {word} {px(level)} on {rel_vol:.1f}× "
            f"average volume{adx_txt}; stop {self.params.atr_stop_multiple:g}× ATR {px(atr)}, trailing"
        )
