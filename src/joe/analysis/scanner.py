"""`MarketScanner`: named scans over a `Panel`, in the spirit of IBKR market scanners.

A scan ranks the eligible symbols on one metric at one date and keeps the top `limit` that pass
its threshold. Scan names follow IBKR scan codes where one exists (TOP_PERC_GAIN, TOP_PERC_LOSE,
MOST_ACTIVE, HOT_BY_VOLUME ≈ UNUSUAL_VOLUME, HIGH_VS_52W_HL ≈ HIGH_VS_52W). Watchlists (Capital.com
style: a name and its symbols) add their members as candidates regardless of the scans and of the
liquidity filters (a member only needs a bar on the scan date): a watchlist is an explicit choice.

Eligibility (liquidity/price filters): a bar on the scan date, close >= `min_price`, and average
dollar volume (close × volume over the last 20 bars) >= `min_avg_dollar_volume`. A symbol whose
volume is unknown (close-only data) passes the liquidity filter: it cannot be judged either way.

Labels that name a window need the window: a symbol with less than 52 weeks of history has no
52-week high/low reading (a 40-bar high is not a "New 52-week high"), and relative volume needs 20
prior bars with a known volume.

Everything is computed for all symbols at once from a row slice of the panel ending at the scan
date (at most 253 rows), so scanning is cheap and uses no bar after the scan date. A backtest computes
the metrics of every row at once (`scan_metrics_rows`, kept by `Features.scan_metrics`) and each
simulated day reads its row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from itertools import compress

import numpy as np
import pandas as pd

from joe.analysis.panel import Panel

LOOKBACK_52W = 252
YEAR_DAYS = 364  # a 52-week label needs at least 52 weeks of the symbol's own history
AVG_WINDOW = 20


@dataclass(frozen=True)
class ScanDefinition:
    """One named scan: rank by `metric` (descending unless `ascending`), keep those past `threshold`.

    A symbol passes when `metric >= threshold` (descending scans) or `metric <= threshold`
    (ascending scans); `threshold=None` keeps every eligible symbol.
    """

    name: str
    description: str
    metric: str
    ascending: bool = False
    threshold: float | None = None
    limit: int = 25


SCANS: dict[str, ScanDefinition] = {
    d.name: d
    for d in (
        ScanDefinition("TOP_PERC_GAIN", "Top % gainers on the day", "pct_change", threshold=0.0),
        ScanDefinition(
            "TOP_PERC_LOSE", "Top % losers on the day", "pct_change", ascending=True, threshold=0.0
        ),
        ScanDefinition("MOST_ACTIVE", "Highest dollar volume on the day", "dollar_volume"),
        ScanDefinition(
            "HIGH_VS_52W",
            "New 52-week high (high at or above the prior 52-week high)",
            "high_vs_52w",
            threshold=1.0,
        ),
        ScanDefinition(
            "LOW_VS_52W",
            "New 52-week low (low at or below the prior 52-week low)",
            "low_vs_52w",
            ascending=True,
            threshold=1.0,
        ),
        ScanDefinition("GAP_UP", "Opened >= 2% above the previous close", "gap", threshold=0.02),
        ScanDefinition(
            "GAP_DOWN", "Opened >= 2% below the previous close", "gap", ascending=True, threshold=-0.02
        ),
        ScanDefinition("UNUSUAL_VOLUME", "Volume >= 2× its 20-day average", "rel_volume", threshold=2.0),
    )
}


@dataclass(frozen=True)
class ScanCandidate:
    """A symbol that at least one scan or watchlist selected, with the metrics it was ranked on."""

    symbol: str
    hits: tuple[str, ...]
    metrics: dict[str, float]


@dataclass(frozen=True)
class ScanResult:
    """Candidates of one scan run, plus each scan's ranking and the filter counts.

    The candidates are kept as arrays — `cols` (panel columns, in candidate order), `tag_counts`
    (candidates × `tags`: how many times each scan or watchlist tag selected it) and the scan date's
    metric rows — and `candidates` builds the `ScanCandidate` objects on first read: a backtest day
    scores ~120 candidates from `cols` and only the best ~20 ever need their objects.
    """

    as_of: pd.Timestamp
    rankings: dict[str, list[str]]
    universe: int
    eligible: int
    filtered_out: dict[str, int]
    panel_symbols: Sequence[str]  # the scanned panel's symbols (`cols` index them)
    cols: np.ndarray  # (candidates,) int: panel columns, best first (most hits, then symbol)
    tags: tuple[str, ...]  # scan names as run, then the watchlist tags
    tag_counts: np.ndarray  # (candidates, tags) int
    metrics: Mapping[str, np.ndarray]  # every scan metric at the scan date, 1-D over the panel's symbols
    col_of: Mapping[str, int] = field(default_factory=dict, repr=False)  # the panel's symbol → column

    def hits(self, i: int) -> tuple[str, ...]:
        """The scans and watchlists that selected candidate `i`, in the order they ran."""
        row = self.tag_counts[i].tolist()
        if max(row, default=0) <= 1:
            return tuple(compress(self.tags, row))
        return tuple(tag for tag, n in zip(self.tags, row, strict=True) for _ in range(n))

    @cached_property
    def candidates(self) -> list[ScanCandidate]:
        """The candidates as objects, most hits first, then by symbol."""
        names = list(self.metrics)
        picked = self.cols.tolist()
        # One gather per metric, then plain floats per candidate (the same values as float(a[j])).
        rows = np.column_stack([self.metrics[k][picked] for k in names]).tolist() if picked else []
        return [
            ScanCandidate(
                symbol=self.panel_symbols[j], hits=self.hits(i), metrics=dict(zip(names, row, strict=True))
            )
            for i, (j, row) in enumerate(zip(picked, rows, strict=True))
        ]

    @property
    def symbols(self) -> list[str]:
        """The candidates' symbols, in candidate order."""
        return [self.panel_symbols[j] for j in self.cols.tolist()]


