"""Ctrl-C during a backtest stops it at the next simulated day, not after the last one.

`asyncio.run` answers SIGINT by cancelling its main task (`asyncio.Runner`), and a cancellation lands
only where the task yields to the event loop; the day loop's awaits on the scratch book complete at
once, so the loop must yield once a day itself."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from datetime import date
from pathlib import Path

import pytest

from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig

START, END = date(2020, 11, 2), date(2020, 12, 31)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_cancelled_backtest_stops_at_the_next_day(market_dir: Path, workers: int) -> None:
    cfg = ExecutionConfig()
    history = load_history_sync(f"csv:{market_dir}", cfg, end=END)
    seen: list[int] = []

    def progress(done: int, total: int, day: date) -> None:
        seen.append(done)
        if done == 2:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # what asyncio.run's SIGINT handler does on the user's Ctrl-C

    with pytest.raises(asyncio.CancelledError):
        run_on_history(
            history, cfg, BacktestOptions(f"csv:{market_dir}", START, END), progress, workers=workers
        )
    assert not mp.active_children()  # the analysis worker (workers=2) stopped with the replay
    assert len(history.days(START, END)) > 30
    assert seen[-1] == 2, f"the replay went on to day {seen[-1]} after the cancellation on day 2"
