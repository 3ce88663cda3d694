"""The standard W2 quote-path workload (../shared/bench/PEERS.md) on Joe's real quote path.

1,000,000 bid/ask quotes over 10 instruments; the price checked is the mid. On an instrument's first
quote 100 long positions open at that mid; the k-th position opened overall gets distance
d = 0.0005 + 0.0001 * ((k mod 97) mod 26), a stop at mid * (1 - d) and a take-profit at mid * (1 + d).
Each later quote stops out every position whose stop >= mid, then takes profit on every one whose
take-profit <= mid; each closed position re-opens at once at that mid with the next distance.
Check values on the standard file: 34,697 stops and 37,281 take-profits.

Here quotes go ReplaySource → PriceStream → [W2Opener, PositionMonitor]; the monitor's triggers go
to `W2Strategy`, which plays the broker (the stop or target fills at once: `monitor.close`) and the
strategy (re-open). `naive_reference` is the plain heap loop PEERS.md describes, to compare counts.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from joe.core.models import Side
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.execution.protection import ExitRequest, StopModify, Trigger, TriggerKind, WatchedPosition
from joe.execution.quote_sources import ReplaySource
from joe.execution.quotes import InstrumentIndex, QuoteBatch

SEED = 42
POSITIONS_PER_INSTRUMENT = 100
EXPECTED = (34_697, 37_281)  # stops, take-profits on the standard 1M-quote file
ONE = Decimal(1)


def distance(k: int) -> float:
    return 0.0005 + 0.0001 * ((k % 97) % 26)


_DISTANCES = [distance(k) for k in range(97)]  # distance(k) == _DISTANCES[k % 97], the same floats
_FACTORS = [(1 - d, 1 + d) for d in _DISTANCES]  # the stop's and the target's factor: the same floats too
_BUY = Side.BUY  # an enum member read through its class costs a descriptor call
_STOP = TriggerKind.STOP


def peers_file() -> Path:
    d = os.environ.get("PEERS_DATA_DIR") or os.path.join(tempfile.gettempdir(), "peerdata")
    return Path(d) / "quotes_10.parquet"


def generate_quotes(n: int = 1_000_000, n_inst: int = 10, n_bars: int = 1_000_000) -> dict[str, np.ndarray]:
    """The W2 quotes exactly as `peer_workloads.py` makes them (its generator draws W1's bars from the
    same seeded generator first, so those draws are replayed here and thrown away)."""
    rng = np.random.default_rng(SEED)
    rng.normal(0.0, 0.0005, n_bars)
    rng.normal(0.0, 0.00025, n_bars)
    rng.normal(0.0, 0.00025, n_bars)
    rng.integers(100, 10_000, n_bars)
    inst = rng.integers(0, n_inst, n).astype(np.int16)
    gaps = rng.integers(1_000_000, 19_000_000, n).astype(np.int64)
    ts = np.int64(1_577_836_800_000_000_000) + np.cumsum(gaps)
    steps = rng.normal(0.0, 0.00005, n)
    base = np.linspace(0.8, 1.7, n_inst)
    mid = np.empty(n)
    for k in range(n_inst):
        m = inst == k
        mid[m] = base[k] * np.exp(np.cumsum(steps[m]))
    half_spread = rng.integers(1, 4, n) * 0.00001
    bid = np.round(mid - half_spread, 5)
    ask = np.round(mid + half_spread, 5)
    ask = np.maximum(ask, bid + 0.00001).round(5)
    return {"inst": inst, "ts": ts, "bid": bid, "ask": ask}


def load_quotes() -> tuple[dict[str, np.ndarray], str]:
    """The standard file if `peer_workloads.py` wrote it, else the same quotes generated here."""
    f = peers_file()
    if f.exists():
        import pandas as pd

        df = pd.read_parquet(f, columns=["ts", "inst", "bid", "ask"])
        return {c: df[c].to_numpy() for c in ("inst", "ts", "bid", "ask")}, str(f)
    return generate_quotes(), "generated (same generator, seed 42)"


def naive_reference(inst: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> tuple[int, int]:
    """The plain loop with a heap of stops and a heap of take-profits per instrument (PEERS.md)."""
    k = 0
    stops: dict[int, list[tuple[float, int]]] = {}
    tps: dict[int, list[tuple[float, int]]] = {}
    dead: set[int] = set()
    pid = n_stop = n_tp = 0
    for i, b, a in zip(inst.tolist(), bid.tolist(), ask.tolist(), strict=True):
        mid = (b + a) / 2
        if i not in stops:
            stops[i], tps[i] = [], []
            for _ in range(POSITIONS_PER_INSTRUMENT):
                d = distance(k)
                k += 1
                heapq.heappush(stops[i], (-(mid * (1 - d)), pid))
                heapq.heappush(tps[i], (mid * (1 + d), pid))
                pid += 1
            continue
        sh, th = stops[i], tps[i]
        closed = 0
        while sh and -sh[0][0] >= mid:
            p = heapq.heappop(sh)[1]
            if p not in dead:
                dead.add(p)
                closed += 1
                n_stop += 1
        while th and th[0][0] <= mid:
            p = heapq.heappop(th)[1]
            if p not in dead:
                dead.add(p)
                closed += 1
                n_tp += 1
        for _ in range(closed):
            d = distance(k)
            k += 1
            heapq.heappush(sh, (-(mid * (1 - d)), pid))
            heapq.heappush(th, (mid * (1 + d), pid))
            pid += 1
    return n_stop, n_tp


async def asyncio_queue_reference(inst: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> tuple[int, int]:
    """PEERS.md's "asyncio.Queue producer → consumer + the heap checks": one queue item per quote."""
    q: asyncio.Queue[tuple[int, float, float] | None] = asyncio.Queue(maxsize=1024)
    out: list[tuple[int, int]] = []

    async def produce() -> None:
        for item in zip(inst.tolist(), bid.tolist(), ask.tolist(), strict=True):
            await q.put(item)
        await q.put(None)

    async def consume() -> None:
        k = pid = n_stop = n_tp = 0
        stops: dict[int, list[tuple[float, int]]] = {}
        tps: dict[int, list[tuple[float, int]]] = {}
        dead: set[int] = set()
        while (item := await q.get()) is not None:
            i, b, a = item
            mid = (b + a) / 2
            if i not in stops:
                stops[i], tps[i] = [], []
                for _ in range(POSITIONS_PER_INSTRUMENT):
                    d = distance(k)
                    k += 1
                    heapq.heappush(stops[i], (-(mid * (1 - d)), pid))
                    heapq.heappush(tps[i], (mid * (1 + d), pid))
                    pid += 1
                continue
            sh, th = stops[i], tps[i]
            closed = 0
            while sh and -sh[0][0] >= mid:
                p = heapq.heappop(sh)[1]
                if p not in dead:
                    dead.add(p)
                    closed += 1
                    n_stop += 1
            while th and th[0][0] <= mid:
                p = heapq.heappop(th)[1]
                if p not in dead:
                    dead.add(p)
                    closed += 1
                    n_tp += 1
            for _ in range(closed):
                d = distance(k)
                k += 1
                heapq.heappush(sh, (-(mid * (1 - d)), pid))
                heapq.heappush(th, (mid * (1 + d), pid))
                pid += 1
        out.append((n_stop, n_tp))

    await asyncio.gather(produce(), consume())
    return out[0]


