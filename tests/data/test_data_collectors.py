"""Stock/crypto collectors and the after-hours engine over any MarketData source."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from joe.brokers.base import HISTORY_COLUMNS, Sentiment
from joe.core.models import AssetClass, Instrument, Quote
from joe.data import AfterHoursEngine, CryptoDataCollector, DataError, SampleSource, StockDataCollector


@pytest.fixture(scope="module")
def src() -> SampleSource:
    return SampleSource(n_synthetic=80, seed=7)


async def test_stock_collector_takes_equities_etfs_and_indices(src: SampleSource) -> None:
    got = await StockDataCollector(src).collect()
    classes = {i.asset_class for i in got.instruments.values()}
    assert classes == {AssetClass.EQUITY, AssetClass.ETF, AssetClass.INDEX}
    assert {"SPX", "AAPL", "MTUM"} <= set(got.frames) and not got.errors
    assert set(got.frames) == set(got.instruments)
    for f in got.frames.values():
        assert list(f.columns) == list(HISTORY_COLUMNS)


async def test_crypto_collector_takes_crypto_only(src: SampleSource) -> None:
    got = await CryptoDataCollector(src).collect()
    assert got.frames and all(i.asset_class is AssetClass.CRYPTO for i in got.instruments.values())
    assert all(s.startswith("SYN-CR") for s in got.frames)


async def test_failures_and_short_histories_are_reported_not_hidden(src: SampleSource) -> None:
    got = await StockDataCollector(src, min_bars=100).collect(
        ["SPX", "NOPE", "AAPL"], start=datetime(2018, 12, 1), timeframe="1d"
    )
    assert set(got.errors) == {"SPX", "NOPE", "AAPL"}
    assert "DataError" in got.errors["NOPE"] and "only" in got.errors["SPX"]
    ok = await StockDataCollector(src).collect(["SPX", "NOPE"])
    assert set(ok.frames) == {"SPX"} and set(ok.errors) == {"NOPE"}


class _Concurrency:
    """A source that records how many history calls are in flight at once."""

    name = "probe"

    def __init__(self) -> None:
        self.now = self.peak = 0

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        return [Instrument(f"S{i}") for i in range(20)]

    async def history(self, symbol: str, timeframe: str = "1d", start=None, end=None) -> pd.DataFrame:
        import asyncio

        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        self.now -= 1
        idx = pd.DatetimeIndex([pd.Timestamp("2024-01-02", tz="UTC")], name="ts")
        return pd.DataFrame({c: [1.0] for c in HISTORY_COLUMNS}, index=idx)

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        return {}

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        return {}


async def test_histories_are_fetched_concurrently_but_bounded() -> None:
    probe = _Concurrency()
    got = await StockDataCollector(probe, concurrency=4).collect()
    assert len(got.frames) == 20
    assert 1 < probe.peak <= 4


async def test_after_hours_on_daily_data_reports_gaps_and_says_so() -> None:
    src = SampleSource(n_synthetic=80, as_of=date(2018, 12, 26))
    report = await AfterHoursEngine(src).scan(top=5)
    assert report.basis == "daily-gaps" and "daily data only" in report.note
    assert report.premarket == [] and report.postmarket == []
    assert 0 < len(report.gappers_up) <= 5 and 0 < len(report.gappers_down) <= 5
    assert all(m.pct > 0 for m in report.gappers_up) and all(m.pct < 0 for m in report.gappers_down)
    assert [m.pct for m in report.gappers_up] == sorted((m.pct for m in report.gappers_up), reverse=True)
    # The gap is exactly today's open against yesterday's close.
    spx = (await AfterHoursEngine(src).scan(["SPX"])).gappers_up[0]
    f = await src.history("SPX")
    assert spx.ref_price == f["close"].iloc[-2] and spx.price == f["open"].iloc[-1]
    assert spx.pct == pytest.approx((f["open"].iloc[-1] / f["close"].iloc[-2] - 1) * 100)
    assert spx.ts.date() == date(2018, 12, 26)


class _ExtendedHours:
    """A broker-like source with 30-minute bars including pre- and post-market (New York time)."""

    name = "fake-broker"
    extended_hours = True

    def __init__(self) -> None:
        ny = "America/New_York"
        day1 = pd.date_range("2024-03-04 04:00", "2024-03-04 19:30", freq="30min", tz=ny)
        day2 = pd.date_range("2024-03-05 04:00", "2024-03-05 17:00", freq="30min", tz=ny)
        idx = day1.append(day2).tz_convert("UTC").rename("ts")
        t = idx.tz_convert(ny)
        close = np.full(len(idx), 100.0)
        # Day 1 regular close 100; day 2 pre-market trades at 105; day 2 regular ends at 110, post at 99.
        minutes = t.hour * 60 + t.minute
        close[(t.date == date(2024, 3, 5)) & (minutes < 9 * 60 + 30)] = 105.0
        close[(t.date == date(2024, 3, 5)) & (t.hour >= 10) & (t.hour < 16)] = 110.0
        close[(t.date == date(2024, 3, 5)) & (t.hour >= 16)] = 99.0
        self.intraday = pd.DataFrame(
            {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=idx
        )
        self.daily = self.intraday.resample("1D").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        return [Instrument("ACME")]

    async def history(self, symbol: str, timeframe: str = "1d", start=None, end=None) -> pd.DataFrame:
        if symbol != "ACME":
            raise DataError(f"unknown symbol {symbol}")
        f = self.daily if timeframe == "1d" else self.intraday
        return f.loc[pd.Timestamp(start) :] if start is not None else f

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        return {}

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        return {}


async def test_after_hours_with_extended_hours_bars() -> None:
    report = await AfterHoursEngine(_ExtendedHours(), intraday_timeframe="30m").scan()
    assert report.basis == "extended-hours"
    (pre,) = report.premarket
    assert (
        pre.symbol == "ACME"
        and pre.ref_price == 100.0
        and pre.price == 105.0
        and pre.pct == pytest.approx(5.0)
    )
    (post,) = report.postmarket
    assert post.ref_price == 110.0 and post.price == 99.0 and post.pct == pytest.approx(-10.0)
