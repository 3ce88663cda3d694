"""Capital.com order path through `CapitalExecutionClient` against the local simulator.
Run: `python bench/capital_truth_bench.py [--orders N]`.

Prints p50 / p99 of place → ack → fill observed (the bracket's entry fill on `observations()`), the
orders per second of a sequential run, and the REST requests one order costs, with the simulator's
rate limits scaled 100x (the client stack's own latency, not the broker's 0.1 s order spacing).
If `joe.execution.order_manager` is present, the same through the `OrderManager` (store
write-ahead included) is printed too, by `bench/` scripts of the OrderManager's owners.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from decimal import Decimal

from _machine import machine

from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core import ids
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.reports import FillReport
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.common import SimClock


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _bracket(n: int, mid: Decimal) -> list[OrderIntent]:
    sig = f"bench:{n}"
    stop, target = (
        (mid * Decimal("0.98")).quantize(Decimal("0.01")),
        (mid * Decimal("1.02")).quantize(Decimal("0.01")),
    )
    mk = ids.client_order_id
    return [
        OrderIntent(mk(sig, "entry"), sig, OrderLeg.ENTRY, "GOLD", Side.BUY, Decimal(1)),
        OrderIntent(mk(sig, "stop"), sig, OrderLeg.STOP_LOSS, "GOLD", Side.SELL, Decimal(1),
                    order_type=OrderType.STOP, stop_price=stop, reduce_only=True),
        OrderIntent(mk(sig, "target"), sig, OrderLeg.TAKE_PROFIT, "GOLD", Side.SELL, Decimal(1),
                    order_type=OrderType.LIMIT, limit_price=target, reduce_only=True),
    ]  # fmt: skip


async def adapter_round_trips(n: int, scale: float) -> tuple[list[float], float, float]:
    """(latencies s, orders/s, requests per order) for `n` sequential bracket entries."""
    async with CapitalSimulator(
        seed=11, limits=SimLimits().scaled(scale), tick_s=0.2, clock=SimClock.frozen()
    ) as sim:
        sim.set_hedging(True)
        creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password)
        client = CapitalClient(sim.url, creds, audit=NullAudit(), limits=Limits().scaled(scale))
        await client.open()
        xc = CapitalExecutionClient(client, audit=NullAudit(), confirm_interval_s=0.005, fill_wait_s=1.0)
        bid, ask = sim.exchange.quote("GOLD")
        mid = (bid + ask) / 2
        await xc.instrument_rules("GOLD")  # cached after the first order; not part of the figure
        before = len(sim.requests)
        times: list[float] = []
        t_all = time.perf_counter()
        for i in range(n):
            group = _bracket(i, mid)
            t0 = time.perf_counter()
            await xc.submit(group)
            while True:  # the entry's fill on the observation stream
                obs = await xc._queue.get()
                if isinstance(obs, FillReport) and obs.fill.client_order_id == group[0].client_order_id:
                    break
            times.append(time.perf_counter() - t0)
        rate = n / (time.perf_counter() - t_all)
        per_order = (len(sim.requests) - before) / n
        await client.close()
        return times, rate, per_order


async def main(orders: int) -> None:
    print(f"machine: {machine()}")
    times, rate, per = await adapter_round_trips(orders, 100.0)
    print(
        f"adapter place→ack→fill (bracket, {orders} sequential, limits x100): "
        f"p50 {statistics.median(times) * 1000:.1f} ms, p99 {_pct(times, 99) * 1000:.1f} ms, "
        f"{rate:.1f} orders/s, {per:.1f} REST requests per order"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=100)
    asyncio.run(main(ap.parse_args().orders))
