"""`Panel`: a universe of daily bars as 2-D float64 arrays (dates × symbols).

Analysis works on panels rather than on one pandas frame per symbol: a scan over 500 symbols is a
handful of numpy reductions over a row slice, and a per-symbol indicator is one TA-Lib call on a
contiguous column. The arrays are stored in Fortran (column-major) order so that `arr[:, j]` — one
symbol's history — is contiguous and can be handed to TA-Lib without a copy.

A cell is NaN where the symbol has no bar on that date (not listed yet, holiday on its exchange,
delisted). Nothing here fills gaps: filling is a modelling decision left to the indicator layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


def to_utc_timestamp(ts: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """Any datetime-like as an aware UTC `pd.Timestamp` (naive values are taken to be UTC)."""
    out = pd.Timestamp(ts)
    return out.tz_localize("UTC") if out.tzinfo is None else out.tz_convert("UTC")


def to_utc_index(index: pd.Index) -> pd.DatetimeIndex:
    """A DatetimeIndex in UTC (naive values are taken to be UTC)."""
    idx = pd.DatetimeIndex(index)
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def _as_field(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype == np.float64 and arr.ndim == 2 and arr.strides[0] == arr.itemsize:
        return arr  # columns already contiguous (e.g. a row slice of a column-major array)
    return np.asfortranarray(arr, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Panel:
    """Daily OHLCV for many symbols, aligned on one UTC date index.

    `open/high/low/close/volume` have shape `(len(dates), len(symbols))`. Identity equality
    (eq=False) keeps panels hashable so caches can key on them.
    """

    dates: pd.DatetimeIndex
    symbols: list[str]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    _col: dict[str, int] = field(init=False, repr=False)
    _pydates: dict[int, datetime] = field(init=False, repr=False)
    _rank: list[np.ndarray] = field(init=False, repr=False)  # [symbol_rank()] once computed

    def __post_init__(self) -> None:
        dates = to_utc_index(self.dates)
        if not dates.is_monotonic_increasing or not dates.is_unique:
            raise ValueError("panel dates must be unique and increasing")
        shape = (len(dates), len(self.symbols))
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("panel symbols must be unique")
        object.__setattr__(self, "dates", dates)
        object.__setattr__(self, "symbols", list(self.symbols))
        for name in FIELDS:
            arr = _as_field(getattr(self, name))
            if arr.shape != shape:
                raise ValueError(f"panel field {name} has shape {arr.shape}, expected {shape}")
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "_col", {s: j for j, s in enumerate(self.symbols)})
        object.__setattr__(self, "_pydates", {})
        object.__setattr__(self, "_rank", [])

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_frames(cls, frames: Mapping[str, pd.DataFrame]) -> Panel:
        """Build a panel from history frames (UTC DatetimeIndex; columns open..volume).

        Dates are the union of all frames' dates; a symbol missing a date gets NaN there.
        """
        symbols = list(frames)
        if not symbols:
            raise ValueError("no frames")
        indexes = [to_utc_index(frames[s].index) for s in symbols]
        first = indexes[0]
        same = all(len(ix) == len(first) and ix.equals(first) for ix in indexes[1:])
        if same:
            dates = first
            # Fast path (the usual case for one market): stack the columns directly.
            data = {
                name: np.column_stack(
                    [frames[s][name].to_numpy(np.float64, na_value=np.nan) for s in symbols]
                )
                for name in FIELDS
            }
        else:
            dates = indexes[0]
            for ix in indexes[1:]:
                dates = dates.union(ix)
            data = {name: np.full((len(dates), len(symbols)), np.nan) for name in FIELDS}
            for j, (s, ix) in enumerate(zip(symbols, indexes, strict=True)):
                rows = dates.get_indexer(ix)
                frame = frames[s]
                for name in FIELDS:
                    data[name][rows, j] = frame[name].to_numpy(np.float64, na_value=np.nan)
        order = np.argsort(dates.asi8, kind="stable")
        if not (order == np.arange(len(order))).all():
            dates = dates[order]
            data = {k: v[order] for k, v in data.items()}
        return cls(dates=dates, symbols=symbols, **data)

    # -- access -------------------------------------------------------------------------------

    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    def col(self, symbol: str) -> int:
        """Column index of `symbol` (KeyError if absent)."""
        return self._col[symbol]

    @property
    def column_map(self) -> Mapping[str, int]:
        """Symbol → column (read it, do not change it: shared by the panel's `head`s)."""
        return self._col

    def symbol_rank(self) -> np.ndarray:
        """Per column, the rank of its symbol in sorted (str) order: int array over symbols, computed once
        and shared by the panel's `head`s (a scan orders its candidates by symbol every day)."""
        if not self._rank:
            order = sorted(range(len(self.symbols)), key=self.symbols.__getitem__)
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            self._rank.append(rank)
        return self._rank[0]

    def date_at(self, t: int) -> datetime:
        """The date of row `t` as an aware UTC `datetime` (memoised: every signal of a run is dated by
        the same row, and indexing a DatetimeIndex costs tens of microseconds)."""
        got = self._pydates.get(t)
        if got is None:
            got = self._pydates[t] = self.dates[t].to_pydatetime()
        return got

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._col

    def index_at(self, as_of: datetime | pd.Timestamp | str | None = None) -> int:
        """Row index of the last date <= `as_of` (the last row when `as_of` is None)."""
        if as_of is None:
            if not len(self.dates):
                raise ValueError("empty panel")
            return len(self.dates) - 1
        pos = int(self.dates.searchsorted(to_utc_timestamp(as_of), side="right")) - 1
        if pos < 0:
            raise ValueError(f"no panel date on or before {as_of}")
        return pos

    def truncate(self, as_of: datetime | pd.Timestamp | str) -> Panel:
        """The panel as it was known at `as_of`: only rows dated <= `as_of`."""
        n = int(self.dates.searchsorted(to_utc_timestamp(as_of), side="right"))
        return self.head(n)

    def head(self, n: int) -> Panel:
        """The first `n` rows.

        Built without `__post_init__`'s checks and conversions: a prefix of this panel's dates is still
        UTC, unique and increasing, its symbols and their columns are the same, and a row slice of a
        column-major array still has contiguous columns. (A backtest cuts the panel once a day; the
        checks cost more than the rest of a day's scan.) The symbol → column map is shared: it is the
        same for every prefix.
        """
        out = object.__new__(Panel)
        object.__setattr__(out, "dates", self.dates[:n])
        object.__setattr__(out, "symbols", list(self.symbols))
        for name in FIELDS:
            object.__setattr__(out, name, getattr(self, name)[:n])
        object.__setattr__(out, "_col", self._col)
        object.__setattr__(out, "_pydates", {})
        object.__setattr__(out, "_rank", self._rank)
        return out

    def select(self, symbols: Sequence[str]) -> Panel:
        """A panel with only `symbols` (in that order)."""
        cols = [self._col[s] for s in symbols]
        return Panel(
            dates=self.dates,
            symbols=list(symbols),
            **{name: getattr(self, name)[:, cols] for name in FIELDS},
        )

    def frame(self, symbol: str) -> pd.DataFrame:
        """One symbol's bars as a history frame (rows where it has a close)."""
        j = self._col[symbol]
        df = pd.DataFrame({name: getattr(self, name)[:, j] for name in FIELDS}, index=self.dates)
        return df[np.isfinite(df["close"].to_numpy())]
