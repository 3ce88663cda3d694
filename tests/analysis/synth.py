"""Shared helpers for the analysis tests: the real SPX/VIX shipped in `joe.data.sample`, synthetic panels."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from joe.analysis.panel import Panel


@functools.lru_cache(maxsize=1)
def _sample() -> tuple[pd.DataFrame, pd.Series]:
    """The real S&P 500 bars (2013-2018) and VIX closes (2014-2018) shipped in `joe.data.sample`."""
    from joe.data.sample import SampleSource

    src = SampleSource(n_synthetic=0)
    spx = src.history_now("SPX")
    spx = spx.loc[(spx.index >= "2013-01-01") & (spx.index <= "2018-12-31")]
    vix = src.history_now("VIX")["close"]
    vix = vix.loc[(vix.index >= "2014-01-01") & (vix.index <= "2018-12-31")]
    return spx, vix


def spx_frame() -> pd.DataFrame:
    """Real S&P 500 daily bars 2013-2018 (history frame format), from the shipped sample data."""
    return _sample()[0][["open", "high", "low", "close", "volume"]].copy()


def vix_series() -> pd.Series:
    """Real VIX closes 2014-2018, from the shipped sample data."""
    return _sample()[1].dropna().copy()


def random_walk_panel(
    seed: int,
    n_dates: int = 300,
    n_symbols: int = 6,
    nan_frac: float = 0.0,
    trend: float = 0.0,
    start: str = "2016-01-04",
) -> Panel:
    """Geometric random walks with per-symbol drift and vol; optional missing bars and late listings."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n_dates, tz="UTC")
    drift = rng.normal(trend, 0.002, n_symbols)
    vol = rng.uniform(0.008, 0.03, n_symbols)
    # Regime switches in drift make trends, breakouts and reversals all show up.
    switch = np.where(rng.random((n_dates, 1)) < 0.01, rng.normal(0, 0.004, (n_dates, n_symbols)), 0.0)
    rets = rng.normal(drift + np.cumsum(switch, axis=0), vol, (n_dates, n_symbols))
    close = rng.uniform(5, 200, n_symbols) * np.exp(np.cumsum(rets, axis=0))
    open_ = close * np.exp(rng.normal(0, vol / 2, (n_dates, n_symbols)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, (n_dates, n_symbols))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, (n_dates, n_symbols))))
    volume = rng.lognormal(14, 0.5, (n_dates, n_symbols))
    volume[rng.random((n_dates, n_symbols)) < 0.03] *= 4  # volume spikes
    arrays = [open_, high, low, close, volume]
    if nan_frac > 0:
        holes = rng.random((n_dates, n_symbols)) < nan_frac
        late = rng.integers(0, n_dates // 4, n_symbols)  # listed later
        for j, k in enumerate(late):
            holes[: int(k), j] = True
        for a in arrays:
            a[holes] = np.nan
    return Panel(dates, [f"S{j}" for j in range(n_symbols)], *arrays)


def same_float(a: float, b: float) -> bool:
    """Equal, or both NaN (bit-for-bit comparisons of two computations of one value)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def close_only_panel(p: Panel, cols: list[int]) -> Panel:
    """`p` with the columns `cols` made of closes only (open = previous close, no volume)."""
    o, h, lo, c, v = (getattr(p, k).copy() for k in ("open", "high", "low", "close", "volume"))
    for j in cols:
        prev = np.concatenate([[c[0, j]], c[:-1, j]])
        o[:, j] = prev
        h[:, j] = np.maximum(prev, c[:, j])
        lo[:, j] = np.minimum(prev, c[:, j])
        v[:, j] = np.nan
    return Panel(p.dates, p.symbols, o, h, lo, c, v)
