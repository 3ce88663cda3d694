"""Memory of the quote path streaming 500 instruments: IBKR simulator (a separate process) → ib_async
→ IBKRQuoteSource → PriceStream → PositionMonitor (1,000 positions with stops and targets).

Usage: python bench/stream_rss.py [--symbols 500] [--seconds 20] [--positions 1000]

The simulator steps every price every 50 ms in its own process, so this process holds only what the
daemon's quote path would. Prints quotes received, batches, and this process's RSS (now and peak,
from /proc/self/status) before subscribing, after subscribing, and at the end. The simulator does not
enforce IBKR's 50 messages/s, so ib_async's request throttle is raised here to subscribe quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

from joe.brokers.ibkr.connection import IBKRConnection
from joe.brokers.ibkr.marketdata import IBKRMarketData
from joe.core.events import NullAudit
from joe.core.models import Side
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.execution.protection import ExitRequest, StopModify, WatchedPosition
from joe.execution.quote_sources import IBKRQuoteSource


def rss() -> str:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return f"RSS {fields.get('VmRSS', '?')} (peak {fields.get('VmHWM', '?')})"


async def child(port_file: str, seconds: float) -> None:
    from joe.simulators.ibkr import IBKRSimulator

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # writes to the closed client socket at the end
    sim = IBKRSimulator(seed=3)
    await sim.start()
    Path(port_file).write_text(str(sim.port))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.05)
        sim.step()
    await sim.stop()


class NoExits:
    def request_exit(self, request: ExitRequest) -> None: ...

    def request_stop_modify(self, request: StopModify) -> None: ...


async def parent(port: int, symbols: list[str], seconds: float, n_positions: int) -> None:
    print(f"start:            {rss()}")
    audit = NullAudit()
    conn = IBKRConnection("127.0.0.1", port, 7, "", "paper", audit, max_messages_per_second=10_000)
    md = IBKRMarketData(audit=audit, connection=conn)
    await md.connect()
    stream = PriceStream(stale_after_s=30)
    monitor = PositionMonitor(stream.instruments, NoExits())
    stream.consumers.append(monitor)
    stream.add_source(IBKRQuoteSource(md))
    await stream.start()
    t0 = time.perf_counter()
    await stream.watch(symbols, held=True)
    print(f"subscribed {len(symbols)} symbols in {time.perf_counter() - t0:.1f}s: {rss()}")
    for k in range(n_positions):
        sym = symbols[k % len(symbols)]
        q = md.handler.latest.get(sym)
        px = q.mid if q is not None else Decimal(100)
        monitor.add(
            WatchedPosition(f"p{k}", sym, Side.BUY, Decimal(10), px, stop=px * Decimal("0.9"),
                            take_profit=px * Decimal("1.1"))
        )  # fmt: skip
    q0, t1 = stream.quotes, time.perf_counter()
    await asyncio.sleep(seconds)
    dt = time.perf_counter() - t1
    n = stream.quotes - q0
    got = sum(1 for s in symbols if monitor.mark(s) is not None)
    print(
        f"streamed {dt:.0f}s: {n:,} quotes ({n / dt:,.0f}/s) in {stream.batches:,} batches, "
        f"{got}/{len(symbols)} instruments marked, {len(monitor)} positions watched: {rss()}"
    )
    await stream.stop()
    await md.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.seconds + 120))
        return
    print(f"machine: {machine()}")
    port_file = Path(f"/tmp/joe-rss-sim-{os.getpid()}.port")
    cmd = [sys.executable, __file__, "--child", str(port_file), "--seconds", str(args.seconds)]
    proc = subprocess.Popen(cmd)
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        port = int(port_file.read_text())
        symbols = [f"S{i:03d}" for i in range(args.symbols)]
        asyncio.run(parent(port, symbols, args.seconds, args.positions))
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        port_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
