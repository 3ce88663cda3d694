"""What the Capital.com simulator's live bars cost: time per quote folded into every resolution,
and how many bars a long-running simulator keeps (bounded ring buffers, issue 18).
Run: `python bench/capital_sim_tape_bench.py [--minutes N]`.

Feeds one quote a second per market for N simulated minutes (default 3000, i.e. two days) through
`CapitalSimulator.step` with a frozen clock, then prints µs per quote and the bars kept per series.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from _machine import machine

from joe.simulators.capital import CapitalSimulator
from joe.simulators.capital.bars import MAX_LIVE_BARS
from joe.simulators.capital.catalog import CATALOG
from joe.simulators.common import SimClock


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=3000)
    args = ap.parse_args()
    clock = SimClock.frozen(datetime(2026, 11, 30, tzinfo=UTC))
    sim = CapitalSimulator(seed=1, tick_s=1.0, clock=clock)
    t0 = time.perf_counter()
    for _ in range(args.minutes):
        clock.advance(60)
        sim.step()
    spent = time.perf_counter() - t0
    quotes = args.minutes * len(CATALOG)
    tape = sim.history.tape
    print(machine())
    print(f"{quotes} quotes in {spent:.2f} s: {spent / quotes * 1e6:.1f} µs per quote (step + 8 resolutions)")
    print(
        f"bars kept: {tape.size()} (cap {MAX_LIVE_BARS} x 8 resolutions x {len(CATALOG)} markets = "
        f"{MAX_LIVE_BARS * 8 * len(CATALOG)}); MINUTE bars of GOLD: {len(tape.bars('GOLD', 'MINUTE'))}"
    )
    for res in ("MINUTE", "HOUR", "DAY", "WEEK"):
        t0 = time.perf_counter()
        sim.history.path("GOLD").bars(res)
        print(f"seeded {res} history of GOLD built in {(time.perf_counter() - t0) * 1000:.0f} ms")
    for res in ("MINUTE", "HOUR"):  # live bars' volumes come from the one volume path (sums per bar)
        t0 = time.perf_counter()
        n = len(sim.history.prices("GOLD", {"resolution": res, "max": "1000"})["prices"])
        ms = (time.perf_counter() - t0) * 1000
        print(f"GET /prices GOLD {res} max=1000 ({n} bars) served in {ms:.0f} ms")


if __name__ == "__main__":
    main()
