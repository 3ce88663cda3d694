"""`run_backtest`: history replayed day by day through the stages of `joe run --once`.

Each simulated day D is one run of the real stages (`joe.runtime.stages`) on a scratch paper book:

    settle_book   every bar since the last day through the stops/targets (gaps filled at the open),
                  then marks at D's closes — `PaperPortfolio.settle`, the paper cost model
    analyse_market Regime → Scan → Score → Strategy → Risk on the market as known at D's close
    trade         the RiskGate, then approved signals → paper fills at D's close (+ costs)

What a `joe run --once` does once per process and a backtest must not redo 2,000 times — opening
the source, the quality stage, the indicators, the regime's label history — is done once
(`joe.backtest.precompute.History`). The report stage runs once at the end (`joe.backtest.report`).
The simulated clock is the as-of date: every fill, exit and equity point is stamped with a bar date.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from joe.backtest.feed import MarketFeed, can_fork, day_view
from joe.backtest.precompute import History
from joe.backtest.scratch import scratch_runtime
from joe.config.schema import ExecutionConfig
from joe.core.models import Fill, Signal
from joe.portfolio import PaperPortfolio
from joe.portfolio.ledger import ClosedTrade
from joe.runtime.book import source_identity
from joe.runtime.stages import RunOptions, RunState, analyse_market, paper_rules, settle_book, trade
from joe.safety.run_guard import RunGuard

# Called after each simulated day with (days done, days in all, the day's date).
ProgressFn = Callable[[int, int, date], None]


class BacktestError(ValueError):
    """The backtest's options do not fit the data (an empty window, too little history)."""


@dataclass(frozen=True)
class DayRecord:
    """The book at the close of one simulated day."""

    day: date
    equity: float
    cash: float
    exposure: float  # gross value of open positions / equity
    positions: int
    regime: str
    signals: int
    opened: int
    closed: int


@dataclass
class BacktestResult:
    """Everything the report and the metrics read."""

    days: list[DayRecord]
    trades: list[ClosedTrade]
    open_positions: int
    signals: dict[str, Signal]  # signal_id → the signal that opened a position
    fills_notional: float
    fees: float
    starting_cash: float
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage of the day loop
    warnings: list[str] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    # CPU seconds of this process per stage (on a shared machine the wall clock holds others' work too).
    cpu_timings: dict[str, float] = field(default_factory=dict)
    # The data's trading day before the first simulated day: the close the book starts from (all cash).
    opening_day: date | None = None

    def equity(self) -> pd.Series:
        """The equity curve (UTC dates): the starting cash at the close before the first simulated day
        (`opening_day`; without it, the business day before), then the equity at each day's close. Day
        one's fills and costs are the first return, not the curve's starting point."""
        if not self.days:
            return pd.Series([], index=pd.DatetimeIndex([]), dtype=float, name="equity")
        first = pd.Timestamp(self.days[0].day)
        opening = pd.Timestamp(self.opening_day) if self.opening_day else first - pd.offsets.BDay(1)
        return pd.Series(
            [self.starting_cash, *(d.equity for d in self.days)],
            index=pd.DatetimeIndex([opening, *(pd.Timestamp(d.day) for d in self.days)]),
            name="equity",
        )


def _gross(pf: PaperPortfolio) -> float:
    return sum(abs(float(p.quantity) * float(p.mark or p.entry_price)) for p in pf.ledger.positions.values())


async def replay(
    history: History,
    config: ExecutionConfig,
    scratch: Path,
    start: date | None,
    end: date | None,
    *,
    source: str = "backtest",
    progress: ProgressFn | None = None,
    workers: int = 2,
    while_waiting: Callable[[], object] | None = None,
) -> BacktestResult:
    """Replay the days of `history` in [start, end] on a fresh scratch book in `scratch`.

    `workers` 2 (and `feed.can_fork()`): the days' market part (regime, scan, score, strategy) is
    computed ahead in a forked worker process while this one runs settle, risk and trade; 1: all in
    this process. The results are the same (tests/backtest/test_feed.py). `while_waiting`, with a
    worker: called once in this process after the worker starts and before the first day is awaited —
    work the caller needs later (the report's imports), done while the worker computes its first day
    (that day computes the indicators over the whole history: ~1 s of the 500 × 2,000 workload).
    Raises `BacktestError` when the window holds no trading day of the data, `feed.WorkerError` when
    the worker process fails.
    """
    days = history.days(start, end)
    in_window = len(days)
    warnings: list[str] = []
    ready = history.first_regime_row()
    if len(days) and days[0] < ready:
        # The regime needs ~200 bars of index history: the pipeline cannot run before that.
        if ready < history.panel.n_dates:
            first_ok = history.panel.dates[ready].date()
            warnings.append(
                f"the backtest starts on {first_ok}, the first day the regime can be labelled "
                f"(it needs ~200 bars of index history), not {history.panel.dates[days[0]].date()}"
            )
        days = days[days >= ready]
    if not len(days):
        d = history.panel.dates
        why = ""
        if in_window:  # the window has data, but all of it before the regime can be labelled
            why = (
                f" on which the regime can be labelled (from {d[ready].date()} on"
                if ready < len(d)
                else " on which the regime can be labelled (on none of the data's days"
            ) + ": it needs ~200 bars of index history)"
        lo, hi = start or "the data's first day", end or "its last day"
        # The history was read up to `end` (`load_history`): its last day is the last one up to `end`,
        # not the files' last date - say so rather than call it what the data covers.
        read = f" read up to {end}" if end is not None else ""
        raise BacktestError(
            f"no trading day between {lo} and {hi}{why}: the data{read} covers {d[0].date()} to "
            f"{d[-1].date()}"
        )
    rt = scratch_runtime(config, scratch)
    try:
        if workers > 1 and len(days) > 1 and can_fork():
            with MarketFeed(history, rt.config, days.tolist()) as feed:
                if while_waiting is not None:
                    while_waiting()
                result = await _run_days(rt, history, days, source, progress, feed)
                result.cpu_timings.update({f"worker.{k}": v for k, v in feed.finish().items()})
                result.timings["wait"] = feed.waited
                result.cpu_timings["receive"] = feed.recv_cpu
        else:
            result = await _run_days(rt, history, days, source, progress)
        result.warnings[:0] = warnings
        if days[0] > 0:  # the regime needs ~200 bars before the first day: there is always one
            result.opening_day = history.panel.dates[int(days[0]) - 1].date()
        return result
    finally:
        rt.close()


