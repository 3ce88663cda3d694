"""Strategies: worked examples, consistent geometry, and no look-ahead (property test)."""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from joe.analysis.features import Features
from joe.analysis.panel import Panel
from joe.analysis.strategies import (
    Breakout,
    MeanReversion,
    Strategy,
    StrategyParams,
    TrendFollowing,
    default_strategies,
)
from joe.core.models import Direction, Signal

from .synth import random_walk_panel

STRATEGIES: list[Strategy] = default_strategies()


def _single(close: np.ndarray, volume: np.ndarray | None = None, spread: float = 0.01) -> Panel:
    n = len(close)
    dates = pd.bdate_range("2018-01-01", periods=n, tz="UTC")
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    vol = np.full(n, 1e6) if volume is None else volume
    col = lambda a: np.asarray(a, dtype=float).reshape(-1, 1)  # noqa: E731
    return Panel(dates, ["X"], col(open_), col(high), col(low), col(close), col(vol))


def assert_geometry(sig: Signal) -> None:
    if sig.direction is Direction.LONG:
        assert sig.stop_loss < sig.entry < sig.take_profit
    else:
        assert sig.take_profit < sig.entry < sig.stop_loss
    assert sig.stop_loss > 0 and sig.take_profit > 0
    assert 0.0 <= sig.confidence <= 1.0
    if sig.trailing_distance is not None:
        assert sig.trailing_distance > 0
    risk = abs(sig.entry - sig.stop_loss)
    reward = abs(sig.take_profit - sig.entry)
    quantum = Decimal(1).scaleb(sig.entry.as_tuple().exponent)  # type: ignore[arg-type]
    assert abs(reward - 2 * risk) <= quantum / 2
    assert re.search(r"\d", sig.reason)
    assert sig.as_of.tzinfo is not None


def test_breakout_long_on_volume_with_readable_reason() -> None:
    n = 120
    close = 100 + 2 * np.sin(np.arange(n) / 3.0)
    vol = np.full(n, 1e6)
    close[-1], vol[-1] = 108.0, 2.5e6
    p = _single(close, vol)
    sigs = Breakout().generate(p, ["X"], n - 1)
    assert len(sigs) == 1
    s = sigs[0]
    assert s.direction is Direction.LONG and s.strategy == "breakout"
    assert s.entry == Decimal("108.0000")
    assert s.trailing_distance is not None and s.trailing_distance == s.entry - s.stop_loss
    assert "broke the 55-day high" in s.reason and "2.5× average volume" in s.reason
    assert s.signal_id == f"breakout:X:{p.dates[-1].date().isoformat()}:LONG"
    assert_geometry(s)
    # No volume, no breakout.
    vol[-1] = 1e6
    assert Breakout().generate(_single(close, vol), ["X"], n - 1) == []


def test_breakout_short_mirrors() -> None:
    n = 120
    close = 100 + 2 * np.sin(np.arange(n) / 3.0)
    vol = np.full(n, 1e6)
    close[-1], vol[-1] = 92.0, 3e6
    (s,) = Breakout().generate(_single(close, vol), ["X"], n - 1)
    assert s.direction is Direction.SHORT and "55-day low" in s.reason
    assert_geometry(s)


def test_mean_reversion_fades_a_flush() -> None:
    n = 80
    close = 100 + 0.5 * np.sin(np.arange(n) / 2.0)
    close[-3:] = [97.0, 94.0, 91.0]
    (s,) = MeanReversion().generate(_single(close, spread=0.003), ["X"], n - 1)
    assert s.direction is Direction.LONG and s.trailing_distance is None
    assert "below the lower Bollinger band" in s.reason and "RSI" in s.reason
    assert_geometry(s)


def test_trend_following_rides_a_steady_trend_and_its_mirror() -> None:
    n = 150
    rng = np.random.default_rng(5)
    up = 100 * np.exp(np.cumsum(0.004 + rng.normal(0, 0.004, n)))
    (s,) = TrendFollowing().generate(_single(up, spread=0.003), ["X"], n - 1)
    assert s.direction is Direction.LONG and s.trailing_distance is not None
    assert "ADX" in s.reason
    assert_geometry(s)
    down = 100 * np.exp(np.cumsum(-0.004 + rng.normal(0, 0.004, n)))
    (s2,) = TrendFollowing().generate(_single(down, spread=0.003), ["X"], n - 1)
    assert s2.direction is Direction.SHORT
    assert_geometry(s2)


def test_params_drive_the_exit_geometry() -> None:
    n = 120
    close = 100 + 2 * np.sin(np.arange(n) / 3.0)
    vol = np.full(n, 1e6)
    close[-1], vol[-1] = 108.0, 2.5e6
    p = _single(close, vol)
    wide = Breakout(params=StrategyParams(atr_stop_multiple=3.0, reward_risk=2.0)).generate(p, ["X"], n - 1)[
        0
    ]
    tight = Breakout(params=StrategyParams(atr_stop_multiple=1.0, reward_risk=2.0)).generate(p, ["X"], n - 1)[
        0
    ]
    atr = Features(p).atr("X")[-1]
    assert float(wide.entry - wide.stop_loss) == pytest.approx(3 * atr, abs=1e-4)
    assert float(tight.entry - tight.stop_loss) == pytest.approx(atr, abs=1e-4)


def test_every_strategy_fires_on_a_varied_universe_without_look_ahead() -> None:
    """Non-vacuous sweep: each strategy produces signals, all well-formed and look-ahead free."""
    p = random_walk_panel(11, n_dates=320, n_symbols=24, nan_frac=0.02)
    counts = dict.fromkeys((s.name for s in STRATEGIES), 0)
    for t in range(140, 320, 6):
        head = p.head(t + 1)
        for strat in STRATEGIES:
            full = strat.generate(p, p.symbols, t)
            assert full == strat.generate(head, p.symbols, t)
            for s in full:
                assert_geometry(s)
                assert s.as_of == p.dates[t].to_pydatetime()
            counts[strat.name] += len(full)
    assert all(c > 0 for c in counts.values()), counts


@settings(max_examples=40, deadline=None, derandomize=True)
# A low-priced short where rounding once skewed reward/risk (found by hypothesis).
@example(seed=71, n_dates=258, cut_frac=0.8125, nan_frac=0.03, trend=-0.002)
@given(
    seed=st.integers(0, 100_000),
    n_dates=st.integers(130, 260),
    cut_frac=st.floats(0.5, 0.99),
    nan_frac=st.sampled_from([0.0, 0.03]),
    trend=st.sampled_from([-0.002, 0.0, 0.002]),
)
def test_truncating_the_future_leaves_signals_unchanged(
    seed: int, n_dates: int, cut_frac: float, nan_frac: float, trend: float
) -> None:
    p = random_walk_panel(seed, n_dates=n_dates, n_symbols=5, nan_frac=nan_frac, trend=trend)
    t = int(cut_frac * (n_dates - 1))
    head = p.truncate(p.dates[t])
    f_full, f_head = Features(p), Features(head)
    for strat in STRATEGIES:
        full = strat.generate(p, p.symbols, t, f_full)
        part = strat.generate(head, head.symbols, t, f_head)
        assert full == part
        assert [s.reason for s in full] == [s.reason for s in part]
        for s in full:
            assert_geometry(s)
