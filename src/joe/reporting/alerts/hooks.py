"""Execution-alert hooks: the one alert API the execution and safety layers call.

Every method is synchronous, fire-and-forget and never raises: it schedules the delivery on the
running event loop (or the loop it was created on, from another thread) and returns at once,
so an alert can never delay or break order handling. `drain()` awaits what is in flight
(for shutdown and tests). `NullAlerts` has the same API and does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

from joe.core.models import Fill
from joe.reporting.alerts.channel import scrub
from joe.reporting.alerts.formatting import Alert, AlertLevel
from joe.reporting.alerts.manager import AlertManager
from joe.reporting.context import ReportContext
from joe.reporting.summary import AISummary

log = structlog.get_logger(__name__)


def fill_alert(fill: Fill) -> Alert:
    body = (
        f"Order {fill.client_order_id}\nQty {fill.quantity} @ {fill.price}, commission {fill.commission}\n"
        f"Time {fill.ts.isoformat()}"
    )
    return Alert(
        AlertLevel.TRADE,
        f"Fill: {fill.side.value} {fill.quantity} {fill.symbol} @ {fill.price}",
        body,
        key=f"fill:{fill.fill_id}",
    )


def run_summary_alert(ctx: ReportContext, summary: AISummary | None = None) -> Alert:
    """The end-of-run summary pushed by `joe run --push` (one per run id)."""
    active = ctx.active_signals
    title = (
        f"Joe {ctx.mode} run {ctx.as_of.isoformat()}: {ctx.regime.label} regime, "
        f"{len(active)} signal{'s' if len(active) != 1 else ''}"
    )
    lines = [
        f"{sf.signal.direction.value} {sf.signal.symbol} entry {sf.signal.entry} stop {sf.signal.stop_loss} "
        f"target {sf.signal.take_profit} grade {sf.risk_grade}"
        for sf in active
    ]
    if summary is not None:
        lines += ["", summary.label, summary.text.strip()]
    if ctx.warnings:
        lines += ["", *[f"Warning: {w}" for w in ctx.warnings]]
    return Alert(AlertLevel.INFO, title, "\n".join(lines), key=f"run-summary:{ctx.run_id}")


class ExecutionAlerts:
    """Turns execution/safety events into alerts on an `AlertManager`."""

    def __init__(self, manager: AlertManager) -> None:
        self.manager = manager
        self._tasks: set[asyncio.Future[Any]] = set()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def emit(self, alert: Alert) -> None:
        """Schedule `alert` for delivery; returns immediately, never raises."""
        try:
            self._schedule(self.manager.send(alert))
        except Exception as exc:
            log.error("alert.schedule_failed", title=scrub(alert.title), error=scrub(str(exc)))

    def _schedule(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        fut: asyncio.Future[Any]
        if loop is not None:
            self._loop = self._loop or loop
            fut = loop.create_task(coro)
        elif self._loop is not None and self._loop.is_running():
            fut = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop), loop=self._loop)
        else:
            coro.close()
            log.warning("alert.dropped", reason="no running event loop")
            return
        self._tasks.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self._tasks.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            log.error("alert.task_failed", error=scrub(repr(fut.exception())))

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait for scheduled alerts to finish (bounded by `timeout_s`)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    # -- the hooks ------------------------------------------------------------------------
    def on_fill(self, fill: Fill) -> None:
        self.emit(fill_alert(fill))

    def on_rejection(self, client_order_id: str, reason: str) -> None:
        self.emit(
            Alert(
                AlertLevel.WARNING,
                f"Order rejected: {client_order_id}",
                reason,
                key=f"reject:{client_order_id}",
            )
        )

    def on_kill_switch(self, active: bool, reason: str) -> None:
        title = "KILL SWITCH ACTIVATED — trading halted" if active else "Kill switch released"
        self.emit(
            Alert(
                AlertLevel.CRITICAL if active else AlertLevel.WARNING,
                title,
                reason,
                key=f"kill:{active}:{reason}",
            )
        )

    def on_margin_warning(self, level: str | AlertLevel, detail: str) -> None:
        try:
            lvl = AlertLevel.parse(level)
        except KeyError:
            lvl = AlertLevel.WARNING
        self.emit(Alert(max(lvl, AlertLevel.WARNING), "Margin warning", detail))

    def on_disconnect(self, broker: str, detail: str) -> None:
        self.emit(Alert(AlertLevel.WARNING, f"Broker disconnected: {broker}", detail))

    def on_mode_fallback(self, reason: str) -> None:
        self.emit(Alert(AlertLevel.WARNING, "Trading mode fell back to PAPER", reason))

    def on_run_summary(self, ctx: ReportContext, summary: AISummary | None = None) -> None:
        self.emit(run_summary_alert(ctx, summary))


class NullAlerts(ExecutionAlerts):
    """Used when no channel is configured: every hook is a no-op."""

    def __init__(self) -> None:
        self._tasks = set()
        self._loop = None

    def emit(self, alert: Alert) -> None:
        return None

    async def drain(self, timeout_s: float | None = None) -> None:
        return None