async def _run_days(
    rt: Any,
    history: History,
    days: Any,
    source: str,
    progress: ProgressFn | None,
    feed: MarketFeed | None = None,
) -> BacktestResult:
    opts = RunOptions(source=source)
    clock = SimClock(history.pydates[int(days[0])])
    # One simulated clock read by everything that asks the time: the book, the safety layer (the
    # RiskGate's order-rate limits count orders per simulated minute) and the run state.
    pf = PaperPortfolio.load(rt.store, rt.audit, rt.config, broker="sim", clock=clock)
    pf.set_rules(paper_rules(history.snap.instruments))  # a broker's grids, as a paper run books
    guard = RunGuard.start(rt, clock=clock)
    book_source = source_identity("sim", source)
    timings: dict[str, float] = {"settle": 0.0, "analysis": 0.0, "trading": 0.0}
    cpu: dict[str, float] = {"settle": 0.0, "analysis": 0.0, "trading": 0.0}
    records: list[DayRecord] = []
    opened_signals: dict[str, Signal] = {}
    fills_seen = 0
    notional = 0.0
    fees = 0.0
    warnings: list[str] = list(history.snap.warnings)
    total = len(days)
    for k, row in enumerate(days.tolist()):
        # The market as the quality stage saw it on this day (loading.py: causal quality).
        h, t, ts = day_view(history, row)
        day = ts.date()
        clock.now = history.pydates[row]
        st = RunState(rt, opts, f"bt-{day.isoformat()}", clock.now, _Quiet(), clock)
        st.pf, st.guard, st.book_source = pf, guard, book_source
        st.features, st.detector = h.features, h.detector
        st.snap = h.snapshot_at(t)
        st.as_of_idx, st.as_of_ts = t, ts
        if feed is not None:  # the day's market part, computed ahead by the worker process
            st.market = feed.next().on_panel(st.snap.panel, h.features)
        held = {p.symbol for p in pf.ledger.positions.values()}
        st.held_bars = h.held_price_bars(held, pf.last_bar_ts(), t) if held else ([], {})
        t0, c0 = time.perf_counter(), time.process_time()
        await settle_book(st)
        warnings += st.data_ended  # said once: the position is closed
        t1, c1 = time.perf_counter(), time.process_time()
        rt.store.start_run(st.run_id, mode="paper", broker="sim", source=source, as_of=st.started)
        await analyse_market(st)
        t2, c2 = time.perf_counter(), time.process_time()
        await trade(st)
        t3, c3 = time.perf_counter(), time.process_time()
        timings["settle"] += t1 - t0
        timings["analysis"] += t2 - t1
        timings["trading"] += t3 - t2
        cpu["settle"] += c1 - c0
        cpu["analysis"] += c2 - c1
        cpu["trading"] += c3 - c2
        for name, v in (st.result.timings if st.result else {}).items():
            timings[f"analysis.{name}"] = timings.get(f"analysis.{name}", 0.0) + v
        for o in st.outcomes:
            if o.fill is not None:
                sig = next(s for s in st.result.approved if s.signal_id == o.signal_id)  # type: ignore[union-attr]
                opened_signals[o.signal_id] = sig
        for f in pf.run_fills[fills_seen:]:
            notional += float(f.quantity * f.price)
            fees += float(f.commission)
        fills_seen = len(pf.run_fills)
        lg = pf.ledger
        eq = float(lg.equity)
        records.append(
            DayRecord(
                day,
                eq,
                float(lg.cash),
                _gross(pf) / eq if eq > 0 else 0.0,
                len(lg.positions),
                st.result.regime.label.value if st.result else "",
                len(st.result.signals) if st.result else 0,
                st.opened,
                st.closed,
            )
        )
        if progress is not None:
            progress(k + 1, total, day)
        # Yield to the event loop once a day: the book's awaits complete at once, so without it a
        # cancellation (asyncio.run's answer to Ctrl-C) would land only after the last day.
        await asyncio.sleep(0)
    return BacktestResult(
        records,
        list(pf.ledger.closed),
        len(pf.ledger.positions),
        opened_signals,
        notional,
        fees,
        float(pf.ledger.starting_cash),
        timings,
        warnings,
        list(pf.run_fills),
        cpu,
    )


class _Quiet:
    def stage(self, name: str, detail: str = "") -> None:
        return None


class SimClock:
    """The simulated clock: it reads the as-of bar's time of the day being replayed (set by the loop)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def replay_sync(
    history: History, config: ExecutionConfig, scratch: Path, start: date | None, end: date | None, **kw: Any
) -> BacktestResult:
    """Blocking wrapper (CLI, Dask workers)."""
    return asyncio.run(replay(history, config, scratch, start, end, **kw))


__all__ = ["BacktestError", "BacktestResult", "DayRecord", "replay", "replay_sync"]
