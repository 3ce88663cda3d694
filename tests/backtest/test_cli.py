"""`joe backtest` on the command line: the report folder and every path printed, the user's paper
book untouched, bad options refused with exit 2 and a message naming the option."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from joe.backtest import feed
from joe.cli.main import app


def test_backtest_writes_its_report_and_leaves_the_paper_book_alone(project: Path, market_dir: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["backtest", "--source", f"csv:{market_dir}", "--from", "2021-01-04", "--to", "2021-02-26",
         "--set", "pipeline.max_signals=4"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    folder = Path(lines[0].removeprefix("Backtest: ").strip())
    assert folder.parent == project / "data" / "backtests"
    names = {"report.html", "report.md", "trades.csv", "equity.csv", "metrics.json"}
    assert {Path(x.strip()).name for x in lines[1:]} == names
    assert all((folder / n).is_file() for n in names)
    html = (folder / "report.html").read_text()
    for section in ("Equity", "Drawdown", "Monthly", "Exposure", "Returns per regime", "Trades"):
        assert section in html
    payload = json.loads((folder / "metrics.json").read_text())
    assert payload["options"]["overrides"] == {"pipeline.max_signals": 4}
    for key in ("cagr", "volatility", "sharpe", "sortino", "max_drawdown", "max_drawdown_days", "win_rate",
                "profit_factor", "avg_r_multiple", "turnover", "exposure", "fees"):  # fmt: skip
        assert key in payload["metrics"]
    trades = pd.read_csv(folder / "trades.csv")
    assert len(trades) == payload["metrics"]["trades"] > 0
    assert trades["entry_reason"].str.len().min() > 0 and trades["exit_reason"].str.len().min() > 0
    equity = pd.read_csv(folder / "equity.csv")
    assert equity["date"].iloc[0] == "2021-01-04" and equity["date"].iloc[-1] == "2021-02-26"
    # The scratch book was never the user's: no store, no audit log in the data folder.
    assert not (project / "data" / "joe.db").exists()
    assert not (project / "data" / "audit").exists()


def test_bad_options_are_refused_with_exit_2(project: Path, market_dir: Path) -> None:
    run = CliRunner().invoke
    src = f"csv:{market_dir}"
    cases = {
        ("--set", "risk.max_positionz=3"): "max_positionz",
        ("--set", "risk.max_positions=-1"): "risk.max_positions",
        ("--set", "novalue"): "key=value",
        ("--from", "2021-03-01", "--to", "2021-02-01"): "after --to",
        ("--from", "2031-01-01"): "no trading day",
        ("--from", "01/02/2021"): "--from must be a date",
        ("--walk-forward",): "--sweep",
        ("--sweep", "nowhere.yaml"): "cannot read sweep file",
    }
    for args, words in cases.items():
        res = run(app, ["backtest", "--source", src, *args])
        assert res.exit_code == 2, (args, res.output)
        assert words in res.output.replace("\n", ""), (args, res.output)
    assert not (project / "data" / "backtests").exists()


def test_without_from_it_starts_on_the_first_day_the_regime_can_be_labelled(
    project: Path, market_dir: Path
) -> None:
    res = CliRunner().invoke(app, ["backtest", "--source", f"csv:{market_dir}", "--to", "2020-10-16"])
    assert res.exit_code == 0, res.output
    assert "first day the regime can be labelled" in res.output.replace("\n", " ")
    folder = Path(res.stdout.splitlines()[0].removeprefix("Backtest: ").strip())
    equity = pd.read_csv(folder / "equity.csv")
    assert equity["date"].iloc[0] == "2020-10-07" and equity["date"].iloc[-1] == "2020-10-16"
    assert (equity["regime"].str.len() > 0).all()


def test_a_window_with_no_usable_day_says_why(project: Path, market_dir: Path) -> None:
    """'no trading day between None and 2020-03-01: the data covers 2020-01-02 to 2020-03-01' named a
    window full of data days and printed None for an option not given: it says the regime is the reason
    (the data is read up to --to, and 2020-01-02 .. 2020-02-28 is too short to label it)."""
    run = CliRunner().invoke
    src = f"csv:{market_dir}"
    res = run(app, ["backtest", "--source", src, "--to", "2020-03-01"])
    assert res.exit_code == 2, res.output
    out = res.output.replace("\n", " ")
    assert "None" not in out and "the data's first day" in out
    assert "on which the regime can be labelled (on none of the data's days: it needs ~200 bars" in out
    res = run(app, ["backtest", "--source", src, "--from", "2031-01-01"])
    assert res.exit_code == 2 and "None" not in res.output and "no trading day" in res.output
    assert not (project / "data" / "backtests").exists()


def _die(history: object, config: object, row: int) -> object:
    os._exit(3)  # the analysis worker process crashes: no message, no traceback


def test_a_dead_analysis_worker_is_one_clear_line_and_exit_1(
    project: Path, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "market_of_day", _die)  # the forked worker inherits it
    res = CliRunner().invoke(
        app, ["backtest", "--source", f"csv:{market_dir}", "--from", "2021-01-04", "--to", "2021-01-29"]
    )
    assert res.exit_code == 1, res.output
    out = res.output.replace("\n", " ")
    assert "Failed: the backtest's analysis worker process" in out and "exit code 3" in out, out
    assert "--workers 1" in out and not isinstance(res.exception, feed.WorkerError)
    assert not (project / "data" / "backtests").exists()


def test_an_invalid_config_file_is_refused_not_replaced_by_the_defaults(
    project: Path, market_dir: Path
) -> None:
    # A typo'd key used to drop the whole file: the backtest ran on the defaults and exited 0.
    cfg = project / "config" / "execution.yaml"
    cfg.write_text(cfg.read_text() + "\nrisk:\n  max_positions: 3\n  max_positon: 4\n")
    res = CliRunner().invoke(app, ["backtest", "--source", f"csv:{market_dir}", "--to", "2020-10-16"])
    assert res.exit_code == 2, res.output
    out = res.output.replace("\n", "")
    assert "Invalid config" in out and "max_positon" in out and "nothing was run" in out
    assert not (project / "data" / "backtests").exists()


def test_a_set_value_that_is_a_credential_is_masked_in_the_report(
    project: Path, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "capkeySECRET999"
    monkeypatch.setenv("CAPITAL_API_KEY", secret)
    res = CliRunner().invoke(
        app,
        ["backtest", "--source", f"csv:{market_dir}", "--from", "2020-10-07", "--to", "2020-10-16",
         "--set", f"live.track_record_override.reason={secret}"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    folder = Path(res.stdout.splitlines()[0].removeprefix("Backtest: ").strip())
    for f in folder.iterdir():
        assert secret not in f.read_text(errors="replace"), f.name
    assert secret not in res.output
