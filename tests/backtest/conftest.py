"""Fixtures for backtests: a small deterministic CSV market (20 stocks, SPX, VIX) and a scratch project."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# Fewer bars than a run's analysis window (400): `joe run --once --as-of D` then sees exactly the
# history a backtest sees at D, so the two must agree to the last digit.
DAYS = pd.bdate_range("2020-01-02", periods=330)
N_STOCKS = 20

ENV_TO_CLEAR = ("TRADING_MODE", "JOE_BROKER", "JOE_DB_URL", "JOE_LIVE_CONFIRM", "GEMINI_API_KEY")
CONFIG = "version: 1\npipeline:\n  universe_size: 40\nai:\n  enabled: false\n"


def _bars(rng: np.random.Generator, n: int, start: float, drift: float, vol: float) -> pd.DataFrame:
    r = rng.normal(drift, vol, n)
    close = start * np.exp(np.cumsum(r))
    prev = np.concatenate([[start], close[:-1]])
    open_ = prev * np.exp(rng.normal(0, vol / 3, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, vol / 2, n)))
    volume = rng.integers(800_000, 2_000_000, n).astype(float)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}).round(4)


def write_market(folder: Path, days: pd.DatetimeIndex = DAYS, seed: int = 7) -> Path:
    """CSV files (one per symbol) of a trending, volatile market; returns the folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(days)
    for i in range(N_STOCKS):
        drift = (0.0015, -0.0008, 0.0005, 0.0)[i % 4]
        df = _bars(rng, n, 20 + 5 * i, drift, 0.012 + 0.002 * (i % 5))
        df.insert(0, "date", days.strftime("%Y-%m-%d"))
        df.to_csv(folder / f"S{i:02d}.csv", index=False)
    spx = _bars(rng, n, 3000, 0.0004, 0.009)
    spx.insert(0, "date", days.strftime("%Y-%m-%d"))
    spx.to_csv(folder / "SPX.csv", index=False)
    vix = pd.DataFrame(
        {"date": days.strftime("%Y-%m-%d"), "close": (16 + 4 * np.sin(np.arange(n) / 20)).round(2)}
    )
    vix.to_csv(folder / "VIX.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def market_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_market(tmp_path_factory.mktemp("bt-market") / "prices")


@pytest.fixture(scope="session")
def market_writer() -> Callable[..., Path]:
    """`write_market` itself, for a test that needs the market on other days."""
    return write_market


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch folder as cwd with JOE_DATA_DIR and JOE_CONFIG pointing inside it."""
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "execution.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "config" / "execution.yaml"))
    yield tmp_path
