"""A random sweep's heat maps: every {low, high} draw is a distinct number, and the heat map had one row
and one column per distinct value, so 1,000 samples of two ranges asked matplotlib for a ~90,000 × 54,000
pixel figure (the process was killed for memory after every backtest had run). An axis with more than
`MAX_LEVELS` distinct numbers is now shown in that many ranges; a grid's few values are unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from joe.backtest import sweep_report
from joe.backtest.sweep_report import MAX_LEVELS, pair_tables


def _random_table(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "param:risk.risk_per_trade_pct": rng.uniform(0.5, 2, n).round(6),
            "param:paper.slippage_bps": rng.uniform(0, 20, n).round(6),
            "param:ai.model": rng.choice(["a", "b"], n),
            "sharpe": rng.normal(size=n),
        }
    )


def test_many_distinct_numbers_are_binned_into_a_few_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _random_table(1000)
    keys = ["risk.risk_per_trade_pct", "paper.slippage_bps", "ai.model"]
    shapes = [pivot.shape for _, _, pivot in pair_tables(table, keys, "sharpe")]
    assert shapes == [(MAX_LEVELS, MAX_LEVELS), (MAX_LEVELS, 2), (MAX_LEVELS, 2)]
    drawn: list[tuple[int, int]] = []
    monkeypatch.setattr(sweep_report, "_heatmap", lambda pivot, *a: drawn.append(pivot.shape) or "")
    sweep_report.write_sweep_report(tmp_path / "s", table, keys, "sharpe")
    assert drawn == shapes
    means = pair_tables(table, keys[:1], "sharpe")[0][2]
    assert means.to_numpy().size == MAX_LEVELS and np.isfinite(means.to_numpy()).all()


def test_a_grid_keeps_its_values_as_they_are() -> None:
    table = pd.DataFrame({"param:a": [1, 2, 3, 1, 2, 3], "param:b": [5, 5, 5, 9, 9, 9], "sharpe": range(6)})
    (_, _, pivot) = pair_tables(table, ["a", "b"], "sharpe")[0]
    assert list(pivot.index) == [1, 2, 3] and list(pivot.columns) == [5, 9]
    assert pivot.loc[2, 9] == 4
