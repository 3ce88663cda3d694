"""The IBKR simulator's clock moves forward over its control port (`POST /_sim/clock`), never back, and
its daily history continues into the new session: the bars a client saw stay, the session left closes
at the price it had, the new session is a new bar (exchange-calendars: Friday → Monday), and a working
stop keeps working across the move. Read through the same `IBKRMarketData` a run uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from joe.simulators.common import SimClock
from joe.simulators.ibkr import IBKRSimulator
from joe.simulators.ibkr.control import ControlServer

from .helpers import bracket_intents, wait_for

FRIDAY = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # NYSE open (11:00 New York)
MONDAY_OPEN = "2026-12-07T15:00:00+00:00"


@pytest.fixture
async def sim_ctl() -> AsyncIterator[tuple[IBKRSimulator, str]]:
    s = IBKRSimulator(server_version=178, seed=7, clock=SimClock.frozen(FRIDAY))
    await s.start()
    ctl = ControlServer(s)
    port = await ctl.start(0)
    try:
        yield s, f"http://127.0.0.1:{port}/_sim/clock"
    finally:
        await ctl.stop()
        await s.stop()


async def _call(method: str, url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.request(method, url, json=body) as r:
        return r.status, await r.json()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"to": "2026-12-04T15:59:59Z"}, "never goes back"),
        ({"advance_s": -1}, "must be >= 0"),
        ({"advance_s": "soon"}, "number of seconds"),
        ({"to": "2026-12-07T15:00:00"}, "needs a UTC offset"),
        ({"to": "monday"}, "ISO 8601"),
        ({}, "exactly one"),
        ({"to": MONDAY_OPEN, "advance_s": 1}, "exactly one"),
    ],
)
async def test_a_bad_or_backward_move_is_refused_and_changes_nothing(
    sim_ctl: tuple[IBKRSimulator, str], body: dict[str, Any], why: str
) -> None:
    sim, url = sim_ctl
    status, answer = await _call("POST", url, body)
    assert status == 400 and why in answer["error"], answer
    assert sim.clock() == FRIDAY and (await _call("GET", url))[1]["now"] == FRIDAY.isoformat()


async def test_advance_by_seconds(sim_ctl: tuple[IBKRSimulator, str]) -> None:
    sim, url = sim_ctl
    status, answer = await _call("POST", url, {"advance_s": 90})
    assert status == 200 and answer["now"] == "2026-12-04T16:01:30+00:00" == sim.clock().isoformat()


async def test_history_continues_into_the_next_session_and_stops_keep_working(
    sim_ctl: tuple[IBKRSimulator, str], make_market_data: Any, make_client: Any
) -> None:
    sim, url = sim_ctl
    sim.set_price("AAPL", 100)
    before = await (await make_market_data(sim, client_id=21)).history("AAPL")
    assert before.index[-1].date().isoformat() == "2026-12-04"
    # A bracket on Friday: the entry fills, its stop (95) and target (110) rest at the broker.
    client = await make_client(sim)
    await client.submit(bracket_intents("wk", 10, limit=None))
    await wait_for(lambda: sim.book.positions.get("AAPL") is not None, what="the entry filled")

    status, answer = await _call("POST", url, {"to": MONDAY_OPEN})
    assert status == 200 and answer["now"] == MONDAY_OPEN == sim.clock().isoformat()
    stops = [o for o in sim.book.orders.values() if o.placed.order_type == "STP"]
    assert [o.status for o in stops] == ["Submitted"]  # the stop kept working over the weekend
    sim.set_price("AAPL", 101)  # Monday trades 1 % higher
    after = await (await make_market_data(sim, client_id=22)).history("AAPL")
    days = [d.date().isoformat() for d in after.index[-3:]]
    assert days == ["2026-12-03", "2026-12-04", "2026-12-07"]  # no weekend bar
    assert after["close"].iloc[-2] == pytest.approx(100, abs=0.01)  # Friday closed where it was left
    monday = after.iloc[-1]
    assert monday["open"] == pytest.approx(100, abs=0.01) and monday["close"] == pytest.approx(101, abs=0.01)
    common = before.index.intersection(after.index)  # the bars before the move are unchanged
    assert len(common) >= 250 and (before.loc[common, "close"] == after.loc[common, "close"]).all()
    # Monday gaps through the stop: it fills at Monday's time, once.
    sim.set_price("AAPL", 90)
    await wait_for(lambda: stops[0].status == "Filled", what="the stop filled")
    assert sim.book.positions["AAPL"].qty == 0
    assert sim.book.executions[-1].wire.time.startswith("20261207 15:00")
