"""Capital.com client benchmarks against the local simulator. Run: `python bench/capital_bench.py`.

Prints:
* order round trip (place → confirm → position visible via GET /positions): p50 / p99, once with
  rate limits scaled 100x (the client stack's own latency) and once with the real limits (what a
  burst costs when the 0.1 s order spacing and 10 req/s apply);
* streaming quotes parsed per second by the client's hot path (frames → StreamQuote → latest),
  in-process and end-to-end over a loopback WebSocket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from decimal import Decimal

import websockets

from joe.brokers.capital import CapitalClient, CapitalExecutor, CapitalStream, Credentials, Limits
from joe.brokers.capital.trading import TradingApi
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, Side
from joe.simulators.capital import CapitalSimulator, SimLimits


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def order_round_trip(n: int, scale: float) -> list[float]:
    """Sequential orders; each timed from place() to the position being listed by GET /positions."""
    async with CapitalSimulator(seed=11, limits=SimLimits().scaled(scale), tick_s=0.2) as sim:
        sim.exchange.accounts["12345678901234567"].hedging = True
        creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password)
        client = CapitalClient(sim.url, creds, audit=NullAudit(), limits=Limits().scaled(scale))
        await client.open()
        ex = CapitalExecutor(client, audit=NullAudit(), confirm_interval_s=0.005)
        trading = TradingApi(client)
        times = []
        for i in range(n):
            intent = OrderIntent(f"bench{i}", f"s{i}", OrderLeg.ENTRY, "EURUSD", Side.BUY, Decimal(100))
            t0 = time.perf_counter()
            res = await ex.place(intent)
            rows = await trading.positions()
            assert any(r.position.dealId == res.broker_position_id for r in rows)
            times.append(time.perf_counter() - t0)
        await client.close()
        return times


def _frames(n: int) -> list[str]:
    epics = ["GOLD", "US500", "EURUSD", "BTCUSD", "AAPL"]
    return [
        json.dumps(
            {
                "status": "OK",
                "destination": "quote",
                "payload": {
                    "epic": epics[i % 5],
                    "product": "CFD",
                    "bid": 100.0 + (i % 97) * 0.01,
                    "bidQty": 1000.0,
                    "ofr": 100.02 + (i % 97) * 0.01,
                    "ofrQty": 1000.0,
                    "timestamp": 1_700_000_000_000 + i,
                },
            }
        )
        for i in range(n)
    ]


async def parse_throughput(n: int) -> float:
    """Quotes per second through the client's frame handler (JSON decode, validation, bookkeeping)."""
    stream = CapitalStream(None, "ws://unused", audit=NullAudit())  # type: ignore[arg-type]
    frames = _frames(n)
    shard = None
    t0 = time.perf_counter()
    for f in frames:
        await stream._on_frame(shard, f)  # type: ignore[arg-type]
    dt = time.perf_counter() - t0
    assert stream.stats.quotes == n
    return n / dt


async def ws_throughput(n: int) -> float:
    """Quotes per second received and parsed over a loopback WebSocket (one connection)."""
    frames = _frames(n)
    done = asyncio.Event()

    async def blast(ws: websockets.ServerConnection) -> None:
        await ws.recv()  # the subscribe message
        for f in frames:
            await ws.send(f)
        await done.wait()

    class _Tokens:
        tokens = ("cst", "xst")

    async with websockets.serve(blast, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        stream = CapitalStream(_Tokens(), f"ws://127.0.0.1:{port}/connect", audit=NullAudit())  # type: ignore[arg-type]
        await stream.subscribe(["GOLD"])
        t0 = time.perf_counter()
        await stream.start()
        while stream.stats.quotes < n:
            await asyncio.sleep(0.005)
        dt = time.perf_counter() - t0
        done.set()
        await stream.stop()
    return n / dt


async def main(orders: int, real_orders: int, quotes: int) -> None:
    fast = await order_round_trip(orders, scale=100.0)
    print(
        f"order round trip, limits x100, n={orders}: p50 {statistics.median(fast) * 1000:.1f} ms, "
        f"p99 {_pct(fast, 99) * 1000:.1f} ms"
    )
    real = await order_round_trip(real_orders, scale=1.0)
    print(
        f"order round trip, real limits, n={real_orders}: p50 {statistics.median(real) * 1000:.1f} ms, "
        f"p99 {_pct(real, 99) * 1000:.1f} ms"
    )
    rate = await parse_throughput(quotes)
    print(f"quote parsing, in-process: {rate:,.0f} quotes/s (target >= 20,000/s)")
    rate_ws = await ws_throughput(quotes)
    print(f"quote parsing, over loopback WebSocket: {rate_ws:,.0f} quotes/s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--real-orders", type=int, default=20)
    ap.add_argument("--quotes", type=int, default=200_000)
    a = ap.parse_args()
    asyncio.run(main(a.orders, a.real_orders, a.quotes))
