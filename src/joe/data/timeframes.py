"""One bar size per folder: a file whose bars are of another size than most files' is left out.

A folder of daily files plus one 5-minute file used to become one panel of both: the daily rows and
the intraday rows interleaved, the as-of "date" the last 5-minute bar's instant, and every daily file
told it had "no session" on its own as-of day - nothing scored, with a false reason. Rule: each file's
bar size is ``1d`` when it is daily (`joe.data.dates.bar_index`: median spacing of 20 hours to 4
days), ``7d``/``30d`` for weekly or monthly bars (a week-end label past the daily files' last day also
moved the as-of date and left every daily file "behind"), or its median spacing in minutes (``5m``,
``1h``); the size most files share is the folder's (a tie:
daily first - the pipeline's own -, then the coarser), and every other file gets a ``timeframe`` error naming
its size and the folder's: excluded, nothing else changes. Put such files in a folder of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd

from joe.data.dates import int_median
from joe.data.findings import Finding

__all__ = ["bar_size", "median_step", "odd_timeframes"]


def median_step(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The median spacing of a sorted index of at least two times: `index.to_series().diff().median()`
    on the integer nanoseconds (no Series per file: ~0.7 ms each, a third of a second for 500 files)."""
    return pd.Timedelta(int_median(np.diff(index.as_unit("ns").asi8)), unit="ns")


def bar_size(frame: pd.DataFrame, daily: bool) -> str:
    """A file's bar size: ``1d`` for daily bars (at most 4 days apart, median: weekends and holidays),
    ``7d``/``30d``... for weekly or monthly ones, else the intraday step (``5m``, ``1h``). A file of one
    bar cannot say: ``1d``."""
    index = pd.DatetimeIndex(frame.index)
    if len(index) < 2:
        return "1d"
    step = median_step(index)
    if daily:
        days = step / pd.Timedelta(days=1)
        return "1d" if days <= 4 else f"{round(days)}d"
    minutes = max(1, round(step / pd.Timedelta(minutes=1)))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def odd_timeframes(sizes: Mapping[str, tuple[str, str]]) -> list[Finding]:
    """`sizes`: symbol -> (file name, bar size label). One ``timeframe`` error per file whose bar size is
    not the folder's (the most common; a tie goes to the coarsest)."""
    counts = Counter(size for _, size in sizes.values())
    if len(counts) < 2:
        return []
    order = {"d": 3, "h": 2, "m": 1}

    def rank(s: str) -> tuple[int, bool, int, int]:  # most files, then daily, then the coarsest
        return counts[s], s == "1d", order.get(s[-1], 0), int(s[:-1] or 0)

    folder = max(counts, key=rank)
    return [
        Finding(
            sym,
            "error",
            "timeframe",
            f"{file} has {size} bars while {counts[folder]} file(s) here have {folder} bars: one bar size "
            f"per folder (mixed, the panel interleaves them and the others look as if they had no "
            f"session); the symbol is excluded - move {file} to a folder of its own",
            file,
        )
        for sym, (file, size) in sizes.items()
        if size != folder
    ]
