"""Market endpoints: search/details, navigation, price history (paged), client sentiment, watchlists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from joe.brokers.capital.errors import CapitalError, InvalidRequest, NotFound
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.models import (
    CreateWatchlistResponse,
    MarketDetails,
    MarketDetailsList,
    MarketsResponse,
    MarketSummary,
    NavigationResponse,
    PriceBar,
    PricesResponse,
    SentimentItem,
    SentimentsResponse,
    ServerTime,
    StatusResponse,
    Watchlist,
    WatchlistsResponse,
    parse,
    utc_datetime,
)

RESOLUTION_SECONDS = {
    "MINUTE": 60,
    "MINUTE_5": 300,
    "MINUTE_15": 900,
    "MINUTE_30": 1800,
    "HOUR": 3600,
    "HOUR_4": 14400,
    "DAY": 86400,
    "WEEK": 604800,
}
MAX_PRICES = 1000
MAX_EPICS = 50
MAX_NAV_LIMIT = 500
# How far behind the service's clock the newest `to` is asked: covers the `/time` round trip's
# uncertainty and the service's whole-second truncation (spec §6.5: a future `to` is a 400).
TO_MARGIN = timedelta(seconds=1)


def fmt_ts(ts: datetime) -> str:
    """Query-string date: UTC, `YYYY-MM-DDTHH:MM:SS`, no zone suffix (spec §2)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


# Parse a `…UTC` response field (no zone suffix, with or without milliseconds) as aware UTC.
parse_utc = utc_datetime


def _chunks(items: Sequence[str], n: int) -> list[list[str]]:
    return [list(items[i : i + n]) for i in range(0, len(items), n)]


_STAMP_MS = timedelta(milliseconds=1)


