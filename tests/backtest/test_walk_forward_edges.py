"""Walk-forward windows too short for the metric it ranks by: no set has the metric in sample, and the
"best" set was silently the first (ties: the first), shown as `best risk.max_positions=1 (sharpe —)`. A
window that cannot have the metric at all (Sharpe, Sortino, volatility from one daily return) is refused
as the CAGR under a month is; a window where no set happens to have it (no closed trade for a win rate)
says that the first set ran, unchosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from joe.backtest import sweep
from joe.backtest.sweep import SweepError, load_spec
from joe.cli import backtest_sweep
from joe.cli.main import app
from joe.config.schema import ExecutionConfig


@pytest.mark.parametrize("metric", ["sharpe", "Sortino", "volatility"])
def test_a_walk_forward_ranking_by_a_ratio_needs_two_days_in_sample(tmp_path: Path, metric: str) -> None:
    p = tmp_path / "sweep.yaml"
    text = f"metric: {metric}\nparameters:\n  risk.max_positions: [1, 10]\n"
    p.write_text(text + "walk_forward: {in_sample: 1, out_of_sample: 2}\n")
    with pytest.raises(
        SweepError, match=rf"metric {metric.lower()} needs walk_forward.in_sample of at least 2"
    ):
        load_spec(p, ExecutionConfig())
    p.write_text(text + "walk_forward: {in_sample: 2, out_of_sample: 2}\n")
    assert load_spec(p, ExecutionConfig()).walk_forward is not None


def test_a_window_where_no_set_has_the_metric_says_the_first_set_ran_unchosen(
    project: Path, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def serial(client: Any, history: Any, config: Any, total: int = 0) -> Any:
        return sweep.serial_mapper(history, config)

    monkeypatch.setattr(sweep, "dask_mapper", serial)  # no cluster: the points run in this process
    monkeypatch.setattr(backtest_sweep, "_local_client", lambda *a: object())
    (project / "wf.yaml").write_text(
        "metric: win_rate\nparameters:\n  risk.max_positions: [1, 2]\n"
        "walk_forward: {in_sample: 1, out_of_sample: 1}\n"
    )
    res = CliRunner().invoke(
        app,
        ["backtest", "--source", f"csv:{market_dir}", "--from", "2020-10-12", "--to", "2020-10-16",
         "--sweep", "wf.yaml", "--walk-forward"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    first = "sweep: 2 parameter set(s) (grid) × 4 walk-forward window(s) = 12 backtests (with each window's "
    assert first in res.output, res.output  # one line: it was cut at 80 columns without a terminal
    lines = [x for x in res.output.splitlines() if x.startswith("window ")]
    assert lines, res.output
    assert not any("(win_rate —)" in x for x in lines), res.output
    unchosen = "no set has a win_rate in sample, so the first ran: risk.max_positions=1"
    assert any(unchosen in x for x in lines), res.output


@pytest.mark.parametrize("values", ["[{max_positions: 1}, {max_positions: 3}]", "[[1, 2]]"])
def test_a_swept_value_that_is_a_mapping_or_a_list_is_refused_before_any_backtest(
    tmp_path: Path, values: str
) -> None:
    """`risk: [{max_positions: 1}, ...]` was accepted, every backtest ran, and writing the heat maps died
    with a TypeError traceback (unhashable type: 'dict'): the whole sweep's work lost."""
    p = tmp_path / "sweep.yaml"
    p.write_text(f"parameters:\n  risk: {values}\n  pipeline.max_signals: [2, 3]\n")
    with pytest.raises(
        SweepError, match=r"parameters: risk: each value must be a single value .*\(risk\.KEY"
    ):
        load_spec(p, ExecutionConfig())
