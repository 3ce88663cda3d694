"""Issue 17: sweeps and walk-forward on Dask. A small sweep on a 2-worker `LocalCluster` gives exactly
the serial run's results; walk-forward picks each window's best in-sample set and reports that set's
out-of-sample result (checked against a direct backtest of the same window)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from joe.backtest.loading import load_history_sync
from joe.backtest.precompute import History
from joe.backtest.runner import BacktestOptions
from joe.backtest.sweep import (
    SweepError,
    dask_mapper,
    load_spec,
    run_point,
    serial_mapper,
    sweep,
    walk_forward,
)
from joe.backtest.sweep_report import pair_tables, write_sweep_report
from joe.config.schema import ExecutionConfig

SWEEP = """\
mode: grid
metric: sharpe
parameters:
  pipeline.max_signals: [1, 4]
  risk.max_positions: [3, 8]
walk_forward:
  in_sample: 20
  out_of_sample: 10
"""


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def history(market_dir: Path) -> History:
    return load_history_sync(f"csv:{market_dir}", ExecutionConfig(), end=date(2021, 3, 31))


def _spec(tmp_path: Path, text: str = SWEEP) -> Path:
    p = tmp_path / "sweep.yaml"
    p.write_text(text)
    return p


@pytest.mark.timeout(600)
def test_sweep_on_a_two_worker_cluster_equals_the_serial_run(
    tmp_path: Path, market_dir: Path, history: History, client: object
) -> None:
    cfg = ExecutionConfig()
    spec = load_spec(_spec(tmp_path), cfg)
    assert len(spec.points) == 4
    base = BacktestOptions(f"csv:{market_dir}", date(2021, 1, 4), date(2021, 2, 26))
    on_dask = sweep(spec, base, dask_mapper(client, history, cfg))
    serial = sweep(spec, base, serial_mapper(history, cfg))
    pd.testing.assert_frame_equal(on_dask, serial)
    assert serial["trades"].nunique() > 1  # the parameters change the result: the sweep means something
    assert len(client.scheduler_info()["workers"]) == 2  # type: ignore[attr-defined]
    paths = write_sweep_report(tmp_path / "out", serial, spec.keys, spec.metric)
    assert all(p.is_file() for p in paths)
    (a, b, pivot), *_ = pair_tables(serial, spec.keys, "sharpe")
    assert (a, b) == ("pipeline.max_signals", "risk.max_positions") and pivot.shape == (2, 2)


@pytest.mark.timeout(600)
def test_a_sweep_point_equals_the_serial_backtest_with_set(tmp_path: Path, market_dir: Path) -> None:
    """Hostile review: a sweep point must give what `joe backtest --set key=value` gives — that one
    loads the data with its overrides, a sweep loads once. Over keys of several sections (random draws),
    each row equals a backtest on data loaded with that point applied; the keys that act while loading
    are refused instead (tests/backtest/test_sweep_checks.py)."""
    from joe.backtest.overrides import apply_overrides
    from joe.backtest.report import result_metrics
    from joe.backtest.runner import run_on_history

    cfg = ExecutionConfig()
    text = (
        "mode: random\nsamples: 3\nseed: 5\nparameters:\n"
        "  pipeline.top_n: [2, 20]\n  pipeline.min_score: {low: 40.0, high: 70.0}\n"
        "  risk.risk_per_trade_pct: {low: 0.2, high: 2.0}\n  paper.slippage_bps: [0, 10]\n"
        "  pipeline.atr_stop_multiple: [1.5, 3.0]\n  risk.max_positions: {low: 2, high: 12}\n"
    )
    spec = load_spec(_spec(tmp_path, text), cfg)
    base = BacktestOptions(f"csv:{market_dir}", date(2021, 1, 4), date(2021, 2, 26))
    loaded = load_history_sync(base.source, cfg, end=base.end)  # as `joe backtest --sweep` loads
    table = sweep(spec, base, serial_mapper(loaded, cfg))
    for point, row in zip(spec.points, table.to_dict(orient="records"), strict=True):
        one = apply_overrides(cfg, point)  # `joe backtest --set ...`: the load sees the overrides too
        history = load_history_sync(base.source, one, start=base.start, end=base.end)
        direct = result_metrics(run_on_history(history, one, base, workers=1))
        got = {k: None if pd.isna(row[k]) else row[k] for k in direct}  # a table has NaN for None
        assert got == direct, point
    assert table["total_return"].nunique() > 1  # the parameters change the result


@pytest.mark.timeout(600)
def test_walk_forward_picks_the_best_in_sample_set_and_reports_it_out_of_sample(
    tmp_path: Path, market_dir: Path, history: History, client: object
) -> None:
    cfg = ExecutionConfig()
    spec = load_spec(_spec(tmp_path), cfg)
    base = BacktestOptions(f"csv:{market_dir}", date(2021, 1, 4), date(2021, 3, 12))
    all_in, best = walk_forward(spec, history, base, dask_mapper(client, history, cfg))
    assert len(best) >= 2
    for row in best.to_dict(orient="records"):
        ins = all_in[all_in["window"] == row["window"]]
        assert row["in_sample_sharpe"] == ins["sharpe"].max()
        point = {k: row[f"param:{k}"] for k in spec.keys}
        start, end = (date.fromisoformat(x) for x in row["out_of_sample"].split(" to "))
        direct = run_point(history, cfg, BacktestOptions(base.source, start, end), point)
        assert row["oos_total_return"] == direct["total_return"]
        assert row["oos_trades"] == direct["trades"]


def test_bad_sweep_files_are_named(tmp_path: Path) -> None:
    cfg = ExecutionConfig()
    cases = {
        "parameters: {}\n": "parameters",
        "parameters:\n  risk.max_positionz: [1]\n": "max_positionz",
        "parameters:\n  risk.max_positions: [-1]\n": "risk.max_positions",
        "mode: sideways\nparameters:\n  risk.max_positions: [1]\n": "grid or random",
        "parameters:\n  risk.max_positions: 3\n": "non-empty list",
        "parameters: [\n": "not valid YAML",
    }
    for text, words in cases.items():
        with pytest.raises(SweepError, match=r"sweep\.yaml") as exc:
            load_spec(_spec(tmp_path, text), cfg)
        assert words in str(exc.value)
    with pytest.raises(SweepError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml", cfg)


def test_random_search_is_seeded(tmp_path: Path) -> None:
    text = "mode: random\nsamples: 5\nseed: 3\nparameters:\n  risk.max_positions: {low: 2, high: 9}\n"
    a = load_spec(_spec(tmp_path, text), ExecutionConfig()).points
    b = load_spec(_spec(tmp_path, text), ExecutionConfig()).points
    assert a == b and len(a) == 5 and all(2 <= p["risk.max_positions"] <= 9 for p in a)


def test_an_unknown_metric_is_refused_before_any_backtest_runs(tmp_path: Path) -> None:
    """Hostile review 2026-12-02: `metric: bogus` (or a typo such as `sharp`) ran every backtest of the sweep,
    then died with a KeyError traceback writing the heat maps; under --walk-forward every set scored -inf,
    so the "best" in-sample set was silently the first one."""
    text = "metric: sharp\nparameters:\n  risk.max_positions: [3, 8]\n"
    with pytest.raises(SweepError, match=r"sweep\.yaml: metric 'sharp' is not a backtest metric") as exc:
        load_spec(_spec(tmp_path, text), ExecutionConfig())
    assert "sharpe" in str(exc.value) and "total_return" in str(exc.value)
    for metric in ("sharpe", "cagr", "max_drawdown", "total_return"):
        spec = load_spec(_spec(tmp_path, text.replace("sharp", metric)), ExecutionConfig())
        assert spec.metric == metric


def test_walk_forward_windows_start_where_the_regime_can_be_labelled(
    history: History, market_dir: Path
) -> None:
    """With no --from (or one at the data's first day) the first in-sample window was the data's first
    days, before the regime can be labelled: its backtest had no day and `joe backtest --walk-forward`
    stopped with 'no trading day between <first day> and <end>: the data covers <first day> to ...'."""
    from joe.backtest.sweep import WalkForward, windows

    ready = history.panel.dates[history.first_regime_row()].date()
    assert ready > history.panel.dates[0].date()  # the data starts before the regime can be labelled
    wf = WalkForward(in_sample=20, out_of_sample=10)
    wins = windows(history, BacktestOptions(f"csv:{market_dir}", None, None), wf)
    assert wins[0][0] == ready
    days = [d.date() for d in history.panel.dates]
    for a, b, c, d in wins:
        assert days.index(b) - days.index(a) + 1 == wf.in_sample  # every in-sample window is whole
        assert days.index(c) == days.index(b) + 1 and c <= d