def _window_nanmean(x: np.ndarray, window: int, lag: int) -> np.ndarray:
    """Per row i, the mean of the finite values of `x` on rows i-lag-window+1 .. i-lag (rows before
    the first are absent); NaN when there is none. Summed oldest row first, one row at a time, so a
    row's value is the same whichever rows are computed with it."""
    n = x.shape[0]
    ok = np.isfinite(x)
    xz = np.where(ok, x, 0.0)  # once, not once per shift: the same addends
    okf = ok.astype(np.float64)
    tot = np.zeros(x.shape)
    cnt = np.zeros(x.shape)
    for k in range(window - 1 + lag, lag - 1, -1):  # the oldest row of each window first
        if k >= n:
            continue
        tot[k:] += xz[: n - k]
        cnt[k:] += okf[: n - k]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _prior_ext(x: np.ndarray, window: int, fn: str) -> np.ndarray:
    """Per row i, the max (`fn="max"`) or min of the finite values of `x` on the `window` rows before
    it (i-window .. i-1, rows before the first absent); NaN when there is none.

    By doubling: the extreme over 1, 2, 4 … rows ending at each row, then two overlapping spans of
    the largest power of two cover the window — log2(window) passes instead of one per window row. A
    max or min of the same values is the same number whichever way it is taken; only the sign of a
    zero could depend on the order, so a column holding a -0.0 takes the window-by-window path
    (`_prior_ext_windows`; property test tests/analysis/test_scan_arrays.py).
    """
    if window < 1 or (np.signbit(x) & (x == 0)).any():
        return _prior_ext_windows(x, window, fn)
    fill = -np.inf if fn == "max" else np.inf
    op = np.maximum if fn == "max" else np.minimum
    ext = np.full(x.shape, fill)  # row i holds row i-1 (the windows end the row before)
    ext[1:] = np.where(np.isfinite(x[:-1]), x[:-1], fill)
    span = 1
    while span * 2 <= window:
        nxt = ext.copy()
        op(ext[span:], ext[:-span], out=nxt[span:])
        ext, span = nxt, span * 2
    shift = window - span
    if 0 < shift < len(ext):  # the window ending at row i: the spans ending at i and at i - shift
        out = ext.copy()
        op(ext[shift:], ext[: len(ext) - shift], out=out[shift:])
        ext = out
    return np.where(np.isfinite(ext), ext, np.nan)


