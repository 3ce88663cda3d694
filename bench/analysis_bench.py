"""Time the analysis layer on a synthetic 500-instrument × 2,000-daily-bar universe.

Usage: python bench/analysis_bench.py [n_symbols] [n_bars]
Prints per-stage timings of `joe.analysis.analyse` and the TA-Lib-only time of six indicators over
the same bars, for comparison. Synthetic data: geometric random walks with per-symbol drift/vol.
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal

import numpy as np
import pandas as pd
import talib

from joe.analysis import Panel, analyse
from joe.analysis import indicators as ind
from joe.config.schema import ExecutionConfig


def synthetic_panel(n_symbols: int, n_bars: int, seed: int = 7) -> Panel:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=n_bars, tz="UTC")
    drift = rng.normal(0.0003, 0.0005, n_symbols)
    vol = rng.uniform(0.01, 0.03, n_symbols)
    rets = rng.normal(drift, vol, (n_bars, n_symbols))
    close = 50 * np.exp(np.cumsum(rets, axis=0)) * rng.uniform(0.5, 4, n_symbols)
    open_ = close * np.exp(rng.normal(0, vol / 3, (n_bars, n_symbols)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, (n_bars, n_symbols))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, (n_bars, n_symbols))))
    volume = rng.lognormal(13, 0.6, (n_bars, n_symbols))
    return Panel(dates, [f"S{i:03d}" for i in range(n_symbols)], open_, high, low, close, volume)


def main() -> None:
    n_sym = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    n_bars = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    panel = synthetic_panel(n_sym, n_bars)
    spx = pd.Series(panel.close[:, 0], index=panel.dates)
    vix = pd.Series(15 + 5 * np.sin(np.arange(n_bars) / 50), index=panel.dates)
    cfg = ExecutionConfig()

    t0 = time.perf_counter()
    for j in range(n_sym):
        c, h, lo, v = panel.close[:, j], panel.high[:, j], panel.low[:, j], panel.volume[:, j]
        talib.SMA(c, 50), talib.EMA(c, 20), talib.RSI(c, 14), talib.ATR(h, lo, c, 14)
        talib.ADX(h, lo, c, 14), talib.OBV(c, v)
    raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    for j in range(n_sym):
        c, h, lo, v = panel.close[:, j], panel.high[:, j], panel.low[:, j], panel.volume[:, j]
        (
            ind.sma(c, 50),
            ind.ema(c, 20),
            ind.rsi(c, 14),
            ind.atr(h, lo, c, 14),
            ind.adx(h, lo, c, 14),
            ind.obv(c, v),
        )
    wrapped = time.perf_counter() - t0
    print(f"six indicators x {n_sym} x {n_bars}: talib {raw:.3f}s, joe wrappers {wrapped:.3f}s")

    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        res = analyse(panel, spx, vix, {}, cfg, Decimal(100_000))
        total = time.perf_counter() - t0
        best = total if best is None else min(best, total)
    print("stages:", {k: round(v, 4) for k, v in res.timings.items()})
    print(
        f"analyse total (best of 3): {best:.3f}s; regime {res.regime.label}; candidates "
        f"{len(res.scan.candidates)}, scored {len(res.scores)}, signals {len(res.signals)}, "
        f"approved {len(res.approved)}"
    )


if __name__ == "__main__":
    main()
