"""`CapitalMarketData`: Joe's `MarketData` protocol on Capital.com.

* `universe(scan)`: `scan` names a watchlist (by id or name), `nav:<nodeId>` a market-navigation
  node, `search:<term>` a search; None = every watchlist's markets, or the navigation tree when
  there are no watchlists. Instruments use the epic as Joe's symbol.
* `history`: bars from `/prices` at the matching resolution, mid of bid/ask, paged within limits;
  without `end`, up to the service's clock (`GET /time`), so a local clock behind the broker's
  cannot drop the newest bar.
* `quotes`: REST snapshots (`/markets?epics=`), or the live stream's latest quote when one runs.
* `sentiment`: `/clientsentiment?marketIds=`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd

from joe.brokers.base import HISTORY_COLUMNS, Sentiment
from joe.brokers.capital.errors import NotFound
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.mapping import (
    instrument_from_market,
    quote_from_market,
    snapshot_utc,
    with_dealing_rules,
)
from joe.brokers.capital.markets import RESOLUTION_SECONDS, MarketsApi, parse_utc
from joe.brokers.capital.models import MarketSummary, PriceBar
from joe.brokers.capital.streaming import CapitalStream
from joe.core.events import AuditSink
from joe.core.models import Instrument, Quote

TIMEFRAMES = {
    "1m": "MINUTE",
    "5m": "MINUTE_5",
    "15m": "MINUTE_15",
    "30m": "MINUTE_30",
    "1h": "HOUR",
    "4h": "HOUR_4",
    "1d": "DAY",
    "d": "DAY",
    "1wk": "WEEK",
    "1w": "WEEK",
}


def resolution_for(timeframe: str) -> str:
    """Joe timeframe ("1d", "1h", ...) or a Capital.com resolution name → resolution."""
    tf = timeframe.strip()
    if tf.upper() in RESOLUTION_SECONDS:
        return tf.upper()
    try:
        return TIMEFRAMES[tf.lower()]
    except KeyError:
        raise ValueError(f"unsupported timeframe {timeframe!r}") from None


def bars_to_frame(bars: Sequence[PriceBar]) -> pd.DataFrame:
    """Price bars → frame with `HISTORY_COLUMNS`, mid prices, UTC DatetimeIndex at bar start."""

    def mid(side_bid: float, side_ask: float | None) -> float:
        return side_bid if side_ask is None else (side_bid + side_ask) / 2

    idx = pd.DatetimeIndex([parse_utc(b.snapshotTimeUTC) for b in bars], name="ts")
    data = {
        "open": [mid(b.openPrice.bid, b.openPrice.ask) for b in bars],
        "high": [mid(b.highPrice.bid, b.highPrice.ask) for b in bars],
        "low": [mid(b.lowPrice.bid, b.lowPrice.ask) for b in bars],
        "close": [mid(b.closePrice.bid, b.closePrice.ask) for b in bars],
        "volume": [float(b.lastTradedVolume) for b in bars],
    }
    frame = pd.DataFrame(data, index=idx, columns=list(HISTORY_COLUMNS), dtype="float64")
    return frame[~frame.index.duplicated(keep="last")].sort_index()


class CapitalMarketData:
    """MarketData over a logged-in `CapitalClient` (optionally backed by a running `CapitalStream`)."""

    name = "capital"

    def __init__(
        self,
        client: CapitalClient,
        *,
        audit: AuditSink,
        stream: CapitalStream | None = None,
        lookback_bars: int = 500,
        max_universe: int = 500,
    ) -> None:
        self.client = client
        self.audit = audit
        self.markets = MarketsApi(client)
        self.stream = stream
        self.lookback_bars = lookback_bars
        self.max_universe = max_universe

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        markets = await self._scan(scan)
        seen: dict[str, MarketSummary] = {}
        for m in markets:
            seen.setdefault(m.epic, m)
        chosen = list(seen.values())[: self.max_universe]
        # Summaries carry no dealing rules: the details do (sizes Joe must floor to, spec §6.4).
        details = {d.instrument.epic: d for d in await self.markets.details([m.epic for m in chosen])}
        out = [
            with_dealing_rules(instrument_from_market(m), details[m.epic], m.tick)
            if m.epic in details
            else instrument_from_market(m)
            for m in chosen
        ]
        self.audit.record("capital.universe", {"scan": scan, "count": len(out)})
        return out

    async def _scan(self, scan: str | None) -> list[MarketSummary]:
        if scan and scan.startswith("nav:"):
            return await self.markets.walk_navigation(scan[4:] or None, max_markets=self.max_universe)
        if scan and scan.startswith("search:"):
            return await self.markets.search(scan[7:])
        lists = await self.markets.watchlists()
        if scan:
            chosen = [w for w in lists if scan in (w.id, w.name)]
            if not chosen:
                raise NotFound(f"capital: no watchlist named {scan!r}", code="error.invalid.watchlist")
        else:
            chosen = lists
        if not chosen:
            return await self.markets.walk_navigation(max_markets=self.max_universe)
        out: list[MarketSummary] = []
        for w in chosen:
            out.extend(await self.markets.watchlist_markets(w.id))
        return out

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        resolution = resolution_for(timeframe)
        if start is None:
            # Calendar span for `lookback_bars` bars; DAY/HOUR bars skip weekends on most markets.
            factor = 1.5 if resolution in ("DAY", "HOUR", "HOUR_4") else 1.0
            steps = math.ceil(self.lookback_bars * factor)
            if end is None:  # up to the service's clock (`server_now`), never a local clock behind it
                bars = await self.markets.prices(symbol, resolution, None, None, count=steps + 1)
                return bars_to_frame(bars)
            start = end - timedelta(seconds=RESOLUTION_SECONDS[resolution] * steps)
        bars = await self.markets.prices(symbol, resolution, start, end)
        return bars_to_frame(bars)

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        out: dict[str, Quote] = {}
        if self.stream is not None:
            for s in symbols:
                sq = self.stream.latest.get(s)
                if sq is not None and s not in self.stream.stale:
                    out[s] = sq.to_quote()
        missing = [s for s in symbols if s not in out]
        if missing:
            # The snapshot's updateTime is in the account's zone: the session's timezoneOffset makes it UTC.
            session = getattr(self.markets.client, "session", None)
            tz = (getattr(session, "login_body", None) or {}).get("timezoneOffset")
            for d in await self.markets.details(missing):
                snap = d.snapshot
                if snap.bid is None or snap.offer is None:
                    continue
                summary = MarketSummary(
                    epic=d.instrument.epic,
                    instrumentName=d.instrument.name,
                    instrumentType=d.instrument.type,
                    marketStatus=snap.marketStatus,
                    bid=snap.bid,
                    offer=snap.offer,
                    updateTimeUTC=snapshot_utc(snap.updateTime, tz),
                )
                q = quote_from_market(summary)
                if q is not None:
                    out[d.instrument.epic] = q
        return out

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        if not symbols:
            return {}
        items = await self.markets.sentiment(list(symbols))
        return {
            i.marketId: Sentiment(i.marketId, i.longPositionPercentage, i.shortPositionPercentage)
            for i in items
        }
