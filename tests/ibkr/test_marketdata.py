"""IBKRMarketData against the simulator: scanner universe, history, quotes, pacing and resubscription."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from joe.brokers.base import HISTORY_COLUMNS, BrokerError, MarketData
from joe.brokers.ibkr import IBKRMarketData
from joe.brokers.ibkr.marketdata import SCANS, QuoteHandler, duration_for
from joe.brokers.ibkr.pacing import HistoricalPacer
from joe.data.calendars import calendar_for
from joe.simulators.common import SimClock
from joe.simulators.ibkr import IBKRSimulator
from joe.simulators.ibkr.market import bars_for_duration, make_bars, rank
from joe.simulators.ibkr.sessions import SessionCloses

from .helpers import wait_for


async def test_scanner_universe_with_300_daily_bars_each(sim: IBKRSimulator, make_market_data: Any) -> None:
    """What `joe run --once --broker ibkr` needs: ~20 scanner stocks, each with >= 300 daily bars."""
    md = await make_market_data(sim)
    assert isinstance(md, MarketData)
    universe = await md.universe()
    assert len(universe) == 20 and len({i.symbol for i in universe}) == 20
    assert all(i.broker_ids["ibkr"].isdigit() for i in universe)
    for inst in universe:
        df = await md.history(inst.symbol)
        assert list(df.columns) == list(HISTORY_COLUMNS) and len(df) >= 300
        assert str(df.index.tz) == "UTC" and df.index.is_monotonic_increasing
        assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
        assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
        assert df["close"].iloc[-1] == pytest.approx(float(sim.prices.quote(inst.symbol).mid), abs=0.01)
    scans = [m for m in sim.client_messages(22)]
    assert [m.fields[5] for m in scans] == ["MOST_ACTIVE", "TOP_PERC_GAIN", "TOP_PERC_LOSE", "HOT_BY_VOLUME"]


@pytest.mark.parametrize("scan", sorted(SCANS))
async def test_each_scan_code(sim178: IBKRSimulator, make_market_data: Any, scan: str) -> None:
    md = await make_market_data(sim178)
    got = [i.symbol for i in await md.universe(scan)]
    assert got == rank(sim178.seed, list(sim178.universe), SCANS[scan], 10)


async def test_history_window_and_intraday(
    sim178: IBKRSimulator, make_market_data: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 200, .*NOSUCH")
    md = await make_market_data(sim178)
    end = datetime.now(UTC)
    start = end - timedelta(days=30)
    df = await md.history("MSFT", "1d", start=start, end=end)
    assert 15 <= len(df) <= 23 and df.index[0] >= pd.Timestamp(start)
    hourly = await md.history("MSFT", "1h")
    assert len(hourly) > 100 and (hourly.index.to_series().diff().dropna() >= pd.Timedelta(hours=1)).all()
    with pytest.raises(ValueError, match="unsupported timeframe"):
        await md.history("MSFT", "7m")
    with pytest.raises(BrokerError):
        await md.history("NOSUCH")


async def test_pacing_violation_162_backs_off_and_retries(
    sim178: IBKRSimulator, make_market_data: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 162")
    # A retry is an identical request, so it also waits out the identical-request gap (shortened here).
    md = await make_market_data(sim178, pacing_backoff=0.05, pacer=HistoricalPacer(identical_gap=0.1))
    sim178.faults.arm("hist_pacing")
    df = await md.history("AAPL")
    assert len(df) >= 300
    assert len(sim178.client_messages(20)) == 2 and ("hist_pacing", {}) in sim178.faults.fired


async def test_identical_history_requests_are_paced(sim178: IBKRSimulator, make_market_data: Any) -> None:
    clock = [0.0]
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)
        clock[0] += d

    pacer = HistoricalPacer(clock=lambda: clock[0], sleep=fake_sleep)
    md = await make_market_data(sim178, pacer=pacer)
    await md.history("AAPL")
    await md.history("AAPL")
    assert slept == [
        pytest.approx(15.0, abs=0.01)
    ]  # the second identical request waited out IBKR's 15 s rule


async def test_streaming_quotes_and_resubscribe_after_1101(
    sim178: IBKRSimulator, make_market_data: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 1101", r"Error 200, .*NOSUCH")
    md: IBKRMarketData = await make_market_data(sim178)
    seen: list[Any] = []
    md.handler.listeners.append(seen.append)
    quotes = await md.quotes(["AAPL", "MSFT", "NOSUCH"])
    assert set(quotes) == {"AAPL", "MSFT"}  # unknown symbols are left out
    assert quotes["AAPL"].bid == sim178.prices.quote("AAPL").bid and quotes["AAPL"].ask > quotes["AAPL"].bid
    sim178.set_price("AAPL", 123.45)
    await wait_for(lambda: md.handler.latest["AAPL"].bid == sim178.prices.quote("AAPL").bid, what="stream")
    assert seen and seen[-1].symbol == "AAPL"
    n_subs = len(sim178.client_messages(1))
    sim178.inject_error(1101)  # restored, data lost: subscriptions must be renewed
    await wait_for(lambda: len(sim178.client_messages(1)) == n_subs + 2, what="resubscribe")
    assert await md.sentiment(["AAPL"]) == {}


def test_duration_for() -> None:
    now = datetime(2025, 1, 31, tzinfo=UTC)
    assert duration_for("1d", None, None) == "2 Y"
    assert duration_for("1d", now - timedelta(days=10), now) == "10 D"
    assert duration_for("1d", now - timedelta(days=800), now) == "3 Y"
    # an open end is measured to the caller's clock, not the machine's (which is years later here)
    assert duration_for("1d", now - timedelta(days=2, hours=1), None, now) == "3 D"


# 00:40 UTC on Wednesday 2 December 2026 (19:40 Tuesday in New York): the instant the suite once failed at.
WED_0040_UTC = datetime(2026, 12, 2, 0, 40, tzinfo=UTC)


async def test_a_short_history_request_gets_every_session_since_its_start(make_market_data: Any) -> None:
    """A request from Monday's bar at 00:40 UTC on Wednesday ("3 D") gets Monday's bar: the bar cache's
    second run re-fetches its last 3 bars this way, and lost the oldest of them when the simulator
    served 3 * 5 // 7 = 2 bars (tests/data/test_bar_cache.py failed after 00:00 UTC)."""
    sim = IBKRSimulator(server_version=178, seed=7, clock=SimClock.frozen(WED_0040_UTC))
    await sim.start()
    try:
        md = await make_market_data(sim, clock=sim.clock)
        monday = datetime(2026, 11, 30, tzinfo=UTC)
        got = await md.history("AAPL", "1d", monday)
        assert sim.client_messages(20)[-1].fields[17] == "3 D"  # the duration from the injected clock
        assert got.index[0] == pd.Timestamp(monday) and pd.Timestamp("2026-12-01", tz="UTC") in got.index
        await md.close()
    finally:
        await sim.stop()


