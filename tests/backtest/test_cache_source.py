"""`--source cache[:SOURCE]`: a backtest on the bar cache a broker run filled equals one on the same
bars given as files; a missing or ambiguous cache is refused with a message saying what to do."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig
from joe.data.cache import BarCache
from joe.data.errors import DataError


def _fill_cache(market_dir: Path, data_dir: Path, source: str) -> None:
    cache = BarCache(data_dir / "cache" / "bars")
    for p in sorted(market_dir.glob("*.csv")):
        df = pd.read_csv(p, parse_dates=["date"]).set_index("date")
        df.index = pd.DatetimeIndex(df.index).tz_localize("UTC")
        for col in ("open", "high", "low"):  # VIX.csv has closes only; a broker's bars have all four
            if col not in df:
                df[col] = df["close"]
        cache.save(source, p.stem, "1d", df)


def test_cache_backtest_equals_the_files_backtest(tmp_path: Path, market_dir: Path) -> None:
    _fill_cache(market_dir, tmp_path, "capital")
    cfg = ExecutionConfig()
    start, end = date(2021, 1, 4), date(2021, 2, 12)
    from_cache = run_on_history(
        load_history_sync("cache", cfg, end=end, data_dir=tmp_path), cfg, BacktestOptions("cache", start, end)
    )
    src = f"csv:{market_dir}"
    from_files = run_on_history(load_history_sync(src, cfg, end=end), cfg, BacktestOptions(src, start, end))
    assert len(from_cache.fills) > 0
    assert sorted((f.ts, f.symbol, f.side, f.quantity, f.price) for f in from_cache.fills) == sorted(
        (f.ts, f.symbol, f.side, f.quantity, f.price) for f in from_files.fills
    )
    assert [d.equity for d in from_cache.days] == [d.equity for d in from_files.days]


def test_cache_problems_say_what_to_do(tmp_path: Path, market_dir: Path) -> None:
    cfg = ExecutionConfig()
    with pytest.raises(DataError, match="holds nothing"):
        load_history_sync("cache", cfg, data_dir=tmp_path)
    _fill_cache(market_dir, tmp_path, "capital")
    _fill_cache(market_dir, tmp_path, "ibkr")
    with pytest.raises(DataError, match=r"several sources \(capital, ibkr\); name one"):
        load_history_sync("cache", cfg, data_dir=tmp_path)
    with pytest.raises(DataError, match="joe run --once --broker nope"):
        load_history_sync("cache:nope", cfg, data_dir=tmp_path)
