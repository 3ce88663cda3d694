"""`joe backtest`: replay history through the pipeline on a scratch paper book; sweeps on Dask."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from joe.cli.exit_codes import ExitCode
from joe.cli.interrupts import INTERRUPTED  # Ctrl-C: 128 + SIGINT, the shell's convention


def _date(value: str | None, flag: str, console: Console) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        console.print(f"{flag} must be a date like 2018-12-31, not {value!r}")
        raise typer.Exit(ExitCode.USAGE) from None


def backtest_command(
    start: Annotated[
        str | None, typer.Option("--from", help="First day to trade (YYYY-MM-DD; default: the data's first).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day (YYYY-MM-DD; default: the data's last).")
    ] = None,
    source: Annotated[
        str, typer.Option(help="sample, csv:PATH, parquet:PATH or cache[:SOURCE] (the bar cache).")
    ] = "sample",
    universe: Annotated[
        str | None, typer.Option(help="Universe scan or watchlist name of the source (as `run --scan`).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config override key=value (repeatable), e.g. risk.max_positions=5."),
    ] = None,
    sweep: Annotated[
        Path | None,
        typer.Option("--sweep", help="Sweep file (YAML): a grid or random search over config keys."),
    ] = None,
    walk_forward: Annotated[
        bool, typer.Option("--walk-forward", help="With --sweep: rolling in-sample/out-of-sample windows.")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="With --sweep: a Dask scheduler's address (tcp://host:8786). Leave it out to run on a local "
            "cluster of --workers processes (an empty address is refused).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Sweeps: LocalCluster worker processes. One backtest: 2 computes the market analysis in "
            "a second process ahead of the book, 1 runs in one process (same results).",
        ),
    ] = 2,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report root (default $JOE_DATA_DIR/backtests).")
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option("--date-format", help="Files with ambiguous dates: dayfirst, monthfirst, or a format."),
    ] = None,
) -> None:
    """Replay history day by day through Regime → Scan → Score → Strategy → Risk → paper fills."""
    console = Console(stderr=True, log_path=False)
    try:  # a Ctrl-C before the replay or the sweep has its own handler: one line, exit 130 (typer: silent)
        from rich.markup import escape

        from joe.backtest.engine import BacktestError
        from joe.backtest.feed import WorkerError
        from joe.backtest.overrides import OverrideError, parse_set
        from joe.backtest.runner import BacktestOptions, OutputDirError, check_out_root, run_backtest
        from joe.config.loader import load_execution_config_tolerant
        from joe.config.settings import load_settings
        from joe.data.errors import DataError

        first, last = _date(start, "--from", console), _date(end, "--to", console)
        if first and last and first > last:
            console.print(f"--from {first} is after --to {last}")
            raise typer.Exit(ExitCode.USAGE)
        if walk_forward and sweep is None:
            console.print("--walk-forward needs --sweep FILE (the parameters to choose in each window)")
            raise typer.Exit(ExitCode.USAGE)
        if scheduler is not None and sweep is None:
            console.print("--scheduler needs --sweep FILE (a single backtest runs in this process)")
            raise typer.Exit(ExitCode.USAGE)
        if workers < 1:
            console.print(f"--workers must be at least 1, not {workers}")
            raise typer.Exit(ExitCode.USAGE)
        from joe.backtest.sweep import SweepError

        settings = load_settings()
        config, problems = load_execution_config_tolerant(settings.config_path)
        for p in problems:
            console.print(f"[yellow]config[/]: {p}", soft_wrap=True)
        invalid = [p for p in problems if getattr(p, "invalid", True)]
        if invalid:  # as `joe run` and `joe daemon` (joe.cli.config_gate): no result on settings not chosen
            console.print(
                f"[red]Invalid config[/]: {escape(str(invalid[0]))} — fix the file and run again; "
                "nothing was run.",
                soft_wrap=True,
            )
            raise typer.Exit(ExitCode.USAGE)
        root = (out or Path(settings.data_dir) / "backtests").expanduser()
        try:
            check_out_root(root)  # before the replay: a report root that cannot take the report loses no work
        except OutputDirError as exc:
            console.print(f"[red]Bad --out[/]: {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(ExitCode.USAGE) from None
        bar = _ProgressBar(console)
        try:
            overrides = parse_set(set_ or [])
            opts = BacktestOptions(source, first, last, universe, overrides, date_format)
            if sweep is not None:
                from joe.cli.backtest_sweep import run_sweep_command

                run_sweep_command(console, opts, config, root, sweep, walk_forward, scheduler, workers)
                return
            with bar:
                outcome = run_backtest(opts, config, root, progress=bar.update, workers=workers)
        except KeyboardInterrupt:  # Ctrl-C: the scratch book and a half-written report are already removed
            if sweep is not None:
                raise
            console.print(f"backtest interrupted {bar.where()}; nothing written", soft_wrap=True)
            raise typer.Exit(INTERRUPTED) from None
        except OutputDirError as exc:
            console.print(f"[red]Bad --out[/]: {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(ExitCode.USAGE) from None
        except (BacktestError, OverrideError, SweepError, DataError) as exc:
            console.print(f"[red]Bad arguments[/]: {exc}", soft_wrap=True)
            raise typer.Exit(ExitCode.USAGE) from None
        except WorkerError as exc:  # the analysis process failed or died: its own message says which day
            console.print("[red]Failed[/]:", escape(str(exc)), soft_wrap=True)
            raise typer.Exit(ExitCode.FAILED) from None
        from joe.backtest.report import cagr_text, turnover_text

        m = outcome.metrics
        console.print(
            f"[green]Done[/] {outcome.id}: {m['start']} to {m['end']} ({m['days']} days), "
            f"return {_pct(m['total_return'])}, CAGR {cagr_text(m)}, Sharpe {_num(m['sharpe'])}, "
            f"max drawdown {_pct(m['max_drawdown'])}, {int(m['trades'] or 0)} trades, "
            f"turnover {turnover_text(m['turnover'])} mean equity a year "
            f"(load {outcome.timings['load']:.1f}s, replay {outcome.timings['replay']:.1f}s, "
            f"report {outcome.timings['report']:.1f}s)",
            soft_wrap=True,
        )
        for w in outcome.result.warnings:
            console.print(f"[yellow]warning[/]: {w}", soft_wrap=True)
        sys.stdout.write(f"Backtest: {outcome.paths.dir}\n")
        for path in outcome.paths.all():
            sys.stdout.write(f"  {path}\n")
    except KeyboardInterrupt:
        what = "sweep" if sweep is not None else "backtest"
        console.print(f"{what} interrupted before it started; nothing written", soft_wrap=True)
        raise typer.Exit(INTERRUPTED) from None


def _pct(v: object) -> str:
    return f"{float(v) * 100:.2f}%" if isinstance(v, int | float) else "—"


def _num(v: object) -> str:
    return f"{float(v):.2f}" if isinstance(v, int | float) else "—"


class _ProgressBar:
    """A rich progress bar over the simulated days (on stderr; silent when not a terminal)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("backtest {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("", total=None)
        self.console = console
        self._step = 0
        self.done: int | None = None  # days finished, of `total` (None: the replay has not started)
        self.total = 0

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def where(self) -> str:
        """Where the run is, for the interruption's message: "on day D of N" (the day being simulated)."""
        if self.done is None:
            return "before the first day (loading the data)"
        if self.done >= self.total:
            return f"after the last day ({self.total} of {self.total}, writing the report)"
        return f"on day {self.done + 1} of {self.total}"

    def update(self, done: int, total: int, day: date) -> None:
        self.done, self.total = done, total
        self.progress.update(self.task, completed=done, total=total, description=str(day))
        # Without a terminal the bar is invisible: a line every 10% keeps a long run's log alive.
        step = done * 10 // max(total, 1)
        if not self.console.is_terminal and step > self._step:
            self._step = step
            self.console.print(f"backtest: {done}/{total} days ({day})")