class _NoExits:
    """W2's broker fills every stop at once, so the monitor never needs a backup exit."""

    def __init__(self) -> None:
        self.exits = 0

    def request_exit(self, request: ExitRequest) -> None:
        self.exits += 1

    def request_stop_modify(self, request: StopModify) -> None:
        pass


class W2Strategy:
    """Opens the 100 positions per instrument on its first quote (a consumer placed before the
    monitor) and, as the broker and the strategy, closes and re-opens on every trigger."""

    def __init__(self, monitor: PositionMonitor) -> None:
        self.monitor = monitor
        self.k = 0
        self.opened: set[int] = set()
        self.stops = 0
        self.take_profits = 0
        self._ids = 0
        self._mid = float("nan")  # the last mid a position opened at, and its Decimal
        self._mid_d = ONE
        self.batch_triggers: list[int] = []  # per batch handed on: the triggers its quotes fired

    def open(self, symbol: str, mid: float) -> None:
        """Open the next long at `mid`: entry, stop `mid * (1 - d)` and take-profit `mid * (1 + d)` as
        floats (PEERS.md's arithmetic: the counts depend on these very floats), each made a `Decimal`
        through its shortest repr (exact: it converts back to the same float). The entry's is made
        once per mid: the positions a quote closes all re-open at its mid."""
        down, up = _FACTORS[self.k % 97]
        self.k += 1
        self._ids = n = self._ids + 1
        if mid != self._mid:
            self._mid, self._mid_d = mid, Decimal(repr(mid))
        self.monitor.add(
            WatchedPosition(
                f"w2-{n}", symbol, _BUY, ONE, self._mid_d, Decimal(repr(mid * down)), Decimal(repr(mid * up))
            )
        )  # fmt: skip

    def on_batch(self, batch: QuoteBatch) -> None:
        self.batch_triggers.append(0)  # this consumer runs before the monitor: its triggers count here
        if len(self.opened) == len(self.monitor.instruments):
            return  # every instrument has had its first quote
        fresh = np.setdiff1d(
            np.unique(batch.inst), np.fromiter(self.opened, dtype=np.int32, count=len(self.opened))
        )
        if not len(fresh):
            return
        firsts = sorted(int(np.flatnonzero(batch.inst == u)[0]) for u in fresh.tolist())
        mid = batch.mid
        for j in firsts:
            u = int(batch.inst[j])
            self.opened.add(u)
            for _ in range(POSITIONS_PER_INSTRUMENT):
                self.open(self.monitor.instruments.symbol(u), float(mid[j]))

    def on_trigger(self, t: Trigger) -> None:
        if t.kind is _STOP:
            self.stops += 1
        else:
            self.take_profits += 1
        self.batch_triggers[-1] += 1
        self.monitor.close(t.position_id)
        self.open(t.symbol, t.price)


