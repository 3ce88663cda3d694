"""W2 (the standard quote-path workload, ../shared/bench/PEERS.md) through Joe's real quote path:
ReplaySource → PriceStream → PositionMonitor, with the W2 strategy re-opening every closed position.

Usage: python bench/w2_quote_path.py [--runs 3] [--chunk 1024] [--quotes N]

Reads `$PEERS_DATA_DIR/quotes_10.parquet` (default <temp>/peerdata) when `peer_workloads.py` wrote it,
else generates the identical quotes. Asserts the reference counts (34,697 stops / 37,281 take-profits)
on the full file. Prints, per chunk size:
- quotes/s over the whole replay (median and best of --runs, each a fresh stream and monitor), by
  wall time and by this process's CPU time (on a shared machine the wall figure includes the time
  other processes held the cores; compare ratios measured the same way);
- batch latency: wall time of `PriceStream.push_batch` (hand-on + every check + the strategy's
  re-opens) per batch, p50 / p99 / max;
- per-quote latency: batch latency / quotes in the batch, p50 / p99 (a quote in a batch waits for
  the whole batch at worst, which the batch figures show);
- the plain-Python heap loop and the asyncio.Queue baseline of PEERS.md in the same sitting, so the
  ratios can be compared with the peers' figures measured on a different day (PEERS.md: floor 2.4M/s,
  queue 597k/s, NautilusTrader 120k/s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _w2
from _machine import machine


def pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, round(p / 100 * (len(ys) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--chunk", type=int, action="append", help="quotes per batch (repeatable); default 256 and 1024"
    )
    ap.add_argument("--quotes", type=int, default=0, help="use only the first N quotes (no count check)")
    args = ap.parse_args()
    chunks = args.chunk or [256, 1024]
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    data, origin = _w2.load_quotes()
    data = {c: np.ascontiguousarray(v) for c, v in data.items()}
    if args.quotes:
        data = {c: v[: args.quotes] for c, v in data.items()}
    print(f"quotes: {len(data['inst']):,} from {origin} (loaded in {time.perf_counter() - t0:.2f}s)")
    full = len(data["inst"]) == 1_000_000

    n = len(data["inst"])
    t, c = time.perf_counter(), time.process_time()
    ref = _w2.naive_reference(data["inst"], data["bid"], data["ask"])
    floor_s, floor_cpu = time.perf_counter() - t, time.process_time() - c
    print(f"plain-Python heap loop (floor): {n / floor_s:>10,.0f} quotes/s wall, {n / floor_cpu:,.0f}/s CPU")
    t, c = time.perf_counter(), time.process_time()
    qref = asyncio.run(_w2.asyncio_queue_reference(data["inst"], data["bid"], data["ask"]))
    queue_s, queue_cpu = time.perf_counter() - t, time.process_time() - c
    assert qref == ref, (qref, ref)
    print(f"asyncio.Queue, one item a quote: {n / queue_s:>9,.0f} quotes/s wall, {n / queue_cpu:,.0f}/s CPU")

    for chunk in chunks:
        rates, cpu_rates, lat, per_quote = [], [], [], []
        for _ in range(args.runs):
            r = _w2.run(data, chunk=chunk, record_latency=True)
            if full:
                assert (r.stops, r.take_profits) == _w2.EXPECTED, (r.stops, r.take_profits)
            assert (r.stops, r.take_profits) == ref, ((r.stops, r.take_profits), ref)
            rates.append(r.quotes / r.seconds)
            cpu_rates.append(r.quotes / r.cpu_seconds)
            lat.extend(r.batch_latencies)
            per_quote.extend(x / n for x, n in zip(r.batch_latencies, r.batch_sizes, strict=True))
        us = [x * 1e6 for x in lat]
        pq = [x * 1e6 for x in per_quote]
        med = statistics.median(rates)
        ratio = med * floor_s / len(data["inst"])
        qratio = med * queue_s / len(data["inst"])
        print(
            f"Joe PriceStream→PositionMonitor, batches of {chunk:>5}: median {med:>10,.0f} quotes/s "
            f"(best {max(rates):,.0f}; {ratio:.2f}× the floor, {qratio:.2f}× the queue)  "
            f"stops {r.stops:,} take-profits {r.take_profits:,}"
        )
        cpu = statistics.median(cpu_rates)
        print(
            f"    CPU time: median {cpu:,.0f} quotes/s ({cpu * floor_cpu / n:.2f}× the floor, "
            f"{cpu * queue_cpu / n:.2f}× the queue, by CPU time)"
        )
        print(
            f"    batch latency p50 {pct(us, 50):8.1f} µs  p99 {pct(us, 99):8.1f} µs  max {max(us):8.1f} µs"
            f" | per quote p50 {pct(pq, 50):6.2f} µs  p99 {pct(pq, 99):6.2f} µs"
        )


if __name__ == "__main__":
    main()
