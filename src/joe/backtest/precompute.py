"""What a backtest computes once over the whole history, so each simulated day touches only what changes.

* the market: the same `load_snapshot` (universe → histories → the data-quality stage → panel,
  index, VIX) a `joe run --once` uses, loaded once with the source clipped at `--to`;
* the indicators: one `Features` over the whole panel, shared by every day (each indicator is
  causal — `joe.analysis.indicators` — so its value at row t depends on rows ≤ t only);
* the regime: the detector's label history computed once (vectorised and causal, like the
  indicators), each day reading its as-of row;
* the held symbols' bars: each day hands `PaperPortfolio.settle_bars` the held symbols' bars since
  the last processed one and their last closes, read straight from the panel's arrays.

Each day's analysis sees `panel.head(t + 1)`: rows after the as-of date are not even in the
panel it reads, so a stage that looked ahead would fail the no-look-ahead test instead of cheating.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from joe.analysis.features import Features
from joe.analysis.panel import Panel, to_utc_index, to_utc_timestamp
from joe.analysis.regime import Regime, RegimeDetector, _close
from joe.data.errors import InsufficientHistory
from joe.portfolio.exits import PriceBar
from joe.portfolio.replay import OHLC, Mark, to_decimal
from joe.runtime.market import MarketSnapshot


def _ohlc_rows(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    ok = np.ones(panel.close.shape, dtype=bool)
    for name in OHLC:
        ok &= np.isfinite(getattr(panel, name))
    rows = np.arange(panel.n_dates)[:, None]
    return ok, np.maximum.accumulate(np.where(ok, rows, -1), axis=0)


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
        # For `detect` on these very inputs: the dates of the index's finite closes, and each labelled
        # row as a plain mapping (reading a DataFrame row costs more than the rest of a day's regime).
        self._spx, self._vix = spx, vix
        close = _close(spx)
        finite = close[np.isfinite(close.to_numpy())]
        self._finite_dates = to_utc_index(finite.index)
        self._rows: list[dict[str, Any]] = self._full.to_dict("records")

    def detect(
        self,
        spx: pd.DataFrame | pd.Series,
        vix: pd.DataFrame | pd.Series | None = None,
        as_of: datetime | pd.Timestamp | str | None = None,
    ) -> Regime:
        """`RegimeDetector.detect` without filtering the whole index history again each day: on the
        inputs this was built from, the row is found by two binary searches (the last finite close on or
        before `as_of`, then its label row) and read by the same `regime_at`. Other inputs: the parent's."""
        ordered = self._finite_dates.is_monotonic_increasing
        if spx is not self._spx or vix is not self._vix or as_of is None or not ordered:
            return super().detect(spx, vix, as_of)
        n = int(self._finite_dates.searchsorted(to_utc_timestamp(as_of), side="right"))
        k = 0
        if n:
            k = int(self._index.searchsorted(self._finite_dates[n - 1], side="right"))
        if k == 0:  # what `label_history` gives for the closes up to `as_of`: no labelled row
            raise InsufficientHistory(
                f"not enough index history to label the regime: {n} bars of the index up to "
                f"the as-of date, it needs about 200 (give a longer SPX file or a later --as-of)"
            )
        return self.regime_at(self._rows[k - 1], self._index[k - 1], as_of, vix is not None)

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
    # ohlc_ok[t, j]: symbol j has all four prices on row t (a bar the exits can use);
    # last_ok[t, j]: the last such row <= t (-1 before its first bar).
    ohlc_ok: np.ndarray
    last_ok: np.ndarray
    pydates: list[datetime]  # the panel's dates as UTC datetimes (converted once)
    # The market as known before the data-quality stage changed it (see `joe.backtest.loading`): the
    # history loaded up to the day before `known_from`, which the days before it replay on. None: this
    # history is what every one of its days saw.
    earlier: History | None = None
    known_from: pd.Timestamp | None = None
    # CPU seconds per loading step (`joe.backtest.loading`: source, panel, quality, index, precompute).
    cpu_timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, snap: MarketSnapshot) -> History:
        panel = snap.panel
        ok, last_ok = _ohlc_rows(panel)
        dates = list(panel.dates.to_pydatetime())
        features = Features(panel, every_row=True)  # every day reads its row of every indicator
        return cls(snap, features, PrecomputedRegime(snap.spx, snap.vix), ok, last_ok, dates)

    def as_of(self, ts: pd.Timestamp) -> History:
        """The history day `ts` replays on: the one loaded with data ending before the first quality
        change (split adjustment, exclusion) that `ts` could not have seen."""
        h = self
        while h.earlier is not None and h.known_from is not None and ts < h.known_from:
            h = h.earlier
        return h

    def refresh_rows(self) -> None:
        """Recompute `ohlc_ok`/`last_ok` after the panel's arrays were changed in place (tests)."""
        self.ohlc_ok, self.last_ok = _ohlc_rows(self.panel)

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

    def held_price_bars(self, symbols: Iterable[str], after: datetime | None, t: int) -> HeldBars:
        """What `PaperPortfolio.settle_bars` reads for `symbols` at row `t`, straight from the arrays.

        (each bar time in (`after`, row `t`], oldest first, with the bars of the symbols that have
        one, and each symbol's last close on or before row `t`) — exactly `bars_between` and
        `last_closes` over the symbols' full histories (a row counts when all four prices are known),
        without building a frame per symbol per day (test: tests/backtest/test_held_bars.py).
        """
        panel, dates = self.panel, self.pydates
        lo = 0 if after is None else int(panel.dates.searchsorted(to_utc_timestamp(after), side="right"))
        by_row: dict[int, dict[str, PriceBar]] = {}
        closes: dict[str, Mark] = {}
        for sym in symbols:
            if sym not in panel:
                continue
            j = panel.col(sym)
            last = int(self.last_ok[t, j])
            if last < 0:
                continue
            closes[sym] = Mark(to_decimal(panel.close[last, j]), dates[last])
            for r in range(max(lo, 0), last + 1):
                if self.ohlc_ok[r, j]:
                    by_row.setdefault(r, {})[sym] = PriceBar(
                        to_decimal(panel.open[r, j]),
                        to_decimal(panel.high[r, j]),
                        to_decimal(panel.low[r, j]),
                        to_decimal(panel.close[r, j]),
                    )
        return [(dates[r], by_row[r]) for r in sorted(by_row)], closes


# (bar time, symbol → bar) oldest first, and symbol → last close: `PaperPortfolio.settle_bars`' input.
HeldBars = tuple[list[tuple[datetime, dict[str, PriceBar]]], dict[str, Mark]]