@dataclass
class W2Result:
    quotes: int
    stops: int
    take_profits: int
    seconds: float
    cpu_seconds: float  # this process's CPU time: excludes time other processes held the cores
    quote_latencies: np.ndarray  # seconds per quote, arrival → end of its batch (ReplaySource)
    batch_sizes: list[int]
    batch_triggers: list[int]  # per batch, in the order handed on: the stops and take-profits it fired
    monitor: PositionMonitor


async def run_w2(
    data: dict[str, np.ndarray],
    *,
    chunk: int = 1024,
    record_latency: bool = True,
    rate: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> W2Result:
    """Replay `data` through PriceStream → PositionMonitor with the W2 strategy; time the whole run.
    `rate` (quotes/s) paces the replay open-loop (`ReplaySource`), else it runs as fast as it can.
    `clock` (seconds) is the replay's: arrivals and latencies are on it. `time.thread_time` (this
    thread's CPU time) replays as if on a core of its own: time other processes hold it does not pass."""

    n_inst = int(data["inst"].max()) + 1
    symbols = [f"W2-{i}" for i in range(n_inst)]
    instruments = InstrumentIndex(symbols)
    stream = PriceStream(instruments=instruments, max_batch=chunk)
    monitor = PositionMonitor(instruments, _NoExits())
    strategy = W2Strategy(monitor)
    monitor.listeners.append(strategy.on_trigger)
    stream.consumers.extend([strategy, monitor])
    src = ReplaySource(symbols, data["inst"], data["ts"], data["bid"], data["ask"], chunk=chunk,
                       record_latency=record_latency, rate=rate, clock=clock)  # fmt: skip
    stream.add_source(src)
    t0, c0 = time.perf_counter(), time.process_time()
    await stream.start()
    await src.done.wait()
    if src.error is not None:
        raise RuntimeError("the W2 replay stopped early") from src.error
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    await stream.stop()
    lat = src.quote_latencies if src.quote_latencies is not None else np.zeros(0)
    counts = (strategy.stops, strategy.take_profits)
    return W2Result(
        stream.quotes, *counts, seconds, cpu_seconds, lat, src.batch_sizes, strategy.batch_triggers, monitor
    )


def run(data: dict[str, np.ndarray], **kw: object) -> W2Result:
    return asyncio.run(run_w2(data, **kw))  # type: ignore[arg-type]
