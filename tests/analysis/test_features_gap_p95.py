"""`Features.gap_p95` computes the 95th-percentile opening gap a block of rows at a time (one
`np.percentile` along an axis); each value must be the one-window computation's to the last bit, with
gaps missing here and there, a late first bar and windows of several sizes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from joe.analysis.features import GAP_BLOCK, Features, percentile, window_percentile
from joe.analysis.panel import Panel


def _one_window(f: Features, sym: str, t: int, window: int) -> tuple[float, bool]:
    """What gap_p95 computed before blocks: the window's finite gaps, np.percentile(·, 95)."""
    g = f.gaps(sym)[max(0, t - window + 1) : t + 1]
    g = np.abs(g[np.isfinite(g)])
    return (math.nan, False) if g.size < 10 else (float(np.percentile(g, 95)), False)


@pytest.mark.parametrize("every_row", [False, True])  # blocks (a run), every row at once (a backtest)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocks_equal_one_window_bit_for_bit(seed: int, every_row: bool) -> None:
    rng = np.random.default_rng(seed)
    n, m = 3 * GAP_BLOCK * 5 + 7, 5
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0)), 2)
    open_ = np.round(close * np.exp(rng.normal(0, 0.01, (n, m))), 2)
    open_[rng.random((n, m)) < 0.03] = np.nan  # a missing open: no gap that day
    close[:23, 2] = np.nan  # listed late
    high, low = np.fmax(open_, close) * 1.01, np.fmin(open_, close) * 0.99
    panel = Panel(pd.bdate_range("2020-01-01", periods=n, tz="UTC"), [f"S{j}" for j in range(m)],
                  open_, high, low, close, np.ones((n, m)))  # fmt: skip
    f = Features(panel, every_row=every_row)
    blocked = 0
    for sym in panel.symbols:
        for window in (60, 20, 11, 10):
            for t in range(n):
                got, want = f.gap_p95(sym, t, window), _one_window(f, sym, t, window)
                assert got[1] == want[1]
                assert got[0] == want[0] or (math.isnan(got[0]) and math.isnan(want[0])), (sym, window, t)
                blocked += math.isfinite(want[0])
    assert blocked > 1000


@pytest.mark.parametrize("window", [1, 2, 7, 60])
@pytest.mark.parametrize("q", [0, 5, 50, 95, 100, 37.5])
def test_window_percentile_is_numpys_on_each_window(window: int, q: float) -> None:
    rng = np.random.default_rng(window)
    x = np.abs(rng.standard_t(3, (300, 4))) * 0.01
    x[rng.random(x.shape) < 0.02] = np.nan
    x[5, 1] = np.inf  # not a value: no percentile over a window holding it
    x[100:140, 2] = 0.0125  # ties
    got = window_percentile(x, window, q)
    for j in range(x.shape[1]):
        for i in range(x.shape[0]):
            w = x[max(0, i - window + 1) : i + 1, j]
            if i < window - 1 or not np.isfinite(w).all():
                assert math.isnan(got[i, j])
            else:
                assert got[i, j] == np.percentile(w, q), (i, j)


def test_window_percentile_refuses_a_bad_window_or_q() -> None:
    with pytest.raises(ValueError, match="window"):
        window_percentile(np.zeros((5, 1)), 0, 95)
    with pytest.raises(ValueError, match="q within"):
        window_percentile(np.zeros((5, 1)), 3, 101)


@given(
    x=hnp.arrays(np.float64, st.integers(1, 130), elements=st.floats(-1e6, 1e6, allow_nan=False)),
    q=st.one_of(st.sampled_from([0.0, 5.0, 50.0, 95.0, 100.0]), st.floats(0, 100)),
    ties=st.booleans(),
)
def test_percentile_is_numpys_bit_for_bit(x: np.ndarray, q: float, ties: bool) -> None:
    if ties:  # many equal values, as prices on a tick grid give
        x = np.round(x, -5)
    assert percentile(x, q) == np.percentile(x, q)  # (a signed zero's sign may differ: == is the claim)
    a = np.abs(x)  # the gaps' case: no negative zero, so the same bits
    assert np.float64(percentile(a, q)).tobytes() == np.percentile(a, q).tobytes()
