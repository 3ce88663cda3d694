"""`ScoringEngine`: technical + sentiment score, 0..100, with its component breakdown.

Each instrument first gets a *bias* — LONG when trend and momentum together point up, SHORT when
they point down — and every directional component is then scored in the direction of that bias,
so a clean downtrend scores as high as a clean uptrend and the strategies can trade either way.
50 is neutral in every component.

Components (0..100) and default weights:
  * trend (0.30): close vs 50-day SMA and 50-day vs 200-day SMA (EMA-20 vs SMA-50 while the
    200-day is not yet available), each at full weight 5% away; scaled by trend strength
    (ADX 15 → half, ADX 40 → full).
  * momentum (0.25): RSI(14) distance from 50, MACD histogram in ATR units, and the 63-day
    return in units of its own volatility.
  * volatility (0.15): tradability of the ATR as a % of price: 100 between 1% and 3%, down to
    0 at 0.2% (too quiet to pay costs) and at 8% (too wild to size sensibly).
  * volume (0.15): OBV slope over 20 bars in the bias direction (confirmation), plus today's
    volume relative to its 20-day average (attention). Unknown volume (close-only data) is NaN
    ("no reading"), not a neutral 50: the component drops out and the others are re-weighted.
  * sentiment (0.15): client positioning where the source provides it (Capital.com client
    sentiment). Default *contrarian*: a crowd that is 80% long scores low for a LONG bias and high
    for a SHORT bias, because retail crowding tends to mark exhaustion. `sentiment_mode=
    "confirming"` flips it. No data → 50 (neutral).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from joe.analysis.features import Features, at, finite
from joe.analysis.panel import Panel
from joe.analysis.scanner import ScanCandidate
from joe.brokers.base import Sentiment
from joe.core.models import Direction

DEFAULT_WEIGHTS: dict[str, float] = {
    "trend": 0.30,
    "momentum": 0.25,
    "volatility": 0.15,
    "volume": 0.15,
    "sentiment": 0.15,
}


@dataclass(frozen=True)
class InstrumentScore:
    """Score of one instrument at one date: total 0..100, bias and the 0..100 components."""

    symbol: str
    total: float
    direction: Direction
    components: dict[str, float]
    as_of: pd.Timestamp
    hits: tuple[str, ...] = ()
    details: dict[str, float] = field(default_factory=dict)


def _clip1(x: float) -> float:
    return max(-1.0, min(1.0, x))


def _band(x: float, zero_lo: float, full_lo: float, full_hi: float, zero_hi: float) -> float:
    """1 inside [full_lo, full_hi], falling linearly to 0 at zero_lo and zero_hi."""
    if x <= zero_lo or x >= zero_hi:
        return 0.0
    if x < full_lo:
        return (x - zero_lo) / (full_lo - zero_lo)
    if x > full_hi:
        return (zero_hi - x) / (zero_hi - full_hi)
    return 1.0


class ScoringEngine:
    """Score candidates from a panel's indicators and optional client sentiment."""

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        sentiment_mode: Literal["contrarian", "confirming"] = "contrarian",
    ) -> None:
        w = dict(weights or DEFAULT_WEIGHTS)
        unknown = set(w) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown score components: {sorted(unknown)}")
        total = sum(w.values())
        if total <= 0:
            raise ValueError("weights must sum to a positive number")
        self.weights = {k: w.get(k, 0.0) / total for k in DEFAULT_WEIGHTS}
        self.sentiment_mode = sentiment_mode

    def score(
        self,
        panel: Panel,
        candidates: Iterable[ScanCandidate | str],
        sentiment: Mapping[str, Sentiment] | None = None,
        as_of_index: int | None = None,
        features: Features | None = None,
    ) -> list[InstrumentScore]:
        """Score each candidate at row `as_of_index` (the last row when None), best first.

        Candidates without a bar on that date or without 50 bars of history are skipped.
        """
        t = panel.n_dates - 1 if as_of_index is None else as_of_index
        f = features or Features(panel)
        sentiment = sentiment or {}
        out: list[InstrumentScore] = []
        for cand in candidates:
            sym, hits = (cand, ()) if isinstance(cand, str) else (cand.symbol, cand.hits)
            if sym not in panel:
                continue
            s = self._score_one(f, sym, t, sentiment.get(sym))
            if s is not None:
                out.append(
                    InstrumentScore(
                        symbol=sym,
                        total=s[0],
                        direction=s[1],
                        components=s[2],
                        as_of=panel.dates[t],
                        hits=tuple(hits),
                        details=s[3],
                    )
                )
        out.sort(key=lambda x: (-x.total, x.symbol))
        return out

    def _score_one(
        self, f: Features, sym: str, t: int, sent: Sentiment | None
    ) -> tuple[float, Direction, dict[str, float], dict[str, float]] | None:
        close = at(f.close(sym), t)
        sma50 = at(f.sma(sym, 50), t)
        if not finite(close, sma50) or close <= 0:
            return None
        sma200 = at(f.sma(sym, 200), t)
        ema20 = at(f.ema(sym, 20), t)
        adx = at(f.adx(sym), t)
        rsi = at(f.rsi(sym), t)
        atr = at(f.atr(sym), t)
        hist = at(f.macd_hist(sym), t)
        ret63 = at(f.pct_change(sym, 63), t)
        rv = at(f.realised_vol(sym, 63), t)

        # -- directional raw readings in -1..1 --
        slow = (sma50 / sma200 - 1.0) if finite(sma200) else (ema20 / sma50 - 1.0)
        trend_raw = _clip1(((close / sma50 - 1.0) / 0.05 + (slow if finite(slow) else 0.0) / 0.05) / 2.0)
        strength = 0.5 + 0.5 * min(1.0, max(0.0, (adx - 15.0) / 25.0)) if finite(adx) else 0.5
        trend_raw *= strength
        mom_parts = []
        if finite(rsi):
            mom_parts.append(_clip1((rsi - 50.0) / 25.0))
        if finite(hist, atr) and atr > 0:
            mom_parts.append(_clip1(hist / (0.5 * atr)))
        if finite(ret63, rv) and rv > 0:
            mom_parts.append(_clip1(ret63 / (rv * math.sqrt(63 / 252)) / 2.0))
        mom_raw = float(np.mean(mom_parts)) if mom_parts else 0.0
        direction = Direction.LONG if trend_raw + mom_raw >= 0 else Direction.SHORT
        d = direction.sign

        atr_pct = atr / close if finite(atr) else math.nan
        vol_score = 100.0 * _band(atr_pct, 0.002, 0.01, 0.03, 0.08) if finite(atr_pct) else 50.0
        obv_slope = at(f.obv_slope(sym), t)
        avg_v = at(f.avg_volume(sym), t)
        v_t = at(f.volume(sym), t)
        rel_vol = v_t / avg_v if finite(v_t, avg_v) and avg_v > 0 else 1.0
        volume_score = 50.0
        if finite(obv_slope):
            volume_score += 25.0 * _clip1(d * obv_slope * 2.0)
        volume_score += 25.0 * _clip1((rel_vol - 1.0) / 1.5)
        if not f.volume_known(sym, t):
            volume_score = math.nan  # unknown volume is no reading, not a neutral 50

        sent_score = 50.0
        net = math.nan
        if sent is not None and (sent.long_pct + sent.short_pct) > 0:
            net = (sent.long_pct - sent.short_pct) / (sent.long_pct + sent.short_pct)
            raw = -net if self.sentiment_mode == "contrarian" else net
            sent_score = 50.0 + 50.0 * _clip1(d * raw / 0.6)

        comps = {
            "trend": 50.0 + 50.0 * d * trend_raw,
            "momentum": 50.0 + 50.0 * d * mom_raw,
            "volatility": vol_score,
            "volume": max(0.0, min(100.0, volume_score)) if finite(volume_score) else math.nan,
            "sentiment": sent_score,
        }
        # Components without a reading (NaN: unknown volume) drop out; the others are re-weighted.
        known = {k: v for k, v in comps.items() if finite(v)}
        total = sum(self.weights[k] * v for k, v in known.items()) / sum(self.weights[k] for k in known)
        details = {
            "close": close,
            "sma50": sma50,
            "sma200": sma200,
            "adx": adx,
            "rsi": rsi,
            "atr": atr,
            "atr_pct": atr_pct,
            "macd_hist": hist,
            "ret63": ret63,
            "rel_volume": rel_vol,
            "obv_slope": obv_slope,
            "sentiment_net_long": net,
        }
        return round(total, 4), direction, {k: round(v, 4) for k, v in comps.items()}, details
