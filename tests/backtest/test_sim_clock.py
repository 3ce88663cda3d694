"""Issue 17: in a backtest the RiskGate's order-rate limits read the simulated clock (one simulated day
per replayed day), not the wall clock — with the wall clock a replay that runs in seconds would count
every order of the whole history as sent in the same minute."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig

START, END = date(2020, 11, 2), date(2021, 1, 29)


def test_order_rate_limit_counts_orders_per_simulated_minute(market_dir: Path) -> None:
    cfg = ExecutionConfig()
    source = f"csv:{market_dir}"
    history = load_history_sync(source, cfg, end=END)
    free = run_on_history(history, cfg, BacktestOptions(source, START, END))
    assert max(d.opened for d in free.days) >= 2, "some day must open several positions for the limit to bite"

    limited = run_on_history(
        history, cfg, BacktestOptions(source, START, END, overrides={"risk.max_orders_per_minute": 1})
    )
    opened = [d.opened for d in limited.days]
    assert max(opened) == 1  # the limit holds within a simulated day...
    # ...and every new simulated day is a new minute: entries go on (the wall clock would have refused
    # every entry after the first for the rest of the replay's real minute).
    assert sum(opened) >= 5
