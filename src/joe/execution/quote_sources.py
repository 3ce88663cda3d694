"""The `PriceStream`'s sources: IBKR streaming market data, Capital.com's WebSocket (replay: `replay_source`).

Each adapter reuses the broker client Joe already has and only translates its callbacks into
`PriceStream.push` calls; reconnecting and resubscribing stay where the broker's rules live:
- IBKR (`IBKRMarketData` on an `IBKRConnection`): after a socket loss the connection reconnects with
  backoff, and after a reconnect or 1101 ("restored, data lost" — ib_async does not resubscribe by
  itself) the market data's re-sync hook subscribes every ticker again; 1102 keeps them;
- Capital.com (`CapitalStream`): at most 40 epics per WebSocket (sharded), a ping well inside the
  10-minute idle limit, reconnect with backoff + jitter and resubscribe, re-login on a session error.
Quotes are stamped with the stream's clock on arrival, so grace periods and staleness use one clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from joe.brokers.capital.errors import CapitalError
from joe.brokers.capital.markets import MarketsApi
from joe.brokers.capital.streaming import CapitalStream, StreamQuote
from joe.brokers.ibkr.marketdata import IBKRMarketData
from joe.data.calendars import MarketHours
from joe.data.opening_hours import OpeningHours
from joe.execution.price_stream import QuoteSink
from joe.execution.replay_source import ReplaySource as ReplaySource  # re-exported


class IBKRQuoteSource:
    """Streaming quotes from TWS / IB Gateway through `IBKRMarketData` (connect it first)."""

    name = "ibkr"

    def __init__(self, market_data: IBKRMarketData) -> None:
        self.md = market_data
        self.symbols: set[str] = set()
        self._stream: QuoteSink | None = None

    def bind(self, stream: QuoteSink) -> None:
        self._stream = stream

    async def start(self) -> None:
        self.md.ib.pendingTickersEvent += self._on_tickers

    async def stop(self) -> None:
        self.md.ib.pendingTickersEvent -= self._on_tickers

    async def subscribe(self, symbols: Sequence[str]) -> None:
        self.symbols.update(symbols)  # first: ticks may arrive while later symbols are still qualifying
        await self.md.subscribe(symbols)

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        self.symbols.difference_update(symbols)  # first: ticks already queued are dropped
        await self.md.unsubscribe(symbols)

    def _on_tickers(self, tickers: Any) -> None:
        stream = self._stream
        if stream is None:
            return
        for t in tickers:
            c = t.contract
            if c is None or c.symbol not in self.symbols:
                continue
            bid, ask = t.bid, t.ask
            # ib_async reports "no price" as nan or -1
            if bid is None or ask is None or math.isnan(bid) or math.isnan(ask) or bid <= 0 or ask <= 0:
                continue
            stream.push(c.symbol, float(bid), float(ask))


class CapitalQuoteSource:
    """Streaming quotes from Capital.com's WebSocket through `CapitalStream` (epics are symbols).

    With `hours`, each newly subscribed epic's own opening hours are read from `/markets` and set
    there, so staleness only counts while that instrument trades (an epic whose hours cannot be read
    keeps the default calendar, and the failure is audited)."""

    name = "capital"

    def __init__(self, stream: CapitalStream, hours: MarketHours | None = None) -> None:
        self.cs = stream
        self.hours = hours
        self._stream: QuoteSink | None = None

    def bind(self, stream: QuoteSink) -> None:
        self._stream = stream
        self.cs.on_quote = self._on_quote

    async def start(self) -> None:
        await self.cs.start()

    async def stop(self) -> None:
        await self.cs.stop()

    async def subscribe(self, symbols: Sequence[str]) -> None:
        if self.hours is not None:
            await self._load_hours(symbols)
        await self.cs.subscribe(symbols)

    async def _load_hours(self, epics: Sequence[str]) -> None:
        assert self.hours is not None
        try:
            details = await MarketsApi(self.cs.client).details(list(epics))
        except CapitalError as exc:
            self.cs.audit.record("stream.hours_unavailable", {"epics": list(epics), "error": str(exc)})
            return
        for d in details:
            raw = d.instrument.openingHours
            if not raw:
                continue
            try:
                self.hours.set(
                    d.instrument.epic, OpeningHours.parse(raw, f"{d.instrument.epic} openingHours")
                )
            except ValueError as exc:
                self.cs.audit.record(
                    "stream.hours_unavailable", {"epics": [d.instrument.epic], "error": str(exc)}
                )

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        await self.cs.unsubscribe(symbols)

    def _on_quote(self, q: StreamQuote) -> None:
        if self._stream is not None and q.bid > 0 and q.ask > 0:
            self._stream.push(q.epic, q.bid, q.ask)
