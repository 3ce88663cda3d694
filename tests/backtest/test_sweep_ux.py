"""Hostile review of `joe backtest`'s UX: no YAML read last-wins (a key given twice is refused naming the
key, the file and the line), one case rule for enumerated values, no empty `--scheduler`, a walk-forward
cap on the real number of backtests, units and short windows in the metrics, and a quiet Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import date
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from joe.backtest.metrics import MIN_CAGR_DAYS, compute_metrics
from joe.backtest.overrides import OverrideError, parse_set
from joe.backtest.sweep import SweepError, load_spec
from joe.cli.main import app
from joe.config.schema import ExecutionConfig
from sweep_files import refused as _refused
from sweep_files import write_spec as _spec


def _out(res: object) -> str:
    return str(getattr(res, "output", "")).replace("\n", " ")


# ---------------------------------------------------------------------------------- 1. duplicate keys
def test_a_key_given_twice_in_a_sweep_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """`metric:` twice was read as the last one; a parameter twice swept only its last values."""
    msg = _refused(tmp_path, "metric: sharpe\nparameters:\n  risk.max_positions: [3]\nmetric: fees\n")
    assert "line 4: the key 'metric' is given twice (first on line 1)" in msg and "give the key once" in msg
    text = "parameters:\n  risk.max_positions: [3, 5]\n  pipeline.top_n: [2]\n  risk.max_positions: [9]\n"
    msg = _refused(tmp_path, text)
    assert "line 4: the key 'parameters.risk.max_positions' is given twice (first on line 2)" in msg
    text = "parameters:\n  pipeline.top_n: [2]\nwalk_forward: {in_sample: 5, in_sample: 9}\n"
    msg = _refused(tmp_path, text)
    assert "the key 'walk_forward.in_sample' is given twice" in msg


def test_the_command_refuses_a_duplicate_in_the_sweep_file_or_the_config(
    project: Path, market_dir: Path
) -> None:
    (project / "dup.yaml").write_text("parameters:\n  risk.max_positions: [3]\n  risk.max_positions: [30]\n")
    res = CliRunner().invoke(app, ["backtest", "--source", f"csv:{market_dir}", "--sweep", "dup.yaml"])
    out = _out(res)
    assert res.exit_code == 2, res.output
    assert "dup.yaml: line 3: the key 'parameters.risk.max_positions' is given twice" in out, res.output
    assert "give the key once" in out and "Traceback" not in out
    # The run config: a risk limit given twice is a money bug, not a preference.
    cfg = project / "config" / "execution.yaml"
    cfg.write_text(cfg.read_text() + "risk:\n  max_positions: 5\n  max_positions: 50\n")
    res = CliRunner().invoke(app, ["backtest", "--source", f"csv:{market_dir}"])
    out = _out(res)
    assert res.exit_code == 2, res.output
    assert "risk.max_positions" in out and "line 8" in out and "first on line 7" in out, res.output
    assert "give the key once" in out and "nothing was run" in out
    assert not (project / "data" / "backtests").exists()


def test_a_set_given_twice_or_a_set_value_with_a_duplicate_key_is_refused() -> None:
    with pytest.raises(OverrideError, match=r"--set risk\.max_positions is given twice; give it once"):
        parse_set(["risk.max_positions=5", "risk.max_positions=50"])
    with pytest.raises(OverrideError, match="gives the key 'max_positions' twice"):
        parse_set(["risk={max_positions: 5, max_positions: 50}"])
    assert parse_set(["risk={max_positions: 5}"]) == {"risk": {"max_positions": 5}}


# ------------------------------------------------------------------------ 4. the walk-forward's real size
def test_the_walk_forward_cap_counts_sets_times_windows() -> None:
    """1,000 sets passed the 10,000 cap whatever the number of windows; 10 windows are 10,010 backtests."""
    from joe.backtest.sweep import MAX_POINTS, SweepSpec, WalkForward, walk_forward_backtests

    spec = SweepSpec([{"risk.max_positions": 1}] * 1000, ["risk.max_positions"], "sharpe", WalkForward(5, 5))
    assert walk_forward_backtests(spec, 9) == 9 * 1001 <= MAX_POINTS
    with pytest.raises(SweepError) as exc:
        walk_forward_backtests(spec, 10, "sweep.yaml")
    msg = str(exc.value)
    assert "sweep.yaml: walk-forward: 1,000 parameter set(s) × 10 window(s) is 10,010 backtests" in msg
    assert "(10,000 in sample + 10 out of sample), more than the 10,000" in msg and "out_of_sample" in msg


def test_the_command_refuses_a_walk_forward_over_the_cap_before_starting_a_cluster(
    project: Path, market_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from joe.backtest import sweep

    monkeypatch.setattr(sweep, "MAX_POINTS", 20)
    (project / "wf.yaml").write_text(
        "parameters:\n  risk.max_positions: [2, 3, 4, 5]\nwalk_forward: {in_sample: 20, out_of_sample: 10}\n"
    )
    res = CliRunner().invoke(
        app, ["backtest", "--source", f"csv:{market_dir}", "--sweep", "wf.yaml", "--walk-forward"]
    )
    out = _out(res)
    assert res.exit_code == 2, res.output
    m = re.search(r"4 parameter set\(s\) × (\d+) window\(s\) is ([\d,]+) backtests", out)
    assert m is not None, res.output
    assert int(m[2].replace(",", "")) == 5 * int(m[1]) > 20 and "more than the 20" in out
    assert "LocalCluster" not in out and "Traceback" not in out


# --------------------------------------------------------------------- 5. turnover's unit, a short CAGR
def _curve(n: int) -> pd.Series:
    """The starting equity, then `n` trading days' closes (UTC)."""
    values = 100_000.0 * np.cumprod(1 + np.resize([0.004, -0.002, 0.003, -0.001], n + 1))
    values[0] = 100_000.0
    return pd.Series(values, index=pd.bdate_range("2021-01-01", periods=n + 1, tz="UTC"))


