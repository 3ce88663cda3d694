"""`Features`: per-symbol indicator series over a `Panel`, computed lazily and memoised.

Scoring, the strategies and the risk profiler all read the same handful of indicators for the
same few candidates; computing each (symbol, indicator, parameters) once and sharing it keeps a
pipeline run to one TA-Lib call per series. Every series is as long as the panel (NaN on dates
where the symbol has no bar) and causal, so a value at row t only depends on rows <= t — the
close-only flag included (measured on the bars up to t, `close_only_series`).

`matrix(name, *params)` stacks one indicator for every symbol into a (dates × symbols) array, so a
stage that reads many symbols at one row (scoring) gathers them with one indexing operation; its
columns are the per-symbol series themselves (the same memo, no second copy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from joe.analysis import indicators as ind
from joe.analysis.panel import Panel

_Key = tuple[str, str, tuple[object, ...]]

# E[high − low] of a day's Brownian path is sqrt(8/π)·σ ≈ 1.60σ (Parkinson 1980), while a bar built
# from closes alone has range |Δclose|, E = sqrt(2/π)·σ ≈ 0.80σ: half the real range (AAPL 2005–2012
# measured 0.56×). Close-only ATR is therefore estimated as 1.60 × daily close-to-close σ × price.
RANGE_PER_SIGMA = math.sqrt(8 / math.pi)
# Share of a day's return variance that happens overnight (US equities: roughly a quarter to a third).
# A close-only series has no opens, so its gap risk is estimated from close-to-close volatility.
OVERNIGHT_VARIANCE_SHARE = 1 / 3
CLOSE_ONLY_SHARE = 0.95
_MISSING = object()
# Rows per batch of `Features.gap_p95` (the risk stage's 95th-percentile gap, computed a block at a time).
GAP_BLOCK = 128


class ReturnWindow(NamedTuple):
    """A symbol's last log returns up to a row (`Features.return_window`): `values` (1-D float64),
    `ok` (finite, per value), `full` (every value finite), `flat` (full and constant: `flat`),
    `centred` (values minus their mean, as `joe.analysis.risk.pearson_rows` centres a row; None unless
    full and not flat)."""

    values: np.ndarray
    ok: np.ndarray
    full: bool
    flat: bool
    centred: np.ndarray | None


class Features:
    """Lazy, memoised indicator series for the symbols of one panel."""

    def __init__(self, panel: Panel, *, every_row: bool = False) -> None:
        """`every_row`: the caller will read (nearly) every row for many symbols (a backtest), so
        `values_at` computes an indicator for every symbol at once (`matrix`) the first time it is read;
        a run reading one row leaves it False and computes only the symbols it reads."""
        self.panel = panel
        self.every_row = every_row
        self._cache: dict[_Key, np.ndarray] = {}
        self._memo: dict[Hashable, Any] = {}
        self._windows_t: tuple[int, int] | None = None
        self._windows: dict[str, ReturnWindow] = {}
        # `values_at`'s last symbols and their panel columns.
        self._cols_of: tuple[tuple[str, ...], np.ndarray] = ((), np.zeros(0, dtype=np.intp))

    def _get(
        self, symbol: str, name: str, params: tuple[object, ...], make: Callable[[], np.ndarray]
    ) -> np.ndarray:
        key = (symbol, name, params)
        got = self._cache.get(key)
        if got is None:
            got = make()
            self._cache[key] = got
        return got

    def _ohlcv(self, symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        j = self.panel.col(symbol)
        p = self.panel
        return p.open[:, j], p.high[:, j], p.low[:, j], p.close[:, j], p.volume[:, j]

    def close(self, symbol: str) -> np.ndarray:
        return self.panel.close[:, self.panel.col(symbol)]

    def matrix(self, name: str, *params: object) -> np.ndarray:
        """Indicator `name` (a method of this class taking `(symbol, *params)` and returning a series)
        for every symbol, shape (dates, symbols), column-major; `close`/`volume` are the panel's arrays.

        `params` must be spelt out as the per-symbol method keys them (`matrix("atr", 14)`, not
        `matrix("atr")`), so both share one memo. Raises `AttributeError` for an unknown name.
        """
        if name in ("close", "volume"):
            return getattr(self.panel, name)  # type: ignore[no-any-return]
        key = ("*", name, params)
        got = self._cache.get(key)
        if got is None:
            make = getattr(self, name)
            got = np.empty((self.panel.n_dates, self.panel.n_symbols), order="F")
            for j, sym in enumerate(self.panel.symbols):
                got[:, j] = make(sym, *params)
                self._cache[(sym, name, params)] = got[:, j]  # the column is the series: one copy
            self._cache[key] = got
        return got

    def values_at(self, name: str, t: int, symbols: Sequence[str], *params: object) -> list[float]:
        """`at(getattr(self, name)(sym, *params), t)` for each of `symbols`, as Python floats (NaN when
        `t` is out of range): one gather from `matrix(name, *params)` when that matrix exists (or
        `every_row`), else one memoised series per symbol — the same values either way, since the
        matrix's columns are the per-symbol series. Raises `KeyError` for a symbol not in the panel."""
        if t < 0 or t >= self.panel.n_dates:
            return [math.nan] * len(symbols)
        m = self._cache.get(("*", name, params))
        if m is None and (self.every_row or name in ("close", "volume")):
            m = self.matrix(name, *params)
        if m is not None:
            # The strategies read ~6 indicators each for the same symbols: their columns once.
            key = tuple(symbols)
            if key != self._cols_of[0]:
                col = self.panel.col
                self._cols_of = (key, np.array([col(s) for s in key], dtype=np.intp))
            return m[t, self._cols_of[1]].tolist()  # type: ignore[no-any-return]
        make = getattr(self, name)
        return [float(make(s, *params)[t]) for s in symbols]

    def bb_upper(self, symbol: str, period: int = 20, nbdev: float = 2.0) -> np.ndarray:
        """The upper Bollinger band (`bbands`' first series)."""
        return self.bbands(symbol, period, nbdev)[0]

    def bb_lower(self, symbol: str, period: int = 20, nbdev: float = 2.0) -> np.ndarray:
        """The lower Bollinger band (`bbands`' second series)."""
        return self.bbands(symbol, period, nbdev)[1]

    def sma(self, symbol: str, period: int) -> np.ndarray:
        return self._get(symbol, "sma", (period,), lambda: ind.sma(self.close(symbol), period))

    def ema(self, symbol: str, period: int) -> np.ndarray:
        return self._get(symbol, "ema", (period,), lambda: ind.ema(self.close(symbol), period))

    def rsi(self, symbol: str, period: int = 14) -> np.ndarray:
        return self._get(symbol, "rsi", (period,), lambda: ind.rsi(self.close(symbol), period))

    def macd_hist(self, symbol: str) -> np.ndarray:
        return self._get(symbol, "macd_hist", (), lambda: ind.macd(self.close(symbol))[2])

    def scan_metrics(self, t: int) -> dict[str, np.ndarray]:
        """`joe.analysis.scanner.scan_metrics(panel, t)`, read from the metrics of every row, which are
        computed once on first use (a backtest scans each of its days; a run scans one row)."""
        from joe.analysis.scanner import scan_metrics_rows

        rows = self.memo("scan", lambda: scan_metrics_rows(self.panel, 0, self.panel.n_dates))
        return {k: a[t] for k, a in rows.items()}

    def memo(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """`make()` the first time `key` is asked, the same object after: for what a stage computes once
        over every row of the panel and reads by row (the scan's metrics, the scores without sentiment).
        `make` must be causal per row, like the indicators."""
        got = self._memo.get(key, _MISSING)
        if got is _MISSING:
            got = self._memo[key] = make()
        return got

    def close_only_series(self, symbol: str) -> np.ndarray:
        """Per row t, 1.0 when the bars up to t carry no intrabar information, else 0.0.

        A bar "from closes" opens at the previous close with high/low = max/min(open, close); a flat bar
        has o = h = l = c. The flag is set when at least `CLOSE_ONLY_SHARE` of the consecutive pairs of
        the symbol's bars up to t are such bars (three bars at least). Measured on the bars up to t
        only (an expanding share), so a later change of the data's kind never reaches back.
        """

        def make() -> np.ndarray:
            o, h, lo, c, _ = self._ohlcv(symbol)
            n = len(c)
            rows = np.flatnonzero(np.isfinite(c))
            out = np.zeros(n)
            if len(rows) < 3:
                return out
            o, h, lo, c = o[rows], h[rows], lo[rows], c[rows]
            from_closes = (
                np.isclose(o[1:], c[:-1], rtol=1e-9, atol=0.0)
                & (h[1:] == np.maximum(o[1:], c[1:]))
                & (lo[1:] == np.minimum(o[1:], c[1:]))
            )
            flat = (o[1:] == c[1:]) & (h[1:] == c[1:]) & (lo[1:] == c[1:])
            share = np.cumsum(from_closes | flat) / np.arange(1, len(rows))  # pairs up to each bar
            flag = np.zeros(len(rows))
            flag[1:] = share >= CLOSE_ONLY_SHARE
            flag[:2] = 0.0  # fewer than three bars: not judged
            # Rows between bars keep the flag of the last bar before them.
            out[rows[0] :] = flag[np.searchsorted(rows, np.arange(rows[0], n), side="right") - 1]
            return out

        return self._get(symbol, "close_only_series", (), make)

    def close_only(self, symbol: str, t: int | None = None) -> bool:
        """`close_only_series` at row `t` (the last row when None)."""
        s = self.close_only_series(symbol)
        return bool(s[len(s) - 1 if t is None else t]) if len(s) else False

    def atr(self, symbol: str, period: int = 14) -> np.ndarray:
        """Average true range in price units; on rows where the series is close-only (as known at that
        row, `close_only_series`), estimated from closes.

        Close-only: `RANGE_PER_SIGMA` × the `period`-bar close-to-close σ × close (see above), since
        the range of a bar built from closes is about half the real one.
        """

        def make() -> np.ndarray:
            _, h, lo, c, _ = self._ohlcv(symbol)
            flag = self.close_only_series(symbol)
            if not flag.any():
                return ind.atr(h, lo, c, period)
            sigma = ind.realised_vol(c, period, periods_per_year=1)
            estimated = np.asarray(RANGE_PER_SIGMA * sigma * c)
            if flag.all():
                return estimated
            return np.where(flag > 0, estimated, ind.atr(h, lo, c, period))

        return self._get(symbol, "atr", (period,), make)

    def gap_p95(self, symbol: str, t: int, window: int = 60) -> tuple[float, bool]:
        """95th percentile of |opening gap| over the last `window` bars, and whether it is estimated.

        Close-only series have no opens: the estimate is 1.96 × σ_daily × sqrt(overnight share), σ
        from the last `window` close-to-close log returns. NaN when there are fewer than 10 gaps.
        """
        if self.close_only(symbol, t):
            r = self.log_returns(symbol)[max(0, t - window + 1) : t + 1]
            r = r[np.isfinite(r)]
            if r.size < 10:
                return math.nan, True
            return float(1.96 * np.std(r, ddof=1) * math.sqrt(OVERNIGHT_VARIANCE_SHARE)), True
        # A backtest (`every_row`) asks ~10 windows a day of 500 symbols × 2,000 rows: each window as it
        # is asked (`percentile`, ~5 µs) costs less than every row of every symbol at once (~0.9 s).
        if t >= 0 and not self.every_row:
            block, i = divmod(t, GAP_BLOCK)
            full, p95 = self._gap_p95_block(symbol, window, block)
            if i < len(full) and full[i]:
                return float(p95[i]), False
        g = self.gaps(symbol)[max(0, t - window + 1) : t + 1]
        g = np.abs(g[np.isfinite(g)])
        if g.size < 10:
            return math.nan, False
        return percentile(g, 95), False

    def _gap_p95_block(self, symbol: str, window: int, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(full, p95) for the rows of block `block` (rows `block × GAP_BLOCK` onwards, `GAP_BLOCK` of
        them): `full[i]` when the `window` gaps up to that row all exist, `p95[i]` their 95th percentile.

        One `np.percentile` over the block's windows costs about one call on one window, and the risk
        stage asks for the same symbol on neighbouring days (a trend signals day after day). Along an
        axis `np.percentile` picks the same order statistics and interpolates them with the same
        arithmetic as on each window alone: every value is the one-window call's, bit for bit
        (tests/analysis/test_features_gap_p95.py). Other rows (a gap missing, the first `window − 1`)
        are left to the caller's per-window computation.
        """

        def make() -> np.ndarray:
            g = self.gaps(symbol)
            start = block * GAP_BLOCK
            stop = min(start + GAP_BLOCK, len(g))
            out = np.zeros((2, max(0, stop - start)))
            lo = max(start, window - 1)  # the first row with `window` gaps up to it
            if lo >= stop:
                return out
            win = np.lib.stride_tricks.sliding_window_view(np.abs(g[lo - window + 1 : stop]), window)
            ok = np.isfinite(win).all(axis=1)
            if ok.any():
                rows = np.flatnonzero(ok) + (lo - start)
                out[0, rows] = 1.0
                out[1, rows] = np.percentile(win[ok], 95, axis=1)
            return out

        both = self._get(symbol, "gap_p95_block", (window, block), make)
        return both[0] > 0, both[1]

    def return_window(self, symbol: str, t: int, window: int) -> ReturnWindow:
        """`log_returns(symbol)[max(0, t - window + 1) : t + 1]` with what the risk stage's correlations
        read of it (`ReturnWindow`), kept for the row last asked: the risk profiler reads each held
        symbol's window for every signal of a day. Asking another row forgets the previous one."""
        if self._windows_t != (t, window):
            self._windows_t = (t, window)
            self._windows = {}
        got = self._windows.get(symbol)
        if got is None:
            values = self.log_returns(symbol)[max(0, t - window + 1) : t + 1]
            ok = np.isfinite(values)
            full = bool(np.logical_and.reduce(ok))  # `ok.all()` without its Python wrapper
            centred = None
            is_flat = False
            if full and len(values):
                # The row as `pearson_rows` centres it: minus its mean, numpy's sum of the row over its
                # length (`mean(axis=1)` of a stack reduces each row alone, as `add.reduce` does one
                # row). It is also `flat`'s deviation: flat when every squared deviation is 0.
                d = values - np.add.reduce(values) / len(values)
                is_flat = not np.logical_or.reduce(d * d)
                centred = None if is_flat else d
            got = self._windows[symbol] = ReturnWindow(values, ok, full, is_flat, centred)
        return got

    def volume_known(self, symbol: str, t: int, period: int = 20) -> bool:
        """True when the symbol has a volume on at least one of the last `period` bars."""
        v = self.volume(symbol)[max(0, t - period + 1) : t + 1]
        return bool(np.isfinite(v).any())

    def adx(self, symbol: str, period: int = 14) -> np.ndarray:
        def make() -> np.ndarray:
            _, h, lo, c, _ = self._ohlcv(symbol)
            return ind.adx(h, lo, c, period)

        return self._get(symbol, "adx", (period,), make)

    def bbands(self, symbol: str, period: int = 20, nbdev: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
        """(upper, lower) Bollinger bands."""
        both = self._get(
            symbol,
            "bbands",
            (period, nbdev),
            lambda: np.vstack(ind.bbands(self.close(symbol), period, nbdev)[::2]),
        )
        return both[0], both[1]

    def obv_slope(self, symbol: str, period: int = 20) -> np.ndarray:
        """OBV change over `period` bars divided by the average volume of those bars."""

        def make() -> np.ndarray:
            _, _, _, c, v = self._ohlcv(symbol)
            v = np.where(np.isfinite(c), np.nan_to_num(v, nan=0.0), np.nan)
            o = ind.obv(c, v)
            avg = ind.sma(v, period)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.asarray((o - ind.shift(o, period)) / (avg * period))

        return self._get(symbol, "obv_slope", (period,), make)

    def avg_volume(self, symbol: str, period: int = 20) -> np.ndarray:
        """Average volume of the `period` bars *before* each bar (today excluded)."""

        def make() -> np.ndarray:
            _, _, _, c, v = self._ohlcv(symbol)
            v = np.where(np.isfinite(c), np.nan_to_num(v, nan=0.0), np.nan)
            return ind.shift(ind.sma(v, period), 1)

        return self._get(symbol, "avg_volume", (period,), make)

    def volume(self, symbol: str) -> np.ndarray:
        return self.panel.volume[:, self.panel.col(symbol)]

    def prior_high(self, symbol: str, period: int) -> np.ndarray:
        """Highest high of the `period` bars before each bar (today excluded)."""

        def make() -> np.ndarray:
            _, h, _, c, _ = self._ohlcv(symbol)
            h = np.where(np.isfinite(c), h, np.nan)
            return ind.on_valid(lambda x: ind.shift(ind.rolling_max(x, period), 1), h)[0]

        return self._get(symbol, "prior_high", (period,), make)

    def prior_low(self, symbol: str, period: int) -> np.ndarray:
        """Lowest low of the `period` bars before each bar (today excluded)."""

        def make() -> np.ndarray:
            _, _, lo, c, _ = self._ohlcv(symbol)
            lo = np.where(np.isfinite(c), lo, np.nan)
            return ind.on_valid(lambda x: ind.shift(ind.rolling_min(x, period), 1), lo)[0]

        return self._get(symbol, "prior_low", (period,), make)

    def pct_change(self, symbol: str, period: int) -> np.ndarray:
        return self._get(symbol, "pct_change", (period,), lambda: ind.pct_change(self.close(symbol), period))

    def realised_vol(self, symbol: str, period: int = 20) -> np.ndarray:
        return self._get(
            symbol, "realised_vol", (period,), lambda: ind.realised_vol(self.close(symbol), period)
        )

    def gaps(self, symbol: str) -> np.ndarray:
        def make() -> np.ndarray:
            o, _, _, c, _ = self._ohlcv(symbol)
            return ind.gaps(o, c)

        return self._get(symbol, "gaps", (), make)

    def log_returns(self, symbol: str) -> np.ndarray:
        return self._get(symbol, "log_returns", (), lambda: ind.log_returns(self.close(symbol)))

    def dollar_volume(self, symbol: str, period: int = 20) -> np.ndarray:
        """Average close × volume over the last `period` bars with a known volume (today included)."""

        def make() -> np.ndarray:
            _, _, _, c, v = self._ohlcv(symbol)
            return ind.sma(c * v, period)

        return self._get(symbol, "dollar_volume", (period,), make)


def window_percentile(x: np.ndarray, window: int, q: float) -> np.ndarray:
    """Per row i and column j, `np.percentile(x[i - window + 1 : i + 1, j], q)` (numpy's default
    "linear" method) where those `window` values are all finite, else NaN. Shape (rows, cols), float64.

    The two order statistics the percentile interpolates come from pandas' rolling quantile ("lower",
    "higher": elements of the window, by a sorted window kept as it slides, O(rows × log window) per
    column instead of a partition of every window), then numpy's interpolation on them: the virtual
    index (window − 1) × q/100, its fraction γ, and `_lerp`'s arithmetic (a + (b − a)·γ, or
    b − (b − a)·(1 − γ) when γ ≥ 0.5). Bit for bit np.percentile's value on each window
    (tests/analysis/test_features_gap_p95.py). Raises `ValueError` for a window < 1 or q outside 0..100.
    """
    if window < 1 or not 0 <= q <= 100:
        raise ValueError(f"window must be >= 1 and q within 0..100, got window={window}, q={q}")
    a = np.where(np.isfinite(x), x, np.nan)
    quantile = np.true_divide(q, 100)  # as np.percentile converts q
    rolling = pd.DataFrame(a).rolling(window, min_periods=window)
    lo = rolling.quantile(quantile, interpolation="lower").to_numpy(dtype=np.float64)
    hi = rolling.quantile(quantile, interpolation="higher").to_numpy(dtype=np.float64)
    virtual = (window - 1) * quantile
    gamma = virtual - math.floor(virtual)
    d = hi - lo
    return lo + d * gamma if gamma < 0.5 else hi - d * (1 - gamma)


def percentile(x: np.ndarray, q: float) -> float:
    """`float(np.percentile(x, q))` (numpy's default "linear" method) for a non-empty 1-D float64 array
    of finite values, q in 0..100: the two order statistics around the virtual index (n − 1) × q/100
    from one `np.partition`, then numpy's `_lerp` on them (a + (b − a)·γ, or b − (b − a)·(1 − γ) when
    γ ≥ 0.5), without `np.percentile`'s argument handling, which is most of its cost on 60 values.
    Held to np.percentile bit for bit by tests/analysis/test_features_gap_p95.py."""
    n = len(x)
    virtual = (n - 1) * (q / 100)  # float64 as numpy's: q / 100 is np.true_divide(q, 100)
    lo = math.floor(virtual)
    hi = min(lo + 1, n - 1)
    part = x.copy()  # what `np.partition` does, without its wrapper: a copy, partitioned in place
    part.partition((lo, hi))
    a, b = part.item(lo), part.item(hi)
    gamma = virtual - lo
    d = b - a
    return a + d * gamma if gamma < 0.5 else b - d * (1 - gamma)


def flat(x: np.ndarray) -> bool:
    """`np.std(x) == 0` for a 1-D float64 array, without `np.std`'s overhead: numpy's std is the root
    of the sum of the squared deviations from `add.reduce(x) / n`, and a sum of non-negative terms is
    0 exactly when each term is (NaN or ±inf anywhere: not flat, as np.std gives NaN). Held to np.std
    by tests/analysis/test_features_flat.py."""
    if len(x) == 0:
        return False
    d = x - np.add.reduce(x) / len(x)
    d *= d
    return not d.any()  # NaN is truthy: a NaN anywhere is not flat


def at(series: np.ndarray, t: int) -> float:
    """`series[t]` as a Python float (NaN when out of range)."""
    if t < 0 or t >= len(series):
        return math.nan
    return float(series[t])


def finite(*values: float) -> bool:
    """True when every value is a finite number."""
    return all(map(math.isfinite, values))  # no generator frame: asked of every candidate, every day