def _prior_ext_windows(x: np.ndarray, window: int, fn: str) -> np.ndarray:
    """`_prior_ext` one window at a time (a sliding-window reduction)."""
    fill = -np.inf if fn == "max" else np.inf
    padded = np.full((x.shape[0] + window, x.shape[1]), fill)
    padded[window:] = np.where(np.isfinite(x), x, fill)
    windows = np.lib.stride_tricks.sliding_window_view(padded[:-1], window, axis=0)
    out = windows.max(axis=-1) if fn == "max" else windows.min(axis=-1)
    return np.where(np.isfinite(out), out, np.nan)


def _prior_last(x: np.ndarray, window: int) -> np.ndarray:
    """Per row i, the last finite value of `x` on the `window` rows before it; NaN when there is none."""
    rows = np.arange(x.shape[0])[:, None]
    last = np.maximum.accumulate(np.where(np.isfinite(x), rows, -1), axis=0)
    prior = np.full(x.shape, -1)
    prior[1:] = last[:-1]
    ok = (prior >= 0) & (prior >= rows - window)
    return np.where(ok, x[np.maximum(prior, 0), np.arange(x.shape[1])], np.nan)


def _history_days(panel: Panel, hi: int) -> np.ndarray:
    """Per row t < `hi`, calendar days from each symbol's first bar to row t (-1 before its first bar)."""
    seen = np.isfinite(panel.close[:hi])
    first = np.where(seen.any(axis=0), np.argmax(seen, axis=0), hi)
    ns = panel.dates.as_unit("ns").asi8[:hi]
    days = (ns[:, None] - ns[np.minimum(first, hi - 1)][None, :]) // 86_400_000_000_000
    return np.where(np.arange(hi)[:, None] >= first[None, :], days, -1)