def test_a_window_under_a_month_has_no_cagr_and_turnover_has_its_unit() -> None:
    """A one-day backtest's CAGR was (1 + day's return) ** 252 − 1: a number, not a growth rate."""
    for n in (1, 5, MIN_CAGR_DAYS - 1):
        m = compute_metrics(_curve(n), [], {}, traded_notional=50_000.0)
        assert m["cagr"] is None and m["cagr_note"] == (
            f"n/a (window < 1 month): {n} trading day(s), a CAGR needs at least {MIN_CAGR_DAYS}"
        )
        assert m["total_return"] is not None  # the rest is reported as before
    eq = _curve(MIN_CAGR_DAYS)
    m = compute_metrics(eq, [], {}, traded_notional=50_000.0)
    assert m["cagr_note"] is None
    assert m["cagr"] == pytest.approx(empyrical.annual_return(eq.pct_change().dropna(), period="daily"))
    assert m["cagr"] == pytest.approx((eq.iloc[-1] / 100_000) ** (252 / MIN_CAGR_DAYS) - 1)  # day one counts
    assert m["turnover"] == pytest.approx(50_000 / eq.mean() / (MIN_CAGR_DAYS / 252))
    assert m["turnover_unit"] == "traded notional (entries + exits) / mean equity, per year"


def test_the_report_shows_turnover_with_its_unit_and_no_cagr_for_one_day(tmp_path: Path) -> None:
    from joe.backtest.engine import BacktestResult, DayRecord
    from joe.backtest.report import write_report

    day = DayRecord(date(2021, 1, 4), 99_975.38, 50_000.0, 0.5, 2, "bull", 3, 2, 0)
    result = BacktestResult([day], [], 2, {}, 50_000.0, 24.62, 100_000.0, opening_day=date(2020, 12, 31))
    paths, _ = write_report(result, tmp_path / "r", "one day", {})
    m = json.loads(paths.metrics.read_text())["metrics"]
    assert m["cagr"] is None and m["cagr_note"].startswith("n/a (window < 1 month): 1 trading day(s)")
    assert m["turnover"] == pytest.approx(50_000 / ((100_000 + 99_975.38) / 2) * 252)
    assert m["turnover_unit"] == "traded notional (entries + exits) / mean equity, per year"
    md = paths.markdown.read_text()
    assert "| cagr | n/a (window < 1 month) |" in md
    shown = f"{m['turnover']:,.2f}×"
    assert f"| turnover (traded notional (entries + exits) / mean equity, per year) | {shown} |" in md
    assert "turnover_unit" not in md and "cagr_note" not in md
    page = paths.html.read_text()
    assert "n/a (window &lt; 1 month)" in page and "mean equity, per year" in page


