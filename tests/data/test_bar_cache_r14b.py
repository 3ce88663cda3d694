"""Issue 14, r14b #6: the bar cache never joins bars of two adjustments, and a foreign file is refetched."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.data.cache import BarCache, CachedHistory

IDX = pd.bdate_range("2023-01-02", periods=120, tz="UTC").rename("ts")


def _bars(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(IDX))))
    return pd.DataFrame(
        {
            "open": c,
            "high": c * 1.01,
            "low": c * 0.99,
            "close": c,
            "volume": rng.integers(1e5, 2e5, len(IDX)),
        },
        index=IDX,
    ).astype("float64")


class Broker:
    """A broker serving history up to `day`, back-adjusted by `factor` before `split_at` once it passed."""

    name = "fake"

    def __init__(self, truth: pd.DataFrame) -> None:
        self.truth, self.day, self.split_at, self.factor = truth, IDX[-1], None, 1.0
        self.requests = 0

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        self.requests += 1
        df = self.truth.loc[: self.day].copy()
        if self.split_at is not None and self.day >= self.split_at:
            before = df.index < self.split_at
            df.loc[before, ["open", "high", "low", "close"]] /= self.factor
            df.loc[before, "volume"] *= self.factor
        return df if start is None else df.loc[df.index >= pd.Timestamp(start)]


@settings(max_examples=25, deadline=None)
@given(factor=st.sampled_from([2.0, 3.0, 1.5, 4.0, 0.1, 1 / 1.02]), k=st.integers(1, 20))
def test_a_broker_adjustment_after_caching_refetches_the_whole_history(
    tmp_path_factory: pytest.TempPathFactory, factor: float, k: int
) -> None:
    """Run 1 caches the bars; the stock splits `k` bars later (prices ÷ factor on from then, which the
    broker serves back-adjusted); run 2's small request sees the cached bars rescaled: the cache is
    dropped and the history fetched again, so what Joe reads equals the broker's history exactly."""
    truth = _bars()
    split_at = IDX[-k]
    truth.loc[truth.index >= split_at, ["open", "high", "low", "close"]] /= factor
    broker = Broker(truth)
    broker.split_at, broker.factor = split_at, factor
    ch = CachedHistory(broker, BarCache(tmp_path_factory.mktemp("cache")))  # type: ignore[arg-type]
    broker.day = IDX[-k - 1]
    asyncio.run(ch.history("X"))
    broker.day = IDX[-1]
    got = asyncio.run(ch.history("X"))
    want = asyncio.run(broker.history("X"))
    pd.testing.assert_frame_equal(got, want, check_freq=False, check_names=False)
    assert ch.requests == 3  # run 1, run 2's small one, and the full refetch


def test_a_correction_of_one_recent_bar_is_merged_without_a_refetch(tmp_path: Path) -> None:
    truth = _bars()
    broker = Broker(truth)
    ch = CachedHistory(broker, BarCache(tmp_path))  # type: ignore[arg-type]
    broker.day = IDX[-5]
    asyncio.run(ch.history("X"))
    truth.loc[IDX[-5], "close"] *= 1.01  # a late print corrects the last cached bar
    broker.day = IDX[-1]
    got = asyncio.run(ch.history("X"))
    assert ch.requests == 2 and got.loc[IDX[-5], "close"] == truth.loc[IDX[-5], "close"]
    pd.testing.assert_frame_equal(got, truth, check_freq=False, check_names=False)


@pytest.mark.parametrize(
    "label", ["naive index", "ts as a column", "string prices", "int prices", "unsorted", "no volume column"]
)
def test_a_cache_file_the_cache_did_not_write_is_refetched(tmp_path: Path, label: str) -> None:
    raw = _bars()
    bad = {
        "naive index": raw.tz_localize(None),
        "ts as a column": raw.reset_index(),
        "string prices": raw.astype(str),
        "int prices": raw.round().astype("int64"),
        "unsorted": raw.iloc[::-1],
        "no volume column": raw.drop(columns="volume"),
    }[label]
    cache = BarCache(tmp_path)
    p = cache.path("fake", "X", "1d")
    p.parent.mkdir(parents=True)
    bad.to_parquet(p)
    broker = Broker(raw)
    got = asyncio.run(CachedHistory(broker, cache).history("X", "1d"))  # type: ignore[arg-type]
    assert broker.requests == 1
    pd.testing.assert_frame_equal(got, raw, check_freq=False, check_names=False)
    assert cache.load("fake", "X", "1d") is not None  # rewritten as the cache writes it
