"""The backtest's import path loads neither the HTML report's charts (matplotlib), nor the SQL store
(SQLAlchemy), nor the alert channels (httpx), nor empyrical/scipy (imported when the metrics are
computed): a backtest writes its own report (`joe.backtest.charts`), keeps its book in a `MemoryStore`
and sends no alert, and those imports were ~2.4 of its ~3.5 s of imports (issue 17). Each check runs in
a fresh interpreter, since this test process has loaded them all long before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
HEAVY = ("matplotlib", "sqlalchemy", "httpx", "empyrical", "scipy")


def _loaded_after(code: str) -> list[str]:
    """The top-level packages among HEAVY that a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    return out.stdout.split()


@pytest.mark.parametrize(
    "code",
    [
        # what bench/backtest_daily500.py imports
        "import joe.backtest.loading, joe.backtest.report, joe.backtest.runner, joe.config.schema",
        # what `joe backtest` imports: the CLI, then the command's own imports
        "import joe.cli.main, joe.cli.backtest_cmd, joe.backtest.engine, joe.backtest.feed, "
        "joe.backtest.overrides, joe.backtest.runner, joe.config.loader, joe.config.settings",
    ],
)
def test_the_backtest_path_imports_no_chart_store_alert_or_scipy_module(code: str) -> None:
    assert _loaded_after(code) == []


def test_a_backtest_day_loop_loads_none_of_them_either(market_dir: Path) -> None:
    """The day loop (settle, the RiskGate's book, trades) reaches the store only through its protocol."""
    code = f"""
from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig
cfg = ExecutionConfig()
history = load_history_sync("csv:{market_dir}", cfg)
first = history.panel.dates[-60].date()
result = run_on_history(history, cfg, BacktestOptions("csv:{market_dir}", first, None), workers=1)
assert len(result.days) >= 40 and result.fills, (len(result.days), len(result.fills))
"""
    assert _loaded_after(code) == []


def test_the_metrics_still_use_empyrical() -> None:
    """Importing empyrical where the metrics are computed: computing them loads it (and only then)."""
    code = """
import pandas as pd
from joe.backtest.metrics import compute_metrics, monthly_returns
eq = pd.Series([100.0, 101.0, 99.0, 102.0] * 8, index=pd.date_range("2024-01-01", periods=32, tz="UTC"))
m = compute_metrics(eq, [], {})
assert m["cagr"] is not None and m["sharpe"] is not None, m
assert not monthly_returns(eq).empty
"""
    assert _loaded_after(code) == ["empyrical", "scipy"]
