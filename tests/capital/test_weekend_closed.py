"""Weekends in the Capital.com simulator (spec §5.1, §6.4, §9): by the simulator's own clock a weekday
market (everything but crypto) is CLOSED on Saturday and Sunday (UTC), the days its daily bars skip:
`marketStatus` CLOSED, its quote stands still and is not streamed, stops / limits / working orders do
not fire, and deals on it are refused with `Rejected. <EPIC> is currently closed. Timetable in place:
...`. Crypto trades 7 days. It reopens at Monday 00:00 UTC. Before, the simulator traded them all
weekend (quotes moved and streamed, stops filled, deals were accepted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capital.conftest import SCALE, make_client
from capital.truth_helpers import adapter, drain, entry
from joe.brokers.capital import CapitalStream
from joe.brokers.capital.endpoints import normalise_stream_url
from joe.brokers.capital.errors import MarketClosed
from joe.brokers.capital.markets import MarketsApi
from joe.brokers.capital.trading import TradingApi
from joe.core.events import NullAudit
from joe.core.models import Side
from joe.core.reports import OrderStatusReport, VenueOrderStatus
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.capital.catalog import CATALOG
from joe.simulators.capital.rules import ApiError
from joe.simulators.capital.views import market_details
from joe.simulators.common import SimClock

FRI_22 = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)  # Friday 22:00 UTC
SAT_START = datetime(2026, 12, 5, tzinfo=UTC)  # Saturday 00:00 UTC
SAT_NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SUN_LATE = datetime(2026, 12, 6, 23, 59, 30, tzinfo=UTC)
MON = datetime(2026, 12, 7, tzinfo=UTC)  # Monday 00:00 UTC: the weekday markets reopen
WEEKDAY = [s.epic for s in CATALOG if not s.weekends]
CRYPTO = [s.epic for s in CATALOG if s.weekends]
CLOSED_TEXT = "Rejected. GOLD is currently closed. Timetable in place: UTC; Mon-Fri 00:00-23:59"


def in_process(when: datetime, tick_s: float = 1.0) -> tuple[CapitalSimulator, SimClock]:
    """A simulator not serving (no pump): its markets move only when the test steps them."""
    clock = SimClock.frozen(when)
    return CapitalSimulator(seed=3, tick_s=tick_s, clock=clock), clock


def status(sim: CapitalSimulator, epic: str) -> str:
    """`marketStatus` as `GET /markets/{epic}` renders it (the summaries carry the same value)."""
    return str(market_details(sim.exchange, epic, sim.history)["snapshot"]["marketStatus"])


def quotes(sim: CapitalSimulator) -> dict[str, tuple[Decimal, Decimal]]:
    return {e: sim.exchange.quote(e) for e in sim.exchange.prices}


def weekend_instants() -> st.SearchStrategy[datetime]:
    """Any instant of a weekend (Saturday 00:00 to Monday 00:00 UTC) in 2020-2035."""
    first_saturday = datetime(2020, 1, 4, tzinfo=UTC)
    return st.builds(
        lambda week, s: first_saturday + timedelta(weeks=week, seconds=s),
        st.integers(0, 52 * 16),
        st.integers(0, 2 * 86400 - 1),
    )


def weekday_instants() -> st.SearchStrategy[datetime]:
    """Any instant of Monday 00:00 to Saturday 00:00 UTC in 2020-2035."""
    first_monday = datetime(2020, 1, 6, tzinfo=UTC)
    return st.builds(
        lambda week, s: first_monday + timedelta(weeks=week, seconds=s),
        st.integers(0, 52 * 16),
        st.integers(0, 5 * 86400 - 1),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weekend_instants())
def test_on_a_weekend_only_crypto_trades(when: datetime) -> None:
    sim, _ = in_process(when)
    assert {e: status(sim, e) for e in WEEKDAY} == dict.fromkeys(WEEKDAY, "CLOSED")
    assert {e: status(sim, e) for e in CRYPTO} == dict.fromkeys(CRYPTO, "TRADEABLE")
    before = quotes(sim)
    moved = {e for _ in range(5) for e in sim.step()}
    after = quotes(sim)
    assert moved == set(CRYPTO)
    assert {e: after[e] for e in WEEKDAY} == {e: before[e] for e in WEEKDAY}  # standing still
    assert all(after[e] != before[e] for e in CRYPTO)
    refused = sim.manual_trade("GOLD", "BUY", "1")
    assert (refused["dealStatus"], refused["reason"]) == ("REJECTED", "MARKET_CLOSED")
    assert refused["rejectReason"] == CLOSED_TEXT
    assert sim.manual_trade("BTCUSD", "BUY", "0.01")["dealStatus"] == "ACCEPTED"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weekday_instants())
def test_on_a_weekday_every_market_trades(when: datetime) -> None:
    sim, _ = in_process(when)
    assert {status(sim, e) for e in sim.exchange.prices} == {"TRADEABLE"}
    assert set(sim.step()) == set(sim.exchange.prices)
    assert sim.manual_trade("GOLD", "BUY", "1")["dealStatus"] == "ACCEPTED"


def test_friday_night_into_the_weekend_and_out_on_monday() -> None:
    """Friday 22:00 still trades; past Saturday 00:00 the quote freezes and a stop, a target and a
    working order it crosses stay put, a close is refused; Monday 00:00 reopens and they fire."""
    sim, clock = in_process(FRI_22)
    ex, acc = sim.exchange, sim.account()
    bid, _ = ex.quote("GOLD")
    tick = Decimal("0.01")
    stop = (bid * Decimal("0.99") / tick).to_integral_value() * tick
    ref = ex.open_position(acc, {"epic": "GOLD", "direction": "BUY", "size": 1, "stopLevel": float(stop)})
    assert ex.get_confirm(ref)["dealStatus"] == "ACCEPTED"
    [deal] = [p.deal_id for p in acc.positions]
    level = (bid * Decimal("0.995") / tick).to_integral_value() * tick  # a SELL STOP under the market
    order = {"epic": "GOLD", "direction": "SELL", "size": 1, "level": float(level), "type": "STOP"}
    ex.create_order(acc, order)
    clock.advance(3600)  # 23:00 Friday: the market moves
    assert "GOLD" in sim.catch_up() and status(sim, "GOLD") == "TRADEABLE"

    sim.move_clock(SAT_START + timedelta(seconds=1))
    assert status(sim, "GOLD") == "CLOSED"
    frozen = ex.quote("GOLD")
    clock.advance(600)
    assert "GOLD" not in sim.catch_up(max_steps=600) and ex.quote("GOLD") == frozen
    sim.set_mid("GOLD", float(stop) * 0.98)  # the test's hand pushes through both levels
    assert [p.deal_id for p in acc.positions] and [o.deal_id for o in acc.orders]  # nothing fired
    with pytest.raises(ApiError) as refused:
        ex.close_position(acc, acc.positions[0].deal_id)
    assert (refused.value.status, refused.value.code) == (400, CLOSED_TEXT)
    sim.move_clock(SUN_LATE)
    assert status(sim, "GOLD") == "CLOSED" and sim.step() == CRYPTO

    sim.move_clock(MON)
    assert status(sim, "GOLD") == "TRADEABLE"
    assert "GOLD" in sim.step()  # the first quote of the week fires both at the gap
    assert deal not in [p.deal_id for p in acc.positions] and acc.orders == []
    sources = [(a["source"], a["type"], a["status"]) for a in acc.activity]
    assert ("SYSTEM", "WORKING_ORDER", "EXECUTED") in sources and ("SL", "POSITION", "ACCEPTED") in sources
    [sl] = [a for a in acc.activity if a["source"] == "SL"]
    assert sl["details"]["level"] < float(stop)  # filled at Monday's first quote, through the stop


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> Any:
    """A serving simulator (pump on) whose frozen clock starts at `request.param`, and a client."""
    clock = SimClock.frozen(request.param)
    sim = CapitalSimulator(seed=7, limits=SimLimits().scaled(SCALE), tick_s=0.02, clock=clock)
    await sim.start()
    client = make_client(sim)
    await client.open()
    yield sim, clock, client
    await client.close()
    await sim.stop()
    assert sim.internal_errors == []


@pytest.mark.parametrize("served", [FRI_22], indirect=True)
async def test_the_broker_sees_the_market_close_for_the_weekend_and_reopen_on_monday(
    served: tuple[CapitalSimulator, SimClock, Any],
) -> None:
    """Joe's own client over 127.0.0.1 (the broker's answer as truth): a deal opened on Friday night
    cannot be closed on Saturday, entries and working orders are refused, crypto deals; Monday
    00:00 reopens."""
    sim, _, client = served
    markets, trading = MarketsApi(client), TradingApi(client)
    xc = adapter(client)
    acks = await xc.submit([entry("sig-friday", "GOLD", Side.BUY, "1")])
    assert acks[0].broker_order_id is not None
    [friday_deal] = [p.deal_id for p in sim.account().positions if p.epic == "GOLD"]
    drain(xc)

    sim.move_clock(SAT_NOON)
    assert (await markets.market("GOLD")).snapshot.marketStatus == "CLOSED"
    assert (await markets.market("BTCUSD")).snapshot.marketStatus == "TRADEABLE"
    summary = {m.epic: m.marketStatus for m in await markets.all_markets()}
    assert {summary[e] for e in WEEKDAY} == {"CLOSED"} and {summary[e] for e in CRYPTO} == {"TRADEABLE"}
    [row] = [r for r in await trading.positions() if r.position.dealId == friday_deal]
    assert row.market.marketStatus == "CLOSED"
    with pytest.raises(MarketClosed) as refused:
        await trading.close_position(friday_deal)
    assert refused.value.code == CLOSED_TEXT.split(":")[0]  # the client splits at the first ':'
    acks = await xc.submit([entry("sig-weekend", "GOLD", Side.BUY, "1")])
    assert acks[0].broker_order_id is None
    [rep] = [o for o in drain(xc) if isinstance(o, OrderStatusReport)]
    assert rep.status is VenueOrderStatus.REJECTED and "currently closed" in rep.reason
    ref = await trading.create_working_order(
        {"epic": "GOLD", "direction": "BUY", "size": 1, "level": 1.0, "type": "LIMIT"}
    )
    confirm = await trading.wait_confirm(ref, timeout_s=2.0, interval_s=0.02)
    assert confirm is not None and confirm.dealStatus == "REJECTED" and confirm.reason == "MARKET_CLOSED"
    assert sim.account().orders == [] and [p.deal_id for p in sim.account().positions] == [friday_deal]
    ref = await trading.open_position({"epic": "BTCUSD", "direction": "BUY", "size": 0.01})
    crypto = await trading.wait_confirm(ref, timeout_s=2.0, interval_s=0.02)
    assert crypto is not None and crypto.dealStatus == "ACCEPTED"

    sim.move_clock(MON)
    assert (await markets.market("GOLD")).snapshot.marketStatus == "TRADEABLE"
    closed = await trading.wait_confirm(await trading.close_position(friday_deal), timeout_s=2.0)
    assert closed is not None and closed.dealStatus == "ACCEPTED"
    acks = await xc.submit([entry("sig-monday", "GOLD", Side.BUY, "1")])
    assert acks[0].broker_order_id is not None


@pytest.mark.parametrize("served", [SAT_NOON], indirect=True)
async def test_a_closed_market_streams_no_quotes(served: tuple[CapitalSimulator, SimClock, Any]) -> None:
    sim, clock, client = served
    stream = CapitalStream(client, normalise_stream_url(client.session.streaming_host), audit=NullAudit())
    await stream.subscribe(["GOLD", "BTCUSD"])
    await stream.start()
    try:
        await wait_for(lambda: bool(sim.stream.conns) and bool(sim.stream.conns[0].epics))
        for _ in range(20):
            clock.advance(0.1)
            await asyncio.sleep(0.03)
        await wait_for(lambda: stream.stats.quotes >= 5)
        assert set(stream.latest) == {"BTCUSD"}
    finally:
        await stream.stop()


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)
