"""The RiskGate's book for a live or shadow run: the minute and the live quotes, not the daily close.

A run on daily bars (paper, backtest) judges "market closed" by the decision day and "stale" by the
close's date (`joe.safety.paper_book.daily_book`). An order sent to a broker fills NOW, so a live or
shadow run's entries are judged against the run's clock and the broker's quotes:

* ``market_closed`` (README risk table (g)): the instrument's exchange session is open at this minute
  (exchange-calendars, per the instrument's exchange); where the broker reports the market's own
  status (Capital.com ``marketStatus``, CFDs have their own hours), anything but ``TRADEABLE`` is
  closed — and a status Joe could not read is closed too (fail closed: no entry, exits unaffected);
* ``stale_quote``: a live quote no older than ``risk.max_quote_age_s``; no quote → no entry; a quote
  without a time (``UNDATED``) or dated more than ``MAX_FUTURE_SKEW_S`` ahead of us → no entry.

Quote timestamps are stamped by the wall clock (the broker's or the receiving client's); their age is
measured against the wall clock and carried over to the run's clock (`now`), so a rehearsal clock
(``--clock-start``, simulators only) moves the minute judged, not the quotes' ages. Under a rehearsal
clock (`venue_clock`) a venue that stamps quotes with its own clock (Capital.com: `updateTimeUTC`) has
them aged on that clock (its `GET /time`, as late as the round trip allows): Joe's simulator may run on a
shifted clock too (``joe sim capital --clock-start``), and its quotes are then dated in its own time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from joe.core.clock import utcnow
from joe.core.models import UNDATED, Quote
from joe.safety.risk_gate import GateBook, QuoteMark

TRADEABLE = "TRADEABLE"  # Capital.com's marketStatus of an open market (others: CLOSED, EDITS_ONLY, ...)


def live_book(
    book: GateBook,
    *,
    now: datetime,
    quotes: Mapping[str, Quote],
    market_open: Mapping[str, bool] | None = None,
    wall_now: datetime | None = None,
) -> GateBook:
    """`book` (built on daily bars) judged at the minute `now` (aware UTC) on live `quotes`.

    Each quote's age is `wall_now - quote.ts` (wall clock, `utcnow()` by default) and its mark is
    placed that long before `now`. `market_open`: {symbol: broker says tradeable} where the broker
    reports it; other symbols are judged by their exchange calendar. Quotes are mids in the
    instrument's currency (a one-sided or crossed quote is left out: no price to trust)."""
    wall = wall_now or utcnow()
    marks: dict[str, QuoteMark] = {}
    for sym, q in quotes.items():
        if q.bid is None or q.ask is None or q.bid <= 0 or q.ask < q.bid:
            continue
        # An undated quote keeps no time (unknown age: `StaleQuote` denies it); a dated one its age.
        marks[sym] = QuoteMark(q.mid, UNDATED if q.ts <= UNDATED else now - (wall - q.ts))
    return replace(book, now=now, quotes=marks, daily_bars=False, market_open=dict(market_open or {}))


async def fetch_live_book(
    book: GateBook,
    market: Any,
    symbols: Iterable[str],
    now: Callable[[], datetime],
    *,
    venue_clock: bool = False,
) -> GateBook:
    """`live_book` with the quotes and (Capital.com) market statuses read from `market` (the run's
    `MarketData`). A quote request that fails leaves the symbols without a quote (→ stale, no entry);
    a status request that fails marks them closed. `venue_clock` (a rehearsal clock at Joe's
    simulator): quotes stamped by the venue's clock are aged on it (`venue_now`)."""
    wanted = sorted(set(symbols))
    quotes: dict[str, Quote] = {}
    status: dict[str, bool] = {}
    if wanted:
        with contextlib.suppress(Exception):
            quotes = await market.quotes(wanted)
        status = await _broker_status(market, wanted)
    wall = await venue_now(market) if venue_clock else None
    return live_book(book, now=now(), quotes=quotes, market_open=status, wall_now=wall)


async def venue_now(market: Any) -> datetime | None:
    """Now by the clock that stamps `market`'s quotes, when that is the venue's own (Capital.com:
    `updateTimeUTC`, its `GET /time` read afresh, as late as the request's round trip allows:
    `MarketsApi.service_now_latest`, so a slow answer makes quotes look older, never fresher): None
    where quotes are stamped on receipt by this host (IBKR), or when the venue's time cannot be read
    (the wall clock then judges)."""
    latest: Callable[[], Awaitable[datetime | None]] | None = getattr(
        getattr(market, "markets", None), "service_now_latest", None
    )
    if latest is None:
        return None
    try:
        return await latest()
    except Exception:
        return None


async def _broker_status(market: Any, symbols: list[str]) -> dict[str, bool]:
    """{symbol: tradeable} from a broker that reports each market's status (Capital.com `/markets`);
    {} for a broker that does not (IBKR: the exchange calendar judges)."""
    details: Callable[[list[str]], Awaitable[list[Any]]] | None = getattr(
        getattr(market, "markets", None), "details", None
    )
    if details is None:
        return {}
    try:
        got = {d.instrument.epic: str(d.snapshot.marketStatus) for d in await details(symbols)}
    except Exception:
        return {s: False for s in symbols}  # status unknown: closed (fail closed on entries)
    return {s: got.get(s) == TRADEABLE for s in symbols}


__all__ = ["TRADEABLE", "fetch_live_book", "live_book", "venue_now"]
