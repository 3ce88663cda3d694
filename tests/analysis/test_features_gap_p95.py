"""`Features.gap_p95` computes the 95th-percentile opening gap a block of rows at a time (one
`np.percentile` along an axis); each value must be the one-window computation's to the last bit, with
gaps missing here and there, a late first bar and windows of several sizes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from joe.analysis.features import GAP_BLOCK, Features
from joe.analysis.panel import Panel


def _one_window(f: Features, sym: str, t: int, window: int) -> tuple[float, bool]:
    """What gap_p95 computed before blocks: the window's finite gaps, np.percentile(·, 95)."""
    g = f.gaps(sym)[max(0, t - window + 1) : t + 1]
    g = np.abs(g[np.isfinite(g)])
    return (math.nan, False) if g.size < 10 else (float(np.percentile(g, 95)), False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocks_equal_one_window_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = 3 * GAP_BLOCK * 5 + 7, 5
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0)), 2)
    open_ = np.round(close * np.exp(rng.normal(0, 0.01, (n, m))), 2)
    open_[rng.random((n, m)) < 0.03] = np.nan  # a missing open: no gap that day
    close[:23, 2] = np.nan  # listed late
    high, low = np.fmax(open_, close) * 1.01, np.fmin(open_, close) * 0.99
    panel = Panel(pd.bdate_range("2020-01-01", periods=n, tz="UTC"), [f"S{j}" for j in range(m)],
                  open_, high, low, close, np.ones((n, m)))  # fmt: skip
    f = Features(panel)
    blocked = 0
    for sym in panel.symbols:
        for window in (60, 20, 11, 10):
            for t in range(n):
                got, want = f.gap_p95(sym, t, window), _one_window(f, sym, t, window)
                assert got[1] == want[1]
                assert got[0] == want[0] or (math.isnan(got[0]) and math.isnan(want[0])), (sym, window, t)
                blocked += math.isfinite(want[0])
    assert blocked > 1000