@pytest.mark.timeout(300)
def test_the_console_says_cagr_n_a_and_turnover_with_its_unit(project: Path, market_dir: Path) -> None:
    res = CliRunner().invoke(
        app, ["backtest", "--source", f"csv:{market_dir}", "--from", "2021-01-04", "--to", "2021-01-04"]
    )
    assert res.exit_code == 0, res.output
    out = _out(res)
    assert "CAGR n/a (window < 1 month)" in out, res.output
    assert re.search(r"turnover [\d,.]+× mean equity a year", out), res.output


def test_a_walk_forward_ranking_by_cagr_needs_a_month_in_sample(tmp_path: Path) -> None:
    """Every in-sample CAGR would be None: the "best" set would silently be the first."""
    text = "metric: cagr\nparameters:\n  risk.max_positions: [3]\n"
    text += "walk_forward: {in_sample: %d, out_of_sample: 5}\n"
    msg = _refused(tmp_path, text % (MIN_CAGR_DAYS - 1))
    assert f"metric cagr needs walk_forward.in_sample of at least {MIN_CAGR_DAYS}" in msg
    ok = _spec(tmp_path, text % MIN_CAGR_DAYS)
    assert load_spec(ok, ExecutionConfig()).metric == "cagr"


# ----------------------------------------------------------------------------- 2. one rule for case
def test_enumerated_values_take_any_case_and_are_normalised(tmp_path: Path) -> None:
    """`mode: GRID` was accepted and `metric: Sharpe` refused: every enumerated value now takes any case
    (spaces around it ignored) and is run and reported by its canonical name."""
    from joe.cli.backtest_sweep import scheduler_address
    from joe.data import check_source_spec
    from joe.data.dates import KEYWORDS, DateFormats, _keyword

    for mode, metric, want in (("GRID", "Sharpe", "sharpe"), ("Random", " MAX_DRAWDOWN ", "max_drawdown")):
        text = f"mode: {mode}\nmetric: '{metric}'\nparameters:\n  risk.max_positions: [3, 5]\n"
        spec = load_spec(_spec(tmp_path, text), ExecutionConfig())
        assert (spec.mode, spec.metric) == (mode.lower(), want)
    msg = _refused(tmp_path, "mode: Gird\nparameters:\n  risk.max_positions: [3]\n")
    assert "mode must be grid or random, not 'Gird'" in msg
    msg = _refused(tmp_path, "metric: Sharp\nparameters:\n  risk.max_positions: [3]\n")
    assert "metric 'Sharp' is not a backtest metric" in msg
    # The command's options follow the same rule.
    assert scheduler_address("TCP://127.0.0.1:8786")[0] == "tcp://127.0.0.1:8786"
    check_source_spec("SAMPLE")
    check_source_spec(f"CSV:{tmp_path}")
    assert _keyword(DateFormats.parse("DayFirst").default or "") == "dayfirst" in KEYWORDS


