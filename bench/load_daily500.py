"""The load stage of the daily_500 backtest (issue 17 point 4) on its own: wall and CPU seconds.

Usage: python bench/load_daily500.py [--repeat N]
Splits `daily_500.parquet` into one file per symbol (as `backtest_daily500.py` does, not timed), then:
* import time: a fresh interpreter importing what `joe backtest` needs before it reads a file
  (`joe.backtest.loading`, `joe.backtest.runner`; wall seconds, best of 3);
* the load (`load_history_sync`: source, panel, quality stage, index, precompute) `--repeat` times in
  this process (the first run also builds the caches later runs reuse: exchange calendars, lru
  caches), wall and CPU seconds of each, and each step's CPU seconds (`History.cpu_timings`).
The load average before and after says how much of the wall clock was other people's work.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine
from backtest_daily500 import daily_500, split

IMPORTS = "import joe.backtest.loading, joe.backtest.runner"


def import_seconds() -> float:
    """Wall seconds a fresh interpreter takes to import the backtest's modules (best of 3)."""
    code = f"import time; t = time.perf_counter(); {IMPORTS}; print(time.perf_counter() - t)"
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(3)
    ]
    return min(float(r.stdout.strip()) for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="loads in this process (default 3)")
    args = ap.parse_args()
    print(f"daily_500 load — {machine()}")
    before = os.getloadavg()
    print(f"  import ({IMPORTS}): {import_seconds():.2f} s wall (fresh interpreter, best of 3)")
    from joe.backtest.loading import load_history_sync
    from joe.config.schema import ExecutionConfig

    with tempfile.TemporaryDirectory(prefix="joe-load500-") as tmp:
        folder = Path(tmp) / "prices"
        folder.mkdir()
        split(daily_500(), folder)
        for k in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            history = load_history_sync(f"parquet:{folder}", ExecutionConfig())
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            steps = ", ".join(f"{name} {sec:.2f}" for name, sec in history.cpu_timings.items())
            print(f"  load {k + 1}: {wall:5.2f} s wall, {cpu:5.2f} s CPU ({steps})")
    after = os.getloadavg()
    print(f"  load average (1/5/15 min) before {'/'.join(f'{x:.1f}' for x in before)}, "
          f"after {'/'.join(f'{x:.1f}' for x in after)}")  # fmt: skip


if __name__ == "__main__":
    main()
