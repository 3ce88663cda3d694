"""The two-process backtest (the days' market part in a forked worker, `joe.backtest.feed`) equals the
one-process one to the last fill and equity point; a failing or dying worker is a clear error, not a
hang; a daemonic process (a Dask worker) keeps the one-process path."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import time
from dataclasses import astuple
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from joe.backtest import feed
from joe.backtest.loading import load_history_sync
from joe.backtest.precompute import History
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig

START, END = date(2020, 11, 2), date(2021, 2, 26)  # ~85 trading days of the fixture's 330


@pytest.fixture(scope="module")
def history(market_dir: Path) -> History:
    return load_history_sync(f"csv:{market_dir}", ExecutionConfig(), end=END)


def _opts(market_dir: Path) -> BacktestOptions:
    return BacktestOptions(f"csv:{market_dir}", START, END)


def _fill(f: object) -> tuple[object, ...]:
    return (f.ts, f.symbol, f.side, f.quantity, f.price, f.commission)  # type: ignore[attr-defined]


def _trade(t: object) -> tuple[object, ...]:
    return astuple(t)[1:]  # type: ignore[call-overload]  # all but the position id


@pytest.mark.timeout(300)
def test_two_processes_equal_one(history: History, market_dir: Path) -> None:
    cfg = ExecutionConfig()
    one = run_on_history(history, cfg, _opts(market_dir), workers=1)
    two = run_on_history(history, cfg, _opts(market_dir), workers=2)
    assert "worker.total" in two.cpu_timings and "worker.total" not in one.cpu_timings  # really two
    assert len(one.days) > 60 and len(one.fills) >= 20, "the window must trade, or this proves little"
    assert two.days == one.days  # every day's equity, cash, exposure, positions, regime, signals
    assert [_fill(f) for f in two.fills] == [_fill(f) for f in one.fills]
    assert [_trade(t) for t in two.trades] == [_trade(t) for t in one.trades]
    assert two.signals == one.signals  # the opening signals, through the pipe and back
    assert (two.fees, two.fills_notional, two.open_positions) == (
        one.fees,
        one.fills_notional,
        one.open_positions,
    )
    assert set(two.timings) - {"wait"} == set(one.timings)  # the same stage keys


def test_a_portable_market_part_comes_back_the_same(history: History) -> None:
    cfg = ExecutionConfig()
    for row in (history.first_regime_row(), history.panel.n_dates - 1):
        direct = feed.market_of_day(history, cfg, row)
        h, t, _ = feed.day_view(history, row)
        panel = h.snapshot_at(t).panel
        back = pickle.loads(pickle.dumps(direct.portable())).on_panel(panel, h.features)
        assert back.scan.panel_symbols == panel.symbols and back.scan.col_of is panel.column_map
        assert repr(back.scan.candidates) == repr(direct.scan.candidates)  # NaN metrics: repr, not ==
        assert np.array_equal(back.scan.tag_counts, direct.scan.tag_counts)
        assert all(
            np.array_equal(back.scan.metrics[k], v, equal_nan=True) for k, v in direct.scan.metrics.items()
        )
        assert repr((back.regime, back.scores, back.signals)) == repr(
            (direct.regime, direct.scores, direct.signals)
        )
        assert back.features is h.features


def _boom(history: History, config: ExecutionConfig, row: int) -> object:
    if row == history.days(START, END)[3]:
        raise ValueError("boom in the scan")
    return _real(history, config, row)


def _die(history: History, config: ExecutionConfig, row: int) -> object:
    if row == history.days(START, END)[3]:
        os._exit(3)  # a crash: no message, no traceback
    return _real(history, config, row)


def _hang(history: History, config: ExecutionConfig, row: int) -> object:
    if row == history.days(START, END)[3]:
        time.sleep(600)  # a worker stuck (a lock never released after the fork, say)
    return _real(history, config, row)


_real = feed.market_of_day


@pytest.mark.timeout(120)
def test_a_stage_error_in_the_worker_is_raised_with_its_day(
    history: History, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "market_of_day", _boom)  # the forked worker inherits it
    with pytest.raises(feed.WorkerError, match=r"failed on 2020-11-05:(.|\n)*ValueError: boom in the scan"):
        run_on_history(history, ExecutionConfig(), _opts(market_dir), workers=2)
    assert not mp.active_children()


@pytest.mark.timeout(120)
def test_a_dead_worker_is_an_error_not_a_hang(
    history: History, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "market_of_day", _die)
    with pytest.raises(feed.WorkerError, match=r"exit code 3 .*2020-11-0[2-5].*--workers 1"):
        run_on_history(history, ExecutionConfig(), _opts(market_dir), workers=2)
    assert not mp.active_children()


@pytest.mark.timeout(120)
def test_a_stuck_worker_is_an_error_not_a_hang(
    history: History, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "market_of_day", _hang)
    monkeypatch.setattr(feed, "STALL", 2.0)  # read by this process while it waits
    with pytest.raises(feed.WorkerError, match=r"sent nothing for 2 s .*2020-11-0[2-5].*--workers 1"):
        run_on_history(history, ExecutionConfig(), _opts(market_dir), workers=2)
    assert not mp.active_children()  # the stuck worker was stopped


@pytest.mark.timeout(120)
def test_an_error_in_the_book_loop_stops_the_worker(history: History, market_dir: Path) -> None:
    def progress(done: int, total: int, day: date) -> None:
        if done == 2:
            raise RuntimeError("the book's side failed")  # e.g. the store's disk full mid-replay

    with pytest.raises(RuntimeError, match="the book's side failed"):
        run_on_history(history, ExecutionConfig(), _opts(market_dir), progress, workers=2)
    assert not mp.active_children()


def _report(q: mp.Queue) -> None:  # type: ignore[type-arg]
    q.put(feed.can_fork())


def test_a_daemonic_process_keeps_one_process() -> None:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_report, args=(q,), daemon=True)
    p.start()
    assert q.get(timeout=120) is False
    p.join(10)
    assert feed.can_fork() is True  # this (non-daemonic) process may fork


@pytest.mark.timeout(300)
def test_a_worker_whose_book_process_is_gone_ends(history: History) -> None:
    # The book's process killed outright (SIGKILL, the OOM killer): no __exit__ stops the worker, only
    # the kernel closes that process's end of the pipe - done here by hand. The worker must end at its
    # next send, not block for ever on a full pipe holding a copy of the whole history. The rows are
    # repeated so that the worker is still sending when that end closes (the pipe holds ~64 KiB).
    rows = [int(r) for r in history.days(START, END)] * 20
    with feed.MarketFeed(history, ExecutionConfig(), rows) as f:
        f.next()
        proc = f._proc
        assert f._conn is not None
        f._conn.close()
        proc.join(120)
        assert proc.exitcode == 0, "the worker still runs, its book's process gone"
    assert not mp.active_children()


@pytest.mark.timeout(300)
def test_the_worker_runs_ahead_of_a_busy_book(history: History) -> None:
    # The book takes one day, then is busy: the worker must still hand on every day it has (a thread of
    # the book's process drains the pipe) and finish, not block on a full pipe (~64 KiB) until the book
    # asks again - that wait was the book's idle time each time it caught up with the worker.
    rows = [int(r) for r in history.days(START, END)] * 3  # ~255 days: far more than the pipe holds
    cfg = ExecutionConfig()
    with feed.MarketFeed(history, cfg, rows) as f:
        first = f.next()
        proc = f._proc
        proc.join(240)
        assert proc.exitcode == 0, "the worker is blocked: nobody drains the pipe while the book is busy"
        rest = [f.next() for _ in rows[1:]]
        assert f.finish()["total"] > 0
    for row, got in zip(rows, [first, *rest], strict=True):  # every day, in order, as computed here
        want = feed.market_of_day(history, cfg, row)
        assert repr((got.regime, got.scores, got.signals)) == repr((want.regime, want.scores, want.signals))


@pytest.mark.timeout(300)
def test_the_report_is_imported_while_the_worker_computes_its_first_day(market_dir: Path) -> None:
    # The report's libraries (empyrical with SciPy, ~1 s) are not imported before the replay: the book's
    # process imports them while it has nothing to do but wait for the worker's first day.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from datetime import date\n"
        "from joe.backtest import engine\n"
        "from joe.backtest.loading import load_history_sync\n"
        "from joe.backtest.runner import BacktestOptions, run_on_history\n"
        "from joe.config.schema import ExecutionConfig\n"
        "assert 'joe.backtest.report' not in sys.modules and 'empyrical' not in sys.modules\n"
        "seen = []\n"
        "real_run_days = engine._run_days\n"
        "async def run_days(*a, **k):\n"
        "    seen.append('empyrical' in sys.modules)\n"
        "    return await real_run_days(*a, **k)\n"
        "engine._run_days = run_days\n"
        f"src = 'csv:{market_dir}'\n"
        f"h = load_history_sync(src, ExecutionConfig(), end=date({END.year}, {END.month}, {END.day}))\n"
        f"first = date({START.year}, {START.month}, {START.day})\n"
        "opts = BacktestOptions(src, first, h.panel.dates[-1].date())\n"
        "run_on_history(h, ExecutionConfig(), opts, workers=2)\n"
        "print(seen)\n"
    )
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[True]", "the report was not imported before the first day was awaited"


def _skip_a_day(history: History, config: ExecutionConfig, row: int) -> object:
    rows = [int(r) for r in history.days(START, END)]
    return _orig_market_of_day(history, config, rows[5] if row == rows[4] else row)


_orig_market_of_day = feed.market_of_day


@pytest.mark.timeout(120)
def test_a_day_out_of_step_is_an_error_not_another_days_market(
    history: History, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The book pairs the worker's analyses with its days by position only: a lost or foreign message
    # (a pump reading a pipe fd reused after its close) silently gave day 5 the market of day 6.
    monkeypatch.setattr(feed, "market_of_day", _skip_a_day)  # the forked worker inherits it
    with pytest.raises(feed.WorkerError, match=r"sent the analysis of 2020-11-\d\d.* where 2020-11-\d\d"):
        run_on_history(history, ExecutionConfig(), _opts(market_dir), workers=2)
    assert not mp.active_children()


@pytest.mark.timeout(300)
def test_a_ctrl_c_to_the_process_group_leaves_the_interrupt_to_the_book(history: History) -> None:
    # The terminal sends SIGINT to the worker as well as to the book: the worker must go on (the book
    # decides, prints its one line and stops it), not report a KeyboardInterrupt as a failed day.
    rows = [int(r) for r in history.days(START, END)]
    cfg = ExecutionConfig()
    with feed.MarketFeed(history, cfg, rows) as f:
        f.next()
        os.kill(f._proc.pid, signal.SIGINT)
        rest = [f.next() for _ in rows[1:]]  # a WorkerError here: the worker took the interrupt
        assert f.finish()["total"] > 0
    assert len(rest) == len(rows) - 1
