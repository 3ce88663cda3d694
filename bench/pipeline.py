"""Benchmark: the full analysis on a synthetic 500-instrument × 2,000-daily-bar universe.

Prints each stage's time (best of N), TA-Lib's own time for the same indicator batch (the
floor), and the wall time of `joe run --once` end to end (reports included) in a scratch folder.
Targets (2 cores): analysis <= 1.5 s and <= 10× the TA-Lib floor; `joe run --once` <= 8 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import talib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine

from joe.analysis.panel import Panel
from joe.analysis.pipeline import STAGES, analyse
from joe.config.schema import ExecutionConfig
from joe.data.synthetic import synthetic_universe

N, BARS, REPEATS = 500, 2000, 5


def talib_floor(p: Panel) -> float:
    """TA-Lib alone: six indicators over every column (1M bars)."""
    t0 = time.perf_counter()
    for j in range(p.n_symbols):
        h, lo, c = p.high[:, j], p.low[:, j], p.close[:, j]
        talib.SMA(c, 50)
        talib.EMA(c, 20)
        talib.RSI(c, 14)
        talib.MACD(c)
        talib.ATR(h, lo, c, 14)
        talib.ADX(h, lo, c, 14)
    return time.perf_counter() - t0


def main() -> None:
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    syn = synthetic_universe(N, BARS, seed=7)
    panel = Panel(syn.dates, syn.symbols, syn.open, syn.high, syn.low, syn.close, syn.volume)
    print(
        f"universe: {N} instruments x {BARS} bars = {N * BARS:,} bars "
        f"(built in {time.perf_counter() - t0:.2f}s)"
    )
    spx = panel.frame(panel.symbols[0])
    cfg = ExecutionConfig()
    runs = []
    for _ in range(REPEATS):
        r = analyse(panel, spx, None, {}, cfg, Decimal(100_000), ())
        runs.append(r.timings)
    best = {s: min(t[s] for t in runs) for s in STAGES}
    totals = sorted(sum(t.values()) for t in runs)
    floor = min(talib_floor(panel) for _ in range(3))
    for s in STAGES:
        print(f"  {s:<9} {best[s] * 1000:8.1f} ms")
    median = float(np.median(totals))
    print(f"analysis total: best {totals[0]:.3f}s, median {median:.3f}s (target <= 1.5 s)")
    print(f"TA-Lib floor (SMA, EMA, RSI, MACD, ATR, ADX over {N * BARS:,} bars): {floor:.3f}s")
    print(f"analysis / floor: {median / floor:.1f}x (target <= 10x)")

    joe = Path(sys.executable).with_name("joe")
    repo = Path(__file__).resolve().parents[1]
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ, JOE_DATA_DIR=str(Path(tmp) / "data"), JOE_CONFIG=str(repo / "config/execution.yaml")
        )
        env.pop("TRADING_MODE", None)
        for i in range(3):
            t1 = time.perf_counter()
            out = subprocess.run(
                [str(joe), "run", "--once"], cwd=tmp, env=env, capture_output=True, text=True
            )
            walls.append(time.perf_counter() - t1)
            if out.returncode != 0:
                print(out.stdout, out.stderr)
                raise SystemExit(f"joe run --once failed with {out.returncode}")
            print(f"  joe run --once #{i + 1}{' (fresh store)' if i == 0 else ''}: {walls[-1]:.2f}s")
    print(f"joe run --once end to end: median {float(np.median(walls)):.2f}s (target <= 8 s)")


if __name__ == "__main__":
    main()
