"""SampleSource: the MarketData protocol over shipped + synthetic data, and no look-ahead past as_of."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.brokers.base import HISTORY_COLUMNS, MarketData
from joe.core.models import AssetClass
from joe.data import DataError
from joe.data.sample import SampleSource

SYMS = ["SPX", "VIX", "AAPL", "MTUM", "GOOG", "MSFT@pmdarima", "WTI", "SYN-TEC001", "SYN-CR001", "SYN-FX001"]


@pytest.fixture(scope="module")
def src() -> SampleSource:
    return SampleSource(n_synthetic=60, seed=7)


def test_implements_the_protocol(src: SampleSource) -> None:
    assert isinstance(src, MarketData)
    assert src.name == "sample"
    assert src.as_of == src.last_date == date(2018, 12, 31)


async def test_history_frame_format(src: SampleSource) -> None:
    for sym in SYMS:
        f = await src.history(sym)
        assert list(f.columns) == list(HISTORY_COLUMNS), sym
        assert isinstance(f.index, pd.DatetimeIndex) and str(f.index.tz) == "UTC" and f.index.name == "ts"
        assert all(str(t) == "float64" for t in f.dtypes), sym
        assert f.index.is_monotonic_increasing and not f.empty


async def test_aliases_and_unknown_symbol(src: SampleSource) -> None:
    spy, spx = await src.history("SPY"), await src.history("SPX")
    pd.testing.assert_frame_equal(spy, spx)
    with pytest.raises(DataError, match="unknown symbol 'NOPE'"):
        await src.history("NOPE")


@settings(max_examples=40, deadline=None)
@given(
    as_of=st.dates(min_value=date(1999, 1, 4), max_value=date(2018, 12, 31)),
    sym=st.sampled_from(SYMS),
    end_shift=st.integers(-400, 400),
    timeframe=st.sampled_from(["1d", "1w", "1mo"]),
)
def test_history_never_contains_rows_after_as_of(
    as_of: date, sym: str, end_shift: int, timeframe: str
) -> None:
    src = SampleSource(n_synthetic=60, seed=7, as_of=as_of)
    end = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) + timedelta(days=end_shift)
    for e in (None, end):
        f = asyncio.run(src.history(sym, timeframe, end=e))
        if not f.empty:
            assert f.index[-1].date() <= as_of
    # The bulk accessors obey the same rule.
    panel = src.panel("close")
    assert panel.empty or panel.index[-1].date() <= as_of
    for f in src.frames().values():
        assert f.index[-1].date() <= as_of
    for q in asyncio.run(src.quotes(SYMS)).values():
        assert q.ts.date() <= as_of


async def test_daily_history_at_as_of_ends_on_as_of_when_it_traded() -> None:
    src = SampleSource(n_synthetic=60, as_of=date(2016, 6, 24))
    f = await src.history("SPX")
    assert f.index[-1] == pd.Timestamp("2016-06-24", tz="UTC")
    assert f["close"].iloc[-1] == pytest.approx(2037.41, abs=0.01)  # the Brexit-vote close


async def test_start_end_and_weekly_resample(src: SampleSource) -> None:
    start, end = datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 3, 31, tzinfo=UTC)
    d = await src.history("SPX", "1d", start, end)
    assert d.index[0] >= pd.Timestamp(start) and d.index[-1] <= pd.Timestamp(end)
    w = await src.history("SPX", "1w", start, end)
    assert (w.index.day_of_week == 0).all()  # weeks are stamped at their Monday open
    first_week = d.loc[w.index[0] : w.index[0] + pd.Timedelta(days=6)]
    assert w["open"].iloc[0] == first_week["open"].iloc[0]
    assert w["high"].iloc[0] == first_week["high"].max() and w["low"].iloc[0] == first_week["low"].min()
    assert w["close"].iloc[0] == first_week["close"].iloc[-1]
    assert w["volume"].iloc[0] == pytest.approx(first_week["volume"].sum())
    m = await src.history("AAPL", "1mo")
    assert m["volume"].isna().all()  # unknown volume stays unknown after resampling


@pytest.mark.parametrize("tf", ["1h", "15m", "4h"])
async def test_finer_timeframes_are_a_clear_error(src: SampleSource, tf: str) -> None:
    with pytest.raises(DataError, match="1d bars only"):
        await src.history("SPX", tf)


async def test_bad_timeframe_string(src: SampleSource) -> None:
    with pytest.raises(DataError, match="unknown timeframe"):
        await src.history("SPX", "fortnightly")


async def test_universe_scans(src: SampleSource) -> None:
    live = await src.universe()
    syms = {i.symbol for i in live}
    assert {"SPX", "VIX", "AAPL", "MTUM", "SYN-TEC001"} <= syms
    assert "GOOG" not in syms and "MSFT@pmdarima" not in syms  # their data ended before 2018-12-31
    assert {"GOOG", "MSFT@pmdarima"} <= {i.symbol for i in await src.universe("all")}
    assert all(i.synthetic for i in await src.universe("synthetic"))
    assert not any(i.synthetic for i in await src.universe("real"))
    assert {i.asset_class for i in await src.universe("crypto")} == {AssetClass.CRYPTO}
    assert [i.symbol for i in await src.universe("factors")] == ["MTUM", "QUAL", "SIZE", "USMV", "VLUE"]
    assert len(await src.universe("sp500-20")) == 20
    with pytest.raises(DataError, match=r"unknown scan 'bogus'.*sp500-20"):
        await src.universe("bogus")


async def test_universe_depends_on_as_of() -> None:
    early = {i.symbol for i in await SampleSource(n_synthetic=60, as_of=date(2010, 6, 30)).universe()}
    assert "GOOG" in early and "VIX" not in early and "MTUM" not in early
    assert not any(s.startswith("SYN-") for s in early)  # the synthetic history starts in 2011


async def test_quotes_around_the_last_close(src: SampleSource) -> None:
    q = await src.quotes(["SPX", "SYN-FX001", "SYN-CR001", "NOPE"])
    assert set(q) == {"SPX", "SYN-FX001", "SYN-CR001"}
    spx = q["SPX"]
    assert isinstance(spx.bid, Decimal) and spx.bid < spx.ask
    assert spx.last == Decimal("2506.85")
    assert spx.bid <= spx.last <= spx.ask and spx.spread / spx.mid < Decimal("0.001")
    assert spx.ts == datetime(2018, 12, 31, 21, 0, tzinfo=UTC)
    fx = q["SYN-FX001"]
    assert fx.bid.as_tuple().exponent == -5 and fx.bid < fx.ask


async def test_sentiment_only_for_synthetic(src: SampleSource) -> None:
    s = await src.sentiment(["SPX", "AAPL", "SYN-TEC001", "SYN-CR002", "NOPE"])
    assert set(s) == {"SYN-TEC001", "SYN-CR002"}
    for v in s.values():
        assert 5 <= v.long_pct <= 95 and v.long_pct + v.short_pct == pytest.approx(100)
    assert s == await SampleSource(n_synthetic=60).sentiment(["SYN-TEC001", "SYN-CR002"])


def test_panel_and_frames_agree(src: SampleSource) -> None:
    panel = src.panel("close")
    frames = src.frames()
    assert set(panel.columns) == set(frames)
    for sym in ("SPX", "SYN-TEC001", "AAPL"):
        np.testing.assert_allclose(panel[sym].dropna().to_numpy(), frames[sym]["close"].to_numpy())
    sub = src.panel("volume", ["SPX", "SYN-ETF001"])
    assert list(sub.columns) == ["SPX", "SYN-ETF001"]
    with pytest.raises(DataError, match="unknown field"):
        src.panel("vwap")


def test_describe_says_what_is_real_and_what_is_synthetic(src: SampleSource) -> None:
    text = src.describe()
    assert "as of 2018-12-31" in text and "real series" in text and "60 SYNTHETIC" in text
    assert "not market data" in text
    assert "arch" in text and "skfolio" in text
    only_real = SampleSource(include_synthetic=False)
    assert "No synthetic" in only_real.describe()
    assert not any(i.synthetic for i in asyncio.run(only_real.universe("all")))


def test_fields_of(src: SampleSource) -> None:
    assert src.fields_of("SPX") == "ohlcv"
    assert src.fields_of("AAPL") == "close"
    assert src.fields_of("SYN-TEC001") == "synthetic"


def test_as_of_outside_the_data_is_refused() -> None:
    with pytest.raises(DataError, match="before the sample data starts"):
        SampleSource(as_of=date(1990, 1, 1))
    with pytest.raises(
        DataError, match=r"after the sample data ends; choose a date between 1999-01-04 and 2018-12-31"
    ):
        SampleSource(as_of=date(2020, 1, 1))


async def test_callers_cannot_corrupt_the_cache(src: SampleSource) -> None:
    f = await src.history("SPX")
    f["rsi"] = 1.0
    f.loc[f.index[-1], "close"] = -1.0
    frames = src.frames(["SPX"])
    frames["SPX"]["close"] = 0.0
    panel = src.panel("close")
    panel["SPX"] = 0.0
    again = await src.history("SPX")
    assert "rsi" not in again.columns and again["close"].iloc[-1] == pytest.approx(2506.85)
    assert src.panel("close")["SPX"].iloc[-1] == pytest.approx(2506.85)
