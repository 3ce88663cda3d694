"""The daemon's quote source per broker, built from the runtime's settings (the same openers as
`joe run --once --broker ...`), plus the market hours its staleness rule uses."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from joe.core.events import AuditSink
from joe.data.calendars import MarketHours
from joe.execution.price_stream import QuoteSource
from joe.execution.protection import ExitRequest, StopModify

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.runtime.sources import Closer

log = logging.getLogger(__name__)


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
