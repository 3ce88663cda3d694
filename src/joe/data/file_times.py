"""The time column of a file read by `joe.data.files.read_file`: dated once per shared column, and where a
row whose time cannot be read lies (before or past the as-of date). Split out of `joe.data.files`."""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pandas as pd

from joe.data.dates import bar_index, parse_times
from joe.data.file_read import Cells
from joe.data.frames import as_of_cutoff

# Files of one folder mostly share their dates: a time column of Parquet timestamps is dated once
# (`parse_times` reads such a column whatever the file, its name or the date format), ~0.35 ms a file.
# Full: emptied, not evicted by `pop(next(iter(...)))` - another thread's insert between the iter and
# the next raised RuntimeError out of `read_file` (two loads in threads; tests/data/test_file_cells.py).
_DATED: dict[tuple[str, bytes], tuple[pd.DatetimeIndex, bool]] = {}
_DATED_MAX = 4


def _before_bad_time(times: pd.Series, end: date | None) -> int | None:
    """The rows before a file's first unreadable time when that row is past `end` (the as-of date), else
    None. A time that cannot be read cannot be placed, except in a file in time order: a row that comes
    after a row already dated past `end` is past it too, and a run or backtest ending at `end` never reads
    it (the rows before it are read as usual). Only asked once the strict reading has refused the file."""
    if end is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the lenient reading only places the rows; the strict one reads them
        loose = pd.to_datetime(times, errors="coerce", utc=True, format="mixed")
    bad = np.flatnonzero(loose.isna().to_numpy())
    if not len(bad) or bad[0] == 0:
        return None
    head = loose.iloc[: bad[0]]
    if not head.is_monotonic_increasing or head.iloc[-1] < as_of_cutoff(end):
        return None
    return int(bad[0])


def _dated(cells: Cells, tcol: object, f: str, fmt: str | None, named: bool) -> tuple[pd.DatetimeIndex, bool]:
    """`bar_index(parse_times(...))` of the file's time column: its bars' index and whether it is daily."""
    key = cells.time_key(tcol)
    hit = _DATED.get(key) if key is not None else None
    if hit is None:
        hit = bar_index(parse_times(cells.series(tcol), f, str(tcol), fmt, named))
        if key is not None:
            if len(_DATED) >= _DATED_MAX:  # single dict operations only (each atomic): safe in threads
                _DATED.clear()
            _DATED[key] = hit
    return hit[0].copy(), hit[1]  # a file's own Index object (same values)
