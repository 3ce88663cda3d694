"""`IBKRMarketData`: Joe's `MarketData` protocol from TWS / IB Gateway.

- universe: IBKR scanner subscriptions (top % gainers/losers, most active, hot by volume, gap up/down),
  merged and de-duplicated, each row a qualified contract;
- history: historical bars through `HistoricalPacer` (IBKR's pacing rules; error 162 → back off, retry);
- quotes: streaming market data (one subscription per symbol, re-subscribed after 1101 / reconnect);
  `QuoteHandler` turns ib_async tickers into Joe `Quote`s.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd
from ib_async import Contract, RequestError, ScannerSubscription, Ticker

from joe.brokers.base import HISTORY_COLUMNS, BrokerError, BrokerUnavailable, Sentiment
from joe.brokers.ibkr.connection import IBKRConnection
from joe.brokers.ibkr.orders import stock
from joe.brokers.ibkr.pacing import HistoricalPacer, HistRequest
from joe.brokers.ibkr.translate import decimal
from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.core.models import AssetClass, Instrument, Quote

log = logging.getLogger(__name__)

SCANS: dict[str, str] = {
    "top_gainers": "TOP_PERC_GAIN",
    "top_losers": "TOP_PERC_LOSE",
    "most_active": "MOST_ACTIVE",
    "hot_by_volume": "HOT_BY_VOLUME",
    "gap_up": "TOP_OPEN_PERC_GAIN",
    "gap_down": "TOP_OPEN_PERC_LOSE",
}
DEFAULT_SCANS = ("most_active", "top_gainers", "top_losers", "hot_by_volume")
BAR_SIZES = {
    "1m": "1 min", "5m": "5 mins", "15m": "15 mins", "30m": "30 mins", "1h": "1 hour", "4h": "4 hours",
    "1d": "1 day", "1w": "1 week",
}  # fmt: skip
DEFAULT_DURATION = {"1d": "2 Y", "1w": "5 Y", "1h": "60 D", "4h": "120 D"}
PACING_VIOLATION = 162


def duration_for(
    timeframe: str, start: datetime | None, end: datetime | None, now: datetime | None = None
) -> str:
    """IBKR duration string covering [start, end] (defaults give >= 300 daily bars).

    An open `end` (None: "up to now") is measured to `now`, the caller's clock (`IBKRMarketData.clock`,
    so a run against a simulator on its own clock asks for the window it means); `datetime.now(UTC)`
    only when no clock is given. Whole calendar days, rounded up; over a year in whole years."""
    if start is None:
        return DEFAULT_DURATION.get(timeframe, "10 D")
    to = end or now or datetime.now(UTC)
    days = max(1, math.ceil((to - start).total_seconds() / 86400))
    return f"{math.ceil(days / 365)} Y" if days > 365 else f"{days} D"


def _utc(ts: datetime) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class ContractIds(Protocol):
    """Where conIds are kept across runs (`joe.data.cache.ContractIdCache`)."""

    def get(self, symbol: str) -> dict[str, Any] | None: ...
    def put(self, symbol: str, con_id: int, *, primary_exchange: str = "") -> None: ...
    def forget(self, symbol: str) -> None: ...


class QuoteHandler:
    """Turns ib_async tickers into Joe quotes and fans them out to listeners (the quote hot path)."""

    def __init__(self) -> None:
        self.latest: dict[str, Quote] = {}
        self.listeners: list[Callable[[Quote], None]] = []
        self.count = 0

    def on_tickers(self, tickers: Any) -> None:
        for t in tickers:
            q = self.to_quote(t)
            if q is None:
                continue
            self.latest[q.symbol] = q
            self.count += 1
            for fn in self.listeners:
                fn(q)

    @staticmethod
    def to_quote(t: Ticker) -> Quote | None:
        bid, ask = t.bid, t.ask
        if not (bid and ask and bid > 0 and ask > 0) or math.isnan(bid) or math.isnan(ask):
            return None
        last = t.last if t.last and not math.isnan(t.last) else None
        return Quote(
            symbol=t.contract.symbol if t.contract else "", ts=datetime.now(UTC), bid=decimal(bid),
            ask=decimal(ask), last=decimal(last) if last is not None else None,
            bid_size=decimal(t.bidSize) if t.bidSize and not math.isnan(t.bidSize) else None,
            ask_size=decimal(t.askSize) if t.askSize and not math.isnan(t.askSize) else None,
        )  # fmt: skip


class IBKRMarketData:
    """Market data from IBKR through ib_async (shares the connection with the execution client if given)."""

    name = "ibkr"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 1,
        account: str = "",
        mode: str = "paper",
        audit: AuditSink | None = None,
        *,
        connection: IBKRConnection | None = None,
        pacer: HistoricalPacer | None = None,
        scans: Sequence[str] = DEFAULT_SCANS,
        rows_per_scan: int = 10,
        universe_size: int = 20,
        location: str = "STK.US.MAJOR",
        quote_timeout: float = 2.0,
        pacing_backoff: float = 10.0,
        history_retries: int = 2,
        clock: Callable[[], datetime] = utcnow,
        **conn_options: Any,
    ) -> None:
        if audit is None:
            raise ValueError("IBKRMarketData needs an audit sink")
        self.clock = clock  # "now" for an open-ended history request's duration (duration_for)
        self.conn = connection or IBKRConnection(host, port, client_id, account, mode, audit, **conn_options)
        self.ib = self.conn.ib
        self.pacer = pacer or HistoricalPacer()
        self.scans = tuple(scans)
        self.rows_per_scan = rows_per_scan
        self.universe_size = universe_size
        self.location = location
        self.quote_timeout = quote_timeout
        self.pacing_backoff = pacing_backoff
        self.history_retries = history_retries
        self.handler = QuoteHandler()
        self._contracts: dict[str, Contract] = {}
        self._tickers: dict[str, Ticker] = {}
        self.contract_ids: ContractIds | None = None  # conIds kept across runs (joe.data.cache)
        self._from_ids: set[str] = set()  # symbols whose contract came from contract_ids, not TWS
        self.conn.add_resync_hook(self._resync)
        self.ib.pendingTickersEvent += self.handler.on_tickers

    async def connect(self) -> None:
        await self.conn.connect()

    async def close(self) -> None:
        for t in self._tickers.values():
            if self.conn.connected and t.contract is not None:
                self.ib.cancelMktData(t.contract)
        self._tickers.clear()
        await self.conn.close()

    async def _resync(self, reason: str) -> None:
        # After a fresh socket or "data lost" (1101) every subscription is gone: subscribe again.
        if reason in ("connect", "data_lost") and self._tickers:
            symbols = list(self._tickers)
            self._tickers.clear()
            for s in symbols:
                self._subscribe(self._contracts[s])

    def _require(self) -> None:
        if not self.conn.connected:
            raise BrokerUnavailable("IBKR not connected")

    def use_contract_ids(self, ids: ContractIds) -> None:
        """Keep conIds across runs in `ids` (a `joe.data.cache.ContractIdCache`): a known instrument
        needs no contract-details request; an id TWS rejects is forgotten and looked up again."""
        self.contract_ids = ids

    async def contract(self, symbol: str) -> Contract:
        """The qualified stock contract for `symbol` (cached; needs a conId for market data)."""
        c = self._contracts.get(symbol)
        known = self.contract_ids.get(symbol) if c is None and self.contract_ids is not None else None
        if known is not None:
            c = stock(symbol)
            c.conId = int(known["con_id"])
            c.primaryExchange = str(known.get("primary_exchange") or "")
            self._contracts[symbol] = c
            self._from_ids.add(symbol)
        if c is None:
            self._require()
            c = stock(symbol)
            try:
                await self.ib.qualifyContractsAsync(c)
            except RequestError as exc:
                raise BrokerError(f"IBKR does not know {symbol}: {exc}") from exc
            if not c.conId:
                raise BrokerError(f"IBKR does not know {symbol}")
            self._contracts[symbol] = c
            if self.contract_ids is not None:
                self.contract_ids.put(symbol, c.conId, primary_exchange=c.primaryExchange or "")
        return c

    # -- universe -----------------------------------------------------------------------------------

    async def scan(self, scan: str, rows: int | None = None) -> list[Instrument]:
        """One scanner subscription (a Joe scan name like "top_gainers" or a raw IBKR scan code)."""
        self._require()
        code = SCANS.get(scan.lower(), scan.upper())
        n = rows or self.rows_per_scan
        sub = ScannerSubscription(instrument="STK", locationCode=self.location, scanCode=code, numberOfRows=n)
        data = await self.ib.reqScannerDataAsync(sub)
        out = []
        for row in data:
            c = row.contractDetails.contract
            if c is None or not c.symbol:
                continue
            self._contracts.setdefault(c.symbol, c)
            out.append(
                Instrument(
                    symbol=c.symbol,
                    asset_class=AssetClass.EQUITY,
                    currency=c.currency or "USD",
                    exchange=c.primaryExchange or c.exchange,
                    broker_ids={"ibkr": str(c.conId)},
                )
            )
        return out

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        scans = [scan] if scan else list(self.scans)
        seen: dict[str, Instrument] = {}
        for name in scans:
            for inst in await self.scan(name):
                seen.setdefault(inst.symbol, inst)
        return list(seen.values())[: self.universe_size]

    # -- history ------------------------------------------------------------------------------------

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        try:
            return await self._history(symbol, timeframe, start, end)
        except BrokerError:
            if symbol not in self._from_ids or self.contract_ids is None:
                raise
            # The cached conId may be outdated (a corporate action): forget it, look it up once more.
            log.warning("IBKR rejected the cached contract id of %s; looking it up again", symbol)
            self._from_ids.discard(symbol)
            self._contracts.pop(symbol, None)
            self.contract_ids.forget(symbol)
            return await self._history(symbol, timeframe, start, end)

    async def _history(
        self, symbol: str, timeframe: str, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame:
        bar_size = BAR_SIZES.get(timeframe)
        if bar_size is None:
            raise ValueError(f"unsupported timeframe {timeframe!r}; use one of {sorted(BAR_SIZES)}")
        contract = await self.contract(symbol)
        duration = duration_for(timeframe, start, end, self.clock())
        end_str = end.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC") if end else ""
        req = HistRequest(str(contract.conId), contract.exchange, "TRADES", bar_size, duration, end_str)
        bars: Any = []
        for attempt in range(self.history_retries + 1):
            await self.pacer.acquire(req)
            try:
                bars = await self.ib.reqHistoricalDataAsync(
                    contract, end_str, duration, bar_size, "TRADES", useRTH=True, formatDate=2
                )
                break
            except RequestError as exc:
                if exc.code != PACING_VIOLATION or attempt == self.history_retries:
                    raise BrokerError(f"historical data for {symbol} failed: {exc}") from exc
                log.warning("IBKR pacing violation on %s; backing off %.1fs", symbol, self.pacing_backoff)
                self.pacer.penalize(self.pacing_backoff)
            finally:
                await self.pacer.release()
        return self._frame(bars, start, end)

    @staticmethod
    def _frame(bars: Any, start: datetime | None, end: datetime | None) -> pd.DataFrame:
        if not bars:
            empty = pd.DatetimeIndex([], tz="UTC")
            return pd.DataFrame(columns=list(HISTORY_COLUMNS), index=empty, dtype=float)
        idx = pd.DatetimeIndex([pd.Timestamp(b.date) for b in bars])
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        df = pd.DataFrame(
            {"open": [b.open for b in bars], "high": [b.high for b in bars], "low": [b.low for b in bars],
             "close": [b.close for b in bars], "volume": [b.volume for b in bars]},
            index=idx, dtype=float,
        )  # fmt: skip
        df = df[~df.index.duplicated(keep="last")].sort_index()
        if start is not None:
            df = df[df.index >= _utc(start)]
        if end is not None:
            df = df[df.index <= _utc(end)]
        return df

    # -- quotes -------------------------------------------------------------------------------------

    def _subscribe(self, contract: Contract) -> Ticker:
        t = self.ib.reqMktData(contract, "", False, False)
        self._tickers[contract.symbol] = t
        return t

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Start streaming quotes for `symbols` (idempotent)."""
        self._require()
        for s in symbols:
            if s not in self._tickers:
                self._subscribe(await self.contract(s))

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        """Stop streaming `symbols`: cancel their market data at the broker (`cancelMktData`, so TWS
        frees the line and sends no more ticks) and forget them, so a reconnect or 1101 re-sync does
        not subscribe them again. Symbols not subscribed are ignored."""
        for s in symbols:
            t = self._tickers.pop(s, None)
            if t is not None and t.contract is not None and self.conn.connected:
                self.ib.cancelMktData(t.contract)

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Latest quote per symbol; symbols IBKR does not know (or that never quote) are left out."""
        wanted = []
        for s in symbols:
            try:
                await self.subscribe([s])
                wanted.append(s)
            except BrokerError as exc:
                log.warning("no IBKR quotes for %s: %s", s, exc)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.quote_timeout
        while True:
            out = {s: q for s in wanted if (q := QuoteHandler.to_quote(self._tickers[s])) is not None}
            if len(out) == len(wanted) or loop.time() >= deadline:
                return out
            await asyncio.sleep(0.01)

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        return {}  # IBKR has no client-positioning feed
