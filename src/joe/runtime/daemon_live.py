"""The daemon's live desk: one broker connection carrying the quotes and the `OrderManager`.

In live mode (`TRADING_MODE=live`, every gate passed) `joe daemon --broker ibkr|capital` builds, on
one connection per broker (IBKR: one clientId for market data and orders; Capital.com: one session
for REST, the WebSocket and the order path):
- the `PriceStream` source (`joe.runtime.daemon_sources`);
- the broker's `ExecutionClient` and the `OrderManager` over the daemon's store, with the safety
  layer's callbacks (lost-protection reaction, execution alerts → circuit breaker);
- the `Reconciler` (`joe.execution.reconciler`) — the first thing `LiveDesk.start` does, before the
  `OrderManager` accepts anything; a failed pass raises and the daemon does not start;
- the `OrderManagerBridge`: the `PositionMonitor`'s backup exits (reduce-only, once per position) and
  trailing-stop modifies (confirmed by the broker, never loosened) go through the `OrderManager`.

`LiveDesk.sync` keeps the monitor equal to the `OrderManager`'s record: every signal with an open
position is watched (held: its instrument streams, a stale quote alerts), closed positions leave,
resized ones follow. Shadow mode transmits nothing, so it has no desk: quotes, margin and runs only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from joe.brokers.base import BrokerUnavailable, ExecutionClient
from joe.core.models import OrderLeg, Side
from joe.core.order import Order, OrderState
from joe.execution.monitor_bridge import OrderManagerBridge
from joe.execution.order_manager import OrderManager
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream, QuoteSource
from joe.execution.protection import ExitRequest, StopModify, TrailingStop, WatchedPosition

if TYPE_CHECKING:
    from joe.config.schema import MarginConfig
    from joe.data.calendars import MarketHours
    from joe.execution.reconciler import Reconciler, ReconcileReport
    from joe.runtime.bootstrap import Runtime
    from joe.safety.control import SafetyContext
    from joe.safety.margin_blind import BlindMargin

log = logging.getLogger(__name__)

_ENTRY_HELD = {
    OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCEL_PENDING, OrderState.CANCELLED
}  # fmt: skip
_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class TrailPolicy:
    """How the daemon trails a position's stop at the broker. `enabled`: trail every position whose
    entry carries no trailing distance of its own, at the distance of its initial stop (entry price
    to the first stop); `step_pct`: the stop moves only in steps of this percent of the entry price
    (at least one tick), so the broker sees a few modifies, not one per quote."""

    enabled: bool = True
    step_pct: Decimal = Decimal("0.5")


async def open_live_connection(
    rt: Runtime, broker: str, hours: MarketHours | None, *, watch_orders: bool = True
) -> tuple[QuoteSource, ExecutionClient, Callable[[], Awaitable[None]]]:
    """Connect to `broker` once and return (quote source, execution client, closer).
    `watch_orders`: Capital.com's order events are polled (live); shadow reads the account only."""
    if broker == "ibkr":
        from joe.execution.quote_sources import IBKRQuoteSource
        from joe.runtime.broker_ibkr import create_ibkr_from_settings

        md, xc = create_ibkr_from_settings(rt)
        await md.connect()
        await xc.connect()

        async def close_ibkr() -> None:
            await xc.close()
            await md.close()

        return IBKRQuoteSource(md), xc, close_ibkr
    if broker == "capital":
        from joe.brokers.capital import CapitalMarketData, CapitalStream
        from joe.brokers.capital.client import CapitalExecutionClient
        from joe.execution.quote_sources import CapitalQuoteSource
        from joe.runtime.broker_capital import open_capital_market_data

        cmd, close = await open_capital_market_data(rt)
        assert isinstance(cmd, CapitalMarketData)
        url = cmd.client.stream_url
        if not url:
            await close()
            raise RuntimeError("Capital.com gave no streaming host; set CAPITAL_STREAM_URL")
        cxc = CapitalExecutionClient(cmd.client, audit=rt.audit)
        # Capital.com's WebSocket carries prices only: stops and targets firing at the broker, and
        # deals closed on the platform, are seen by polling (`Watcher`), fed to the OrderManager.
        if watch_orders:
            cxc.watch(interval_s=1.0)
        ping = rt.config.brokers.capital.stream_ping_s  # below the 10-minute idle limit
        ws = CapitalStream(cmd.client, url, audit=rt.audit, ping_interval_s=ping)
        return CapitalQuoteSource(ws, hours), cxc, cxc.close
    raise ValueError(f"no live desk for broker {broker!r}: use ibkr or capital")


