"""What a backtest computes once over the whole history, so each simulated day touches only what changes.

* the market: the same `load_snapshot` (universe → histories → the data-quality stage → panel,
  index, VIX) a `joe run --once` uses, loaded once with the source clipped at `--to`;
* the indicators: one `Features` over the whole panel, shared by every day (each indicator is
  causal — `joe.analysis.indicators` — so its value at row t depends on rows ≤ t only);
* the regime: the detector's label history computed once (vectorised and causal, like the
  indicators), each day reading its as-of row;
* the held symbols' bars: per-symbol arrays, from which each day hands `PaperPortfolio.settle` only
  the rows since the last processed bar.

Each day's analysis sees `panel.head(t + 1)`: rows after the as-of date are not even in the
panel it reads, so a stage that looked ahead would fail the no-look-ahead test instead of cheating.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from joe.analysis.features import Features
from joe.analysis.panel import FIELDS, Panel
from joe.analysis.regime import RegimeDetector, _close
from joe.runtime.market import MarketSnapshot


class PrecomputedRegime(RegimeDetector):
    """A `RegimeDetector` whose label history is computed once over the whole index history.

    `detect` (unchanged) filters the index to the as-of date and asks for the label history; this
    returns the precomputed rows up to the last index date it was given. `label_history` is causal
    (rolling windows, VIX carried forward), so this equals computing it on the truncated series.
    """

    def __init__(self, spx: pd.DataFrame | pd.Series, vix: pd.DataFrame | pd.Series | None) -> None:
        super().__init__()
        self._full = RegimeDetector.label_history(self, spx, vix)
        self._index = self._full.index

    def label_history(
        self, spx: pd.DataFrame | pd.Series, vix: pd.DataFrame | pd.Series | None = None
    ) -> pd.DataFrame:
        close = _close(spx)
        if not len(close):
            return self._full.iloc[:0]
        last = pd.Timestamp(close.index[-1])
        last = last.tz_localize("UTC") if last.tzinfo is None else last.tz_convert("UTC")
        n = int(self._index.searchsorted(last, side="right"))
        return self._full.iloc[max(0, n - 1) : n]


@dataclass
class History:
    """The loaded market and its precomputed parts (shared by every simulated day and every sweep run)."""

    snap: MarketSnapshot
    features: Features
    detector: PrecomputedRegime
    # last_valid[t, j]: the last row <= t where symbol j has a close (-1 before its first bar).
    last_valid: np.ndarray

    @classmethod
    def build(cls, snap: MarketSnapshot) -> History:
        panel = snap.panel
        rows = np.arange(panel.n_dates)[:, None]
        has = np.isfinite(panel.close)
        last_valid = np.maximum.accumulate(np.where(has, rows, -1), axis=0)
        return cls(snap, Features(panel), PrecomputedRegime(snap.spx, snap.vix), last_valid)

    @property
    def panel(self) -> Panel:
        return self.snap.panel

    def first_regime_row(self) -> int:
        """The first panel row on which the regime can be labelled (n_dates when never)."""
        labelled = self.detector._full.index
        if not len(labelled):
            return self.panel.n_dates
        return int(self.panel.dates.searchsorted(labelled[0], side="left"))

    def days(self, start: date | None, end: date | None) -> np.ndarray:
        """Row indices of the panel's dates within [start, end] (the whole panel when None)."""
        d = self.panel.dates
        lo = 0 if start is None else int(d.searchsorted(pd.Timestamp(start, tz="UTC"), side="left"))
        hi = len(d) if end is None else int(d.searchsorted(pd.Timestamp(end, tz="UTC"), side="right"))
        return np.arange(lo, hi)

    def snapshot_at(self, t: int) -> MarketSnapshot:
        """The snapshot as it was known at the close of row `t`: the panel cut after that row."""
        return replace(self.snap, panel=self.panel.head(t + 1))

    def held_bars(self, symbols: set[str], after: int, t: int) -> dict[str, pd.DataFrame]:
        """Each held symbol's bars in rows (`after`, `t`], plus its last bar at or before `t`.

        That is all `PaperPortfolio.settle` reads: the bars since the last processed one (exits) and
        the last known close (the mark).
        """
        panel = self.panel
        out: dict[str, pd.DataFrame] = {}
        for sym in symbols:
            if sym not in panel:
                continue
            j = panel.col(sym)
            last = int(self.last_valid[t, j])
            if last < 0:
                continue
            lo = min(after + 1, last)
            rows = np.arange(lo, t + 1)
            rows = rows[np.isfinite(panel.close[lo : t + 1, j])]
            # One 2-D block: far cheaper to build than a frame from five separate columns.
            block = np.column_stack([getattr(panel, f)[rows, j] for f in FIELDS])
            out[sym] = pd.DataFrame(block, index=panel.dates[rows], columns=list(FIELDS))
        return out
