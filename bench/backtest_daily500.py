"""Joe's own workload (issue 17): the full daily pipeline backtested over `daily_500.parquet`
(500 instruments × 2,000 days, `../shared/bench/PEERS.md`), through `joe backtest`'s engine.

Usage: python bench/backtest_daily500.py [--days N] [--profile]
The long-format file is split once into one parquet file per symbol (a `parquet:` source folder, not
timed), then timed: loading (the source, the panel, the quality stage, index and VIX, the precomputed
indicators and regime history: CPU seconds each), the day loop, split per stage
(settle = exits and marks, the analysis stages, trading = RiskGate + paper fills; wall and CPU seconds,
the analysis sub-stages wall only), and the report; the load average before and after says how much of
the wall clock was other people's work on the shared machine.
Goal: ≤ 10 s for the whole run on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time

T_START = time.perf_counter()  # before pandas' and Joe's imports: the whole run's wall time starts here

from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from joe.backtest.loading import load_history_sync  # noqa: E402
from joe.backtest.runner import BacktestOptions, run_on_history  # noqa: E402
from joe.config.schema import ExecutionConfig  # noqa: E402

T_IMPORTED = time.perf_counter()

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "peer_workloads.py"


def daily_500() -> Path:
    spec = importlib.util.spec_from_file_location("peer_workloads", PEERS)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot find the standard workloads at {PEERS}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = mod.data_dir() / "daily_500.parquet"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `.venv/bin/python {PEERS}` first")
    return path


def split(path: Path, folder: Path) -> None:
    long = pd.read_parquet(path)
    for sym, g in long.groupby("symbol", sort=True):
        g.drop(columns=["symbol"]).to_parquet(folder / f"{sym}.parquet", index=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=0, help="only the last N days (0: all)")
    ap.add_argument("--profile", action="store_true", help="cProfile the day loop (top 25 by own time)")
    ap.add_argument("--workers", type=int, default=2, help="2: market analysis in a second process; 1: one")
    args = ap.parse_args()
    print(f"backtest over daily_500 — {machine()}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="joe-daily500-") as tmp:
        folder = Path(tmp) / "prices"
        folder.mkdir()
        split(daily_500(), folder)
        cfg = ExecutionConfig()
        t0, c0 = time.perf_counter(), time.process_time()
        history = load_history_sync(f"parquet:{folder}", cfg)
        t1, c1 = time.perf_counter(), time.process_time()
        dates = history.panel.dates
        first: date | None = dates[-args.days].date() if args.days else None
        opts = BacktestOptions(f"parquet:{folder}", first, None)
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
        result = run_on_history(history, cfg, opts, workers=args.workers)
        t2, c2 = time.perf_counter(), time.process_time()
        if args.profile:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        # Imported by the replay while the worker computed its first day (runner.prepare_report).
        from joe.backtest.report import write_report

        _, metrics = write_report(result, Path(tmp) / "report", "daily_500", opts.describe())
        t3, c3 = time.perf_counter(), time.process_time()
    n_days = len(result.days)
    load_after = os.getloadavg()
    print(f"  {history.panel.n_symbols} instruments × {history.panel.n_dates} bars; {n_days} days simulated")
    # CPU seconds beside wall seconds: on a shared machine the wall clock includes other people's work.
    print(f"  {'':<55} {'wall s':>7} {'CPU s':>7}")
    print(f"  {'load (source, quality stage, panel, regime history)':<55} {t1 - t0:7.2f} {c1 - c0:7.2f}")
    steps = {
        "source": "source (read and check the files)",
        "panel": "panel (histories into one panel)",
        "quality": "quality stage",
        "index": "index, VIX, sentiment",
        "precompute": "precompute (indicators, regime history)",
    }
    for name, cpu_s in history.cpu_timings.items():
        print(f"    {steps.get(name, name):<53} {'':>7} {cpu_s:7.2f}")
    wall_ms, cpu_ms = (t2 - t1) / n_days * 1e3, (c2 - c1) / n_days * 1e3
    print(f"  {'day loop':<55} {t2 - t1:7.2f} {c2 - c1:7.2f}  ({wall_ms:.1f} / {cpu_ms:.1f} ms per day)")
    for name, sec in sorted(result.timings.items()):
        cpu = result.cpu_timings.get(name)
        print(f"    {name:<53} {sec:7.2f} {'' if cpu is None else f'{cpu:7.2f}'}")
    # With --workers 2 the regime/scan/score/strategy wall seconds above are the worker's, and risk is the
    # worker's market part (volatility, gaps, dollar volume: joe.analysis.risk_market) plus the book's
    # part; the worker's CPU:
    for name, cpu_s in result.cpu_timings.items():
        if name in result.timings:
            continue
        what = " (analysis worker process)" if name.startswith("worker.") else " (receiving its days)"
        print(f"    {name + what:<53} {'':>7} {cpu_s:7.2f}")
    print(f"  {'report':<55} {t3 - t2:7.2f} {c3 - c2:7.2f}")
    print(f"  {'total (this process; CPU without the worker)':<55} {t3 - t0:7.2f} {c3 - c0:7.2f}")
    imports = T_IMPORTED - T_START
    print(f"  {'imports (pandas, Joe)':<55} {imports:7.2f}")
    # The figure that matters on 2 cores: imports + load + day loop + report (the file split not counted).
    print(f"  {'whole run, wall (imports + total)':<55} {imports + t3 - t0:7.2f}  (goal ≤ 10 s)")
    if args.days:
        whole = (c1 - c0) + cpu_ms / 1e3 * history.panel.n_dates
        print(f"  all {history.panel.n_dates} days at this rate: ~{whole:.0f} s CPU")
    # The machine is shared (2 cores): more than 2 runnable processes means the wall column waited.
    print(f"  load average (1/5/15 min) before {'/'.join(f'{x:.1f}' for x in load_before)}, "
          f"after {'/'.join(f'{x:.1f}' for x in load_after)}")  # fmt: skip
    print(f"  {int(metrics['trades'] or 0)} trades, {len(result.fills)} fills, final equity "
          f"{metrics['final_equity']:.2f}, CAGR {metrics['cagr']}")  # fmt: skip


if __name__ == "__main__":
    main()
