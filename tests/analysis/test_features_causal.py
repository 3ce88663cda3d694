"""Every indicator a backtest computes once over the whole history is causal: its value at row t is
the value computed on the panel cut after row t (the data ending at t), bit for bit.

The close-only flag included: it is measured on the bars up to t, so a series that is close-only for
years and gains real opens/highs/lows later is close-only (and its ATR estimated from closes) on the
early rows, as a run on those days saw it — not flagged by bars that came after.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features
from joe.analysis.panel import Panel

from .synth import random_walk_panel

# (method, params) as scoring, the strategies and the risk profiler read them.
SERIES = [
    ("sma", (50,)), ("sma", (200,)), ("ema", (20,)), ("rsi", (14,)), ("macd_hist", ()), ("atr", (14,)),
    ("adx", (14,)), ("obv_slope", (20,)), ("avg_volume", (20,)), ("prior_high", (20,)),
    ("prior_low", (20,)), ("pct_change", (63,)), ("realised_vol", (63,)), ("gaps", ()),
    ("log_returns", ()), ("dollar_volume", (20,)), ("close_only_series", ()),
]  # fmt: skip


def _close_only_until(p: Panel, j: int, until: int) -> Panel:
    """Column `j` built from closes (open = previous close, no intrabar range) on rows < `until`."""
    o, h, lo, c, v = (getattr(p, k).copy() for k in ("open", "high", "low", "close", "volume"))
    prev = np.concatenate([[c[0, j]], c[:-1, j]])
    rows = slice(0, until)
    o[rows, j] = prev[rows]
    h[rows, j] = np.maximum(prev, c[:, j])[rows]
    lo[rows, j] = np.minimum(prev, c[:, j])[rows]
    return Panel(p.dates, p.symbols, o, h, lo, c, v)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_dates=st.integers(10, 400),
    nan_frac=st.sampled_from([0.0, 0.1]),
    switch=st.floats(0.0, 1.0),
    data=st.data(),
)
def test_value_at_t_is_the_value_on_data_ending_at_t(
    seed: int, n_dates: int, nan_frac: float, switch: float, data: st.DataObject
) -> None:
    p = _close_only_until(random_walk_panel(seed, n_dates, 5, nan_frac), 0, int(switch * n_dates))
    full = Features(p)
    for t in data.draw(st.lists(st.integers(0, n_dates - 1), min_size=1, max_size=3), label="rows"):
        cut = Features(p.head(t + 1))
        for name, params in SERIES:
            m = full.matrix(name, *params)
            for j, sym in enumerate(p.symbols):
                want = getattr(cut, name)(sym, *params)[t]
                np.testing.assert_array_equal(m[t, j], want, err_msg=f"{name}{params} {sym} row {t}")
            assert [full.close_only(s, t) for s in p.symbols] == [cut.close_only(s) for s in p.symbols]
            assert [full.gap_p95(s, t) for s in p.symbols] == [cut.gap_p95(s, t) for s in p.symbols]


def test_a_series_that_gains_real_bars_later_is_close_only_before() -> None:
    n = 300
    p = _close_only_until(random_walk_panel(5, n, 2), 0, 200)
    f = Features(p)
    flag = f.close_only_series("S0")
    assert flag[150] == 1.0 and flag[199] == 1.0  # close-only so far
    assert flag[-1] == 0.0  # 100 real bars later: under 95% of its bars are close-only
    # The early ATR is the close-based estimate, as a run on day 150 computed it.
    assert f.atr("S0")[150] == Features(p.head(151)).atr("S0")[150]
    assert not f.close_only_series("S1").any()
