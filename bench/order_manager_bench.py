"""OrderManager benchmark: place → ack → fill through the `OrderManager` (store write-ahead on a
SQLite file with fsync at every commit, audit, observation stream) against the execution adapter
alone, on each broker simulator that has an `ExecutionClient`. Run: `python bench/order_manager_bench.py`.

Prints, per simulator: p50 / p99 latency of one market order from the call to Joe holding its fill,
and sequential orders per second, for the adapter alone and through the OrderManager; the
difference is the cost of the write-ahead, the reconciliation rules and the store. The machine's
1-minute load average is printed with it: on a shared 2-core machine others' work dominates.

Last measured (2026-12-01 22:17 UTC, `--orders 100`, AMD EPYC 2 cores, load average 2.0; IBKR orders as
entry/exit round trips since e63e892):

    Capital.com sim  adapter alone  p50  19.0 ms  p99  26.6 ms  48.0 orders/s
                     OrderManager   p50  47.5 ms  p99  63.4 ms  20.8 orders/s   cost +28 ms at p50
    IBKR sim (178)   adapter alone  p50   5.8 ms  p99 487.6 ms  42.5 orders/s
                     OrderManager   p50  69.6 ms  p99 297.5 ms  11.1 orders/s   cost +64 ms at p50

(2026-12-01 04:45 UTC at load 28, alternating IBKR entries: Capital +77 ms, IBKR +118 ms at p50.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from _machine import machine

from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, Side
from joe.core.order import OrderState
from joe.core.reports import FillReport
from joe.execution.order_manager import OrderManager
from joe.store import open_store


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _intent(tag: str, i: int, symbol: str, qty: Decimal, round_trips: bool = False) -> OrderIntent:
    """Order `i`: alternately a BUY and a SELL entry, each its own signal (a hedging account keeps
    them as separate deals); with `round_trips` (a netting account: IBKR) the odd orders are the
    reduce-only exits of the previous entry, so Joe's open signals always match the broker's
    position (alternating entries would leave Joe long and short the same symbol, which a netting
    broker holds as flat: every position update would then read as an outside change)."""
    if round_trips:
        sig = f"bench-{tag}-{i // 2}"
        if i % 2:
            return OrderIntent(
                client_order_id(sig, "exit"), sig, OrderLeg.EXIT, symbol, Side.SELL, qty, reduce_only=True
            )
        return OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, symbol, Side.BUY, qty)
    sig = f"bench-{tag}-{i}"
    return OrderIntent(
        client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, symbol, Side.BUY if i % 2 == 0 else Side.SELL, qty
    )


async def _adapter_alone(  # type: ignore[no-untyped-def]
    xc, n: int, symbol: str, qty: Decimal, round_trips: bool = False
) -> list[float]:
    stream = xc.observations()
    times = []
    for i in range(n):
        intent = _intent("a", i, symbol, qty, round_trips)
        t0 = time.perf_counter()
        await xc.submit([intent])
        while True:
            obs = await stream.__anext__()
            if isinstance(obs, FillReport) and obs.fill.client_order_id == intent.client_order_id:
                break
        times.append(time.perf_counter() - t0)
    return times


async def _through_manager(  # type: ignore[no-untyped-def]
    xc, n: int, symbol: str, qty: Decimal, folder: Path, round_trips: bool = False
) -> list[float]:
    store = open_store(data_dir=folder)
    om = OrderManager(xc, store, NullAudit())
    await om.start()
    times = []
    try:
        for i in range(n):
            intent = _intent("m", i, symbol, qty, round_trips)
            t0 = time.perf_counter()
            [order] = await om.submit([intent])
            while order.state is not OrderState.FILLED:
                om.changed.clear()
                await om.changed.wait()
            times.append(time.perf_counter() - t0)
    finally:
        await om.stop()
        store.close()
    return times


def _line(name: str, times: list[float]) -> str:
    total = sum(times)
    return (
        f"  {name:<28} n={len(times)}: p50 {statistics.median(times) * 1000:7.2f} ms, "
        f"p99 {_pct(times, 99) * 1000:7.2f} ms, {len(times) / total:7.1f} orders/s"
    )


async def capital(n: int) -> None:
    from joe.brokers.capital import CapitalClient, Credentials, Limits
    from joe.brokers.capital.client import CapitalExecutionClient
    from joe.simulators.capital import CapitalSimulator, SimLimits

    async with CapitalSimulator(seed=11, limits=SimLimits().scaled(100.0)) as sim:
        sim.exchange.accounts["12345678901234567"].hedging = True
        creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password)
        client = CapitalClient(sim.url, creds, audit=NullAudit(), limits=Limits().scaled(100.0))
        await client.open()
        try:
            xc = CapitalExecutionClient(client, audit=NullAudit(), confirm_interval_s=0.005, fill_wait_s=2.0)
            alone = await _adapter_alone(xc, n, "EURUSD", Decimal(100))
            with tempfile.TemporaryDirectory() as d:
                xc2 = CapitalExecutionClient(
                    client, audit=NullAudit(), confirm_interval_s=0.005, fill_wait_s=2.0
                )
                managed = await _through_manager(xc2, n, "EURUSD", Decimal(100), Path(d))
        finally:
            await client.close()
    _report("Capital.com simulator (limits x100), EURUSD market 100", alone, managed)


async def ibkr(n: int) -> None:
    from joe.brokers.ibkr.client import IBKRExecutionClient
    from joe.simulators.ibkr import IBKRSimulator

    sim = IBKRSimulator(server_version=178, seed=7)
    await sim.start()
    try:
        sim.set_price("AAPL", 100)
        with tempfile.TemporaryDirectory() as d:
            ids = Path(d) / "ids.json"
            xc = IBKRExecutionClient("127.0.0.1", sim.port, 51, "", "paper", NullAudit(), ids)
            await xc.connect()
            try:
                alone = await _adapter_alone(xc, n, "AAPL", Decimal(10), round_trips=True)
            finally:
                await xc.close()
            xc2 = IBKRExecutionClient("127.0.0.1", sim.port, 52, "", "paper", NullAudit(), ids)
            await xc2.connect()
            try:
                managed = await _through_manager(xc2, n, "AAPL", Decimal(10), Path(d), round_trips=True)
            finally:
                await xc2.close()
    finally:
        await sim.stop()
    _report("IBKR TWS simulator (server version 178), AAPL market 10", alone, managed)


def _report(title: str, alone: list[float], managed: list[float]) -> None:
    print(title)
    print(_line("adapter alone", alone))
    print(_line("through OrderManager", managed))
    extra = statistics.median(managed) - statistics.median(alone)
    print(f"  write-ahead + OrderManager cost: {extra * 1000:+.2f} ms per order at p50")


async def main(n: int) -> None:
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    runs: list[Callable[[int], Awaitable[None]]] = [capital, ibkr]
    for run in runs:
        await run(n)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=200)
    asyncio.run(main(ap.parse_args().orders))
