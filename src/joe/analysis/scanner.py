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
date (at most 253 rows), so scanning is cheap and uses no bar after the scan date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

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
    """Candidates of one scan run, plus each scan's ranking and the filter counts."""

    as_of: pd.Timestamp
    candidates: list[ScanCandidate]
    rankings: dict[str, list[str]]
    universe: int
    eligible: int
    filtered_out: dict[str, int] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return [c.symbol for c in self.candidates]


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


def scan_metrics(panel: Panel, t: int) -> dict[str, np.ndarray]:
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
    ) -> ScanResult:
        """Run `scans` (names; all registered scans when None) and the watchlists at `as_of`.

        Candidates are ordered by the number of scans that hit them, then by symbol.
        """
        t = panel.index_at(as_of)
        names = list(scans) if scans is not None else list(self.scans)
        unknown = [n for n in names if n not in self.scans]
        if unknown:
            raise KeyError(f"unknown scan(s): {unknown}; known: {sorted(self.scans)}")
        m = scan_metrics(panel, t)
        has_bar = np.isfinite(m["close"])
        price_ok = has_bar & (np.nan_to_num(m["close"], nan=-1.0) >= self.min_price)
        adv = m["avg_dollar_volume"]
        # Unknown volume (a close-only series) cannot be judged on liquidity, so it is not filtered.
        liquid = price_ok & ((adv >= self.min_avg_dollar_volume) | np.isnan(adv))
        eligible = liquid
        filtered = {
            "no_bar": int((~has_bar).sum()),
            "price": int((has_bar & ~price_ok).sum()),
            "liquidity": int((price_ok & ~liquid).sum()),
        }

        hits: dict[int, list[str]] = {}
        rankings: dict[str, list[str]] = {}
        for name in names:
            d = self.scans[name]
            vals = m[d.metric]
            ok = eligible & np.isfinite(vals)
            if d.threshold is not None:
                with np.errstate(invalid="ignore"):
                    ok &= (vals <= d.threshold) if d.ascending else (vals >= d.threshold)
            cols = np.flatnonzero(ok)
            key = vals[cols] if d.ascending else -vals[cols]
            # lexsort: primary key last; the column index breaks ties deterministically.
            top = cols[np.lexsort((cols, key))][: d.limit]
            rankings[name] = [panel.symbols[j] for j in top]
            for j in top:
                hits.setdefault(int(j), []).append(name)
        for wl, members in self.watchlists.items():
            tag = f"WATCHLIST:{wl}"
            listed = [s for s in members if s in panel]
            rankings[tag] = [s for s in listed if has_bar[panel.col(s)]]
            for s in rankings[tag]:
                hits.setdefault(panel.col(s), []).append(tag)

        cands = [
            ScanCandidate(
                symbol=panel.symbols[j],
                hits=tuple(h),
                metrics={k: float(a[j]) for k, a in m.items()},
            )
            for j, h in hits.items()
        ]
        cands.sort(key=lambda c: (-len(c.hits), c.symbol))
        return ScanResult(
            as_of=panel.dates[t],
            candidates=cands,
            rankings=rankings,
            universe=panel.n_symbols,
            eligible=int(eligible.sum()),
            filtered_out=filtered,
        )
