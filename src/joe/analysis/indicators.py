"""Technical indicators on 1-D float64 arrays: TA-Lib where it has them, our own where it does not.

Alignment: every output has the same length as its input and value `i` depends only on inputs
`0..i` (all indicators are causal, so truncating the future never changes the past). The first
`lookback` values are NaN, exactly as TA-Lib returns them.

NaN handling: TA-Lib skips *leading* NaNs but lets a NaN in the middle of a series poison every
later value of a recursive indicator (EMA, RSI, ATR, ADX...). A symbol in a `Panel` has NaN on
dates where it has no bar, so the wrappers here compress a series to its valid bars, compute,
and scatter the result back (`on_valid`): an indicator then sees the symbol's own bar sequence,
and a date without a bar gets NaN. With no NaN in the input this is exactly TA-Lib's output.

TA-Lib: SMA, EMA, RSI, MACD, ATR, ADX, BBANDS, OBV, MAX, MIN, STDDEV.
Own: realised volatility, rolling percentile rank, percentage change, opening gap, drawdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import talib

FloatArray = np.ndarray

TRADING_DAYS = 252


def _f64(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def on_valid(
    fn: Callable[..., np.ndarray | tuple[np.ndarray, ...]],
    *arrays: np.ndarray,
    n_out: int = 1,
    **params: Any,
) -> tuple[np.ndarray, ...]:
    """Run `fn(*arrays, **params)` on the rows where every input is finite; NaN elsewhere.

    Returns a tuple of `n_out` outputs, each as long as the inputs. When no row is missing the
    inputs go to `fn` untouched, so the result is exactly `fn`'s.
    """
    xs = [_f64(a) for a in arrays]
    n = len(xs[0])
    mask = np.isfinite(xs[0])
    for a in xs[1:]:
        mask &= np.isfinite(a)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return tuple(np.full(n, np.nan) for _ in range(n_out))
    if idx.size == n:
        out = fn(*xs, **params)
        return out if isinstance(out, tuple) else (out,)
    out = fn(*[a[idx] for a in xs], **params)
    outs = out if isinstance(out, tuple) else (out,)
    scattered = []
    for o in outs:
        full = np.full(n, np.nan)
        full[idx] = o
        scattered.append(full)
    return tuple(scattered)


def _one(fn: Callable[..., np.ndarray], *arrays: np.ndarray, **params: Any) -> np.ndarray:
    return on_valid(fn, *arrays, **params)[0]


# -- TA-Lib wrappers ------------------------------------------------------------------------------


def sma(close: np.ndarray, period: int = 20) -> np.ndarray:
    """Simple moving average (TA-Lib SMA)."""
    return _one(talib.SMA, close, timeperiod=period)


def ema(close: np.ndarray, period: int = 20) -> np.ndarray:
    """Exponential moving average (TA-Lib EMA, seeded with the SMA of the first `period` values)."""
    return _one(talib.EMA, close, timeperiod=period)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's relative strength index, 0..100 (TA-Lib RSI); NaN (undefined) over a flat window.

    With no gain and no loss in the last `period` bars RSI is 0/0: TA-Lib returns 0, a maximal
    oversold reading that a flat (suspended, stale, illiquid) series does not deserve. Joe returns
    NaN there, which every consumer treats as "no reading" (neutral).
    """

    def _rsi(c: np.ndarray) -> np.ndarray:
        out = np.asarray(talib.RSI(c, timeperiod=period), dtype=np.float64)
        if len(c) > period:
            hi = talib.MAX(c, timeperiod=period + 1)
            lo = talib.MIN(c, timeperiod=period + 1)
            out = np.where(hi == lo, np.nan, out)
        return out

    return _one(_rsi, close)


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram (TA-Lib MACD)."""
    m, s, h = on_valid(talib.MACD, close, n_out=3, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return m, s, h


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average true range, in price units (TA-Lib ATR, Wilder smoothing)."""
    return _one(talib.ATR, high, low, close, timeperiod=period)


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average directional index, 0..100: trend strength regardless of direction (TA-Lib ADX)."""
    return _one(talib.ADX, high, low, close, timeperiod=period)


def plus_minus_di(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14
) -> tuple[np.ndarray, np.ndarray]:
    """+DI and -DI (TA-Lib PLUS_DI / MINUS_DI): which side the directional movement is on."""
    return _one(talib.PLUS_DI, high, low, close, timeperiod=period), _one(
        talib.MINUS_DI, high, low, close, timeperiod=period
    )


def bbands(
    close: np.ndarray, period: int = 20, nbdev: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (upper, middle, lower) around an SMA, population std (TA-Lib BBANDS)."""
    u, m, lo = on_valid(
        talib.BBANDS, close, n_out=3, timeperiod=period, nbdevup=nbdev, nbdevdn=nbdev, matype=0
    )
    return u, m, lo


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume (TA-Lib OBV)."""
    return _one(talib.OBV, close, volume)


def rolling_max(x: np.ndarray, period: int) -> np.ndarray:
    """Highest value of the last `period` values, including the current one (TA-Lib MAX)."""
    return _one(talib.MAX, x, timeperiod=period)


def rolling_min(x: np.ndarray, period: int) -> np.ndarray:
    """Lowest value of the last `period` values, including the current one (TA-Lib MIN)."""
    return _one(talib.MIN, x, timeperiod=period)


# -- own indicators -------------------------------------------------------------------------------


def shift(x: np.ndarray, n: int = 1) -> np.ndarray:
    """`x` moved `n` steps later (value i is x[i-n]); the first `n` values are NaN."""
    x = _f64(x)
    out = np.full(len(x), np.nan)
    if n < len(x):
        out[n:] = x[: len(x) - n]
    return out


def pct_change(close: np.ndarray, period: int = 1) -> np.ndarray:
    """Fractional change over `period` valid bars: close[i] / close[i-period] - 1."""

    def _pc(c: np.ndarray) -> np.ndarray:
        prev = shift(c, period)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(c / prev - 1.0)

    return _one(_pc, close)


def gaps(open_: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Opening gap: open[i] / close of the previous valid bar - 1."""

    def _gap(o: np.ndarray, c: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(o / shift(c, 1) - 1.0)

    return _one(_gap, open_, close)


def log_returns(close: np.ndarray) -> np.ndarray:
    """Log return of each valid bar against the previous valid bar."""

    def _lr(c: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.log(c / shift(c, 1)))

    return _one(_lr, close)


def realised_vol(close: np.ndarray, period: int = 20, periods_per_year: int = TRADING_DAYS) -> np.ndarray:
    """Annualised realised volatility: sample std of the last `period` log returns × sqrt(year).

    Built on TA-Lib STDDEV (population std) with the n/(n-1) correction.
    """

    def _rv(c: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(c / shift(c, 1))
        if len(r) <= period:
            return np.full(len(r), np.nan)
        sd = talib.STDDEV(r, timeperiod=period, nbdev=1.0)
        return np.asarray(sd * math.sqrt(period / (period - 1)) * math.sqrt(periods_per_year))

    return _one(_rv, close)


def rolling_percentile(x: np.ndarray, period: int = TRADING_DAYS, min_periods: int = 20) -> np.ndarray:
    """Percentile rank (0..1) of each value within the last `period` values, itself included.

    Mid-rank for ties (share of values below plus half the share equal), so a constant series
    sits at 0.5 and the unique maximum of n values at (n - 0.5) / n. NaN until
    `min_periods` valid values are in the window; NaNs inside the window are ignored.
    """
    x = _f64(x)
    n = len(x)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    padded = np.concatenate([np.full(period - 1, np.nan), x])
    win = np.lib.stride_tricks.sliding_window_view(padded, period)
    valid = np.isfinite(win).sum(axis=1)
    with np.errstate(invalid="ignore"):
        below = (win < x[:, None]).sum(axis=1) + 0.5 * (win == x[:, None]).sum(axis=1)
    ok = np.isfinite(x) & (valid >= min_periods)
    out[ok] = below[ok] / valid[ok]
    return out


def drawdown(close: np.ndarray, period: int = TRADING_DAYS) -> np.ndarray:
    """Fractional distance below the highest close of the last `period` bars (0 at a high, >0 below)."""
    peak = _one(talib.MAX, close, timeperiod=period)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(1.0 - _f64(close) / peak)
