"""A sweep's report masks secrets as a single backtest's `metrics.json` does: a swept value that is an
environment credential, and any value swept under a secret-looking key, never reach sweep.csv,
heatmaps.html (its tables and its heat maps' labels) or the walk-forward tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from joe.audit.redaction import register_secret
from joe.backtest import sweep_report


def test_a_swept_credential_is_masked_in_every_file_of_the_sweep_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sweepSECRET-5c1e9a77d2"
    register_secret(secret)
    labels: list[str] = []

    def heatmap(pivot: pd.DataFrame, ylabel: str, xlabel: str, metric: str) -> str:
        labels.extend(map(str, [*pivot.index, *pivot.columns]))
        return ""

    monkeypatch.setattr(sweep_report, "_heatmap", heatmap)
    table = pd.DataFrame(
        {
            "param:ai.model": [secret, f"x-{secret}", "gemini"],
            "param:brokers.capital.api_key": ["k1", "k2", "k3"],
            "sharpe": [0.1, 0.2, 0.3],
        }
    )
    best = pd.DataFrame({"window": [1], "param:ai.model": [secret], "oos_sharpe": [0.2]})
    all_in: Any = table.assign(window=1)
    paths = sweep_report.write_sweep_report(
        tmp_path / "s", table, ["ai.model", "brokers.capital.api_key"], "sharpe", (all_in, best)
    )
    assert len(paths) == 4 and labels
    for p in paths:
        text = p.read_text()
        assert secret not in text and "k2" not in text, p.name
        assert "***" in text, p.name
    assert not any(secret in label for label in labels)
