"""The market part of a signal's risk profile: what its volatility, gap and liquidity dimensions read
of the market, with no book and no equity.

Three of the five dimensions (`joe.analysis.risk`) depend on the market up to the signal's bar and
on the signal's own entry and stop only:
  * volatility: 20-day realised vol (20% → 0, 100% → 100; veto >= 150%) blended with ATR % of the
    entry (1% → 0, 8% → 100);
  * gap_event: the 95th percentile of the last 60 opening gaps against the stop distance (veto when
    it is >= 1.5× the stop distance; estimated from close-to-close volatility on close-only data);
  * liquidity's market input: the 20-day average dollar volume (the dimension itself also reads the
    position's notional, so it is finished by the profiler once the signal is sized).
So they are computed with the rest of the market analysis (`joe.analysis.pipeline.analyse_market`):
in a run, just before the book part; in a backtest, by its analysis worker ahead of the book
(`joe.backtest.feed`). `RiskProfiler.assess` uses a `MarketRisk` only while the signal's symbol, row, entry
and stop are the ones it was computed for (a broker's price grid may move them: then it computes its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from joe.analysis.features import Features, at, finite
from joe.core.models import Signal

__all__ = ["DimensionScore", "MarketRisk", "gap_dimension", "market_risk", "volatility_dimension"]


@dataclass(frozen=True)
class DimensionScore:
    """One risk dimension: 0 (benign) .. 100 (extreme), a veto flag and why."""

    score: float
    detail: str
    veto: bool = False


def lin(x: float, lo: float, hi: float) -> float:
    """0..100 as x goes from lo to hi (either order), clipped; 50 for a value that is not finite."""
    if not math.isfinite(x):
        return 50.0
    return 100.0 * max(0.0, min(1.0, (x - lo) / (hi - lo)))


@dataclass(frozen=True)
class MarketRisk:
    """The market-only dimensions of one signal, and what they were computed for: its symbol, the
    panel row (the as-of bar), entry and stop (quote currency). `adv`: 20-day average dollar volume in
    quote currency, NaN when unknown."""

    symbol: str
    row: int
    entry: Decimal
    stop_loss: Decimal
    volatility: DimensionScore
    gap_event: DimensionScore
    adv: float

    def fits(self, signal: Signal, row: int) -> bool:
        """True when these were computed for `signal`'s symbol, entry and stop at panel row `row`."""
        return (
            self.row == row
            and self.entry == signal.entry
            and self.stop_loss == signal.stop_loss
            and self.symbol == signal.symbol
        )

    def __reduce__(self) -> tuple[Callable[..., MarketRisk], tuple[Any, ...]]:
        # Sent by a backtest's analysis worker for every signal of every day: plain values, not three
        # objects' attribute dicts (half the pickling).
        v, g = self.volatility, self.gap_event
        values = (self.symbol, self.row, self.entry, self.stop_loss, v.score, v.detail, v.veto, g.score,
                  g.detail, g.veto, self.adv)  # fmt: skip
        return _from_values, values


def _from_values(
    symbol: str, row: int, entry: Decimal, stop: Decimal, vs: float, vd: str, vv: bool, gs: float, gd: str,
    gv: bool, adv: float,
) -> MarketRisk:  # fmt: skip
    """`MarketRisk.__reduce__`'s values back as one."""
    return MarketRisk(symbol, row, entry, stop, DimensionScore(vs, vd, vv), DimensionScore(gs, gd, gv), adv)


def volatility_dimension(f: Features, sym: str, t: int, entry: float) -> DimensionScore:
    """Realised vol and ATR % of `entry` at row `t` (module docstring)."""
    rv = at(f.realised_vol(sym, 20), t)
    atr = at(f.atr(sym), t)
    atr_pct = atr / entry if finite(atr) and entry > 0 else math.nan
    score = 0.5 * lin(rv, 0.20, 1.00) + 0.5 * lin(atr_pct, 0.01, 0.08)
    veto = finite(rv) and rv >= 1.5
    return DimensionScore(score, f"realised vol {rv:.0%}, ATR {atr_pct:.2%} of price", veto)


def gap_dimension(f: Features, sym: str, t: int, stop_pct: float) -> DimensionScore:
    """The 95th percentile opening gap against the stop distance `stop_pct` (a fraction of the entry)."""
    p95, estimated = f.gap_p95(sym, t, 60)
    if not finite(p95) or not finite(stop_pct) or stop_pct <= 0:
        return DimensionScore(50.0, "too little gap history")
    ratio = p95 / stop_pct
    how = "estimated from close-to-close volatility (close-only data)" if estimated else "95th pct gap"
    return DimensionScore(
        lin(ratio, 0.2, 1.0),
        f"{how} {p95:.2%} vs stop distance {stop_pct:.2%}",
        veto=ratio >= 1.5,
    )


def average_dollar_volume(f: Features, sym: str, t: int) -> float:
    """20-day average dollar volume at row `t` (NaN when the volume is unknown)."""
    return at(f.dollar_volume(sym, 20), t)


def market_risk(signal: Signal, f: Features, t: int) -> MarketRisk:
    """The market-only dimensions of `signal` at row `t` of `f`'s panel, which must hold its symbol
    (`RiskProfiler.assess` calls this itself when no `MarketRisk` computed ahead fits the signal)."""
    sym = signal.symbol
    entry = float(signal.entry)
    stop_dist = float(abs(signal.entry - signal.stop_loss))
    return MarketRisk(
        sym,
        t,
        signal.entry,
        signal.stop_loss,
        volatility_dimension(f, sym, t, entry),
        gap_dimension(f, sym, t, stop_dist / entry if entry > 0 else math.nan),
        average_dollar_volume(f, sym, t),
    )
