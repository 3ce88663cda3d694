"""`joe run --once`: the research pipeline and paper trader with a rich progress display."""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import Annotated

import typer
from rich.console import Console

from joe.cli.config_gate import refuse_invalid_config
from joe.cli.exit_codes import ExitCode


class RichProgress:
    """Prints each stage as it starts, with the time since the run began."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.t0 = datetime.now()
        self._status = console.status("starting")
        self._status.start()

    def stage(self, name: str, detail: str = "") -> None:
        elapsed = (datetime.now() - self.t0).total_seconds()
        self.console.log(f"[bold]{name}[/] {detail}  [dim]+{elapsed:.2f}s[/]")
        self._status.update(f"{name}: {detail}")

    def stop(self) -> None:
        self._status.stop()


def run_command(
    once: Annotated[
        bool, typer.Option("--once", help="Run the pipeline once and exit (the only mode today).")
    ] = False,
    broker: Annotated[
        str | None,
        typer.Option(help="Market data and execution venue: sim, capital or ibkr (default JOE_BROKER)."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="With --broker sim: sample (the default), csv:PATH or parquet:PATH."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Analyse as of this date (YYYY-MM-DD).")
    ] = None,
    push: Annotated[bool, typer.Option("--push", help="Send the run summary to Telegram/Discord.")] = False,
    scan: Annotated[str | None, typer.Option(help="Universe scan or watchlist name of the source.")] = None,
    date_format: Annotated[
        list[str] | None,
        typer.Option(
            "--date-format",
            help="Files whose dates the data cannot decide (03/01/2022): dayfirst, monthfirst or a strptime "
            "format; FILE=FORMAT for one file (repeatable). ISO dates are always ISO.",
        ),
    ] = None,
    no_entry: Annotated[
        str,
        typer.Option(
            "--no-entry",
            help="Comma-separated symbols on which this run takes no entry "
            "(a daemon passes its stale instruments).",
        ),
    ] = "",
    clock_start: Annotated[
        str | None,
        typer.Option(
            "--clock-start",
            envvar="JOE_CLOCK_START",
            help="Rehearsal (paper or a local simulator only): live/shadow entries are judged "
            "for market hours as if the run started at this UTC instant (ISO 8601).",
        ),
    ] = None,
) -> None:
    """Run Regime → Scan → Score → Strategy → Risk → Signal → paper trades → report."""
    console = Console(stderr=True, log_path=False)
    if not once:
        console.print("`joe run` needs --once; the long-running process is `joe daemon`.")
        raise typer.Exit(ExitCode.USAGE)
    if broker is not None and broker not in ("sim", "capital", "ibkr"):
        console.print(f"--broker must be sim, capital or ibkr, not {broker!r}")
        raise typer.Exit(ExitCode.USAGE)
    effective = broker
    if effective is None and source is not None:  # JOE_BROKER (environment or .env) chooses, as for the run
        from joe.config.settings import load_settings

        effective = load_settings().broker
    if source is not None and effective != "sim":  # given explicitly, even `sample`: never ignored silently
        console.print(
            f"--source {source} applies to --broker sim only; with --broker {effective} the market data "
            "comes from the broker (drop --source, or use --broker sim, or unset JOE_BROKER)",
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.USAGE)
    if source is not None:
        # A --source that names nothing is a usage error (exit 2), said before the paper book would call
        # it "another source's" (exit 3) and suggest a data folder for a source that cannot open anyway.
        from joe.data import check_source_spec
        from joe.data.errors import DataError

        try:
            check_source_spec(source)
        except DataError as exc:
            console.print(f"[red]Bad arguments[/]: {exc}", soft_wrap=True)
            raise typer.Exit(ExitCode.USAGE) from None
    source = source or "sample"
    try:
        as_of_date = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        console.print(f"--as-of must be a date like 2018-12-31, not {as_of!r}")
        raise typer.Exit(ExitCode.USAGE) from None
    from joe.cli.errors import parse_clock_start

    market_clock_start = parse_clock_start(clock_start, console, "--clock-start (JOE_CLOCK_START)")
    # Imported here so `joe --help` and `joe version` stay instant.
    from joe.cli.errors import startup_error
    from joe.cli.mode_cmd import tty_confirm
    from joe.data.errors import DataError
    from joe.runtime.bootstrap import bootstrap
    from joe.runtime.run_once import (
        BookRefused,
        EndpointRefused,
        LiveModeUnavailable,
        RunArgumentError,
        RunFailed,
        RunOptions,
        close_interrupted_runs,
        run_once_sync,
    )
    from joe.safety.lock import AlreadyRunning, hold_instance
    from joe.safety.preflight import SafetyRefused

    # Real money asks the human to type the account id (JOE_LIVE_CONFIRM when unattended).
    try:
        rt = bootstrap(broker=broker, confirm=tty_confirm())
    except Exception as exc:  # no audit log or store: nothing may run (fail closed), say why plainly
        console.print(f"[red]Cannot start[/]: {startup_error(exc)}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    shown = {str(p) for p in rt.settings.problems} | {str(p) for p in rt.config_problems}
    for problem in rt.settings.problems:
        console.print(f"[yellow]settings[/]: {problem}", soft_wrap=True)
    for cp in rt.config_problems:
        console.print(f"[yellow]config[/]: {cp}", soft_wrap=True)
    if rt.decision.fell_back:
        console.print(f"[yellow]Paper mode[/]: {'; '.join(rt.decision.reasons)}", soft_wrap=True)
    # The mode still resolves (to paper), but nothing trades on settings the user did not choose.
    refuse_invalid_config(rt, console, "run")
    # Whether --clock-start may apply is decided once connected: only Joe's own simulator (as its wire
    # says, never the port) may have its market hours judged at a rehearsal minute (joe.runtime.live_run).
    _handle_sigterm()  # before `inherited`: a child whose daemon is gone gets SIGTERM at once
    try:
        # One Joe per data folder (a second run would corrupt the store) and, live/shadow, per broker
        # account; a daemon's own scheduled run works under the daemon's locks.
        lock = hold_instance(rt)
    except AlreadyRunning as exc:
        rt.audit.record("run.refused", {"reason": str(exc), "holder_pid": exc.pid})
        rt.close()
        console.print(f"[red]Refused[/]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.REFUSED) from None
    formats = "\n".join(date_format or ()) or None  # repeated --date-format: one entry a line
    blocked = tuple(sorted({x.strip() for x in no_entry.split(",") if x.strip()}))
    progress = RichProgress(console)
    chosen = rt.settings.broker  # --broker if given, else JOE_BROKER (env or .env), else sim
    try:
        if lock.sole_holder:  # inside: a store that fails here is "Run failed", the lock released
            for gone in close_interrupted_runs(rt):
                console.print(f"[yellow]Interrupted[/]: run {gone} was stopped half-way (marked interrupted)")
        opts = RunOptions(chosen, source, as_of_date, push, scan, formats, blocked, market_clock_start)
        outcome = run_once_sync(rt, opts, progress)
    except (LiveModeUnavailable, BookRefused, SafetyRefused, EndpointRefused) as exc:
        progress.stop()
        console.print(f"[red]Refused[/]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.REFUSED) from None
    except (RunArgumentError, DataError) as exc:
        progress.stop()
        console.print(f"[red]Bad arguments[/]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except RunFailed as exc:
        progress.stop()
        cause = exc.__cause__
        if isinstance(cause, DataError):  # the source itself is unusable as given
            console.print(f"[red]Bad arguments[/]: {cause}", soft_wrap=True)
            raise typer.Exit(ExitCode.USAGE) from None
        console.print(f"[red]Run failed[/]: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    except Exception as exc:
        progress.stop()
        rt.audit.record("run.failed", {"error": f"{type(exc).__name__}: {exc}"})
        console.print(f"[red]Run failed[/]: {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    finally:
        lock.release()
        rt.close()
    progress.stop()
    total = sum(v for k, v in outcome.timings.items())
    console.print(
        f"[green]Done[/] {outcome.mode} run {outcome.run_id} as of {outcome.as_of}: regime {outcome.regime}, "
        f"{outcome.signals} signals, {outcome.opened} opened, {outcome.closed} closed, "
        f"{outcome.fills} fill(s) ({total:.2f}s)",
        soft_wrap=True,
    )
    for w in outcome.warnings:
        if w in shown:
            continue
        console.print(f"[yellow]warning[/]: {w}", soft_wrap=True)
    # The report path goes to stdout so scripts can capture it.
    sys.stdout.write(f"Report: {outcome.report.html}\n")
    if push:
        console.print(f"alerts delivered to {outcome.alerts_delivered} channel(s)")
        if outcome.push_failed:
            console.print(
                "[red]Push failed[/]: no alert channel took the summary (configure TELEGRAM_BOT_TOKEN + "
                "TELEGRAM_CHAT_ID or DISCORD_WEBHOOK_URL; see the audit log's alert.failed records). "
                "The run itself is done and its report written.",
                soft_wrap=True,
            )
            raise typer.Exit(ExitCode.FAILED)
    if outcome.entries_refused:
        # Exits, marks and the report were done; no new entry was sent: a safety refusal (README).
        console.print(f"[red]Refused[/]: {outcome.entries_refused}", soft_wrap=True)
        raise typer.Exit(ExitCode.REFUSED)


def _handle_sigterm() -> None:
    """SIGTERM (the daemon stopping, the daemon's death, an operator) or SIGHUP (its terminal closed)
    to `joe run --once`: no new entry from now on, exits, report and records finish (exit as usual); a
    second SIGTERM (never a second SIGHUP) aborts the run (`RunTerminated`: recorded ``run.failed``,
    exit 1). Broker-side stops stay either way."""
    import signal

    from joe.safety.run_guard import RunTerminated, entries_stopped, stop_entries

    def on_term(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if entries_stopped() is None:
            why = "the terminal hung up" if signum == signal.SIGHUP else "the run was asked to stop"
            stop_entries(f"{name}: {why} (no new entries; exits and records finish)")
            return
        if signum == signal.SIGHUP:
            # A hang-up comes twice (the terminal, then the exiting shell passing it on to its jobs)
            # and is never an order to abandon exits half-way: only a second SIGTERM aborts.
            return
        raise RunTerminated(f"a second {name} stopped the run")

    signal.signal(signal.SIGTERM, on_term)
    # A closed terminal or ssh session (SIGHUP) is the console going away, not an order to abandon
    # orders half-way: it stops entries like SIGTERM (console writes are then dropped, see
    # joe.audit.streams).
    signal.signal(signal.SIGHUP, on_term)
