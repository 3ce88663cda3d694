"""Issue 17: no look-ahead. A backtest's results up to day D are identical whether the data ends at D
or months later (same fills, same equity each day, same regimes) — the precomputed indicators and
regime history are causal, each day's analysis sees only the panel cut at its as-of row, and the
data-quality stage's verdicts (split adjustments, outliers) found after D do not reach back to D."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig

START, CUT, LATER = date(2020, 11, 2), date(2021, 1, 15), date(2021, 4, 7)


def _fills(result: object, upto: date) -> list[tuple[object, ...]]:
    return [
        (f.ts.date(), f.symbol, f.side.value, f.quantity, f.price)
        for f in result.fills  # type: ignore[attr-defined]
        if f.ts.date() <= upto
    ]


def test_results_up_to_d_do_not_depend_on_later_data(market_dir: Path) -> None:
    cfg = ExecutionConfig()
    source = f"csv:{market_dir}"
    short = run_on_history(load_history_sync(source, cfg, end=CUT), cfg, BacktestOptions(source, START, CUT))
    long_history = load_history_sync(source, cfg, end=LATER)
    assert long_history.panel.dates[-1].date() == LATER
    longer = run_on_history(long_history, cfg, BacktestOptions(source, START, LATER))

    prefix = [d for d in longer.days if d.day <= CUT]
    assert len(prefix) == len(short.days) > 40
    assert prefix == short.days  # equity, cash, exposure, positions, regime, signals each day
    assert _fills(longer, CUT) == _fills(short, CUT)
    assert len(_fills(short, CUT)) >= 10
    assert len(longer.fills) > len(short.fills)  # the later data did trade: the comparison means something


SPLIT_DAY, OUTLIER_DAY = date(2021, 2, 16), date(2021, 3, 1)


def _edit_after(folder: Path, symbol: str, day: date, price_factor: float, volume_factor: float) -> None:
    """From `day` on, the symbol's prices × `price_factor` and volume × `volume_factor` (a 2-for-1 split:
    0.5 and 2; a lasting jump: a factor and 1)."""
    path = folder / f"{symbol}.csv"
    df = pd.read_csv(path)
    after = pd.to_datetime(df["date"]).dt.date >= day
    df.loc[after, ["open", "high", "low", "close"]] *= price_factor
    df.loc[after, "volume"] *= volume_factor
    df.round(4).to_csv(path, index=False)


def test_a_split_or_outlier_after_d_changes_nothing_up_to_d(market_dir: Path, tmp_path: Path) -> None:
    """The data-quality stage adjusts bars before a split and flags outliers; found after D, neither
    may change what the days up to D saw (the replay loads the market again up to the day before it)."""
    cfg = ExecutionConfig()
    short = run_on_history(
        load_history_sync(f"csv:{market_dir}", cfg, end=CUT),
        cfg,
        BacktestOptions(f"csv:{market_dir}", START, CUT),
    )
    traded = Counter(f.symbol for f in short.fills).most_common(1)[0][0]  # the split must matter
    folder = tmp_path / "prices"
    shutil.copytree(market_dir, folder)
    _edit_after(folder, traded, SPLIT_DAY, 0.5, 2.0)
    other = next(s for s in ("S00", "S05", "S10", "S15") if s != traded)  # quiet symbols: a clear outlier
    _edit_after(folder, other, OUTLIER_DAY, 1.2, 1.0)
    source = f"csv:{folder}"
    history = load_history_sync(source, cfg, end=LATER)
    found = {(f.symbol, f.check, f.date) for f in history.snap.quality.findings}
    assert (traded, "split", SPLIT_DAY.isoformat()) in found
    assert (other, "outlier", OUTLIER_DAY.isoformat()) in found
    # The whole history's quality stage did change the past: the traded symbol's bars before the split
    # are halved there, so replaying day D on it would be look-ahead.
    j, t = history.panel.col(traded), int(history.panel.dates.searchsorted(pd.Timestamp(CUT, tz="UTC")))
    assert history.earlier is not None
    k = history.earlier.panel.col(traded)
    assert history.panel.close[t, j] * 2 == pytest.approx(history.earlier.panel.close[t, k])

    longer = run_on_history(history, cfg, BacktestOptions(source, START, LATER))
    assert [d for d in longer.days if d.day <= CUT] == short.days
    assert _fills(longer, CUT) == _fills(short, CUT)
    assert any(f.symbol == traded for f in longer.fills if f.ts.date() >= SPLIT_DAY) or len(
        longer.fills
    ) > len(short.fills)
