"""A backtest's output: the equity curve starts from the starting cash before day one (so day one's costs
are a loss), the report root is checked before any work, two runs never share a report folder and each
report holds what reproduces it, Ctrl-C says where it stopped, and the report shows money and percentages
as such."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import empyrical
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from joe.backtest import runner
from joe.backtest.engine import BacktestResult, DayRecord
from joe.backtest.loading import load_history_sync
from joe.backtest.report import result_metrics, write_report
from joe.backtest.runner import (
    BacktestOptions,
    OutputDirError,
    backtest_id,
    check_out_root,
    make_report_dir,
    run_backtest,
    run_on_history,
)
from joe.cli.main import app
from joe.config.schema import ExecutionConfig

DAY = date(2021, 1, 4)  # a Monday of the test market (conftest.DAYS); the trading day before: 2021-01-01
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _day(day: date, equity: float, regime: str = "bull") -> DayRecord:
    return DayRecord(day, equity, equity, 0.5, 2, regime, 3, 2, 0)


def _result(*days: DayRecord, fees: float = 0.0, opening: date | None = None) -> BacktestResult:
    return BacktestResult(list(days), [], 0, {}, 1000.0, fees, 100_000.0, opening_day=opening)


# --- 1. the curve starts with the starting cash -------------------------------------------------


def test_one_day_of_fees_is_a_negative_total_return() -> None:
    # Day one: 10 positions opened, 24.62 of costs: the book ends the day at 99,975.38.
    m = result_metrics(_result(_day(DAY, 99_975.38), fees=24.62, opening=date(2020, 12, 31)))
    assert m["starting_equity"] == 100_000.0 and m["final_equity"] == 99_975.38
    assert m["total_return"] == pytest.approx(-0.0002462)
    assert (m["start"], m["end"], m["days"], m["starting_equity_at"]) == (
        "2021-01-04",
        "2021-01-04",
        1,
        "2020-12-31",
    )
    assert m["cagr"] is None  # one day: no CAGR ((0.99975) ** 252 − 1 is not a growth rate)
    assert m["max_drawdown"] == pytest.approx(-0.0002462)
    assert m["max_drawdown_peak"] == "2020-12-31" and m["max_drawdown_trough"] == "2021-01-04"


def test_without_an_opening_day_the_curve_starts_the_business_day_before() -> None:
    eq = _result(_day(DAY, 101_000.0), _day(date(2021, 1, 5), 99_990.0)).equity()
    assert list(eq) == [100_000.0, 101_000.0, 99_990.0]
    assert eq.index[0] == pd.Timestamp("2021-01-01")


def test_day_one_counts_in_every_return_metric_as_empyrical_computes_it() -> None:
    values = [100_500.0, 99_000.0, 99_800.0, 102_000.0, 101_000.0]
    days = pd.bdate_range("2021-01-04", periods=len(values))
    result = _result(*(_day(d.date(), v) for d, v in zip(days, values, strict=True)))
    m = result_metrics(result)
    returns = pd.Series(np.diff([100_000.0, *values]) / np.array([100_000.0, *values[:-1]]), index=days)
    assert m["days"] == len(returns) == 5
    assert m["total_return"] == pytest.approx(101_000 / 100_000 - 1)
    assert m["cagr"] is None  # 5 days: too short (test_sweep_ux checks day one counts in a 21-day CAGR)
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(returns, period="daily"))
    assert m["volatility"] == pytest.approx(empyrical.annual_volatility(returns, period="daily"))
    assert m["max_drawdown"] == pytest.approx(empyrical.max_drawdown(returns))
    assert m["max_drawdown"] == pytest.approx(99_000 / 100_500 - 1)


@pytest.mark.timeout(300)
def test_a_one_day_backtest_reports_its_costs_as_a_loss(market_dir: Path) -> None:
    cfg = ExecutionConfig()
    source = f"csv:{market_dir}"
    history = load_history_sync(source, cfg, end=DAY)
    result = run_on_history(history, cfg, BacktestOptions(source, DAY, DAY), workers=1)
    assert [d.day for d in result.days] == [DAY] and result.days[0].opened > 0 and result.fees > 0
    assert result.opening_day == date(2021, 1, 1)  # the data's trading day before (bdate calendar)
    m = result_metrics(result)
    assert m["starting_equity"] == float(cfg.paper.starting_cash) == 100_000.0
    assert m["final_equity"] == pytest.approx(result.days[0].equity) and m["final_equity"] < 100_000.0
    assert m["total_return"] == pytest.approx(result.days[0].equity / 100_000 - 1) and m["total_return"] < 0
    # Marked at the fills' own close, day one's loss is the costs: at least the commissions.
    assert 100_000 - m["final_equity"] >= result.fees - 1e-9


# --- 2. the report root is checked before any work ----------------------------------------------


def test_report_roots_that_cannot_take_a_report_are_refused(tmp_path: Path) -> None:
    afile = tmp_path / "a_file"
    afile.write_text("x")
    with pytest.raises(OutputDirError, match="is a file"):
        check_out_root(afile)
    with pytest.raises(OutputDirError, match="is a file"):
        check_out_root(afile / "sub" / "deeper")
    if Path("/proc").is_dir():
        with pytest.raises(OutputDirError, match="cannot create a report folder in /proc"):
            check_out_root(Path("/proc/nope"))
    check_out_root(tmp_path / "new" / "deep")  # creatable: accepted, and not created
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_report_root_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(OutputDirError, match="cannot create"):
            check_out_root(locked / "out")
    finally:
        locked.chmod(0o700)


def test_a_bad_out_is_refused_with_exit_2_before_the_replay(
    project: Path, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*a: Any, **k: Any) -> None:
        raise AssertionError("the backtest ran")

    monkeypatch.setattr(runner, "load_history_sync", no_work)
    afile = project / "a_file"
    afile.write_text("x")
    for out, words in ((afile, "is a file"), (afile / "sub", "is a file"), (Path("/proc/nope"), "/proc")):
        if not Path("/proc").is_dir() and str(out).startswith("/proc"):
            continue
        res = CliRunner().invoke(app, ["backtest", "--source", f"csv:{market_dir}", "--out", str(out)])
        assert res.exit_code == 2, res.output
        text = res.output.replace("\n", "")
        assert "Bad --out" in text and words in text and "Traceback" not in text, res.output
    assert not (project / "data" / "backtests").exists()


# --- 3. one folder per report, and what reproduces it --------------------------------------------


def test_racing_runs_never_share_a_report_folder(tmp_path: Path) -> None:
    got: list[Path] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        folder = make_report_dir(tmp_path / "root", "bt-20260102-030405-abcdef")
        with lock:
            got.append(folder)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(p.name for p in got)
    assert len(set(names)) == 8
    assert names[0] == "bt-20260102-030405-abcdef" and "bt-20260102-030405-abcdef-8" in names


def test_the_id_changes_with_the_effective_config() -> None:
    opts = BacktestOptions("sample")
    cfg = ExecutionConfig()
    other = cfg.model_copy(
        update={"paper": cfg.paper.model_copy(update={"spread_bps": cfg.paper.spread_bps + 1})}
    )
    assert backtest_id(opts, NOW, cfg) == backtest_id(opts, NOW, ExecutionConfig())
    assert backtest_id(opts, NOW, cfg) != backtest_id(opts, NOW, other)
    assert backtest_id(opts, NOW, cfg) != backtest_id(opts, NOW, cfg, b"sweep file")
    assert backtest_id(opts, NOW, cfg).startswith("bt-20260102-030405-")


@pytest.mark.timeout(300)
def test_two_runs_in_the_same_second_keep_both_reports(market_dir: Path, tmp_path: Path) -> None:
    opts = BacktestOptions(f"csv:{market_dir}", DAY, DAY)
    cfg = ExecutionConfig()
    a = run_backtest(opts, cfg, tmp_path, now=NOW, workers=1)
    b = run_backtest(opts, cfg, tmp_path, now=NOW, workers=1)
    assert a.paths.dir != b.paths.dir and b.paths.dir.name == f"{a.paths.dir.name}-2"
    assert a.id == a.paths.dir.name and b.id == b.paths.dir.name
    for outcome in (a, b):
        assert all(p.is_file() for p in outcome.paths.all())
    payload = json.loads(a.paths.metrics.read_text())
    again = json.loads(b.paths.metrics.read_text())
    assert payload["metrics"] == again["metrics"]  # the second did not overwrite, nor differ from, the first
    rep = payload["reproduce"]
    assert ExecutionConfig.model_validate(rep["config"]) == cfg  # the effective config, whole
    assert rep["config_sha256"] == runner.config_digest(cfg)
    assert rep["code"]["joe"] and set(rep["code"]) == {"joe", "git_commit", "git_dirty"}
    assert payload["options"]["start"] == payload["options"]["end"] == DAY.isoformat()


def test_the_recorded_config_has_no_secrets() -> None:
    cfg = ExecutionConfig()
    brokers = cfg.brokers.model_copy(
        update={"capital": cfg.brokers.capital.model_copy(update={"account_id": "ACC-12345"})}
    )
    record = json.dumps(runner.config_record(cfg.model_copy(update={"brokers": brokers})))
    assert "ACC-12345" not in record


# --- 4. Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_says_on_which_day_and_exits_130(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(opts: Any, config: Any, root: Path, *, progress: Any, workers: int) -> None:
        progress(1, 5, date(2021, 1, 4))
        progress(2, 5, date(2021, 1, 5))
        raise KeyboardInterrupt  # what asyncio.run raises after cancelling the replay on SIGINT

    monkeypatch.setattr(runner, "run_backtest", interrupted)
    res = CliRunner().invoke(app, ["backtest", "--from", "2021-01-04", "--to", "2021-01-08"])
    assert res.exit_code == 130
    assert res.output.strip().splitlines()[-1] == "backtest interrupted on day 3 of 5; nothing written"
    assert "Traceback" not in res.output and "Aborted" not in res.output
    assert not (project / "data" / "backtests").exists()


def test_ctrl_c_while_writing_the_report_leaves_no_folder(
    market_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from joe.backtest import report

    def stop(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", stop)
    with pytest.raises(KeyboardInterrupt):
        run_backtest(BacktestOptions(f"csv:{market_dir}", DAY, DAY), ExecutionConfig(), tmp_path, workers=1)
    assert list(tmp_path.iterdir()) == []


# --- 5. presentation ---------------------------------------------------------------------------


def test_the_report_shows_money_and_percentages(tmp_path: Path) -> None:
    days = [_day(date(2021, 1, 4), 99_947.43, "bull"), _day(date(2021, 1, 5), 125_411.2, "bear")]
    paths, metrics = write_report(_result(*days, fees=52.57), tmp_path / "r", "t", {})
    md, page = paths.markdown.read_text(), paths.html.read_text()
    for text in (md, page):
        assert "e+0" not in text and "e-0" not in text
        assert "100,000.00" in text and "125,411.20" in text and "52.57" in text
        assert f"{metrics['total_return'] * 100:.2f}%" == "25.41%" and "25.41%" in text
    regimes = md.split("## Returns per regime")[1].split("##")[0]
    # Day one under day one's regime, day two under the regime of day one's close: both bull.
    assert "| bull | 2 | 25.41% |" in regimes and "bear" not in regimes
