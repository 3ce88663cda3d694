"""Load and check 500 instruments × 2,000 daily bars from CSV, from Parquet and from the bar cache.

Usage: python bench/data_bench.py [n_symbols] [n_bars]
For each way in, prints the CPU seconds to load (files → validated frames → panel), the seconds the
data-quality stage takes on the panel, the bytes on disk and the process's peak memory (MB). The
quality stage should stay a small share of the load. Synthetic data: random walks with a few planted
problems (a 4-for-1 split, an outlier, a close-only file) so every check has work to do; dates are
NYSE sessions and the quality stage counts that calendar's sessions (stale, missing sessions).
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd

try:
    from _machine import machine
except ImportError:  # run from another folder
    sys.path.insert(0, str(Path(__file__).parent))
    from _machine import machine

from joe.analysis.panel import FIELDS, Panel
from joe.data import open_source
from joe.data.cache import BarCache, CachedHistory
from joe.data.collectors import HistoryCollector
from joe.data.quality import check_bars


def frames(n_sym: int, n_bars: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    # NYSE sessions (holidays left out, as real data has them), so the calendar checks have work to do.
    sessions = xcals.get_calendar("XNYS").sessions
    idx = pd.DatetimeIndex(sessions[sessions >= "2012-01-03"][:n_bars], name="date")
    out = {}
    for i in range(n_sym):
        vol = rng.uniform(0.01, 0.03)
        close = 50 * np.exp(np.cumsum(rng.normal(0.0003, vol, n_bars)))
        open_ = close * np.exp(rng.normal(0, vol / 3, n_bars))
        df = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, n_bars))),
                "low": np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, n_bars))),
                "close": close,
                "volume": rng.lognormal(13, 0.5, n_bars).round(),
            },
            index=idx,
        )
        if i == 1:  # a 4-for-1 split 30 bars before the end
            df.iloc[-30:, :4] /= 4
            df.iloc[-30:, 4] *= 4
        if i == 2:  # an outlier
            df.iloc[-100:, :4] *= 1.4
        if i == 3:  # close only
            df = df[["close"]]
        out[f"S{i:03d}"] = df
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


# CPU seconds of this process (the machine is shared: wall-clock time includes other people's work).
clock = time.process_time


def quality_seconds(panel: Panel) -> tuple[float, int]:
    t0 = clock()
    fields = {f: getattr(panel, f) for f in FIELDS}
    res = check_bars(panel.dates, panel.symbols, fields, calendars=dict.fromkeys(panel.symbols, "XNYS"))
    return clock() - t0, len(res.report.findings)


def from_files(folder: Path, kind: str) -> tuple[float, Panel]:
    t0 = clock()
    src = open_source(f"{kind}:{folder}")
    wide = {f: src.panel(f, None) for f in FIELDS}  # type: ignore[attr-defined]
    panel = Panel(wide["close"].index, list(wide["close"].columns), *(wide[f].to_numpy() for f in FIELDS))
    return clock() - t0, panel


class _Offline:
    """The broker behind the cache: it has nothing newer, so the cache answers (as on a re-run)."""

    name = "bench"

    async def history(self, symbol, timeframe="1d", start=None, end=None):  # type: ignore[no-untyped-def]
        return pd.DataFrame(columns=["open", "high", "low", "close", "volume"], dtype=float)


def from_cache(root: Path, data: dict[str, pd.DataFrame]) -> tuple[float, Panel]:
    cache = BarCache(root)
    for s, df in data.items():
        full = df
        if "open" not in df:
            full = df.assign(open=df["close"], high=df["close"], low=df["close"], volume=np.nan)
        full = full.tz_localize("UTC")
        cache.save("bench", s, "1d", full)
    cached = CachedHistory(_Offline(), cache)  # type: ignore[arg-type]
    t0 = clock()
    got = asyncio.run(HistoryCollector(cached, concurrency=16).collect_symbols(list(data)))
    panel = Panel.from_frames(got.frames)
    return clock() - t0, panel


def main() -> None:
    n_sym = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    n_bars = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    data = frames(n_sym, n_bars)
    tmp = Path(tempfile.mkdtemp(prefix="joe-data-bench-"))
    try:
        csv, pq, cache = tmp / "csv", tmp / "parquet", tmp / "cache"
        csv.mkdir()
        pq.mkdir()
        for s, df in data.items():
            df.reset_index().to_csv(csv / f"{s}.csv", index=False)
            df.to_parquet(pq / f"{s}.parquet")
        print(f"data bench: {n_sym} instruments × {n_bars} daily bars on {machine()}")
        rows = []
        for label, (load_s, panel), folder in (
            ("csv", from_files(csv, "csv"), csv),
            ("parquet", from_files(pq, "parquet"), pq),
            ("cache", from_cache(cache, data), cache),
        ):
            q_s, n_find = quality_seconds(panel)
            rows.append((label, load_s, q_s, n_find, disk_mb(folder), peak_mb()))
        print(
            f"{'source':8} {'load s':>8} {'quality s':>10} {'quality %':>10} {'findings':>9} "
            f"{'disk MB':>8} {'peak MB':>8}   (CPU seconds)"
        )
        for label, load_s, q_s, n_find, disk, peak in rows:
            share = 100 * q_s / (load_s + q_s)
            print(f"{label:8} {load_s:8.2f} {q_s:10.3f} {share:9.1f}% {n_find:9d} {disk:8.1f} {peak:8.0f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
