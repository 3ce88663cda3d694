"""The market part of each backtest day — here, or in one other process ahead of the book.

A day's analysis is two parts (`joe.analysis.pipeline`): the market part (regime, scan, score,
strategy) reads the market up to the day only; the book part (risk) reads the book too. So the market
parts of all the days can be computed ahead, in order, by one worker process, while this process runs
the book-dependent loop (settle → risk → trade): a pipeline over two cores. The worker runs the same
stage function as a run (`joe.runtime.stages.market_part`) on the same `History`, which it inherits by
`fork` after the load (no second load, no pickling of the history); only each day's `MarketAnalysis`
(small: the regime, the scan's arrays, the best scores and the raw signals) comes back through a pipe.

One process (`workers=1`, a daemonic process such as a Dask worker, a platform without `fork`): the
market part is computed by `analyse_market` itself, as in `joe run --once`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import pandas as pd

from joe.analysis.pipeline import MarketAnalysis
from joe.backtest.precompute import History
from joe.config.schema import ExecutionConfig
from joe.runtime.stages import market_part

# Days per message: fewer, larger writes through the pipe (the worker runs ahead of the book anyway).
BATCH = 4
# Seconds without a message from the worker after which it is taken as hung (a day takes milliseconds,
# its first one a few seconds: it computes the indicators over the whole history).
STALL = 300.0
# Messages (of BATCH days) read off the pipe and not yet taken by the book: how far the worker may run
# ahead (~20-60 KiB a day on daily_500: ~256 × 4 days is tens of MB at most).
AHEAD = 256
_EOF = b""  # the pump's mark: the worker's end of the pipe is closed (it exited or died)


class WorkerError(RuntimeError):
    """The analysis worker process failed (an exception in a stage, or the process died)."""


def day_view(history: History, row: int) -> tuple[History, int, pd.Timestamp]:
    """(the history day `row` replays on, its row there, the day's timestamp): a day before a quality
    change reads the history loaded before it (`History.as_of`)."""
    ts = history.panel.dates[row]
    h = history.as_of(ts)
    t = row if h is history else int(h.panel.dates.searchsorted(ts, side="right")) - 1
    return h, t, ts


def market_of_day(history: History, config: ExecutionConfig, row: int) -> MarketAnalysis:
    """The market part of the day at panel row `row`, exactly as the day's `analyse_market` computes it."""
    h, t, ts = day_view(history, row)
    return market_part(h.snapshot_at(t), config, ts, h.features, h.detector)


def can_fork() -> bool:
    """A worker process can be started here: `fork` exists and this process may have children (a
    daemonic process — a Dask worker, a multiprocessing pool's worker — may not)."""
    return "fork" in mp.get_all_start_methods() and not mp.current_process().daemon


def _work(
    conn: Connection, history: History, config: ExecutionConfig, rows: Sequence[int], book_end: Connection
) -> None:
    # The book's end of the pipe, inherited by the fork: closed here, so that once the book's process
    # is gone (killed, even by SIGKILL) the next send fails and the worker ends instead of blocking
    # for ever on a full pipe that its own copy of the reading end kept open.
    book_end.close()
    # Ctrl-C at a terminal goes to the whole process group: the book's process handles it (one line, exit
    # 130) and stops this worker; taken here too, it would be sent back as the stage's "error" and race
    # the book's own interrupt, so the run could end as a failure instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    k = 0
    cpu = {"market": 0.0, "send": 0.0}
    try:
        batch: list[MarketAnalysis] = []
        for k, row in enumerate(rows):
            c0 = time.process_time()
            batch.append(market_of_day(history, config, row).portable())
            c1 = time.process_time()
            cpu["market"] += c1 - c0
            if len(batch) == BATCH or k == len(rows) - 1:
                # The C pickler, not `conn.send`'s ForkingPickler (a third more per day: it looks every
                # object up in its reducers' table; a day holds no fd or socket it would need them for).
                conn.send_bytes(pickle.dumps(("ok", batch), pickle.HIGHEST_PROTOCOL))
                batch = []
                cpu["send"] += time.process_time() - c1
        cpu["total"] = time.process_time()  # a forked child's CPU clock starts at 0
        conn.send(("done", cpu))
    except BaseException:  # the stage's error, told to the book's process (which raises it)
        with contextlib.suppress(OSError):  # unless that process is gone (a broken pipe): nobody to tell
            conn.send(("error", k, traceback.format_exc()))
    finally:
        conn.close()


class MarketFeed:
    """The market part of `rows` (panel rows, in replay order), computed ahead in a forked worker.

    Use as a context manager; `next()` returns the next day's `MarketAnalysis`. Raises `WorkerError`
    when the worker raised (with its traceback), died (with its exit code) or sent nothing for `STALL`
    seconds — it never waits forever. Leaving the context stops the worker.
    """

    def __init__(self, history: History, config: ExecutionConfig, rows: Sequence[int]) -> None:
        self._history, self._config, self._rows = history, config, list(rows)
        self._ready: deque[MarketAnalysis] = deque()
        self._taken = 0
        # The worker's CPU seconds (market = the stages, send = pickling into the pipe, total), once it
        # is done; `waited`: wall seconds this process waited for it.
        self.worker_cpu: dict[str, float] = {}
        self.waited = 0.0
        self.recv_cpu = 0.0  # CPU seconds this process spent receiving (unpickling) the days
        self._proc: Any = None
        self._conn: Connection | None = None
        # Raw messages read off the pipe by the pump thread, unpickled by this thread when needed.
        self._inbox: queue.Queue[bytes] = queue.Queue(AHEAD)
        self._pump: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> MarketFeed:
        ctx = mp.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_work, args=(send, self._history, self._config, self._rows, recv), name="joe-bt-analysis"
        )
        self._proc.start()
        send.close()  # the worker's end: closed here, so the pipe reports EOF when the worker exits
        self._conn = recv
        # A thread drains the pipe as the worker writes (the read releases the GIL), so the worker
        # never blocks on a full pipe while the book is busy: it runs ahead by up to AHEAD messages,
        # and the book waits only when it has caught up. Started after the fork: the child holds
        # no copy of it.
        self._pump = threading.Thread(target=self._drain, args=(recv,), name="joe-bt-feed", daemon=True)
        self._pump.start()
        return self

    def _drain(self, conn: Connection) -> None:
        """The pump thread: each message's bytes into the inbox, then `_EOF` once the pipe ends."""
        while not self._stop.is_set():
            try:
                raw = conn.recv_bytes()
            except Exception:  # EOF (the worker is gone), or this end closed under the read
                raw = _EOF
            while not self._stop.is_set():
                try:
                    self._inbox.put(raw, timeout=0.5)
                    break
                except queue.Full:  # the book is AHEAD messages behind: wait for it
                    continue
            if raw is _EOF:
                return

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        self._stop.set()
        if proc is not None:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
            if proc.is_alive():  # pragma: no cover - SIGTERM ignored
                proc.kill()
                proc.join()
        # The worker is gone, so its end of the pipe is closed and the pump's read returns (EOF).
        if self._pump is not None:
            self._pump.join(5)
        # Closed only once the pump has stopped reading it: closed under a read that still blocks
        # (another process forked meanwhile holds the worker's end), its fd number would be reused by
        # the next pipe - the next backtest's - and this pump would take that backtest's messages.
        if self._conn is not None and (self._pump is None or not self._pump.is_alive()):
            self._conn.close()

    def next(self) -> MarketAnalysis:
        """The next day's market part (blocks until the worker has it)."""
        if not self._ready:
            t0 = time.perf_counter()
            while not self._ready:
                self._receive()
            self.waited += time.perf_counter() - t0
        got = self._ready.popleft()
        want = self._history.panel.dates[self._rows[self._taken]]
        if got.as_of != want:  # a lost or foreign message would pair one day's market with another's book
            raise WorkerError(
                f"the backtest's analysis worker sent the analysis of {got.as_of} where {want} was due; "
                f"run with --workers 1 to analyse in one process"
            )
        self._taken += 1
        return got

    def finish(self) -> dict[str, float]:
        """Wait for the worker's last message (its CPU seconds, `worker_cpu`) after the last day."""
        while not self.worker_cpu:
            self._receive()
        return self.worker_cpu

    def _receive(self) -> None:
        assert self._proc is not None
        try:
            raw = self._inbox.get(timeout=STALL)
        except queue.Empty:
            raise WorkerError(
                f"the backtest's analysis worker process (pid {self._proc.pid}) sent nothing for {STALL:g} s "
                f"(waiting for the analysis of {self._day()}); run with --workers 1 to analyse in one process"
            ) from None
        if raw is not _EOF:
            c0 = time.process_time()
            msg = pickle.loads(raw)
            self.recv_cpu += time.process_time() - c0
            if msg[0] == "ok":
                self._ready.extend(msg[1])
                return
            if msg[0] == "done":
                self.worker_cpu = msg[1]
                return
            # ("error", k, traceback)
            day = self._history.panel.dates[self._rows[msg[1]]].date()
            raise WorkerError(f"the backtest's analysis worker failed on {day}:\n{msg[2]}")
        self._proc.join(5)
        raise WorkerError(
            f"the backtest's analysis worker process (pid {self._proc.pid}) stopped with exit code "
            f"{self._proc.exitcode} before sending the analysis of {self._day()}; run with --workers 1 "
            f"to analyse in one process (pid of this process: {os.getpid()})"
        )

    def _day(self) -> object:
        """The date of the next day the book waits for."""
        return self._history.panel.dates[self._rows[min(self._taken, len(self._rows) - 1)]].date()
