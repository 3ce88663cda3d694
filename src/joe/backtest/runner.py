"""One backtest end to end: options → data (once) → the day loop → the report folder.

`BacktestOptions` is what `joe backtest` takes; `run_backtest` returns where the report is and the
metrics. The scratch book lives in a temporary folder removed at the end: only the report stays.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joe.backtest.engine import BacktestResult, ProgressFn, replay_sync
from joe.backtest.loading import load_history_sync
from joe.backtest.overrides import apply_overrides
from joe.backtest.precompute import History
from joe.config.schema import ExecutionConfig
from joe.core.clock import utcnow

if TYPE_CHECKING:
    from joe.backtest.report import BacktestPaths


@dataclass(frozen=True)
class BacktestOptions:
    """`joe backtest` options. `start`/`end` None: the data's first usable day / last day."""

    source: str = "sample"
    start: date | None = None
    end: date | None = None
    universe: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    date_format: str | None = None

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat() if self.start else None
        d["end"] = self.end.isoformat() if self.end else None
        return d


@dataclass
class BacktestOutcome:
    """Where the report is, its metrics, and the seconds each phase took."""

    id: str
    paths: BacktestPaths
    metrics: dict[str, Any]
    result: BacktestResult
    timings: dict[str, float]


def backtest_id(opts: BacktestOptions, now: datetime) -> str:
    """`bt-<UTC time>-<6 hex of the options>`: sortable, and two option sets never collide."""
    digest = hashlib.sha256(json.dumps(opts.describe(), sort_keys=True, default=str).encode()).hexdigest()
    return f"bt-{now:%Y%m%d-%H%M%S}-{digest[:6]}"


def prepare_report() -> None:
    """Import the report and its metrics library (empyrical, with SciPy: ~1 s): done by `replay` while
    the analysis worker computes its first day, when this process has nothing else to do."""
    from joe.backtest import metrics, report  # noqa: F401

    metrics.library()


def run_on_history(
    history: History,
    config: ExecutionConfig,
    opts: BacktestOptions,
    progress: ProgressFn | None = None,
    *,
    workers: int = 2,
) -> BacktestResult:
    """The day loop on already-loaded data, with `opts.overrides` applied to `config`.

    `workers`: 2 computes the days' market part in a second process ahead of the book (a pipeline
    over two cores, `joe.backtest.feed`), 1 keeps everything in this process; the results are the same.
    """
    cfg = apply_overrides(config, opts.overrides)
    with tempfile.TemporaryDirectory(prefix="joe-backtest-") as scratch:
        return replay_sync(
            history,
            cfg,
            Path(scratch),
            opts.start,
            opts.end,
            source=opts.source,
            progress=progress,
            workers=workers,
            while_waiting=prepare_report,
        )


def run_backtest(
    opts: BacktestOptions,
    config: ExecutionConfig,
    out_root: Path,
    *,
    progress: ProgressFn | None = None,
    now: datetime | None = None,
    workers: int = 2,
) -> BacktestOutcome:
    """Load the data, replay it, write `out_root/<id>/`. Raises `BacktestError`, `OverrideError`,
    `joe.data.errors.DataError` for options or data that do not fit (nothing is written then).
    `workers`: as `run_on_history`."""
    cfg = apply_overrides(config, opts.overrides)  # refused before any data is read
    t0 = time.perf_counter()
    history = load_history_sync(
        opts.source, cfg, start=opts.start, end=opts.end, universe=opts.universe,
        date_format=opts.date_format, processes=1 if workers < 2 else 2,  # --workers 1: the load too
    )  # fmt: skip
    t1 = time.perf_counter()
    result = run_on_history(history, cfg, opts, progress, workers=workers)
    t2 = time.perf_counter()
    bt_id = backtest_id(opts, now or utcnow())
    first, last = result.days[0].day, result.days[-1].day
    title = f"Backtest {bt_id}: {opts.source}, {first} to {last}"
    timings = {"load": t1 - t0, "replay": t2 - t1}
    from joe.backtest.report import write_report  # imported already by the replay with a worker

    paths, metrics = write_report(result, out_root / bt_id, title, opts.describe() | {"timings": timings})
    timings["report"] = time.perf_counter() - t2
    return BacktestOutcome(bt_id, paths, metrics, result, timings)
