"""The daemon's quote source per broker, built from the runtime's settings (the same openers as
`joe run --once --broker ...`), plus the market hours its staleness rule uses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from joe.core.events import AuditSink
from joe.data.calendars import MarketHours
from joe.execution.price_stream import PriceStream, QuoteSource
from joe.execution.protection import ExitRequest, StopModify

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.sources import Closer

log = logging.getLogger(__name__)


async def venue_is_simulator(rt: Runtime, broker: str) -> bool:
    """Whether `broker`'s far end is Joe's own simulator, asked of the wire: IBKR's simulator announces
    itself in its start-up notices (`joe.config.endpoints.IBKR_SIMULATOR_FARM`) — a port never says
    so; Capital.com's simulator is known by its loopback URLs (`rt.decision.simulator`). Opens and
    closes one market-data connection for IBKR. Raises what connecting raises (`BrokerUnavailable`...)."""
    if broker != "ibkr":
        return bool(rt.decision.simulator)
    from joe.runtime.broker_ibkr import open_ibkr_market_data

    md, close = await open_ibkr_market_data(rt)
    try:
        return bool(getattr(getattr(md, "conn", None), "simulator", False))
    finally:
        await close()


async def open_quote_source(
    rt: Runtime, broker: str, hours: MarketHours | None = None
) -> tuple[QuoteSource, Closer]:
    """Connect to `broker` ("ibkr" or "capital") and return its streaming quote source and closer.
    For Capital.com, `hours` receives each watched epic's own opening hours."""
    if broker == "ibkr":
        from joe.brokers.ibkr.marketdata import IBKRMarketData
        from joe.execution.quote_sources import IBKRQuoteSource
        from joe.runtime.broker_ibkr import open_ibkr_market_data

        md, close = await open_ibkr_market_data(rt)
        assert isinstance(md, IBKRMarketData)
        return IBKRQuoteSource(md), close
    if broker == "capital":
        from joe.brokers.capital import CapitalMarketData, CapitalStream
        from joe.execution.quote_sources import CapitalQuoteSource
        from joe.runtime.broker_capital import open_capital_market_data

        cmd, close = await open_capital_market_data(rt)
        assert isinstance(cmd, CapitalMarketData)
        url = cmd.client.stream_url
        if not url:
            await close()
            raise RuntimeError("Capital.com gave no streaming host; set CAPITAL_STREAM_URL")
        ping = rt.config.brokers.capital.stream_ping_s  # below the 10-minute idle limit
        ws = CapitalStream(cmd.client, url, audit=rt.audit, ping_interval_s=ping)
        return CapitalQuoteSource(ws, hours), close
    raise ValueError(f"no streaming quotes for broker {broker!r}: use ibkr or capital")


def with_failover(
    rt: Runtime,
    source: QuoteSource,
    stream: PriceStream,
    on_recovered: Callable[[], Awaitable[None]] | None = None,
) -> QuoteSource:
    """`source` (the daemon broker's quotes) behind `brokers.failover` when it is enabled: the other
    broker's quotes for mapped instruments while this one is silent (`joe.execution.quote_failover`),
    its quote source opened on first need without market hours (the primary's calendar rules)."""
    fo = rt.config.brokers.failover
    if not fo.enabled:
        return source
    from joe.data.failover import BrokerHealth, InstrumentMap
    from joe.execution.quote_failover import FailoverQuotes
    from joe.runtime.failover import alert_notify, cached_reference, other_broker

    secondary = other_broker(source.name)

    async def open_secondary() -> tuple[QuoteSource, Closer]:
        return await open_quote_source(rt, secondary, None)

    return FailoverQuotes(
        source, secondary, open_secondary, InstrumentMap(dict(fo.instruments)), fo.price_tolerance_pct,
        BrokerHealth(rt.store, rt.audit, notify=alert_notify(rt)), silent_after_s=stream.stale_after_s,
        reference=cached_reference(rt.data_dir, source.name), on_recovered=on_recovered,
    )  # fmt: skip


async def attach_source(
    rt: Runtime,
    source: QuoteSource,
    stream: PriceStream,
    on_recovered: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Attach the daemon broker's quote source to `stream` (behind failover, `with_failover`); a new
    connection of the same broker (the live desk after a hand-over) replaces the old one, keeping the
    failover's state."""
    from joe.execution.quote_failover import FailoverQuotes

    existing = stream.sources.get(source.name)
    if isinstance(existing, FailoverQuotes):
        await existing.replace_primary(source)
    elif existing is not None:
        await stream.replace_source(source)
    else:
        stream.add_source(with_failover(rt, source, stream, on_recovered))


def market_hours(broker: str) -> MarketHours:
    """IBKR: US stocks on the NYSE calendar. Capital.com: 24/5 until an epic's own opening hours
    (from `/markets`, read when it is subscribed) replace it."""
    return MarketHours("XNYS" if broker == "ibkr" else "24/5")


class UnroutedExits:
    """The monitor's `ExitRequester` until the `OrderManager` is wired in: every request is audited
    and logged as not routed (the broker-side stop remains the protection)."""

    def __init__(self, audit: AuditSink) -> None:
        self.audit = audit

    def request_exit(self, request: ExitRequest) -> None:
        self.audit.record("daemon.exit_unrouted", {"symbol": request.symbol, "reason": request.reason.value},
                          position_id=request.position_id)  # fmt: skip
        log.error("exit request for %s not routed: no OrderManager in this daemon", request.position_id)

    def request_stop_modify(self, request: StopModify) -> None:
        payload = {"symbol": request.symbol, "new_stop": str(request.new_stop)}
        self.audit.record("daemon.modify_unrouted", payload, position_id=request.position_id)
