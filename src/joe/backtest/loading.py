"""Opening a backtest's data: `--source sample | csv:PATH | parquet:PATH | cache[:SOURCE]`.

The market goes through the same `load_snapshot` as `joe run --once` (universe, the data-quality
stage, index and VIX), with the source clipped at `--to` (nothing after it is loaded) and every bar
kept (a run keeps only the newest few hundred; a backtest needs the whole history).

The quality stage is causal by construction: a run on day D sees the stage's verdict on data that ends
at D. A finding dated after D — a split (earlier bars adjusted), an exclusion (unconfirmed split,
extreme move, broken bar) or a series going stale — changes what D would see, so the days before it
replay on the market loaded again up to the day before it (`History.earlier`, one load per such
finding inside the window; clean data loads once). Warnings that change no number (outliers, close-only
or volume notes) need nothing: analysis does not read them (tests/backtest/test_no_lookahead.py).

A file source reads each file only up to `end` (`joe.data.files.read_file`): a bad row after it cannot
exclude the file. A file refused for one bad row inside the window is an `unreadable` error dated at that
bar, so it is such a finding too: the days before it replay on the file read up to the day before
(tests/backtest/test_defects_after_end.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from joe.backtest.precompute import History
from joe.config.schema import ExecutionConfig
from joe.data.file_ahead import read_processes
from joe.data.quality import QualityConfig
from joe.runtime.market import load_snapshot

ALL_BARS = 10**7
# Warnings that change numbers analysis reads (errors all do: the symbol is left out).
CHANGES = frozenset({"split"})


async def load_history(
    spec: str,
    config: ExecutionConfig,
    *,
    end: date | None = None,
    universe: str | None = None,
    date_format: str | None = None,
    data_dir: Path | None = None,
    start: date | None = None,
    processes: int = 2,
) -> History:
    """The market of `spec` up to `end` with its precomputed parts.

    `cache[:SOURCE]` reads the bar cache under `data_dir` (default `$JOE_DATA_DIR`). `start`: the first
    day to be replayed (quality changes before it concern no replayed day; None: the data's first).
    `processes`: 2 reads a large folder's files in two processes (`joe.data.file_ahead`), 1 in this one.
    Raises `joe.data.errors.DataError` for a source that cannot be read (named in the message).
    """
    from joe.data import open_source

    kind, _, arg = spec.partition(":")
    c0 = time.process_time()
    source: Any
    if kind.strip().lower() == "cache":
        from joe.config.settings import load_settings
        from joe.data.cache import open_cache_source

        root = Path(data_dir) if data_dir is not None else Path(load_settings().data_dir)
        source = open_cache_source(root, arg.strip() or None, as_of=end)
    else:
        # The second core is idle until the day loop's analysis worker starts: a folder's files are read
        # in two processes (`joe.data.file_ahead`; the same source as one process reads).
        with read_processes(processes):
            source = open_source(
                spec, as_of=end, n_synthetic=config.pipeline.universe_size, date_format=date_format
            )
    c1 = time.process_time()
    snap = await load_snapshot(source, universe, config.pipeline.universe_size, ALL_BARS)
    c2 = time.process_time()
    history = History.build(snap)
    # CPU seconds per loading step, for the benchmark's split (`MarketSnapshot.cpu_timings`).
    history.cpu_timings = {"source": c1 - c0, **snap.cpu_timings, "precompute": time.process_time() - c2}
    first_change = _latest_change(history, start)
    if first_change is not None:
        dates = history.panel.dates
        i = int(dates.searchsorted(first_change, side="left"))
        if i > 0:
            history.known_from = dates[i]
            history.earlier = await load_history(
                spec,
                config,
                end=dates[i - 1].date(),
                universe=universe,
                date_format=date_format,
                data_dir=data_dir,
                start=start,
                processes=processes,  # `--workers 1` promises one process for this load too
            )
    return history


def _latest_change(history: History, start: date | None) -> pd.Timestamp | None:
    """The date of the latest quality change inside the window that not every day could have seen.

    A split's or an exclusion's finding is dated at its bar: from that day on the stage knows it. A
    stale series is excluded from the first day its last bar is more than `stale_sessions` old: counted
    in rows that is a bound, as the stage counts the exchange's sessions, of which a market-wide gap in
    the data has more than rows. A finding whose row count lies past the data was made on the last day,
    so it is dated there; an earlier day that is stale too by sessions is found by the earlier load's
    own pass (tests/backtest/test_stale_lookahead.py).
    """
    dates = history.panel.dates
    lo = pd.Timestamp(start, tz="UTC") if start is not None else dates[0]
    found: list[pd.Timestamp] = []
    for f in history.snap.quality.findings:
        if f.date is None or not (f.severity == "error" or f.check in CHANGES):
            continue
        ts = pd.Timestamp(f.date, tz="UTC")
        if f.check == "stale":
            k = int(dates.searchsorted(ts, side="left")) + QualityConfig().stale_sessions + 1
            ts = dates[min(k, len(dates) - 1)]
        if lo < ts <= dates[-1]:  # a date past the data (a series not started yet) changes no replayed day
            found.append(ts)
    return max(found) if found else None


def load_history_sync(spec: str, config: ExecutionConfig, **kw: object) -> History:
    return asyncio.run(load_history(spec, config, **kw))  # type: ignore[arg-type]
