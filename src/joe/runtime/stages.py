"""The stages of one run over one as-of date, as plain functions over a `RunState`.

`run_once` calls them in order; a daemon (one call per new bar) and a backtest (one call per
historical date) can call the same functions. Each stage reads what earlier stages put in the
state and adds its own results; none of them talks to the CLI.

    open_book → load_market → settle_book → analyse_market → trade → write_report → push
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from joe.analysis.features import Features
from joe.analysis.pipeline import AnalysisResult, MarketAnalysis, assess_book
from joe.analysis.pipeline import analyse_market as read_market
from joe.analysis.regime import RegimeDetector
from joe.config.schema import ExecutionConfig
from joe.core.logging import get_logger
from joe.core.models import AccountInfo, Instrument, Position, Signal
from joe.core.reports import InstrumentRules
from joe.data.failover import FailoverMarketData
from joe.portfolio import PaperPortfolio, SignalOutcome
from joe.portfolio.exits import PriceBar
from joe.portfolio.replay import Mark, to_decimal
from joe.reporting.context import OPENED_PREFIX
from joe.runtime.book import BookIdentity, check_forward, check_source, source_identity
from joe.runtime.data_ended import close_data_ended
from joe.runtime.held_quality import follow_data_quality, follow_splits
from joe.runtime.market import MarketSnapshot, load_snapshot
from joe.runtime.sources import open_market_data

if TYPE_CHECKING:  # the report's and the safety layer's modules are imported where they are used
    from joe.reporting.generator import ReportPaths
    from joe.runtime.bootstrap import Runtime
    from joe.safety.run_guard import RunGuard

log = get_logger("joe.runtime.run")

# Bars kept per instrument for analysis: enough for 52-week highs/lows, ATR and trend filters.
MIN_PANEL_BARS = 400


class Progress(Protocol):
    """Where a run reports its stages (the CLI shows them with rich)."""

    def stage(self, name: str, detail: str = "") -> None: ...


class RunArgumentError(ValueError):
    """The run's options do not fit the data or each other (exit 2); nothing was done."""


@dataclass(frozen=True)
class RunOptions:
    """Options of one `joe run --once`."""

    broker: str = "sim"
    source: str = "sample"
    as_of: date | None = None
    push: bool = False
    universe_scan: str | None = None
    # File sources: 'dayfirst', 'monthfirst' or a strptime format for ambiguous dates (joe.data.dates).
    date_format: str | None = None
    # Symbols on which this run takes no entry (the daemon's stale instruments: `--no-entry`).
    no_entries: tuple[str, ...] = ()
    # Live/shadow: the minute the RiskGate judges market hours at starts here instead of now
    # (`--clock-start`, a rehearsal on paper or a local simulator only; the daemon passes its clock).
    market_clock_start: datetime | None = None

    @property
    def source_label(self) -> str:
        """Where the run's prices come from, as the user names it: `sample`, `csv:PATH`, `capital`, `ibkr`.

        With a broker `source` is not used (the data comes from the broker), so the label is the broker.
        """
        return self.source if self.broker == "sim" else self.broker


@dataclass
class RunState:
    """What one run has done so far; each stage fills its part."""

    rt: Runtime
    opts: RunOptions
    run_id: str
    started: datetime
    progress: Progress
    clock: Callable[[], datetime]
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pf: PaperPortfolio | None = None
    book: BookIdentity | None = None
    book_source: str = ""
    snap: MarketSnapshot | None = None
    description: str = ""
    held_history: dict[str, pd.DataFrame] = field(default_factory=dict)
    # A backtest hands the settle stage its held bars ready-cut (`PaperPortfolio.settle_bars`' input:
    # (bar time, symbol → bar) since the last processed bar, symbol → last close); None: from held_history.
    held_bars: tuple[Sequence[tuple[datetime, Mapping[str, PriceBar]]], Mapping[str, Mark]] | None = None
    as_of_ts: pd.Timestamp | None = None
    as_of_idx: int = -1
    run_started: bool = False
    closed: int = 0
    # One line per position this run closed because its instrument's data ended (`close_data_ended`);
    # also in `warnings` (a backtest keeps these, not each day's warnings).
    data_ended: list[str] = field(default_factory=list)
    result: AnalysisResult | None = None
    outcomes: list[SignalOutcome] = field(default_factory=list)
    executions: dict[str, str] = field(default_factory=dict)
    paths: ReportPaths | None = None
    delivered: int = 0
    pushed_ok: bool = True
    guard: RunGuard | None = None  # the safety layer's hooks (joe.safety.run_guard)
    # A backtest reuses these across its days: indicators computed once over the whole history and a
    # regime detector with its label history precomputed (joe.backtest.precompute). None: per run.
    features: Features | None = None
    detector: RegimeDetector | None = None
    # Broker failover (joe.data.failover): where each symbol's price came from, and the symbols that
    # take no entry because their broker was down (symbol -> why).
    price_sources: dict[str, str] = field(default_factory=dict)
    failover_blocked: dict[str, str] = field(default_factory=dict)
    # The book-free analysis (regime, scan, score, strategy) of this run's as-of bar when it was
    # computed elsewhere — a backtest's analysis worker process (`joe.backtest.feed`); None: here.
    market: MarketAnalysis | None = None

    @property
    def opened(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "opened")

    def done_so_far(self) -> str:
        """Plain words on what the run changed in the book (for a failure message)."""
        fills = len(self.pf.run_fills) if self.pf else 0
        if not fills:
            return "nothing was traded"
        opened, closed = self.booked()
        return (
            f"{opened} position(s) opened and {closed} closed ({fills} fill(s)) are booked "
            "in the paper book and the audit log"
        )

    def booked(self) -> tuple[int, int]:
        """(opened, closed) positions the paper book has booked so far this run — counted by the book
        as it books them (entries, stops and targets, strategy exits, a flatten), so a run that fails
        half-way through its trades still counts those it made: `outcomes` are only set once every
        signal is through."""
        if self.pf is None:
            return self.opened, self.closed
        return self.pf.run_opened, self.pf.run_closed


