"""Rate limits under load: a burst of 200 orders stays inside the order spacing and the overall
request limit, so no 429 reaches Joe (the simulator enforces the same limits, scaled 10x faster);
a small burst also runs against the real, unscaled limits."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

from joe.brokers.capital import CapitalExecutor
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, Side
from joe.simulators.capital import CapitalSimulator, SimLimits
from market_clock import sim_clock

from .conftest import SCALE, make_client


def _intent(i: int) -> OrderIntent:
    return OrderIntent(
        f"b{i}",
        f"s{i}",
        OrderLeg.ENTRY,
        "EURUSD",
        Side.BUY if i % 2 else Side.SELL,
        Decimal(100 * (1 + i % 3)),
    )


def _arrivals(sim: CapitalSimulator) -> list[float]:
    return [r.ts for r in sim.requests if r.method == "POST" and r.path == "/positions"]


async def test_burst_of_200_orders_without_a_429(sim: CapitalSimulator) -> None:
    sim.exchange.accounts["12345678901234567"].hedging = True  # every order opens its own deal
    # No arrival tolerance: the limiter counts a request until it is answered, so even an event-loop
    # stall on a loaded CI machine (10x larger relative to these scaled limits) cannot bunch arrivals.
    client = make_client(sim)
    await client.open()
    ex = CapitalExecutor(client, audit=NullAudit(), confirm_interval_s=0.01)
    results = await asyncio.gather(*(ex.place(_intent(i)) for i in range(200)))
    assert all(r.accepted for r in results)
    assert len({r.broker_position_id for r in results}) == 200
    assert len(await ex.positions()) == 200
    refused = [(r.method, r.path, round(r.ts, 4)) for r in sim.requests if r.status == 429]
    window = [
        (r.method, r.path, round(r.ts, 4))
        for r in sim.requests
        if refused and abs(r.ts - refused[0][2]) < 0.2
    ]
    assert refused == [], f"429s: {refused}; requests around the first: {window}"
    arrivals = _arrivals(sim)
    assert len(arrivals) == 200
    spacing = SimLimits().scaled(SCALE).order_spacing_s
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= spacing
    await client.close()


async def test_real_time_order_spacing_small_burst() -> None:
    async with CapitalSimulator(seed=3, tick_s=0.05, clock=sim_clock()) as sim:
        client = make_client(sim, scale=1.0)
        await client.open()
        ex = CapitalExecutor(client, audit=NullAudit(), confirm_interval_s=0.02)
        results = await asyncio.gather(*(ex.place(_intent(i)) for i in range(8)))
        assert all(r.accepted for r in results)
        assert sim.count("", status=429) == 0
        arrivals = _arrivals(sim)
        assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.1
        await client.close()


async def test_server_429_is_absorbed_with_backoff(sim: CapitalSimulator, client) -> None:  # type: ignore[no-untyped-def]
    sim.faults.arm("http_429", 3, path="/positions", method="POST")
    ex = CapitalExecutor(client, audit=NullAudit(), confirm_interval_s=0.01)
    res = await ex.place(_intent(1))
    assert res.accepted
    assert sim.count("/positions", method="POST") == 4  # 3 refused without processing, then accepted
    assert len(await ex.positions()) == 1
