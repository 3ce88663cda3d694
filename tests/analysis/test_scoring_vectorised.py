"""Scoring all candidates of a day at once gives, bit for bit, what scoring each alone gives.

`reference_score` is the one-instrument formula of `joe.analysis.scoring` (the module docstring) as
scalar Python, the way it was computed before scoring was vectorised; the property compares every
total, direction, component and detail on random panels (gaps, late listings, close-only series,
unknown volumes, client sentiment) at random rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features, at, finite
from joe.analysis.scoring import ScoringEngine, _net_long, _readings
from joe.brokers.base import Sentiment
from joe.core.models import Direction

from .synth import close_only_panel, random_walk_panel, same_float


def _clip1(x: float) -> float:
    return max(-1.0, min(1.0, x))


def _band(x: float, zero_lo: float, full_lo: float, full_hi: float, zero_hi: float) -> float:
    if x <= zero_lo or x >= zero_hi:
        return 0.0
    if x < full_lo:
        return (x - zero_lo) / (full_lo - zero_lo)
    if x > full_hi:
        return (zero_hi - x) / (zero_hi - full_hi)
    return 1.0


def reference_score(
    eng: ScoringEngine, f: Features, sym: str, t: int, sent: Sentiment | None
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
        volume_score = math.nan
    sent_score = 50.0
    net = math.nan
    if sent is not None and (sent.long_pct + sent.short_pct) > 0:
        net = (sent.long_pct - sent.short_pct) / (sent.long_pct + sent.short_pct)
        raw = -net if eng.sentiment_mode == "contrarian" else net
        sent_score = 50.0 + 50.0 * _clip1(d * raw / 0.6)
    comps = {
        "trend": 50.0 + 50.0 * d * trend_raw,
        "momentum": 50.0 + 50.0 * d * mom_raw,
        "volatility": vol_score,
        "volume": max(0.0, min(100.0, volume_score)) if finite(volume_score) else math.nan,
        "sentiment": sent_score,
    }
    known = {k: v for k, v in comps.items() if finite(v)}
    total = sum(eng.weights[k] * v for k, v in known.items()) / sum(eng.weights[k] for k in known)
    details = {
        "close": close, "sma50": sma50, "sma200": sma200, "adx": adx, "rsi": rsi, "atr": atr,
        "atr_pct": atr_pct, "macd_hist": hist, "ret63": ret63, "rel_volume": rel_vol,
        "obv_slope": obv_slope, "sentiment_net_long": net,
    }  # fmt: skip
    return total, direction, comps, details


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_dates=st.integers(40, 320),
    nan_frac=st.sampled_from([0.0, 0.05, 0.3]),
    close_only=st.lists(st.integers(0, 7), max_size=3),
    mode=st.sampled_from(["contrarian", "confirming"]),
    data=st.data(),
)
def test_vectorised_scores_equal_one_at_a_time(
    seed: int, n_dates: int, nan_frac: float, close_only: list[int], mode: str, data: st.DataObject
) -> None:
    panel = close_only_panel(random_walk_panel(seed, n_dates, 8, nan_frac), sorted(set(close_only)))
    t = data.draw(st.integers(0, n_dates - 1), label="row")
    pcts = st.floats(0, 100, allow_nan=False)
    sentiment = {
        s: Sentiment(s, data.draw(pcts), data.draw(pcts)) for s in panel.symbols if data.draw(st.booleans())
    }
    eng = ScoringEngine(sentiment_mode=mode)  # type: ignore[arg-type]
    got = {s.symbol: s for s in eng.score(panel, panel.symbols, sentiment, as_of_index=t)}
    f = Features(panel)
    # Unrounded too: every element of the arrays, not only what survives rounding to 4 decimals.
    r = _readings(f, np.arange(panel.n_symbols), t)
    r["sentiment_net_long"] = _net_long(
        np.array([(s.long_pct, s.short_pct) if (s := sentiment.get(sym)) else (np.nan, np.nan)
                  for sym in panel.symbols]).reshape(-1, 2)
    )  # fmt: skip
    with np.errstate(all="ignore"):
        raw_total, raw_sign, raw_comps = eng._score_rows(r)
    for j, sym in enumerate(panel.symbols):
        want = reference_score(eng, f, sym, t, sentiment.get(sym))
        if want is None:
            assert sym not in got
            continue
        s = got[sym]
        assert raw_total[j] == want[0] and raw_sign[j] == want[1].sign
        assert all(same_float(float(raw_comps[k][j]), v) for k, v in want[2].items())
        assert (s.total, s.direction) == (round(want[0], 4), want[1])
        assert s.components.keys() == want[2].keys() and s.details.keys() == want[3].keys()
        assert all(same_float(s.components[k], round(v, 4)) for k, v in want[2].items()), s.components
        assert all(same_float(s.details[k], v) for k, v in want[3].items()), (s.details, want[3])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_dates=st.integers(60, 260),
    nan_frac=st.sampled_from([0.0, 0.3]),
    limit=st.integers(0, 12),
    data=st.data(),
)
def test_a_limit_keeps_the_head_of_the_full_list(
    seed: int, n_dates: int, nan_frac: float, limit: int, data: st.DataObject
) -> None:
    # The pipeline builds only the scores anything reads: they must be the full list's first ones,
    # equal field by field (ties on the rounded total broken by symbol, as in the full sort).
    panel = random_walk_panel(seed, n_dates, 10, nan_frac)
    t = data.draw(st.integers(0, n_dates - 1), label="row")
    eng = ScoringEngine()
    full = eng.score(panel, panel.symbols, as_of_index=t)
    head = eng.score(panel, panel.symbols, as_of_index=t, limit=limit)
    assert len(head) == min(limit, len(full))
    for a, b in zip(head, full, strict=False):
        assert (a.symbol, a.total, a.direction, a.hits, a.as_of) == (
            b.symbol,
            b.total,
            b.direction,
            b.hits,
            b.as_of,
        )
        assert all(same_float(a.components[k], v) for k, v in b.components.items())
        assert all(same_float(a.details[k], v) for k, v in b.details.items())
    assert [s.total for s in full] == sorted((s.total for s in full), reverse=True)


def test_a_negative_limit_is_refused() -> None:
    panel = random_walk_panel(1, 80, 3, 0.0)
    with pytest.raises(ValueError, match="limit"):
        ScoringEngine().score(panel, panel.symbols, limit=-1)
