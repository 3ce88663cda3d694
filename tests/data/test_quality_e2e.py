"""Issue 14 end to end: a 4-for-1 split 30 bars before the as-of date is no longer a trend SHORT."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from test_data_quality import ohlcv, write_csv

from joe.analysis.panel import Panel
from joe.analysis.pipeline import analyse
from joe.config.schema import ExecutionConfig
from joe.data import open_source
from joe.runtime.market import load_snapshot


def _trend(n: int, seed: int, drift: float, price: float) -> pd.DataFrame:
    df = ohlcv(n, seed=seed, price=price)
    k = np.exp(np.arange(n) * drift)
    df[["open", "high", "low", "close"]] = df[["open", "high", "low", "close"]].mul(k, axis=0)
    return df


def test_a_split_is_not_read_as_a_crash_by_the_pipeline(tmp_path: Path) -> None:
    write_csv(tmp_path, "SPX", _trend(400, 1, 0.0008, 3000))
    for i in range(8):
        write_csv(tmp_path, f"S{i}", _trend(400, 10 + i, 0.0005, 50))
    split = _trend(400, 99, 0.002, 200)
    split.iloc[-30:, :4] /= 4
    split.iloc[-30:, 4] *= 4
    write_csv(tmp_path, "SPLT", split)
    src = open_source(f"csv:{tmp_path}")
    snap = asyncio.run(load_snapshot(src, "all", 500, 400))
    cfg = ExecutionConfig()

    def signals(panel: Panel) -> set[tuple[str, str]]:
        res = analyse(
            panel, snap.spx, snap.vix, {}, cfg, Decimal(100_000), [], None, instruments=snap.instruments
        )
        return {(s.symbol, s.direction.value) for s in res.signals}

    assert ("SPLT", "SHORT") not in signals(snap.panel)
    assert any(f.check == "split" for f in snap.quality.for_symbol("SPLT"))
    # What Joe did before the quality stage, on the same bars: the split read as a crash, a SHORT.
    raw = Panel.from_frames({s: src.history_now(s) for s in snap.panel.symbols})  # type: ignore[attr-defined]
    assert ("SPLT", "SHORT") in signals(raw)
