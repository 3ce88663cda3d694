"""What the Capital.com simulator's market answers cost, through Joe's client.
Run: `python bench/capital_sim_answers.py [--rounds N]`.

Prints p50 / p99 latency of `GET /markets` (every market summary: the day's range and change from
the price bars), `GET /markets/{epic}`, a default `GET /prices/{epic}` and a 1000-bar `DAY` page,
with the simulator's rate limits scaled 100x so the numbers are the stack's own cost. The first
call of each kind (seeded history generated, nothing cached) is shown apart.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _machine import machine

from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.markets import MarketsApi
from joe.core.events import NullAudit
from joe.simulators.capital import CapitalSimulator, SimLimits


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def _time(call: Callable[[], Awaitable[Any]], rounds: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    await call()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await call()
        runs.append(time.perf_counter() - t0)
    return first, runs


async def main(rounds: int) -> None:
    print(machine())
    sim = CapitalSimulator(seed=3, limits=SimLimits().scaled(100))
    await sim.start()
    creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password)
    client = CapitalClient(sim.url, creds, audit=NullAudit(), limits=Limits().scaled(100), keepalive_s=0)
    await client.open()
    api = MarketsApi(client)
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "GET /markets (22 summaries)": api.all_markets,
        "GET /markets/SILVER": lambda: api.market("SILVER"),
        "GET /prices/SILVER (default)": lambda: client.request("GET", "/prices/SILVER"),
        "GET /prices/GOLD DAY max=1000": lambda: client.request(
            "GET", "/prices/GOLD", params={"resolution": "DAY", "max": 1000}
        ),
    }
    try:
        for name, call in cases.items():
            first, runs = await _time(call, rounds)
            print(
                f"{name:32s} first {first * 1000:8.1f} ms   "
                f"p50 {_pct(runs, 50) * 1000:7.1f} ms   p99 {_pct(runs, 99) * 1000:7.1f} ms   (n={rounds})"
            )
    finally:
        await client.close()
        await sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    asyncio.run(main(parser.parse_args().rounds))