def _need(value: object, what: str) -> None:
    if value is None:  # a stage called out of order is a programming error
        raise RuntimeError(f"run stage needs {what} from an earlier stage")


def _timed(st: RunState, name: str, t0: float) -> None:
    st.timings[name] = time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- book
def open_book(st: RunState) -> None:
    """Load the paper book and refuse a run that would break its continuity (`BookRefused`)."""
    rt, opts = st.rt, st.opts
    if opts.broker != "sim" and opts.source != "sample":
        raise RunArgumentError(
            f"--source {opts.source} applies to --broker sim only; with --broker {opts.broker} the market "
            "data comes from the broker (drop --source, or use --broker sim)"
        )
    # What start-up noticed (a .env line dropped, an empty config file) is in the report too.
    st.warnings += [str(p) for p in rt.settings.problems] + [str(p) for p in rt.config_problems]
    st.pf = PaperPortfolio.load(rt.store, rt.audit, rt.config, broker=opts.broker)
    for coid in st.pf.resolve_interrupted():  # a killed or failed earlier run's half-written order
        st.warnings.append(f"order {coid} of an interrupted run was never booked: marked REJECTED")
    st.book = BookIdentity.load(rt.store)
    st.book_source = source_identity(opts.broker, opts.source)
    check_source(st.book, st.book_source, has_history=bool(st.pf.ledger.positions))
    if opts.as_of is not None:
        check_forward(st.book, opts.as_of)


# -------------------------------------------------------------------------------------------- market
def _resolve_as_of(st: RunState, snap: MarketSnapshot) -> None:
    dates = snap.panel.dates
    want = st.opts.as_of
    # Only "before the data" is checked here: an as-of on a holiday or weekend uses the bar before it,
    # and local sources refuse an as-of after their data themselves (they clip at the as-of).
    if want is not None and want < dates[0].date():
        raise RunArgumentError(
            f"--as-of {want} is outside the data of {st.opts.source_label}: choose a date "
            f"between {dates[0].date()} and {dates[-1].date()}"
        )
    st.as_of_idx = snap.panel.index_at(pd.Timestamp(want, tz=UTC) if want else None)
    st.as_of_ts = dates[st.as_of_idx]
    # A user's --as-of before the book's date was refused when the book opened; here the date is the data's
    # newest bar on or before it, and a refusal is about the data, not the flag.
    check_forward(st.book, st.as_of_ts.to_pydatetime(), asked=False)


async def _held_history(st: RunState, source: object, snap: MarketSnapshot) -> None:
    """Daily bars of every held symbol from the last processed bar on (the panel when it reaches back)."""
    assert st.pf is not None
    held = sorted({p.symbol for p in st.pf.ledger.positions.values()})
    last = st.pf.last_bar_ts()
    start = snap.panel.dates[0]
    for sym in held:
        if sym in snap.panel and last is not None and start <= pd.Timestamp(last):
            st.held_history[sym] = snap.panel.frame(sym)
            continue
        try:
            st.held_history[sym] = await source.history(sym, "1d")  # type: ignore[attr-defined]
        except Exception as exc:  # the position keeps its last mark; the report says how old it is
            st.warnings.append(
                f"no price history for held {sym} ({type(exc).__name__}): it keeps its last mark"
            )


