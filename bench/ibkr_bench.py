"""Benchmark the IBKR broker against the local TWS simulator (loopback, one event loop).

Usage: python bench/ibkr_bench.py [--connects 20] [--orders 200] [--symbols 20] [--steps 500]

Prints:
- connect + start-up sync time (raw ib_async, and IBKRExecutionClient including Joe's re-sync), p50/p99;
- submit → filled round trip through IBKRExecutionClient (a market order, and a market bracket of
  three legs), measured from `submit()` until the broker's FILLED status report comes out of
  `observations()`, p50/p99 — paced at 10 orders/s, and back to back ("burst", where ib_async's 45
  requests/s throttle, which keeps Joe under IBKR's 50 messages/s limit, dominates the tail);
- quotes/s through Joe's quote handler (simulator ticks → ib_async → `QuoteHandler` → Quote).
Client and simulator share one process and loop, so the figures include both sides' work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

from ib_async import IB

from joe.brokers.ibkr import IBKRExecutionClient
from joe.brokers.ibkr.connection import IBKRConnection
from joe.brokers.ibkr.marketdata import IBKRMarketData
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.reports import OrderStatusReport, VenueOrderStatus
from joe.simulators.ibkr import IBKRSimulator

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def show(name: str, xs: list[float]) -> None:
    ms = [x * 1000 for x in xs]
    print(
        f"{name:<44} n={len(ms):<5} p50={pct(ms, 50):7.2f} ms  p99={pct(ms, 99):7.2f} ms  "
        f"mean={statistics.fmean(ms):7.2f} ms"
    )


async def bench_connect(sim: IBKRSimulator, n: int) -> None:
    raw, joe = [], []
    for i in range(n):
        ib = IB()
        t0 = time.perf_counter()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=100 + i, timeout=5, raiseSyncErrors=True)
        raw.append(time.perf_counter() - t0)
        ib.disconnect()
    for i in range(n):
        ex = IBKRExecutionClient("127.0.0.1", sim.port, 200 + i, "", "paper", NullAudit())
        t0 = time.perf_counter()
        await ex.connect()
        joe.append(time.perf_counter() - t0)
        await ex.close()
    show(f"connect + sync, raw ib_async (sv {sim.server_version})", raw)
    show(f"connect + sync + Joe re-sync (sv {sim.server_version})", joe)


def legs(sig: str, bracket: bool) -> list[OrderIntent]:
    """A market BUY 10 AAPL, alone or with a stop and a target (the parent fills at once)."""
    entry = OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, "AAPL", Side.BUY, Decimal(10))
    if not bracket:
        return [entry]
    stop = OrderIntent(client_order_id(sig, "stop"), sig, OrderLeg.STOP_LOSS, "AAPL", Side.SELL, Decimal(10),
                       order_type=OrderType.STOP, stop_price=Decimal(1), reduce_only=True)  # fmt: skip
    target = OrderIntent(client_order_id(sig, "target"), sig, OrderLeg.TAKE_PROFIT, "AAPL", Side.SELL,
                         Decimal(10), order_type=OrderType.LIMIT, limit_price=Decimal(9999),
                         reduce_only=True)  # fmt: skip
    return [entry, stop, target]


async def bench_orders(sim: IBKRSimulator, n: int, rate: float) -> None:
    """Round trips; paced at `rate` orders/s (0 = back to back, which hits the 45 msg/s throttle)."""
    ex = IBKRExecutionClient("127.0.0.1", sim.port, 300, "", "paper", NullAudit())
    await ex.connect()
    stream = ex.observations()
    sim.set_price("AAPL", 100)
    for label, bracket in (("market order", False), ("market bracket (3 legs)", True)):
        times = []
        for i in range(n):
            group = legs(f"bench-{label}-{rate}-{i}", bracket)
            coid = group[0].client_order_id
            t0 = time.perf_counter()
            await ex.submit(group)
            while True:
                obs = await stream.__anext__()
                mine = isinstance(obs, OrderStatusReport) and obs.client_order_id == coid
                if mine and obs.status is VenueOrderStatus.FILLED:  # type: ignore[union-attr]
                    break
            times.append(time.perf_counter() - t0)
            if rate:
                await asyncio.sleep(max(0.0, 1 / rate - times[-1]))
        show(f"submit → FILLED, {label}, {f'{rate:.0f}/s' if rate else 'burst'}", times)
    await ex.close()


async def bench_quotes(sim: IBKRSimulator, n_symbols: int, steps: int) -> None:
    audit = NullAudit()
    conn = IBKRConnection("127.0.0.1", sim.port, 400, "", "paper", audit)
    md = IBKRMarketData(audit=audit, connection=conn)
    await md.connect()
    symbols = list(sim.universe[:n_symbols])
    await md.quotes(symbols)
    start = md.handler.count
    t0 = time.perf_counter()
    for _ in range(steps):
        sim.step()  # every symbol moves: bid + ask ticks per symbol
        await asyncio.sleep(0)

    # Done when Joe's latest quote for every symbol equals the simulator's final quote.
    def converged() -> bool:
        for sym in symbols:
            q, sq = md.handler.latest.get(sym), sim.prices.quote(sym)
            if q is None or q.bid != sq.bid or q.ask != sq.ask:
                return False
        return True

    while not converged():
        await asyncio.sleep(0.0005)
    dt = time.perf_counter() - t0
    got = md.handler.count - start
    ticks = steps * len(symbols)
    print(
        f"{'quotes through QuoteHandler':<44} {got:,} Quote objects ({ticks:,} simulator quote updates, "
        f"{2 * ticks:,} tick messages) in {dt:.2f} s = {got / dt:,.0f} quotes/s, "
        f"{2 * ticks / dt:,.0f} ticks/s"
    )
    await md.close()


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    print(f"IBKR broker vs TWS simulator — {machine()}")
    for sv in (178, 157):
        async with IBKRSimulator(server_version=sv) as sim:
            await bench_connect(sim, args.connects)
    for rate in (10.0, 0.0):
        async with IBKRSimulator(server_version=178) as sim:
            await bench_orders(sim, args.orders, rate)
    async with IBKRSimulator(server_version=178) as sim:
        await bench_quotes(sim, args.symbols, args.steps)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connects", type=int, default=20)
    p.add_argument("--orders", type=int, default=200)
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--steps", type=int, default=500)
    asyncio.run(main(p.parse_args()))
