"""PriceStream over IBKR streaming market data, against the TWS simulator, through ib_async:
quotes reach the PositionMonitor in batches; socket drop, 1101 (data lost) and 1100 → 1102 each end
with the subscriptions live again; a silent instrument goes stale (no entries, alert when held)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from joe.brokers.ibkr import IBKRMarketData
from joe.core.models import Side
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.execution.protection import ExitRequest, StopModify, Trigger, WatchedPosition
from joe.execution.quote_sources import IBKRQuoteSource
from joe.simulators.ibkr import IBKRSimulator

from .helpers import wait_for


class NoExits:
    def request_exit(self, request: ExitRequest) -> None: ...

    def request_stop_modify(self, request: StopModify) -> None: ...


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def rig(sim: IBKRSimulator, md: IBKRMarketData, **kw: Any) -> tuple[PriceStream, PositionMonitor]:
    stream = PriceStream(**kw)
    monitor = PositionMonitor(stream.instruments, NoExits())
    stream.consumers.append(monitor)
    stream.add_source(IBKRQuoteSource(md))
    await stream.start()
    await stream.watch(["AAPL", "MSFT"], held=True)
    return stream, monitor


def mid(sim: IBKRSimulator, symbol: str) -> float:
    q = sim.prices.quote(symbol)
    return float((q.bid + q.ask) / 2)


async def test_quotes_reach_the_monitor_and_a_stop_crossing_triggers(
    sim178: IBKRSimulator, make_market_data: Any
) -> None:
    md = await make_market_data(sim178)
    stream, monitor = await rig(sim178, md)
    try:
        seen: list[Trigger] = []
        monitor.listeners.append(seen.append)
        sim178.set_price("AAPL", 150)
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="AAPL quote")
        monitor.add(WatchedPosition("p1", "AAPL", Side.BUY, Decimal(10), Decimal(150), stop=Decimal(140)))
        sim178.set_price("AAPL", 141)
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="141")
        assert seen == []
        sim178.set_price("AAPL", 139)
        await wait_for(lambda: len(seen) == 1, what="stop trigger")
        assert seen[0].position_id == "p1" and seen[0].level == Decimal(140)
        assert stream.batches <= stream.quotes
    finally:
        await stream.stop()


async def test_1101_data_lost_resubscribes(
    sim178: IBKRSimulator, make_market_data: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 1101")
    md = await make_market_data(sim178)
    stream, monitor = await rig(sim178, md)
    try:
        sim178.set_price("MSFT", 300)
        await wait_for(lambda: monitor.mark("MSFT") == mid(sim178, "MSFT"), what="first quote")
        subs = len(sim178.client_messages(1))
        sim178.inject_error(1101)  # the simulator drops every subscription, like TWS
        await wait_for(lambda: len(sim178.client_messages(1)) == subs + 2, what="resubscription")
        sim178.set_price("MSFT", 301)
        await wait_for(lambda: monitor.mark("MSFT") == mid(sim178, "MSFT"), what="quote after 1101")
    finally:
        await stream.stop()


async def test_1100_then_1102_keeps_the_subscriptions(
    sim178: IBKRSimulator, make_market_data: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 1100", r"Error 1102")
    md = await make_market_data(sim178)
    stream, monitor = await rig(sim178, md)
    try:
        sim178.set_price("AAPL", 100)
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="first quote")
        subs = len(sim178.client_messages(1))
        sim178.inject_error(1100)
        await wait_for(lambda: not md.conn.ready, what="not ready")
        before = stream.quotes
        sim178.set_price("AAPL", 101)  # IB unreachable: nothing arrives
        sim178.inject_error(1102)
        await wait_for(lambda: md.conn.ready, what="ready again")
        assert stream.quotes == before
        sim178.set_price("AAPL", 102)
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="quote after 1102")
        assert len(sim178.client_messages(1)) == subs  # data maintained: no second subscription
    finally:
        await stream.stop()


async def test_socket_drop_reconnects_and_resubscribes(
    sim178: IBKRSimulator, make_market_data: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Peer closed connection", r"Error 1101")
    md = await make_market_data(sim178)
    stream, monitor = await rig(sim178, md)
    try:
        sim178.set_price("AAPL", 100)
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="first quote")
        reconnects = md.conn.reconnects
        sim178.drop_connections()
        await wait_for(
            lambda: md.conn.reconnects > reconnects and md.conn.ready, timeout=10, what="reconnect"
        )
        sim178.set_price("AAPL", 90)
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="quote after reconnect")
    finally:
        await stream.stop()


async def test_a_silent_held_instrument_goes_stale_and_recovers(
    sim178: IBKRSimulator, make_market_data: Any
) -> None:
    clock = Clock()
    alerts: list[str] = []
    md = await make_market_data(sim178)
    stream, monitor = await rig(sim178, md, stale_after_s=30, monotonic=clock, on_alert=alerts.append)
    try:
        sim178.set_price("AAPL", 100)
        sim178.set_price("MSFT", 200)
        await wait_for(lambda: monitor.mark("MSFT") == mid(sim178, "MSFT"), what="quotes")
        clock.t += 31
        sim178.set_price("AAPL", 100.5)  # AAPL keeps quoting, MSFT falls silent
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="AAPL")
        stream.check_staleness()
        assert stream.stale == {"MSFT"}
        assert stream.entries_allowed("AAPL") and not stream.entries_allowed("MSFT")
        assert len(alerts) == 1 and "MSFT" in alerts[0]
        sim178.set_price("MSFT", 201)
        await wait_for(lambda: not stream.is_stale("MSFT"), what="fresh again")
        assert stream.entries_allowed("MSFT")
    finally:
        await stream.stop()


async def test_unwatch_cancels_market_data_at_the_broker_and_survives_1101(
    sim178: IBKRSimulator, make_market_data: Any, ib_log_guard: Any
) -> None:
    """Unwatching cancels the subscription in TWS (cancelMktData), not only in Joe: the simulator
    holds no line for it, no more ticks arrive, and a 1101 re-sync does not subscribe it again."""
    ib_log_guard.allow(r"Error 1101")
    md = await make_market_data(sim178)
    stream, monitor = await rig(sim178, md)

    def lines() -> list[str]:
        return sorted(sym for s in sim178.sessions for sym in s.mkt_subs.values())

    try:
        sim178.set_price("MSFT", 300)
        await wait_for(lambda: monitor.mark("MSFT") == mid(sim178, "MSFT"), what="first quote")
        assert lines() == ["AAPL", "MSFT"]
        cancels = len(sim178.client_messages(2))
        await stream.unwatch(["MSFT"])
        await wait_for(lambda: lines() == ["AAPL"], what="MSFT line cancelled at the broker")
        assert len(sim178.client_messages(2)) == cancels + 1
        sim178.inject_error(1101)  # every line dropped: only what is still watched comes back
        await wait_for(lambda: lines() == ["AAPL"] and len(sim178.client_messages(1)) >= 3,
                       what="AAPL resubscribed")  # fmt: skip
        before = monitor.mark("MSFT")
        sim178.set_price("MSFT", 310)
        sim178.set_price("AAPL", 120)
        await wait_for(lambda: monitor.mark("AAPL") == mid(sim178, "AAPL"), what="AAPL quote")
        assert monitor.mark("MSFT") == before and lines() == ["AAPL"]
    finally:
        await stream.stop()