def paper_rules(instruments: Mapping[str, Instrument]) -> dict[str, InstrumentRules]:
    """The dealing rules a paper book applies: the broker's tick, size step and minimum where it
    states them (`Instrument.broker_rules`), the tick alone for other Capital.com instruments."""
    return {
        s: InstrumentRules(
            s,
            i.tick_size,
            i.min_size or Decimal(0),
            i.lot_size if i.broker_rules else Decimal(0),
        )
        for s, i in instruments.items()
        if i.broker_rules or "capital" in i.broker_ids
    }


async def load_market(st: RunState) -> None:
    """Open the source, load the analysis snapshot and the held symbols' history, fix the as-of bar."""
    rt, opts = st.rt, st.opts
    t0 = time.perf_counter()
    st.progress.stage("data", f"opening {opts.source_label}")
    source, close_source = await open_market_data(rt, opts)
    try:
        keep = max(rt.config.pipeline.history_bars, MIN_PANEL_BARS)
        snap = await load_snapshot(source, opts.universe_scan, rt.config.pipeline.universe_size, keep)
        st.description = source.describe() if hasattr(source, "describe") else source.name
        _resolve_as_of(st, snap)
        await _held_history(st, source, snap)
        if isinstance(source, FailoverMarketData):
            await source.refresh_references()
        _failover_facts(st, source)
    finally:
        await close_source()
    st.snap = snap
    if st.pf is not None:  # paper prices and sizes on the grids a broker states (Capital.com)
        st.pf.set_rules(paper_rules(snap.instruments))
    st.warnings += snap.warnings
    _timed(st, "data", t0)
    assert st.as_of_ts is not None
    rt.store.start_run(
        st.run_id,
        mode=rt.mode,
        broker=opts.broker,
        source=opts.source_label,
        as_of=st.as_of_ts.to_pydatetime(),
    )
    st.run_started = True


def _failover_facts(st: RunState, source: object) -> None:
    """With `brokers.failover`: where prices came from (report, run summary, `joe status`), and in
    live/shadow no entry on an instrument priced by the other broker (its own broker is down)."""
    if not isinstance(source, FailoverMarketData):
        return
    st.price_sources = dict(source.sources)
    st.warnings += source.lines()
    if source.failed_over and st.rt.mode != "paper":
        down = source.primary_name
        for sym, src in source.sources.items():
            if src != down:
                st.failover_blocked[sym] = f"priced from {src} (failover): no entry goes to {down}"


# ---------------------------------------------------------------------------------------------- settle
async def settle_book(st: RunState) -> None:
    """Every bar since the last run through stops/targets, then marks at the last known close."""
    _need(st.pf, "the book")
    _need(st.as_of_ts, "the as-of bar")
    assert st.pf is not None and st.as_of_ts is not None
    st.progress.stage("portfolio", "checking stops and targets on every bar since the last run")
    t0 = time.perf_counter()
    until = st.as_of_ts.to_pydatetime()
    if st.held_bars is not None:  # a backtest day: its bars are the quality stage's, cut at the panel
        if st.snap is not None:
            st.warnings += follow_splits(st.pf, st.snap.quality, st.rt.store, st.rt.audit)
        st.closed = len(st.pf.settle_bars(*st.held_bars, until).closed)
    else:
        if st.snap is not None:
            st.warnings += follow_data_quality(
                st.pf, st.held_history, st.snap.quality, st.rt.store, st.rt.audit
            )
        st.closed = len((await st.pf.settle(st.held_history, until)).closed)
    close_data_ended(st, until)
    for p in st.pf.ledger.positions.values():
        seen = st.pf.marked_at(p.position_id)
        if seen is not None and seen.date() < until.date():
            st.warnings.append(
                f"{p.symbol} has no bar on {until.date()}: marked at its last close of {seen.date()} "
                f"({(until.date() - seen.date()).days} day(s) old)"
            )
    BookIdentity(st.book_source, until).save(st.rt.store)
    _timed(st, "portfolio", t0)