@settings(max_examples=200, deadline=None)
@given(
    end=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    days=st.integers(min_value=1, max_value=40),
)
def test_simulated_daily_history_covers_every_session_of_the_window(end: datetime, days: int) -> None:
    """Whatever the hour and weekday: the daily bars the simulator serves for "<days> D" ending at `end`
    include every NYSE session dated inside the window (the client filters the bars before its start)."""
    n = bars_for_duration(days, "1 day", end)
    served = {b.date for b in make_bars(7, "AAPL", 100.0, "1 day", n, end)}
    window = calendar_for("XNYS").sessions((end - timedelta(days=days)).date(), end.date())
    assert {s.day.strftime("%Y%m%d") for s in window} <= served


@settings(max_examples=100, deadline=None)
@given(
    ends=st.lists(
        st.datetimes(
            min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
        ),
        min_size=2,
        max_size=2,
    ),
    counts=st.lists(st.integers(min_value=1, max_value=400), min_size=2, max_size=2),
    bar_size=st.sampled_from(["1 day", "1 hour", "5 mins"]),
)
def test_the_simulated_market_is_the_same_whatever_the_date_and_depth(
    ends: list[datetime], counts: list[int], bar_size: str
) -> None:
    """Before: a bar's open, high, low and volume were drawn oldest first, so the depth a request
    asked for (which follows the date: the sessions in "1 Y" differ day to day) moved every one of
    them, and the simulator served a different market on each day it ran (a test's stop-through
    looked like an outlier on one day and not the next). Now the newest bars are the same prices
    whatever the end date and the depth; only their dates differ."""
    a, b = (make_bars(7, "PYPL", 181.28, bar_size, n, end) for n, end in zip(counts, ends, strict=True))
    n = min(len(a), len(b))
    prices = [[(x.open, x.high, x.low, x.close, x.volume) for x in bars[-n:]] for bars in (a, b)]
    assert prices[0] == prices[1]
    assert a[-1].close == Decimal("181.28")


def test_quote_handler_skips_incomplete_tickers() -> None:
    from ib_async import Stock, Ticker

    h = QuoteHandler()
    t = Ticker(contract=Stock("AAPL", "SMART", "USD"))
    h.on_tickers([t])
    assert h.count == 0
    t.bid, t.ask, t.bidSize, t.askSize = 10.0, 10.02, 100.0, 200.0
    h.on_tickers([t])
    q = h.latest["AAPL"]
    assert (str(q.bid), str(q.ask), q.bid_size, q.last) == ("10", "10.02", 100, None)


async def test_daily_history_follows_the_nyse_calendar(sim178: IBKRSimulator, make_market_data: Any) -> None:
    md = await make_market_data(sim178)
    end = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    df = await md.history("AAPL", "1d", start=datetime(2026, 11, 21, tzinfo=UTC), end=end)
    days = [d.date().isoformat() for d in df.index]
    assert days[-4:] == ["2026-11-24", "2026-11-25", "2026-11-27", "2026-11-30"]  # no Thanksgiving bar
    assert all(d.weekday() < 5 for d in df.index)


@settings(max_examples=30, deadline=None)
@given(weeks=st.lists(st.integers(0, 60), min_size=2, max_size=2), moves=st.integers(1, 6))
def test_sessions_the_clock_moved_through_are_the_same_bars_whatever_the_start_date(
    weeks: list[int], moves: int
) -> None:
    """Before: a session the simulator's clock moved through drew its high, low and volume from its
    date, so a test's day-2 bar (the stop-through it posts) differed with the day the suite ran. Now
    they are keyed by the session's count from the first recorded one: starts any whole weeks apart
    (a Wednesday, no holiday in the days moved through), moved alike, serve the same newest bars."""
    served = []
    for w in weeks:
        start = datetime(2026, 1, 7, 15, tzinfo=UTC) + timedelta(weeks=w)  # a Wednesday
        span = (start + timedelta(days=moves)).date()
        weekdays = [d for d in pd.date_range(start.date(), span) if d.weekday() < 5]
        assume(len(calendar_for("XNYS").sessions(start.date(), span)) == len(weekdays))
        closes, now = SessionCloses(), start
        for i in range(moves):  # one day on at a time, each session closing at its own price
            later = now + timedelta(days=1)
            closes.leave(now, later, [("PYPL", 180.0 + i)])
            now = later
        bars = closes.daily_bars(7, "PYPL", 181.28, 60, now)
        assert bars is not None
        served.append([(b.open, b.high, b.low, b.close, b.volume) for b in bars])
    assert served[0] == served[1]
