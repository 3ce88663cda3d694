"""Indicator wrappers equal TA-Lib on real data; NaN handling, alignment and causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis import indicators as ind

from .synth import spx_frame

SPX = spx_frame()
C = SPX["close"].to_numpy()
H = SPX["high"].to_numpy()
L = SPX["low"].to_numpy()
OPEN = SPX["open"].to_numpy()
V = SPX["volume"].to_numpy()


def eq(a: np.ndarray, b: np.ndarray) -> None:
    """Identical, NaN included, same length."""
    assert len(a) == len(b)
    np.testing.assert_array_equal(a, b)


def test_wrappers_equal_talib_on_real_spx() -> None:
    eq(ind.sma(C, 50), talib.SMA(C, timeperiod=50))
    eq(ind.ema(C, 20), talib.EMA(C, timeperiod=20))
    eq(ind.rsi(C, 14), talib.RSI(C, timeperiod=14))
    for mine, theirs in zip(ind.macd(C), talib.MACD(C, 12, 26, 9), strict=True):
        eq(mine, theirs)
    eq(ind.atr(H, L, C, 14), talib.ATR(H, L, C, timeperiod=14))
    eq(ind.adx(H, L, C, 14), talib.ADX(H, L, C, timeperiod=14))
    pdi, mdi = ind.plus_minus_di(H, L, C, 14)
    eq(pdi, talib.PLUS_DI(H, L, C, timeperiod=14))
    eq(mdi, talib.MINUS_DI(H, L, C, timeperiod=14))
    for mine, theirs in zip(ind.bbands(C, 20, 2.0), talib.BBANDS(C, 20, 2.0, 2.0), strict=True):
        eq(mine, theirs)
    eq(ind.obv(C, V), talib.OBV(C, V))
    eq(ind.rolling_max(H, 55), talib.MAX(H, timeperiod=55))
    eq(ind.rolling_min(L, 55), talib.MIN(L, timeperiod=55))


def test_lookback_alignment_matches_talib() -> None:
    out = ind.sma(C, 50)
    assert np.isnan(out[:49]).all() and np.isfinite(out[49:]).all()
    assert out[49] == np.mean(C[:50]) or abs(out[49] - np.mean(C[:50])) < 1e-9
    assert np.isnan(ind.rsi(C, 14)[:14]).all() and np.isfinite(ind.rsi(C, 14)[14])


def test_leading_nan_is_skipped_like_talib() -> None:
    x = C[:300].copy()
    x[:30] = np.nan
    eq(ind.ema(x, 20), talib.EMA(x, timeperiod=20))
    assert np.isnan(ind.ema(x, 20)[:49]).all() and np.isfinite(ind.ema(x, 20)[49])


def test_internal_nan_does_not_poison_the_rest() -> None:
    x, h, lo = C[:400].copy(), H[:400].copy(), L[:400].copy()
    gap = [100, 101, 250]
    x[gap] = np.nan
    keep = np.setdiff1d(np.arange(400), gap)
    # TA-Lib alone would return NaN from the first gap on for a recursive indicator.
    assert np.isnan(talib.EMA(x, timeperiod=20)[300])
    got = ind.ema(x, 20)
    assert np.isnan(got[gap]).all()
    np.testing.assert_array_equal(got[keep], talib.EMA(x[keep], timeperiod=20))
    a = ind.atr(h, lo, x, 14)
    np.testing.assert_array_equal(a[keep], talib.ATR(h[keep], lo[keep], x[keep], timeperiod=14))
    assert np.isnan(a[gap]).all()


def test_all_nan_and_short_inputs() -> None:
    assert np.isnan(ind.rsi(np.full(30, np.nan), 14)).all()
    assert np.isnan(ind.sma(np.array([1.0, 2.0]), 5)).all()
    assert len(ind.macd(np.array([]))[0]) == 0
    assert np.isnan(ind.realised_vol(np.array([1.0, 1.1, 1.2]), 20)).all()


def test_own_indicators_against_pandas() -> None:
    s = pd.Series(C)
    lr = np.log(s / s.shift(1))
    np.testing.assert_allclose(ind.realised_vol(C, 20), lr.rolling(20).std() * np.sqrt(252), rtol=1e-6)
    np.testing.assert_allclose(ind.pct_change(C, 5), s.pct_change(5, fill_method=None), rtol=1e-12)
    np.testing.assert_allclose(ind.gaps(OPEN, C), OPEN / s.shift(1) - 1, rtol=1e-12)
    np.testing.assert_allclose(ind.drawdown(C, 252), 1 - s / s.rolling(252).max(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ind.log_returns(C), lr, rtol=1e-12)


def test_rolling_percentile_definition() -> None:
    x = np.array([5.0, 1.0, 3.0, np.nan, 4.0, 9.0, 2.0])
    out = ind.rolling_percentile(x, period=3, min_periods=2)
    # Window of 3 ending at each point, NaNs ignored, mid-rank: (below + equal / 2) / valid.
    assert np.isnan(out[0])  # one value only
    assert out[1] == 0.25  # [5, 1]: 1 is the lowest of two
    assert out[2] == 0.5  # [5, 1, 3]
    assert np.isnan(out[3])  # the current value is missing
    assert out[4] == 0.75  # [3, nan, 4]
    assert out[5] == 0.75  # [nan, 4, 9]
    assert out[6] == 1 / 6  # [4, 9, 2]
    assert (ind.rolling_percentile(np.full(10, 7.0), 5, 1) == 0.5).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    cut=st.integers(5, 199),
    nan_frac=st.sampled_from([0.0, 0.05, 0.3]),
)
def test_indicators_are_causal(seed: int, cut: int, nan_frac: float) -> None:
    """Truncating the future never changes a past value (the no-look-ahead base)."""
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 200)))
    h, lo, o = c * 1.01, c * 0.99, c * (1 + rng.normal(0, 0.005, 200))
    v = rng.lognormal(10, 1, 200)
    c[rng.random(200) < nan_frac] = np.nan
    fns = [
        lambda c, h, lo, o, v: ind.ema(c, 10),
        lambda c, h, lo, o, v: ind.rsi(c, 14),
        lambda c, h, lo, o, v: ind.macd(c)[2],
        lambda c, h, lo, o, v: ind.atr(h, lo, c, 14),
        lambda c, h, lo, o, v: ind.adx(h, lo, c, 14),
        lambda c, h, lo, o, v: ind.bbands(c, 20)[2],
        lambda c, h, lo, o, v: ind.obv(c, v),
        lambda c, h, lo, o, v: ind.realised_vol(c, 20),
        lambda c, h, lo, o, v: ind.rolling_percentile(c, 50, 10),
        lambda c, h, lo, o, v: ind.gaps(o, c),
        lambda c, h, lo, o, v: ind.drawdown(c, 30),
    ]
    for fn in fns:
        full = fn(c, h, lo, o, v)
        part = fn(c[:cut], h[:cut], lo[:cut], o[:cut], v[:cut])
        np.testing.assert_array_equal(full[:cut], part)
