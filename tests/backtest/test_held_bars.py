"""What a backtest day hands `PaperPortfolio.settle_bars` — the held symbols' bars since the last
processed bar and their last closes, read from the panel's arrays — is exactly what `settle` derives
from the symbols' full histories, which is what `joe run --once` hands it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.backtest.loading import load_history_sync
from joe.backtest.precompute import History
from joe.config.schema import ExecutionConfig
from joe.portfolio.replay import bars_between, last_closes


@pytest.fixture(scope="module")
def history(market_dir: Path) -> History:
    h = load_history_sync(f"csv:{market_dir}", ExecutionConfig(), end=date(2021, 3, 31))
    # Holes: a symbol with no bar on some days (halted), so "the last close" reaches back.
    h.panel.close[200:205, 0] = np.nan
    h.panel.close[250, 1] = np.nan
    h.panel.low[230, 2] = np.nan  # a bar missing one price is no bar for the exits
    h.refresh_rows()
    return h


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after=st.integers(-1, 300), gap=st.integers(0, 8), cols=st.sets(st.integers(0, 5), min_size=1))
def test_held_price_bars_equal_settle_on_full_histories(
    history: History, after: int, gap: int, cols: set[int]
) -> None:
    panel = history.panel
    t = min(after + 1 + gap, panel.n_dates - 1)
    if t <= after:
        return
    symbols = {panel.symbols[j] for j in cols}
    full = {s: panel.frame(s) for s in symbols}
    since = None if after < 0 else panel.dates[after].to_pydatetime()
    until = panel.dates[t].to_pydatetime()
    bars, closes = history.held_price_bars(symbols, since, t)
    assert bars == list(bars_between(full, since, until))
    assert closes == last_closes(full, until)