# --------------------------------------------------------------------------------------------- analyse
async def analyse_market(
    st: RunState, *, account: AccountInfo | None = None, positions: list[Position] | None = None
) -> None:
    """Regime → Scan → Score → Strategy → Risk → Signal on the snapshot as of the run's bar.

    The market part (`joe.analysis.pipeline.analyse_market`) is `st.market` when it was computed
    elsewhere (a backtest's worker), else computed here; the book part (`assess_book`) is always here.
    Sized on `account`'s equity and judged against `positions` (a live run passes the broker's);
    by default the paper book's."""
    assert st.pf is not None and st.snap is not None and st.as_of_ts is not None
    snap = st.snap
    st.progress.stage("analysis", f"{snap.panel.n_symbols} instruments as of {st.as_of_ts.date()}")
    if account is None:
        account = await st.pf.account()
    market = st.market
    if market is None:
        market = market_part(snap, st.rt.config, st.as_of_ts, st.features, st.detector)
    elif market.as_of != st.as_of_ts:  # a worker's day out of step with the book's: a programming error
        raise RuntimeError(f"the market analysis of {market.as_of} was handed to the run of {st.as_of_ts}")
    st.result = assess_book(
        market,
        snap.panel,
        st.rt.config,
        account.equity,
        await st.pf.positions() if positions is None else positions,
        instruments=snap.instruments,
        features=st.features if st.features is not None else market.features,
    )
    st.timings.update({f"analysis.{k}": v for k, v in st.result.timings.items()})
    st.rt.store.save_signals(st.run_id, st.result.signals)


def market_part(
    snap: MarketSnapshot,
    config: ExecutionConfig,
    as_of: pd.Timestamp,
    features: Features | None = None,
    detector: RegimeDetector | None = None,
) -> MarketAnalysis:
    """Regime → Scan → Score → Strategy on `snap` as of `as_of`: the book-free part of
    `analyse_market`, also what a backtest's analysis worker runs for the days ahead."""
    return read_market(
        snap.panel,
        snap.spx,
        snap.vix,
        snap.sentiment,
        config,
        as_of,
        features=features,
        detector=detector,
    )


# ----------------------------------------------------------------------------------------------- trade
def _close_at(snap: MarketSnapshot, symbol: str, t: int) -> float | None:
    if symbol not in snap.panel:
        return None
    v = float(snap.panel.close[t, snap.panel.col(symbol)])
    return None if np.isnan(v) else v


def without_no_entries(st: RunState, signals: list[Signal]) -> list[Signal]:
    """`signals` less those on a symbol of `opts.no_entries` (the daemon's stale instruments: no fresh
    quote, so no price to trust), priced from a failover source, or without an as-of bar in the
    panel (excluded by data quality, or missing that day); each one left out is audited
    `run.entry_refused` and said in the report's signal table."""
    blocked = set(st.opts.no_entries)
    out = []
    for s in signals:
        failover = st.failover_blocked.get(s.symbol)
        if failover is not None:
            st.executions[s.signal_id] = f"refused: {failover}"
            st.rt.audit.record("run.entry_refused", {"symbol": s.symbol, "reason": failover},
                               run_id=st.run_id, signal_id=s.signal_id)  # fmt: skip
            continue
        if st.snap is not None and _close_at(st.snap, s.symbol, st.as_of_idx) is None:
            # Excluded by data quality or without a bar on the as-of date: no price to size, fill or mark
            # the entry at (found by the forward-runs property: an entry was booked with no mark).
            why = f"no as-of bar for {s.symbol} in this run's market data (excluded or missing)"
            st.executions[s.signal_id] = f"refused: {why}; no entry"
            st.rt.audit.record("run.entry_refused", {"symbol": s.symbol, "reason": why},
                               run_id=st.run_id, signal_id=s.signal_id)  # fmt: skip
            continue
        if s.symbol not in blocked:
            out.append(s)
            continue
        why = f"refused: no fresh quotes for {s.symbol} in the daemon (stale); no entry"
        st.executions[s.signal_id] = why
        st.rt.audit.record("run.entry_refused", {"symbol": s.symbol, "reason": "stale quotes"},
                           run_id=st.run_id, signal_id=s.signal_id)  # fmt: skip
    return out


async def trade(st: RunState) -> None:
    """Approved signals → paper orders; new positions are marked at the as-of close, like the rest."""
    assert st.pf is not None and st.result is not None and st.snap is not None and st.as_of_ts is not None
    cfg = st.rt.config.pipeline
    approved = st.result.approved[: cfg.max_signals]
    st.progress.stage("trading", f"{len(approved)} approved signals → paper orders")
    t0 = time.perf_counter()
    ts = st.as_of_ts.to_pydatetime()
    if st.guard is not None:  # the RiskGate: every intent, every mode; denials go to the signal table
        approved, denied = await st.guard.screen_run(st, approved)
        st.executions.update(denied)
    approved = without_no_entries(st, approved)
    st.outcomes = await st.pf.submit(approved, ts)
    marks: dict[str, Mark] = {}
    for o in st.outcomes:
        if o.fill is not None:
            st.executions[o.signal_id] = f"{OPENED_PREFIX}{o.fill.quantity} @ {o.fill.price}"
            close = _close_at(st.snap, o.symbol, st.as_of_idx)
            if close is not None:
                marks[o.symbol] = Mark(to_decimal(close), ts)
        else:
            st.executions[o.signal_id] = f"{o.action}: {o.reason}"
            log.info("signal.not_traded", symbol=o.symbol, action=o.action, reason=o.reason)
    for s in st.result.approved[cfg.max_signals :]:
        st.executions[s.signal_id] = f"skipped: over pipeline.max_signals ({cfg.max_signals})"
    st.pf.mark_at(marks, ts)
    _timed(st, "trading", t0)