def scan_metrics_rows(panel: Panel, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Every scan metric for every symbol on rows `lo` .. `hi`-1: arrays of shape (hi - lo, symbols).

    A row's values depend on that row and the `LOOKBACK_52W` rows before it only (and each symbol's
    first bar), never on later rows or on which other rows are computed (property test:
    tests/analysis/test_scan_rows.py): a backtest computes every row once, a run only its as-of row.
    """
    s = max(0, lo - LOOKBACK_52W)
    o, h, lw, c, v = (getattr(panel, k)[s:hi] for k in ("open", "high", "low", "close", "volume"))
    valid = np.isfinite(c)
    prior_close = _prior_last(c, LOOKBACK_52W)
    dv = c * v  # NaN where volume is unknown (close-only series); ignored by the mean
    # A label that names a window needs the whole window of prior bars (no "52-week high" on 40 bars).
    full_year = _history_days(panel, hi)[s:] >= YEAR_DAYS
    known = (valid & np.isfinite(v)).astype(np.int64)
    known_n = np.zeros(c.shape, dtype=np.int64)
    for k in range(1, min(AVG_WINDOW, len(c) - 1) + 1):  # rows i-20 .. i-1 with a bar and a volume
        known_n[k:] += known[: len(c) - k]
    prior_v = np.where(valid, np.nan_to_num(v, nan=0.0), np.nan)
    vol_t = np.nan_to_num(v, nan=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_vol = np.where(known_n >= AVG_WINDOW, _window_nanmean(prior_v, AVG_WINDOW, 1), np.nan)
        out = {
            "close": c,
            "pct_change": c / prior_close - 1.0,
            "gap": o / prior_close - 1.0,
            "dollar_volume": c * vol_t,
            "avg_dollar_volume": _window_nanmean(dv, AVG_WINDOW, 0),
            "rel_volume": vol_t / avg_vol,
            "high_vs_52w": np.where(full_year, h / _prior_ext(h, LOOKBACK_52W, "max"), np.nan),
            "low_vs_52w": np.where(full_year, lw / _prior_ext(lw, LOOKBACK_52W, "min"), np.nan),
        }
    return {k: a[lo - s :] for k, a in out.items()}


def scan_metrics(panel: Panel, t: int) -> dict[str, np.ndarray]:
    """Every scan metric for every symbol at row `t` (1-D arrays over symbols)."""
    return {k: a[0] for k, a in scan_metrics_rows(panel, t, t + 1).items()}


class MarketScanner:
    """Run named scans and watchlists over a panel at a date, with price/liquidity filters."""

    def __init__(
        self,
        scans: Mapping[str, ScanDefinition] | None = None,
        watchlists: Mapping[str, Sequence[str]] | None = None,
        min_price: float = 1.0,
        min_avg_dollar_volume: float = 1_000_000.0,
    ) -> None:
        self.scans = dict(scans if scans is not None else SCANS)
        self.watchlists = {k: list(v) for k, v in (watchlists or {}).items()}
        self.min_price = float(min_price)
        self.min_avg_dollar_volume = float(min_avg_dollar_volume)

    def scan(
        self,
        panel: Panel,
        scans: Sequence[str] | None = None,
        as_of: datetime | pd.Timestamp | str | None = None,
        metrics: dict[str, np.ndarray] | None = None,
    ) -> ScanResult:
        """Run `scans` (names; all registered scans when None) and the watchlists at `as_of`.

        `metrics`: `scan_metrics(panel, t)` when the caller has it already (a backtest reads it from the
        metrics of every row computed once). Candidates are ordered by the number of scans that hit
        them, then by symbol.
        """
        t = panel.index_at(as_of)
        names = list(scans) if scans is not None else list(self.scans)
        unknown = [n for n in names if n not in self.scans]
        if unknown:
            raise KeyError(f"unknown scan(s): {unknown}; known: {sorted(self.scans)}")
        m = metrics if metrics is not None else scan_metrics(panel, t)
        has_bar = np.isfinite(m["close"])
        with np.errstate(invalid="ignore"):  # NaN closes compare False (and have no bar)
            price_ok = has_bar & (m["close"] >= self.min_price)
        adv = m["avg_dollar_volume"]
        # Unknown volume (a close-only series) cannot be judged on liquidity, so it is not filtered.
        liquid = price_ok & ((adv >= self.min_avg_dollar_volume) | np.isnan(adv))
        eligible = liquid
        filtered = {
            "no_bar": int((~has_bar).sum()),
            "price": int((has_bar & ~price_ok).sum()),
            "liquidity": int((price_ok & ~liquid).sum()),
        }

        # Every scan at once: one row per scan of sort keys (the metric, negated for a descending scan:
        # exact) and of passing flags; each row's passing columns are then ranked by a stable sort of
        # their keys, so ties break by column as `np.lexsort((cols, key))` did.
        defs = [self.scans[name] for name in names]
        n_sym = panel.n_symbols
        sign = np.array([1.0 if d.ascending else -1.0 for d in defs])[:, None]
        # descending: vals >= thr ⟺ -vals <= -thr; ascending: vals <= thr (None: no threshold).
        bound = np.array(
            [math.inf if d.threshold is None else d.threshold * (-1.0, 1.0)[d.ascending] for d in defs]
        )
        keys = np.array([m[d.metric] for d in defs], dtype=np.float64).reshape(len(defs), n_sym) * sign
        with np.errstate(invalid="ignore"):
            ok = eligible & np.isfinite(keys) & (keys <= bound[:, None])
        tops = []
        for p, d in enumerate(defs):
            cols = np.flatnonzero(ok[p])
            tops.append(cols[np.argsort(keys[p, cols], kind="stable")[: d.limit]])
        syms = panel.symbols
        rankings: dict[str, list[str]] = {
            name: [syms[j] for j in top.tolist()] for name, top in zip(names, tops, strict=True)
        }
        tags = list(names)
        sel = np.zeros((len(names) + len(self.watchlists), n_sym), dtype=np.int64)
        for p, top in enumerate(tops):
            sel[p, top] = 1
        for k, (wl, members) in enumerate(self.watchlists.items()):
            tag = f"WATCHLIST:{wl}"
            tags.append(tag)
            listed = [s for s in members if s in panel]
            rankings[tag] = [s for s in listed if has_bar[panel.col(s)]]
            for s in rankings[tag]:  # a member listed twice is hit twice, as it is ranked twice
                sel[len(names) + k, panel.col(s)] += 1
        picked = np.flatnonzero(sel.any(axis=0))
        n_hits = sel[:, picked].sum(axis=0)
        # Most hits first, then by symbol.
        cols = picked[np.lexsort((panel.symbol_rank()[picked], -n_hits))]
        return ScanResult(
            as_of=panel.dates[t],
            rankings=rankings,
            universe=panel.n_symbols,
            eligible=int(eligible.sum()),
            filtered_out=filtered,
            panel_symbols=syms,
            cols=cols,
            tags=tuple(tags),
            tag_counts=sel[:, cols].T,
            metrics=m,
            col_of=panel.column_map,
        )