class MarketsApi:
    """Typed access to the market endpoints of one `CapitalClient`."""

    def __init__(self, client: CapitalClient) -> None:
        self.client = client
        # Service clock minus this host's clock, learnt from `GET /time` on first need.
        self._clock_offset: timedelta | None = None

    async def server_now(self, *, refresh: bool = False) -> datetime:
        """Now by Capital.com's clock (aware UTC, whole seconds), less `TO_MARGIN`.

        The service refuses a `to` later than its own now with 400 `error.invalid.daterange`
        (spec §6.5), so a host clock ahead of the service's by a second or more would otherwise
        lose every history request. The offset is read once from `GET /time` (no session needed);
        if that fails the host clock is used as it is.
        """
        offset = await self.clock_offset(refresh=refresh)
        return (datetime.now(UTC) + offset - TO_MARGIN).replace(microsecond=0)

    async def clock_offset(self, *, refresh: bool = False) -> timedelta:
        """The service's clock minus this host's, from `GET /time` (read once; `refresh` reads it
        again); 0 if that fails. The stamp was taken somewhere in [before, after] the request:
        `server - after` is the smallest offset it allows."""
        if self._clock_offset is None or refresh:
            try:
                _, server, after = await self._read_time()
                self._clock_offset = server - after
            except CapitalError:
                self._clock_offset = timedelta(0)
        return self._clock_offset

    async def _read_time(self) -> tuple[datetime, datetime, datetime]:
        """(this host's clock before `GET /time`, the service's stamp, this host's clock after); raises
        `CapitalError`. The stamp was taken at some host instant between the two readings."""
        before = datetime.now(UTC)
        body = await self.client.request("GET", "/time")
        after = datetime.now(UTC)
        return before, datetime.fromtimestamp(parse(ServerTime, body, "time").serverTime / 1000, UTC), after

    async def service_now_latest(self) -> datetime | None:
        """Now by the service's clock as LATE as a fresh `GET /time` allows, or None if it cannot be read
        (the cached offset is left alone). The stamp was taken at some host instant in [before, after]
        the request, so the service's clock is at most `server - before` ahead of ours: read against
        this host's clock after the answer, that bound can only make a quote the service dated look
        older, never fresher, however slow the request (quote ageing fails closed; `server_now`, which
        must never be in the service's future, takes the other bound)."""
        try:
            before, server, after = await self._read_time()
        except CapitalError:
            return None
        # + 1 ms: the stamp is whole milliseconds, the instant it stands for up to 1 ms later.
        return after + (server - before) + _STAMP_MS

    async def search(self, term: str) -> list[MarketSummary]:
        body = await self.client.request("GET", "/markets", params={"searchTerm": term})
        return parse(MarketsResponse, body, "markets").markets

    async def all_markets(self) -> list[MarketSummary]:
        body = await self.client.request("GET", "/markets")
        return parse(MarketsResponse, body, "markets").markets

    async def details(self, epics: Sequence[str]) -> list[MarketDetails]:
        """`GET /markets?epics=` in chunks of 50."""
        out: list[MarketDetails] = []
        for chunk in _chunks(list(epics), MAX_EPICS):
            body = await self.client.request("GET", "/markets", params={"epics": ",".join(chunk)})
            out.extend(parse(MarketDetailsList, body, "marketDetails").marketDetails)
        return out

    async def market(self, epic: str) -> MarketDetails:
        body = await self.client.request("GET", f"/markets/{epic}")
        return parse(MarketDetails, body, "market")

    async def navigation(self, node_id: str | None = None, limit: int = MAX_NAV_LIMIT) -> NavigationResponse:
        if node_id is None:
            body = await self.client.request("GET", "/marketnavigation")
        else:
            body = await self.client.request(
                "GET", f"/marketnavigation/{node_id}", params={"limit": max(1, min(limit, MAX_NAV_LIMIT))}
            )
        return parse(NavigationResponse, body, "marketnavigation")

    async def walk_navigation(
        self, node_id: str | None = None, *, max_depth: int = 3, max_markets: int = 500
    ) -> list[MarketSummary]:
        """Markets under a navigation node (root when None), depth-first, de-duplicated by epic."""
        seen: dict[str, MarketSummary] = {}

        async def visit(nid: str | None, depth: int) -> None:
            if len(seen) >= max_markets or depth > max_depth:
                return
            nav = await self.navigation(nid)
            for m in nav.markets:
                seen.setdefault(m.epic, m)
            for child in nav.nodes:
                await visit(child.id, depth + 1)

        await visit(node_id, 0)
        return list(seen.values())[:max_markets]

    async def prices(
        self,
        epic: str,
        resolution: str = "DAY",
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        count: int | None = None,
    ) -> list[PriceBar]:
        """Historical bars, paged so every request stays inside the documented range limits.

        With both bounds the span of one request is at most (max − 1) × resolution. Without `start`
        the window is `count` (default 1000) resolution steps of calendar time before `end`, so
        markets closed at weekends return fewer bars. `end` is clamped to now by the service's
        clock (`server_now`: a future `to` is rejected, spec §6.5); a page refused as a future
        range is asked once more after re-reading the service's clock.
        """
        step = RESOLUTION_SECONDS.get(resolution)
        if step is None:
            raise ValueError(f"unknown resolution {resolution!r}")
        now = await self.server_now()
        end = min(end.astimezone(UTC), now) if end else now
        if start is None:
            start = end - timedelta(seconds=step * ((count or MAX_PRICES) - 1))
        start = start.astimezone(UTC)
        bars: dict[str, PriceBar] = {}
        page_span = timedelta(seconds=step * (MAX_PRICES - 1))
        lo = start
        while lo <= end:
            hi = min(lo + page_span, end)
            params: dict[str, Any] = {
                "resolution": resolution,
                "max": MAX_PRICES,
                "from": fmt_ts(lo),
                "to": fmt_ts(hi),
            }
            try:
                body = await self._prices_page(epic, params, hi)
            except NotFound as exc:
                if exc.code not in ("", "error.prices.not-found"):
                    raise
                body = {"prices": []}
            for bar in parse(PricesResponse, body, "prices").prices:
                bars[bar.snapshotTimeUTC] = bar
            lo = hi + timedelta(seconds=step)
        return [bars[k] for k in sorted(bars, key=parse_utc)]

    async def _prices_page(self, epic: str, params: dict[str, Any], hi: datetime) -> Any:
        try:
            return await self.client.request("GET", f"/prices/{epic}", params=params)
        except InvalidRequest as exc:
            # Only a page ending at "now" can be in the service's future: the clocks moved apart
            # since the offset was read. Re-read it once; any other refusal is the caller's.
            if exc.code != "error.invalid.daterange":
                raise
            now = await self.server_now(refresh=True)
            if hi <= now:
                raise
            return await self.client.request("GET", f"/prices/{epic}", params={**params, "to": fmt_ts(now)})

    async def sentiment(self, market_ids: Sequence[str]) -> list[SentimentItem]:
        """Sentiment for the known ids among `market_ids`; unknown ids are left out.

        The service answers a whole `marketIds=` request with 404 `error.not-found.epic` when an id
        is unknown (recorded), so a chunk that 404s is asked again one id at a time.
        """
        out: list[SentimentItem] = []
        for chunk in _chunks(list(market_ids), MAX_EPICS):
            try:
                body = await self.client.request(
                    "GET", "/clientsentiment", params={"marketIds": ",".join(chunk)}
                )
            except NotFound:
                for market_id in chunk if len(chunk) > 1 else ():
                    try:
                        out.append(await self.sentiment_one(market_id))
                    except NotFound:
                        continue
                continue
            out.extend(parse(SentimentsResponse, body, "clientsentiment").clientSentiments)
        return out

    async def sentiment_one(self, market_id: str) -> SentimentItem:
        body = await self.client.request("GET", f"/clientsentiment/{market_id}")
        return parse(SentimentItem, body, "clientsentiment")

    # ------------------------------------------------------------ watchlists
    async def watchlists(self) -> list[Watchlist]:
        body = await self.client.request("GET", "/watchlists")
        return parse(WatchlistsResponse, body, "watchlists").watchlists

    async def watchlist_markets(self, watchlist_id: str) -> list[MarketSummary]:
        body = await self.client.request("GET", f"/watchlists/{watchlist_id}")
        return parse(MarketsResponse, body, "watchlist").markets

    async def create_watchlist(self, name: str, epics: Sequence[str] = ()) -> CreateWatchlistResponse:
        body = await self.client.request(
            "POST", "/watchlists", json_body={"name": name, "epics": list(epics)}
        )
        return parse(CreateWatchlistResponse, body, "watchlist create")

    async def add_to_watchlist(self, watchlist_id: str, epic: str) -> str:
        body = await self.client.request("PUT", f"/watchlists/{watchlist_id}", json_body={"epic": epic})
        return parse(StatusResponse, body, "watchlist add").status

    async def remove_from_watchlist(self, watchlist_id: str, epic: str) -> str:
        body = await self.client.request("DELETE", f"/watchlists/{watchlist_id}/{epic}")
        return parse(StatusResponse, body, "watchlist remove").status

    async def delete_watchlist(self, watchlist_id: str) -> str:
        body = await self.client.request("DELETE", f"/watchlists/{watchlist_id}")
        return parse(StatusResponse, body, "watchlist delete").status
