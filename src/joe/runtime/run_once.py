"""`joe run --once`: Regime → Scan → Score → Strategy → Risk → Signal → paper trades → report.

The run is one pass over the data as of one date. It is idempotent: signal ids and client order
ids are deterministic, so running twice on the same data opens nothing new the second time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

import numpy as np
import pandas as pd

from joe.analysis.pipeline import analyse
from joe.config.settings import secret_value
from joe.core.clock import utcnow
from joe.core.ids import new_run_id
from joe.core.logging import get_logger
from joe.portfolio import PaperPortfolio, PriceBar
from joe.reporting.ai_analyst import AIAnalyst
from joe.reporting.context import OPENED_PREFIX
from joe.reporting.generator import ReportGenerator, ReportPaths
from joe.runtime.bootstrap import Runtime
from joe.runtime.market import MarketSnapshot, load_snapshot
from joe.runtime.report_facts import build_context
from joe.runtime.sources import open_market_data

log = get_logger("joe.runtime.run")

# Bars kept per instrument for analysis: enough for 52-week highs/lows, ATR and trend filters.
MIN_PANEL_BARS = 400


class Progress(Protocol):
    """Where a run reports its stages (the CLI shows them with rich)."""

    def stage(self, name: str, detail: str = "") -> None: ...


class _Silent:
    def stage(self, name: str, detail: str = "") -> None:
        log.info("run.stage", stage=name, detail=detail)


class LiveModeUnavailable(RuntimeError):
    """The resolved mode needs a live/shadow portfolio, which this command does not run."""


@dataclass(frozen=True)
class RunOptions:
    """Options of one `joe run --once`."""

    broker: str = "sim"
    source: str = "sample"
    as_of: date | None = None
    push: bool = False
    universe_scan: str | None = None


@dataclass
class RunOutcome:
    """What the run did and where the report is."""

    run_id: str
    mode: str
    report: ReportPaths
    as_of: date
    regime: str
    signals: int
    opened: int
    closed: int
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    alerts_delivered: int = 0


def _bar(snap: MarketSnapshot, symbol: str, t: int) -> PriceBar | None:
    p = snap.panel
    if symbol not in p:
        return None
    j = p.col(symbol)
    vals = [p.open[t, j], p.high[t, j], p.low[t, j], p.close[t, j]]
    if any(np.isnan(v) for v in vals):
        return None
    return PriceBar(*(Decimal(repr(round(float(v), 6))) for v in vals))


async def _process_new_bars(pf: PaperPortfolio, snap: MarketSnapshot, as_of_idx: int) -> int:
    """Replay bars newer than the last processed one through the paper stops/targets (no replays)."""
    last = pf.last_bar_ts()
    closed = 0
    dates = snap.panel.dates
    for t in range(as_of_idx + 1):
        ts = dates[t].to_pydatetime()
        if last is not None and ts <= last:
            continue
        if not pf.ledger.positions:
            continue
        bars = {pos.symbol: b for pos in pf.ledger.positions.values() if (b := _bar(snap, pos.symbol, t))}
        if bars:
            closed += len((await pf.on_prices(bars, ts)).closed)
    return closed


async def run_once(
    rt: Runtime, opts: RunOptions, progress: Progress | None = None, clock: Callable[[], datetime] = utcnow
) -> RunOutcome:
    """Run the whole pipeline once in the process's mode (paper) and write the report."""
    progress = progress or _Silent()
    if rt.mode != "paper":
        rt.audit.record("run.refused", {"mode": rt.mode, "reason": "live/shadow portfolio not available"})
        raise LiveModeUnavailable(
            f"TRADING_MODE resolved to {rt.mode}, but `joe run --once` only trades on paper in this version; "
            "no order was sent. Unset TRADING_MODE (or set it to paper) to run the paper pipeline."
        )
    started = clock()
    run_id = new_run_id(started)
    timings: dict[str, float] = {}
    ids = {"run_id": run_id}
    rt.audit.record("run.started", {"mode": rt.mode, "broker": opts.broker, "source": opts.source}, **ids)
    if rt.decision.fell_back:
        from joe.runtime.push import notify_mode_fallback

        await notify_mode_fallback(rt)

    t0 = time.perf_counter()
    progress.stage("data", f"opening {opts.broker}/{opts.source}")
    source, close_source = await open_market_data(rt, opts)
    try:
        keep = max(rt.config.pipeline.history_bars, MIN_PANEL_BARS)
        snap = await load_snapshot(source, opts.universe_scan, rt.config.pipeline.universe_size, keep)
        description = source.describe() if hasattr(source, "describe") else source.name
    finally:
        await close_source()
    timings["data"] = time.perf_counter() - t0
    warnings = list(snap.warnings)
    as_of_idx = snap.panel.index_at(pd.Timestamp(opts.as_of, tz=UTC) if opts.as_of else None)
    as_of_ts = snap.panel.dates[as_of_idx]
    rt.store.start_run(
        run_id, mode=rt.mode, broker=opts.broker, source=opts.source, as_of=as_of_ts.to_pydatetime()
    )

    progress.stage("portfolio", "replaying new bars through stops and targets")
    t1 = time.perf_counter()
    pf = PaperPortfolio.load(rt.store, rt.audit, rt.config, broker=opts.broker)
    closed = await _process_new_bars(pf, snap, as_of_idx)
    marks = {
        p.symbol: b.close
        for p in pf.ledger.positions.values()
        if (b := _bar(snap, p.symbol, as_of_idx)) is not None
    }
    pf.mark(marks, as_of_ts.to_pydatetime())
    account = await pf.account()
    timings["portfolio"] = time.perf_counter() - t1

    progress.stage("analysis", f"{snap.panel.n_symbols} instruments as of {as_of_ts.date()}")
    result = analyse(
        snap.panel,
        snap.spx,
        snap.vix,
        snap.sentiment,
        rt.config,
        account.equity,
        await pf.positions(),
        as_of_ts,
        instruments=snap.instruments,
    )
    timings.update({f"analysis.{k}": v for k, v in result.timings.items()})
    rt.store.save_signals(run_id, result.signals)

    progress.stage("trading", f"{len(result.approved)} approved signals → paper orders")
    t2 = time.perf_counter()
    approved = result.approved[: rt.config.pipeline.max_signals]
    outcomes = await pf.submit(approved, as_of_ts.to_pydatetime())
    pf.mark(marks | {o.symbol: o.fill.price for o in outcomes if o.fill}, as_of_ts.to_pydatetime())
    executions: dict[str, str] = {}
    for o in outcomes:
        if o.fill is not None:
            executions[o.signal_id] = f"{OPENED_PREFIX}{o.fill.quantity} @ {o.fill.price}"
        else:
            executions[o.signal_id] = f"{o.action}: {o.reason}"
            log.info("signal.not_traded", symbol=o.symbol, action=o.action, reason=o.reason)
    for s in result.approved[rt.config.pipeline.max_signals :]:
        executions[s.signal_id] = f"skipped: over pipeline.max_signals ({rt.config.pipeline.max_signals})"
    timings["trading"] = time.perf_counter() - t2

    progress.stage("report", "writing markdown, csv, json and html")
    t3 = time.perf_counter()
    curve = pd.DataFrame(
        [
            {"ts": e.ts, "equity": float(e.equity), "cash": float(e.cash)}
            for e in rt.store.equity_curve("paper")
        ]
    )
    if not curve.empty:  # several marks per bar date (before and after trading): keep the last
        curve = curve.drop_duplicates("ts", keep="last").reset_index(drop=True)
    fills = rt.store.fills(mode="paper")[-50:]
    ctx = build_context(
        run_id=run_id,
        mode=rt.mode,
        broker=opts.broker,
        source=opts.source,
        source_description=description,
        started_at=started,
        finished_at=clock(),
        snap=snap,
        analysis=result,
        positions=await pf.positions(),
        fills=fills,
        account=await pf.account(),
        equity_curve=curve,
        timings=timings,
        warnings=warnings,
        top_n=rt.config.pipeline.top_n,
        executions=executions,
    )
    analyst = AIAnalyst(rt.config.ai, secret_value(rt.settings.gemini_api_key), rt.settings.gemini_base_url)
    summary, trade_notes = await asyncio.gather(analyst.summarize(ctx), analyst.analyse_trades(ctx.signals))
    paths = ReportGenerator(rt.data_dir / "reports").write(ctx, summary, trade_notes=trade_notes)
    timings["report"] = time.perf_counter() - t3

    delivered = 0
    if opts.push:
        progress.stage("alerts", "pushing the summary")
        from joe.runtime.push import push_summary

        delivered = await push_summary(rt, ctx, summary, paths)

    opened = sum(1 for o in outcomes if o.action == "opened")
    rt.store.finish_run(
        run_id,
        "ok",
        {
            "signals": len(result.signals),
            "opened": opened,
            "closed": closed,
            "regime": result.regime.label.value,
            "timings": timings,
        },
        str(paths.dir),
    )
    rt.audit.record(
        "run.finished",
        {"signals": len(result.signals), "opened": opened, "closed": closed, "report": str(paths.dir)},
        **ids,
    )
    return RunOutcome(
        run_id,
        rt.mode,
        paths,
        as_of_ts.date(),
        result.regime.label.value,
        len(result.signals),
        opened,
        closed,
        timings,
        warnings,
        delivered,
    )


def run_once_sync(rt: Runtime, opts: RunOptions, progress: Progress | None = None) -> RunOutcome:
    """Blocking wrapper for the CLI."""
    return asyncio.run(run_once(rt, opts, progress))


__all__ = ["LiveModeUnavailable", "RunOptions", "RunOutcome", "run_once", "run_once_sync"]