@pytest.mark.timeout(300)
def test_a_sweep_with_a_capitalised_metric_runs_and_names_the_canonical_one(
    project: Path, market_dir: Path
) -> None:
    (project / "s.yaml").write_text("mode: GRID\nmetric: Sharpe\nparameters:\n  risk.max_positions: [3, 6]\n")
    res = CliRunner().invoke(
        app,
        ["backtest", "--source", f"CSV:{market_dir}", "--from", "2021-01-04", "--to", "2021-02-26",
         "--sweep", "s.yaml", "--workers", "1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = _out(res)
    assert "2 parameter set(s) (grid), ranked by sharpe" in out and "best sharpe " in out, res.output
    folder = Path(res.stdout.splitlines()[0].removeprefix("Sweep: ").strip())
    assert "Sweep: sharpe per parameter pair" in (folder / "heatmaps.html").read_text()


# ------------------------------------------------------------------------------- 3. an empty scheduler
def test_an_empty_scheduler_address_is_refused_not_read_as_a_local_cluster(
    project: Path, market_dir: Path
) -> None:
    """`--scheduler "$DASK_SCHEDULER"` with the variable unset ran on a local cluster without a word."""
    from joe.cli.backtest_sweep import scheduler_address

    for blank in ("", "   "):
        with pytest.raises(SweepError, match="is empty") as exc:
            scheduler_address(blank)
        assert "leave out --scheduler to run on a local cluster" in str(exc.value)
    (project / "grid.yaml").write_text("parameters:\n  risk.max_positions: [3, 8]\n")
    for blank in ("", " "):
        res = CliRunner().invoke(
            app, ["backtest", "--source", f"csv:{market_dir}", "--sweep", "grid.yaml", "--scheduler", blank]
        )
        out = _out(res)
        assert res.exit_code == 2, res.output
        assert f"--scheduler {blank!r} is empty" in out and "leave out --scheduler" in out, res.output
        assert "LocalCluster" not in out and "Traceback" not in out
    res = CliRunner().invoke(app, ["backtest", "--scheduler", "tcp://127.0.0.1:8786"])
    assert res.exit_code == 2 and "--scheduler needs --sweep" in _out(res), res.output
    assert not (project / "data" / "backtests").exists()
    shown = CliRunner().invoke(app, ["backtest", "--help"], terminal_width=200).output
    help_text = " ".join(shown.replace("│", " ").split())  # the help's box drawn around wrapped lines
    assert "Leave it out to run on a local cluster" in help_text, help_text


# ------------------------------------------------------------------------------------- 6. a quiet Ctrl-C
def _interrupted_sweep(project: Path, market_dir: Path, when: str) -> tuple[int, str, list[int]]:
    """Run a sweep in a process group of its own and send SIGINT to the whole group, as a terminal's
    Ctrl-C does: "start" at once, "imports" 0.2 s later (the CLI's imports), "worker" the moment the first
    Dask worker process exists (it is importing Dask), "line" once the command has printed its first
    line. Returns (exit code, stderr, the worker processes' pids)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    (project / "s.yaml").write_text("parameters:\n  risk.max_positions: [2, 3, 4, 5]\n")
    args = ["backtest", "--source", f"csv:{market_dir}", "--from", "2020-11-02", "--to", "2021-03-31",
            "--sweep", "s.yaml", "--workers", "2"]  # fmt: skip
    import joe

    src = str(Path(joe.__file__).resolve().parents[1])  # this checkout's code, whatever the cwd
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "joe.cli.main", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # As a terminal's foreground job has it: a runner started in the background (`make test &`, CI
        # under a non-interactive shell) passes SIGINT down ignored, and Python then never sees a Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        text=True,
    )
    workers: list[int] = []
    err = ""
    deadline = time.monotonic() + 120
    if when == "imports":
        time.sleep(0.2)
    if when == "line":
        assert proc.stderr is not None
        err = proc.stderr.readline()
    while when == "worker" and time.monotonic() < deadline and proc.poll() is None:
        kids = psutil.Process(proc.pid).children(recursive=True)
        try:
            workers = [k.pid for k in kids if "spawn_main" in " ".join(k.cmdline())]
        except psutil.Error:
            continue
        if workers:
            time.sleep(0.15)  # past the interpreter's own start: the worker imports Dask (about 1 s)
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    for pid in workers:  # the workers are closed with the cluster, not left behind
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).wait(timeout=30)
    return proc.returncode, err + rest, workers


@pytest.mark.timeout(300)
@pytest.mark.parametrize("when", ["start", "imports", "worker", "line"])
def test_ctrl_c_at_any_point_of_a_sweep_is_one_line_and_exit_130(
    project: Path, market_dir: Path, when: str
) -> None:
    """A Ctrl-C while the Dask workers started printed each worker's KeyboardInterrupt traceback (they
    were importing Dask) and the cluster's half-built close ("Nanny failed to start", exit 1); one in
    the CLI's imports, a traceback of the import. Before Python has installed its handler the signal
    ends the process (-SIGINT, which a shell shows as 130) with nothing printed."""
    import signal

    code, err, workers = _interrupted_sweep(project, market_dir, when)
    if when in ("start", "imports") and code == -signal.SIGINT:  # still in the interpreter's own start
        assert err == "", err
        return
    assert code == 130, err
    assert "Traceback" not in err and "Error" not in err and "Exception" not in err, err
    last = err.strip().splitlines()[-1]
    assert last in ("joe: interrupted while starting; nothing was run",) or (
        last.startswith("sweep interrupted ") and last.endswith("; nothing written")
    ), err
    if when == "worker":
        assert workers and "sweep interrupted after 0 of 4 points; nothing written" in err, err
    assert not (project / "data" / "backtests").exists()


def test_a_sweep_started_with_ctrl_c_ignored_keeps_ignoring_it() -> None:
    """A job started in the background or under nohup has SIGINT ignored: the cluster's start-up block must
    not turn a SIGINT it receives into an interrupt (it used to install its own handler over SIG_IGN)."""
    import os
    import signal

    from joe.cli.interrupts import interrupt_after

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt_after():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
