"""The scan's metrics of every row at once (a backtest) equal the metrics of one row (a run).

`scan_metrics_rows(panel, 0, n)[t]` must be what `scan_metrics` gives on the panel cut after row t
(causal: no later row reaches back) and on the whole panel (no dependence on which rows are computed
together), bit for bit; and both stay what the scan computed before its metrics were vectorised over
rows (`_reference`, the former one-row code, to the last bit except the 20-bar means, whose additions
now run oldest row first: equal to 1e-12).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.scanner import AVG_WINDOW, LOOKBACK_52W, YEAR_DAYS, scan_metrics, scan_metrics_rows

from .synth import random_walk_panel


def _last_valid(block: np.ndarray) -> np.ndarray:
    """Per column, the last finite value of `block` (rows = dates); NaN when none."""
    n = block.shape[0]
    if n == 0:
        return np.full(block.shape[1], np.nan)
    idx = np.where(np.isfinite(block), np.arange(n)[:, None], -1).max(axis=0)
    cols = np.arange(block.shape[1])
    return np.where(idx >= 0, block[np.maximum(idx, 0), cols], np.nan)


def _nanmean(block: np.ndarray) -> np.ndarray:
    ok = np.isfinite(block)
    cnt = ok.sum(axis=0)
    tot = np.where(ok, block, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _nanext(block: np.ndarray, fn: str) -> np.ndarray:
    fill = -np.inf if fn == "max" else np.inf
    filled = np.where(np.isfinite(block), block, fill)
    out = filled.max(axis=0) if fn == "max" else filled.min(axis=0)
    return np.where(np.isfinite(out), out, np.nan)


def _history_days(panel: Panel, t: int) -> np.ndarray:
    """Calendar days from each symbol's first bar to row `t` (-1 when it has none)."""
    seen = np.isfinite(panel.close[: t + 1])
    first = np.argmax(seen, axis=0)
    days = (panel.dates[t] - panel.dates[first]).days.to_numpy()
    return np.where(seen.any(axis=0), days, -1)


def _reference(panel: Panel, t: int) -> dict[str, np.ndarray]:
    """Every scan metric for every symbol at row `t` (1-D arrays over symbols)."""
    lo = max(0, t - LOOKBACK_52W)
    o, h, lw, c = (
        panel.open[lo : t + 1],
        panel.high[lo : t + 1],
        panel.low[lo : t + 1],
        panel.close[lo : t + 1],
    )
    v = panel.volume[lo : t + 1]
    close_t, open_t, vol_t = c[-1], o[-1], np.nan_to_num(v[-1], nan=0.0)
    prior_close = _last_valid(c[:-1])
    prior_valid = np.isfinite(c[:-1])
    prior_v = np.where(prior_valid, np.nan_to_num(v[:-1], nan=0.0), np.nan)
    dv = c * v  # NaN where volume is unknown (close-only series); ignored by the mean
    # A label that names a window needs the whole window of prior bars (no "52-week high" on 40 bars).
    full_year = _history_days(panel, t) >= YEAR_DAYS
    known_v = (prior_valid & np.isfinite(v[:-1]))[-AVG_WINDOW:].sum(axis=0) >= AVG_WINDOW
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_vol = np.where(known_v, _nanmean(prior_v[-AVG_WINDOW:]), np.nan)
        out = {
            "close": close_t,
            "pct_change": close_t / prior_close - 1.0,
            "gap": open_t / prior_close - 1.0,
            "dollar_volume": close_t * vol_t,
            "avg_dollar_volume": _nanmean(dv[-AVG_WINDOW:]),
            "rel_volume": vol_t / avg_vol,
            "high_vs_52w": np.where(full_year, h[-1] / _nanext(h[:-1], "max"), np.nan),
            "low_vs_52w": np.where(full_year, lw[-1] / _nanext(lw[:-1], "min"), np.nan),
        }
    return out


EXACT = ("close", "pct_change", "gap", "dollar_volume", "high_vs_52w", "low_vs_52w")


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_dates=st.integers(8, 600),
    nan_frac=st.sampled_from([0.0, 0.05, 0.4]),
    no_volume=st.booleans(),
    data=st.data(),
)
def test_rows_at_once_equal_one_row(
    seed: int, n_dates: int, nan_frac: float, no_volume: bool, data: st.DataObject
) -> None:
    p = random_walk_panel(seed, n_dates, 7, nan_frac)
    if no_volume:  # a close-only column: volume unknown
        vol = p.volume.copy()
        vol[:, 0] = np.nan
        p = Panel(p.dates, p.symbols, p.open, p.high, p.low, p.close, vol)
    every = scan_metrics_rows(p, 0, p.n_dates)
    for t in data.draw(st.lists(st.integers(0, n_dates - 1), min_size=1, max_size=4), label="rows"):
        one = scan_metrics(p.head(t + 1), t)
        whole = scan_metrics(p, t)
        ref = _reference(p.head(t + 1), t) if t > 0 else one  # the former code failed on row 0
        for k, a in every.items():
            np.testing.assert_array_equal(a[t], one[k], err_msg=k)
            np.testing.assert_array_equal(a[t], whole[k], err_msg=k)
            if k in EXACT:
                np.testing.assert_array_equal(a[t], ref[k], err_msg=k)
            else:
                np.testing.assert_allclose(a[t], ref[k], rtol=1e-12, err_msg=k)
        assert Features(p).scan_metrics(t).keys() == every.keys()