class LiveDesk:
    """The `OrderManager`, its `Reconciler` and the monitor's bridge, for one broker (module docstring)."""

    def __init__(
        self,
        om: OrderManager,
        monitor: PositionMonitor,
        stream: PriceStream,
        *,
        reconciler: Reconciler | None = None,
        trail: TrailPolicy | None = None,
        confirm_timeout_s: float = 10.0,
        account_reader: Callable[[], Awaitable[Any]] | None = None,
        on_account: Callable[[Any], None] | None = None,
        on_unexplained: Callable[[ReconcileReport], None] | None = None,
    ) -> None:
        self.om = om
        self.monitor = monitor
        self.stream = stream
        self.reconciler = reconciler
        self.trail = trail or TrailPolicy()
        self.bridge = OrderManagerBridge(
            om, om.journal.audit, monitor=monitor, confirm_timeout_s=confirm_timeout_s
        )
        monitor.requester = self.bridge
        self.account_reader = account_reader
        self.on_account = on_account
        self.on_unexplained = on_unexplained  # the daemon: re-read the safety gate now
        self.last_report: ReconcileReport | None = None
        self._sync_task: asyncio.Task[None] | None = None

    # -- life ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile (before anything else; raises if the broker cannot be read), open the
        `OrderManager` to intents and its observation stream, then watch every open position."""
        if self.reconciler is not None:
            await self._verdict(await self.reconciler.start(), "start")
        else:
            await self.om.start()
        await self.sync()
        self._sync_task = asyncio.create_task(self._follow(), name="desk-follow")

    async def reconcile(self) -> None:
        """One periodic pass (the daemon's reconcile loop, and after every scheduled run): the same
        `Reconciler` and the same verdict path as at start (`_verdict`)."""
        if self.reconciler is not None:
            await self._verdict(await self.reconciler.reconcile(), "periodic")
        else:
            await self.om.reconcile()
        await self.sync()

    async def _verdict(self, report: ReconcileReport, when: str) -> None:
        """Every pass's report, start or periodic, ends here: kept for the heartbeat (`joe status`),
        audited as `daemon.reconciled`, and an unexplained one (the `Reconciler` has already moved the
        trading state to HALTED and alerted) is said loudly and handed to `on_unexplained` so the
        daemon stops entries at once rather than at its next safety check. Nothing is flattened or
        cancelled: the broker-side stops stay."""
        self.last_report = report
        self.om.journal.record("daemon.reconciled", {"when": when, "explained": report.explained,
                               "halted": report.halted, "summary": report.summary()})  # fmt: skip
        if not report.explained:
            log.error("reconciliation (%s) unexplained: %s; new entries halted", when, report.summary())
            if self.on_unexplained is not None:
                self.on_unexplained(report)

    async def check_margin(self) -> None:
        """Read the account and hand it to the margin monitor (`on_account`)."""
        if self.account_reader is None or self.on_account is None:
            return
        self.on_account(await self.account_reader())

    async def stop(self) -> None:
        """Settle the bridge's requests in flight (bounded), then stop the `OrderManager`. Nothing is
        cancelled at the broker: the protective stops keep resting."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.bridge.close()
        await self.om.stop()

    async def _follow(self) -> None:
        # Every change the OrderManager applies (fill, ack, modify) is reflected promptly.
        while True:
            await self.om.changed.wait()
            self.om.changed.clear()
            try:
                await self.sync()
            except Exception:
                log.exception("desk sync failed")
            await asyncio.sleep(0.05)  # a burst of reports → one sync

    # -- the monitor follows the OrderManager -------------------------------------------------------

    def open_signals(self) -> dict[str, Order]:
        """The entry order of every signal with a position open at this broker, by signal id."""
        store = self.om.store
        out: dict[str, Order] = {}
        for o in store.orders(state=_ENTRY_HELD, mode=self.om.mode, broker=self.om.broker):
            sid = o.intent.signal_id
            if o.intent.leg is OrderLeg.ENTRY and o.filled_quantity > 0 and self.om.position_of(sid) > 0:
                out[sid] = o
        return out

    async def sync(self) -> None:
        """Watch new open positions, drop closed ones, resize changed ones (see the module docstring)."""
        self.bridge.refresh()
        open_now = self.open_signals()
        for sid, entry in open_now.items():
            if sid in self.monitor:
                continue
            wp = self.watched(entry)
            if wp is None:
                continue
            await self.stream.watch([wp.symbol], held=True)
            self.monitor.add(wp)
            self.om.journal.record("daemon.watching", {"symbol": wp.symbol, "quantity": str(wp.quantity),
                                   "stop": str(wp.stop), "trailing": wp.trailing is not None},
                                   signal_id=sid)  # fmt: skip
        held = {self.monitor.symbol_of(pid) for pid in self.monitor.position_ids()}
        for s in list(self.stream.held):
            if s not in held:
                self.stream.set_held(s, False)

    def watched(self, entry: Order) -> WatchedPosition | None:
        """The monitor's view of one signal's position, from Joe's record of its orders."""
        sid, intent = entry.intent.signal_id, entry.intent
        qty = self.om.position_of(sid)
        price = entry.avg_fill_price
        if qty <= 0 or price is None or price <= 0:
            return None
        stop_o = self.bridge.working_stop(sid)
        stop = stop_o.intent.stop_price if stop_o is not None else intent.stop_loss
        target = next((o.intent.limit_price for o in self.om.book.signal_orders(sid)
                       if o.intent.leg is OrderLeg.TAKE_PROFIT and o.state in _WORKING), None)  # fmt: skip
        trailing = self._trailing(entry, price, stop) if stop_o is not None else None
        long = intent.side is Side.BUY
        if stop is not None and target is not None and (stop >= target if long else stop <= target):
            target = None  # a stop already trailed past the target's side: watch the stop only
        return WatchedPosition(sid, intent.symbol, intent.side, qty, price, stop=stop, take_profit=target,
                               trailing=trailing)  # fmt: skip

    def _trailing(self, entry: Order, price: Decimal, stop: Decimal | None) -> TrailingStop | None:
        distance = entry.intent.trailing_distance
        if distance is None and entry.intent.trailing_percent is not None:
            distance = price * entry.intent.trailing_percent / 100
        if distance is None and self.trail.enabled:
            first = entry.intent.stop_loss if entry.intent.stop_loss is not None else stop
            distance = abs(price - first) if first is not None else None
        if distance is None or distance <= 0:
            return None
        step = price * self.trail.step_pct / 100
        return TrailingStop(distance, step if step > 0 else distance)


def margin_hook(ctx: SafetyContext, config: MarginConfig, broker: str) -> Callable[[Any], None]:
    """`on_account` for the desk: the account reading judged by the safety layer's `MarginMonitor`
    (`safety.margin` thresholds: alert, REDUCING, HALTED)."""
    from joe.safety.margin_monitor import MarginMonitor, MarginReading

    mm = MarginMonitor(config, ctx)

    def on_account(account: Any) -> None:
        mm.check(MarginReading.from_account(broker, account))

    return on_account


class _Deferred:
    """The monitor's requester while no desk is connected (a hand-over): requests wait for the next
    desk instead of failing (the monitor asks for an exit once and never again)."""

    def __init__(self) -> None:
        self.exits: list[ExitRequest] = []
        self.modifies: list[StopModify] = []

    def request_exit(self, request: ExitRequest) -> None:
        self.exits.append(request)

    def request_stop_modify(self, request: StopModify) -> None:
        self.modifies.append(request)


class DeskHolder:
    """The daemon's live desk across hand-overs: `start`, `stop`, `reconcile`, `check_margin` go to
    the current desk; `hand_over(run)` lends the broker to a scheduled `joe run --once`.

    Why a hand-over: the run places its brackets through its own connection, and at IBKR an order
    belongs to the clientId that placed it (only that client may modify or cancel it), while TWS
    refuses a second connection with the daemon's clientId. So for the run the desk stops (in-flight
    exits and modifies settle, the `OrderManager` stops, the connection closes; the broker-side stops
    keep protecting), the run uses the same clientId and session, and then a new desk connects,
    reconciles first (adopting what the run placed) and watches every position again — the same
    path as a restart. Quotes pause during the run."""

    def __init__(
        self,
        build: Callable[[], Awaitable[tuple[LiveDesk, Callable[[], Awaitable[None]]]]],
        audit: Any,
        stopping: Callable[[], bool] = lambda: False,
        margin_watch: BlindMargin | None = None,
    ) -> None:
        self.build = build
        self.audit = audit
        # Failed margin reads while positions are open: alert, then REDUCING (joe.safety.margin_blind).
        self.margin_watch = margin_watch
        self.lent = False  # a scheduled run holds the broker (it checks the margin itself)
        # The daemon is stopping: after a hand-over no new desk starts (nothing reconnects, reconciles
        # or replays exits after the stop sequence; the next start reconciles first).
        self.stopping = stopping
        self.desk: LiveDesk | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        self._deferred: _Deferred | None = None

    async def start(self) -> None:
        self.desk, self._close = await self.build()
        await self.desk.start()
        waiting, self._deferred = self._deferred, None
        if waiting is not None:  # what the monitor asked for while no desk was connected
            for e in waiting.exits:
                self.desk.bridge.request_exit(e)
            for m in waiting.modifies:
                self.desk.bridge.request_stop_modify(m)

    async def stop(self) -> None:
        desk, close, self.desk, self._close = self.desk, self._close, None, None
        try:
            if desk is not None:
                await desk.stop()
                self._deferred = _Deferred()
                desk.monitor.requester = self._deferred
        finally:
            if close is not None:
                await close()

    async def reconcile(self) -> None:
        if self.desk is not None:
            await self.desk.reconcile()

    def beat(self) -> dict[str, Any]:
        """For the heartbeat: is the broker connected, and what did the last reconciliation say."""
        rep = self.desk.last_report if self.desk is not None else None
        return {
            "broker_connected": self.desk is not None,
            "reconciled": None if rep is None else {"explained": rep.explained, "at": rep.ts.isoformat(),
                                                    "summary": rep.summary()},
        }  # fmt: skip

    async def check_margin(self) -> None:
        """The desk's margin check. During a hand-over it is the run's (`joe run --once` checks the
        margin before its entries), not a failure; with no desk otherwise, or a failed read, the
        margin monitor is blind (`BlindMargin`: alert, then REDUCING) and the error is raised."""
        if self.desk is None:
            if self.lent:
                return
            if self.margin_watch is not None:
                self.margin_watch.blind("no broker connection")
            raise BrokerUnavailable("margin check: no broker connection")
        try:
            await self.desk.check_margin()
        except Exception as exc:
            if self.margin_watch is not None:
                self.margin_watch.blind(f"{type(exc).__name__}: {exc}")
            raise
        if self.margin_watch is not None:
            self.margin_watch.seen()

    def hand_over(self, run: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Coroutine[Any, Any, None]]:
        """`on_run` for the daemon: stop the desk, run, start a new desk (reconcile first)."""

        async def handed(scheduled: Any) -> None:
            self.audit.record("daemon.hand_over", {"run": getattr(scheduled, "name", "?")})
            self.lent = True
            await self.stop()
            try:
                await run(scheduled)
            finally:
                self.lent = False
                if self.stopping():
                    self.audit.record("daemon.desk_not_restarted", {"reason": "daemon stopping"})
                else:
                    await self.start()

        return handed


async def build_desk(
    rt: Runtime,
    broker: str,
    hours: MarketHours | None,
    stream: PriceStream,
    monitor: PositionMonitor,
    ctx: SafetyContext,
    on_unexplained: Callable[[ReconcileReport], None] | None = None,
    on_recovered: Callable[[], Awaitable[None]] | None = None,
) -> tuple[LiveDesk, Callable[[], Awaitable[None]]]:
    """Connect to `broker`, attach its quotes to `stream` (replacing a previous connection's; behind
    `brokers.failover`, whose `on_recovered` reconciles the returning broker before it takes entries),
    and build the desk (not started yet). `on_unexplained`: see `LiveDesk._verdict`."""
    from joe.execution.reconciler import Reconciler
    from joe.runtime.daemon_sources import attach_source
    from joe.safety.broker_safety import BrokerSafety

    # Every guard around the OrderManager in one place: breaker (order outcomes and the broker's wire
    # trouble), execution alerts, lost-protection reaction, HALT cancels working entries.
    guards = BrokerSafety(ctx, broker, rt.config.safety)
    try:
        source, xc, close_connection = await open_live_connection(rt, broker, hours)
    except BaseException:
        await guards.close()
        raise
    await attach_source(rt, source, stream, on_recovered)
    safety = rt.config.safety
    om = guards.order_manager(xc, rt.store, mode=rt.mode)
    guards.enforce(om, poll_s=5.0)

    async def close() -> None:
        try:
            await guards.close()
        finally:
            await close_connection()

    reconciler = Reconciler(om, trading_state=ctx.states)
    cfg = rt.config.daemon
    desk = LiveDesk(
        om, monitor, stream, reconciler=reconciler,
        trail=TrailPolicy(cfg.trail_stops, Decimal(str(cfg.trail_step_pct))),
        account_reader=xc.account, on_account=margin_hook(ctx, safety.margin, broker),
        on_unexplained=on_unexplained,
    )  # fmt: skip
    return desk, close


async def open_shadow_account(
    rt: Runtime, broker: str, hours: MarketHours | None, stream: PriceStream, ctx: SafetyContext
) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """Shadow: the live connection for quotes and the account (margin monitor), no order path; the
    broker's wire trouble (dropped connections, 5xx, 429) feeds its circuit breaker as in live
    (`watch_broker_health`), so a storm HALTs the shadow daemon where it would halt a live one.
    Returns (margin check, closer); the quote source is attached to `stream`."""
    from joe.runtime.daemon_sources import attach_source
    from joe.safety.broker_health import watch_broker_health

    _, unwatch = watch_broker_health(ctx, broker, rt.config.safety.breaker)
    try:
        source, xc, close_connection = await open_live_connection(rt, broker, hours, watch_orders=False)
    except BaseException:
        unwatch()
        raise
    await attach_source(rt, source, stream)
    on_account = margin_hook(ctx, rt.config.safety.margin, broker)

    async def check_margin() -> None:
        on_account(await xc.account())

    async def close() -> None:
        unwatch()
        await close_connection()

    return check_margin, close
