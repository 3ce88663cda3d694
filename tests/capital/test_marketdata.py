"""CapitalMarketData against the simulator: universe from watchlists / navigation, daily history of
300+ bars, paged intraday history, quotes and sentiment for a ~20-epic universe."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from joe.brokers.base import HISTORY_COLUMNS, MarketData
from joe.brokers.capital import CapitalMarketData, NotFound
from joe.brokers.capital.marketdata import resolution_for
from joe.core.models import AssetClass
from joe.simulators.capital import CapitalSimulator


async def test_protocol(market_data: CapitalMarketData) -> None:
    assert isinstance(market_data, MarketData)


async def test_universe_sources(market_data: CapitalMarketData) -> None:
    everything = await market_data.universe()
    assert len(everything) == 22 and len({i.symbol for i in everything}) == 22
    gold = next(i for i in everything if i.symbol == "GOLD")
    assert gold.asset_class is AssetClass.COMMODITY and gold.broker_ids == {"capital": "GOLD"}
    assert len(await market_data.universe("Most traded")) == 10
    assert len(await market_data.universe("1001")) == 10
    shares = await market_data.universe("nav:hierarchy_v1.shares_group")
    assert {i.symbol for i in shares} == {"AAPL", "MSFT", "TSLA", "AMZN", "NVDA"}
    assert all(i.asset_class is AssetClass.EQUITY for i in shares)
    assert len(await market_data.universe("nav:")) == 22
    assert [i.symbol for i in await market_data.universe("search:bitcoin")] == ["BTCUSD"]
    with pytest.raises(NotFound):
        await market_data.universe("no such list")


async def test_universe_carries_each_markets_dealing_rules(market_data: CapitalMarketData) -> None:
    """Every instrument carries the broker's size step, minimum and tick (from `/markets?epics=`),
    so paper and risk size on them (review 2 of issue 18: USDJPY was sized 66.66 with min 100)."""
    from joe.simulators.capital.catalog import BY_EPIC

    for inst in await market_data.universe():
        spec = BY_EPIC[inst.symbol]
        assert inst.broker_rules, inst
        rules = (inst.lot_size, inst.min_size, inst.tick_size)
        assert rules == (spec.size_increment, spec.min_size, spec.tick), inst.symbol


async def test_universe_falls_back_to_navigation(
    sim: CapitalSimulator, market_data: CapitalMarketData
) -> None:
    sim.watchlists.lists.clear()
    assert len(await market_data.universe()) == 22


async def test_daily_history_for_twenty_epics(sim: CapitalSimulator, market_data: CapitalMarketData) -> None:
    universe = await market_data.universe()
    for inst in universe[:20]:
        frame = await market_data.history(inst.symbol, "1d")
        assert list(frame.columns) == list(HISTORY_COLUMNS)
        assert len(frame) >= 300, inst.symbol
        assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
        assert frame.index.is_monotonic_increasing and not frame.index.has_duplicates
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1) - 1e-9).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1) + 1e-9).all()
        assert frame.dtypes.eq("float64").all()


async def test_intraday_history_pages_within_limits(
    sim: CapitalSimulator, market_data: CapitalMarketData
) -> None:
    end = sim.clock().replace(minute=0, second=0, microsecond=0)  # the broker's now, not the host's
    start = end - timedelta(hours=2400)
    # BTCUSD trades every day: its hours are contiguous (an index has no weekend bars)
    frame = await market_data.history("BTCUSD", "1h", start, end)
    assert len(frame) in (2400, 2401)  # both ends inclusive; 2400 if an hour ticked over mid-test
    gaps = frame.index.to_series().diff().dropna()
    assert (gaps == pd.Timedelta(hours=1)).all()  # contiguous across page boundaries, no duplicates
    price_calls = [r for r in sim.requests if r.path == "/prices/BTCUSD"]
    assert len(price_calls) == 3
    assert all(int(r.query["max"]) <= 1000 for r in price_calls)
    assert sim.count("/prices", status=400) == 0


async def test_history_matches_the_wire_bars(sim: CapitalSimulator, market_data: CapitalMarketData) -> None:
    sim.paused = True  # no price step between the request and the comparison
    frame = await market_data.history("GOLD", "DAY")
    bars = sim.history.bars("GOLD", "DAY")
    assert frame.index[-1] == pd.Timestamp(bars[-1].start)
    for i in (-2, -1):
        assert frame["close"].iloc[i] == pytest.approx(float(bars[i].bid.c + bars[i].ask.c) / 2, rel=1e-12)
    bid, ask = sim.exchange.quote("GOLD")
    assert frame["close"].iloc[-1] == pytest.approx(float(bid + ask) / 2, rel=1e-12)  # joins the live price


async def test_quotes_and_sentiment(sim: CapitalSimulator, market_data: CapitalMarketData) -> None:
    symbols = [i.symbol for i in await market_data.universe()]
    quotes = await market_data.quotes([*symbols, "NOPE"])
    assert set(quotes) == set(symbols)
    assert all(q.ask > q.bid for q in quotes.values())
    sentiment = await market_data.sentiment(symbols)
    assert set(sentiment) == set(symbols)
    assert all(abs(s.long_pct + s.short_pct - 100) < 1e-6 for s in sentiment.values())
    assert await market_data.sentiment([]) == {}


@pytest.mark.parametrize(
    ("tf", "res"),
    [("1d", "DAY"), ("1h", "HOUR"), ("5m", "MINUTE_5"), ("WEEK", "WEEK"), ("4h", "HOUR_4"), ("1m", "MINUTE")],
)
def test_resolution_mapping(tf: str, res: str) -> None:
    assert resolution_for(tf) == res


def test_unknown_timeframe() -> None:
    with pytest.raises(ValueError):
        resolution_for("3m")


@pytest.mark.parametrize(
    "resolution", ["MINUTE", "MINUTE_5", "MINUTE_15", "MINUTE_30", "HOUR", "HOUR_4", "DAY", "WEEK"]
)
async def test_every_resolution_pages_within_limits(sim: CapitalSimulator, client, resolution: str) -> None:  # type: ignore[no-untyped-def]
    from joe.brokers.capital.markets import MarketsApi

    bars = await MarketsApi(client).prices("GOLD", resolution, count=1500)  # spans more than one page
    assert bars, resolution
    times = [b.snapshotTimeUTC for b in bars]
    assert times == sorted(times) and len(set(times)) == len(times)
    calls = [r for r in sim.requests if r.path == "/prices/GOLD"]
    assert len(calls) == 2 and all(r.query["resolution"] == resolution for r in calls)
    assert sim.count("/prices", status=400) == 0  # never outside the documented range limits
