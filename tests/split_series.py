"""Shared by the split tests (tests/data/test_held_split.py, tests/backtest/test_split_settle.py): the
hostile reviewer's price generator (seeds 0-7 open longs and shorts before row 400) and a CSV writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def series(seed: int, n: int = 420, price: float = 100.0) -> pd.DataFrame:
    """`n` business days of OHLCV from 2022-01-03: a drifting random walk from `price`, seeded."""
    rng = np.random.default_rng(seed)
    c = price * np.exp(np.cumsum(rng.normal(0.0004, 0.015, n)))
    o = c * np.exp(rng.normal(0, 0.004, n))
    o[1:] = c[:-1] * np.exp(rng.normal(0, 0.004, n - 1))
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 0.006, n)))
    lo = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 0.006, n)))
    v = rng.integers(800000, 1200000, n).astype(float)
    idx = pd.bdate_range("2022-01-03", periods=n)
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": v}, index=idx)


def write_csvs(folder: Path, frames: dict[str, pd.DataFrame]) -> None:
    """One `SYMBOL.csv` per frame (date,open,high,low,close,volume) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for sym, df in frames.items():
        out = df.copy()
        out.insert(0, "date", [d.strftime("%Y-%m-%d") for d in df.index])
        out.to_csv(folder / f"{sym}.csv", index=False)