# ---------------------------------------------------------------------------------------------- report
def equity_curve(st: RunState) -> pd.DataFrame:
    """The paper equity curve, one point per bar date (the last mark of each date wins)."""
    curve = pd.DataFrame(
        [
            {"ts": e.ts, "equity": float(e.equity), "cash": float(e.cash)}
            for e in st.rt.store.equity_curve("paper")
        ]
    )
    if not curve.empty:
        curve = curve.drop_duplicates("ts", keep="last").sort_values("ts").reset_index(drop=True)
    return curve


async def write_report(st: RunState) -> None:
    """Markdown, CSV, JSON and HTML (plus the AI notes) under data/reports/<run id>/."""
    assert st.pf is not None and st.result is not None and st.snap is not None
    # Imported here, not at the top: a backtest runs the other stages and never this one (nor loads
    # matplotlib, which the HTML report's charts need).
    from joe.config.settings import secret_value
    from joe.reporting.ai_analyst import AIAnalyst
    from joe.reporting.generator import ReportGenerator
    from joe.runtime.report_facts import build_context

    st.progress.stage("report", "writing markdown, csv, json and html")
    t0 = time.perf_counter()
    rt = st.rt
    ctx = build_context(
        run_id=st.run_id,
        mode=rt.mode,
        broker=st.opts.broker,
        source=st.opts.source_label,
        source_description=st.description,
        started_at=st.started,
        finished_at=st.clock(),
        snap=st.snap,
        analysis=st.result,
        positions=await st.pf.positions(),
        fills=list(st.pf.run_fills),
        account=await st.pf.account(),
        equity_curve=equity_curve(st),
        timings=st.timings,
        warnings=st.warnings,
        top_n=rt.config.pipeline.top_n,
        executions=st.executions,
        marked_at={p.position_id: st.pf.marked_at(p.position_id) for p in st.pf.ledger.positions.values()},
        price_sources=run_price_sources(st),
    )
    analyst = AIAnalyst(rt.config.ai, secret_value(rt.settings.gemini_api_key), rt.settings.gemini_base_url)
    summary, notes = await asyncio.gather(analyst.summarize(ctx), analyst.analyse_trades(ctx.signals))
    st.paths = ReportGenerator(rt.data_dir / "reports").write(ctx, summary, trade_notes=notes)
    _timed(st, "report", t0)
    if st.opts.push:
        st.progress.stage("alerts", "pushing the summary")
        from joe.runtime.push import push_summary

        st.delivered, st.pushed_ok = await push_summary(rt, ctx, summary, st.paths)


def run_price_sources(st: RunState) -> dict[str, str]:
    """Where each analysed instrument's price came from: the run's broker (or its data source), or
    under broker failover the other broker and its name for it (`FailoverMarketData.sources`)."""
    if st.snap is None:
        return dict(st.price_sources)
    own = st.opts.broker if st.opts.broker in ("ibkr", "capital") else st.opts.source_label
    return {s: st.price_sources.get(s, own) for s in sorted(st.snap.panel.symbols)}


def finish(st: RunState) -> dict[str, object]:
    """Mark the run row ok and audit the end; returns the run's summary."""
    assert st.result is not None and st.paths is not None
    summary: dict[str, object] = {
        "signals": len(st.result.signals),
        "opened": st.opened,
        "closed": st.closed,
        "fills": len(st.pf.run_fills) if st.pf else 0,
        "regime": st.result.regime.label.value,
        "timings": st.timings,
    }
    sources = run_price_sources(st)
    if sources:  # which broker each price came from (`joe status`; broker failover)
        summary["price_sources"] = sources
    st.rt.store.finish_run(st.run_id, "ok", summary, str(st.paths.dir))
    st.rt.audit.record(
        "run.finished",
        {k: v for k, v in summary.items() if k != "timings"} | {"report": str(st.paths.dir)},
        run_id=st.run_id,
    )
    return summary
