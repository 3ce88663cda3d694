"""The simulator itself: determinism, control endpoints, netting/hedging, market status, limits,
the `open_capital` factory against it, and the blocking `run_capital_sim` entry."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon_proc import announced
from joe.brokers.capital import RateLimited, open_capital
from joe.core.events import NullAudit
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.capital.rules import ApiError
from joe.simulators.common import SimClock
from market_clock import sim_clock

ACC = "12345678901234567"


async def test_same_seed_same_world() -> None:
    # One instant for both: a forming bar's volume grows with the clock (`SeededPath.volume`).
    t0 = datetime(2026, 12, 1, 0, 7, 30, tzinfo=UTC)
    a = CapitalSimulator(seed=42, clock=SimClock.frozen(t0))
    b = CapitalSimulator(seed=42, clock=SimClock.frozen(t0))
    for _ in range(50):
        a.step()
        b.step()
    assert {e: a.exchange.quote(e) for e in a.exchange.prices} == {
        e: b.exchange.quote(e) for e in b.exchange.prices
    }
    assert a.history.bars("US500", "DAY")[-5:] == b.history.bars("US500", "DAY")[-5:]
    c = CapitalSimulator(seed=43, clock=sim_clock())
    c.step()
    a2 = CapitalSimulator(seed=42, clock=sim_clock())
    a2.step()
    assert c.exchange.quote("US500") != a2.exchange.quote("US500")


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)  # no price step between setting and reading
async def test_control_endpoints(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=sim.url) as h:
        armed = (
            await h.post(
                "/_sim/faults",
                json={"name": "http_5xx", "count": 1, "params": {"path": "/accounts", "status": 502}},
            )
        ).json()
        assert armed["armed"]["http_5xx"]["remaining"] == 1
        headers = {"X-CAP-API-KEY": sim.login.api_key, **client.session.headers()}
        assert (await h.get("/api/v1/accounts", headers=headers)).status_code == 502
        assert (await h.get("/api/v1/accounts", headers=headers)).status_code == 200
        await h.post("/_sim/status", json={"epic": "GOLD", "status": "CLOSED"})
        assert sim.exchange.status["GOLD"] == "CLOSED"
        sim.paused = True  # no price step between the scripted price and the assertion
        await h.post("/_sim/price", json={"epic": "SILVER", "mid": 30.0})
        assert sim.exchange.prices["SILVER"].quote.mid == pytest.approx(Decimal(30), abs=Decimal("0.01"))
        rows = (await h.get("/_sim/requests")).json()["requests"]
        assert [r["status"] for r in rows if r["path"] == "/accounts"][-2:] == [502, 200]
        await h.delete("/_sim/faults")
        assert sim.faults.snapshot() == {}


async def test_closed_market_rejects_in_confirm_and_does_not_move(sim: CapitalSimulator) -> None:
    ex = sim.exchange
    acc = ex.accounts[ACC]
    ex.status["AAPL"] = "CLOSED"
    before = sim.exchange.quote("AAPL")
    sim.step()
    assert sim.exchange.quote("AAPL") == before
    ref = ex.open_position(acc, {"epic": "AAPL", "direction": "BUY", "size": 1})
    c = ex.get_confirm(ref)
    assert c["dealStatus"] == "REJECTED" and "currently closed" in c["rejectReason"]
    assert acc.positions == []


async def test_hedging_mode_keeps_opposite_positions(sim: CapitalSimulator) -> None:
    ex = sim.exchange
    acc = ex.accounts[ACC]
    acc.hedging = True
    ex.open_position(acc, {"epic": "GOLD", "direction": "BUY", "size": 1})
    ex.open_position(acc, {"epic": "GOLD", "direction": "SELL", "size": 1})
    assert sorted(p.direction for p in acc.positions) == ["BUY", "SELL"]
    acc.hedging = False
    ref = ex.open_position(acc, {"epic": "GOLD", "direction": "SELL", "size": 1})
    assert [d["status"] for d in ex.get_confirm(ref)["affectedDeals"]] == ["FULLY_CLOSED"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {
                "epic": "GOLD",
                "direction": "BUY",
                "size": 1,
                "guaranteedStop": True,
                "trailingStop": True,
                "stopDistance": 10,
            },
            "error.invalid.request.guaranteedstop.trailingstop",
        ),
        (
            {"epic": "GOLD", "direction": "BUY", "size": 1, "trailingStop": True},
            "error.invalid.trailingstop.stopdistance",
        ),
        (
            {"epic": "GOLD", "direction": "BUY", "size": 1, "guaranteedStop": True},
            "error.invalid.guaranteedstop.stop",
        ),
        ({"epic": "GOLD", "direction": "UP", "size": 1}, "error.invalid.direction"),
        ({"epic": "GOLD", "direction": "BUY", "size": "1"}, "error.invalid.size"),
        ({"epic": "AAPL", "direction": "BUY", "size": 1.5}, "error.invalid.size"),
        ({"epic": "GOLD", "direction": "BUY", "size": 0.001}, "error.invalid.size.minvalue"),
        (
            {"epic": "GOLD", "direction": "SELL", "size": 1, "profitLevel": 5000},
            "error.invalid.takeprofit.maxvalue",
        ),
    ],
)
async def test_order_validation(sim: CapitalSimulator, body: dict, code: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ApiError) as info:
        sim.exchange.open_position(sim.exchange.accounts[ACC], body)
    assert info.value.code.split(":")[0] == code


async def test_demo_hourly_order_cap_on_the_server() -> None:
    async with CapitalSimulator(seed=1, limits=SimLimits(demo_orders_per_hour=2), clock=sim_clock()) as sim:
        client, _md, _ex = await open_capital(
            sim.login.api_key,
            sim.login.identifier,
            sim.login.password,
            demo=True,
            mode="live",
            audit=NullAudit(),
            api_url=sim.url,
            limits=None,
        )
        try:
            assert client.stream_url == sim.stream_url
            for _ in range(2):
                await client.request(
                    "POST", "/positions", json_body={"epic": "GOLD", "direction": "BUY", "size": 1}
                )
            client.rate_retries = 0
            with pytest.raises(RateLimited):
                await client.request(
                    "POST", "/positions", json_body={"epic": "GOLD", "direction": "BUY", "size": 1}
                )
        finally:
            await client.close()


def test_run_capital_sim_entry_point() -> None:
    """`run_capital_sim(0)`: the OS picks the port, the banner names it, and it serves once printed."""
    code = "from joe.simulators.capital import run_capital_sim; run_capital_sim(0)"
    with announced(
        [sys.executable, "-c", code], r"Capital\.com simulator on (http://127\.0\.0\.1:\d+) "
    ) as sim:
        r = httpx.get(f"{sim.match.group(1)}/api/v1/time", timeout=30)
        assert r.status_code == 200 and r.json()["serverTime"] > 0


async def test_sim_closes_idle_websockets() -> None:
    import websockets

    async with (
        CapitalSimulator(seed=1, tick_s=0.02, ws_idle_s=0.2, clock=sim_clock()) as sim,
        websockets.connect(sim.stream_url) as ws,
    ):
        await ws.send('{"destination": "ping", "cst": "x", "securityToken": "y"}')
        await ws.recv()
        sim.stream.conns[0].epics.add("GOLD")  # subscribed but never pings
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(_drain(ws), 3)


async def _drain(ws) -> None:  # type: ignore[no-untyped-def]
    while True:
        await ws.recv()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(min_value=1, max_value=5)), max_size=15)
)
def test_netting_accounting_property(trades: list[tuple[str, int]]) -> None:
    """On a netting account the open rows always sum to the signed sum of all trades, every row
    points one way, and cash changes by exactly the realised P/L of what was netted."""
    sim = CapitalSimulator(seed=9, clock=sim_clock())
    ex = sim.exchange
    acc = ex.accounts[ACC]
    net = 0
    for direction, size in trades:
        ex.open_position(acc, {"epic": "GOLD", "direction": direction, "size": size})
        net += size if direction == "BUY" else -size
        sim.step()
    signed = sum(p.size if p.direction == "BUY" else -p.size for p in acc.positions)
    assert signed == net
    assert len({p.direction for p in acc.positions}) <= 1
    realised = sum(Decimal(t["size"]) for t in acc.transactions)
    assert acc.balance - 100_000 == realised
