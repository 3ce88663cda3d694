"""Under a rehearsal clock at Joe's simulator (`fetch_live_book(venue_clock=True)`), a venue that dates its
quotes on its own clock (Capital.com's `updateTimeUTC`, `joe sim capital --clock-start`) has them aged
on that clock, through its `GET /time` offset; without it, or for a venue whose quotes this host stamps
(IBKR), the wall clock judges as before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from joe.core.clock import utcnow
from joe.core.models import AssetClass, Instrument, Quote
from joe.safety.live_book import fetch_live_book
from joe.safety.risk_gate import GateBook

TUESDAY = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
AAPL = Instrument("AAPL", AssetClass.EQUITY, currency="USD", exchange="NASDAQ")


class _Markets:
    """A venue whose clock runs `offset` from ours (Capital.com's `MarketsApi.service_now_latest`)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    async def service_now_latest(self) -> datetime:
        return utcnow() + self.offset


class _Market:
    """Run-time market data at a venue on a shifted clock: its quote is 1 s old by the venue's clock."""

    def __init__(self, offset: timedelta, *, stamps_own_time: bool = True) -> None:
        if stamps_own_time:
            self.markets = _Markets(offset)
        self.offset = offset

    async def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        ts = utcnow() + self.offset - timedelta(seconds=1)
        return {s: Quote(s, ts, Decimal("99.9"), Decimal("100.1")) for s in symbols}


def _age(market: Any, *, venue_clock: bool) -> float:
    daily = GateBook(now=TUESDAY, equity=Decimal(100000), positions=[], quotes={}, instruments={"AAPL": AAPL})
    book = asyncio.run(fetch_live_book(daily, market, ["AAPL"], lambda: TUESDAY, venue_clock=venue_clock))
    return (TUESDAY - book.quotes["AAPL"].ts).total_seconds()


def test_a_venue_on_a_shifted_clock_has_its_quotes_aged_on_its_own_clock() -> None:
    days_behind = utcnow() - TUESDAY  # the simulator runs on Tuesday's clock, whatever today is
    age = _age(_Market(-days_behind), venue_clock=True)
    assert 0.5 < age < 5.0, age  # 1 s old, not days (before: stale by the days between)


def test_without_a_rehearsal_clock_the_wall_clock_ages_the_quotes() -> None:
    age = _age(_Market(-timedelta(days=2)), venue_clock=False)
    assert age > timedelta(days=2).total_seconds() - 5


def test_quotes_this_host_stamps_stay_on_the_wall_clock() -> None:
    age = _age(_Market(timedelta(0), stamps_own_time=False), venue_clock=True)
    assert 0.5 < age < 5.0, age
