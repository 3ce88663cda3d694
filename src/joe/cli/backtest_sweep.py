"""`joe backtest --sweep FILE [--walk-forward] [--scheduler ADDR]`: the sweep on a Dask cluster."""

from __future__ import annotations

import logging
import math
import re
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from joe.backtest.runner import BacktestOptions, backtest_id, make_report_dir
from joe.cli.interrupts import INTERRUPTED, interrupt_after
from joe.config.schema import ExecutionConfig
from joe.core.clock import utcnow

CONNECT_TIMEOUT_S = 10.0
SCHEMES = ("tcp", "tls")
_ADDRESS = re.compile(
    r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>[^:/\s]*)/?$"
)
_HINT = "give the scheduler's address as tcp://HOST:PORT (a Dask scheduler listens on 8786 by default)"


def scheduler_address(raw: str) -> tuple[str, str, int]:
    """`--scheduler` checked before any connection: (address to connect to, host, port).

    `tcp://host:port`, `tls://host:port` or `host:port`; raises `SweepError` saying what is wrong (an
    empty or blank address too: the way to a local cluster is to leave the option out)."""
    from joe.backtest.sweep import SweepError

    text = raw.strip()
    if not text:  # most likely an unset variable in a script (--scheduler "$DASK_SCHEDULER"), not a choice
        raise SweepError(
            f"--scheduler {raw!r} is empty: {_HINT}, or leave out --scheduler to run on a local cluster "
            f"(an empty address is usually an unset environment variable in a script)"
        )
    m = _ADDRESS.match(text)
    if m is None:
        raise SweepError(f"--scheduler {raw!r} is not an address: {_HINT}")
    scheme = (m["scheme"] or "tcp").lower()
    if scheme not in SCHEMES:
        raise SweepError(
            f"--scheduler {raw!r}: scheme {scheme}:// is not supported (tcp:// or tls://); {_HINT}"
        )
    port_text = m["port"]
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise SweepError(f"--scheduler {raw!r}: the port must be a number from 1 to 65535; {_HINT}")
    host = m["host"].strip("[]")
    return f"{scheme}://{m['host']}:{int(port_text)}", host, int(port_text)


def connect_scheduler(stack: ExitStack, raw: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A `distributed.Client` on the scheduler at `raw`, or `SweepError` naming the address and what
    went wrong: nothing listens there, it does not answer in time, or what answers is not Dask."""
    from distributed import Client

    from joe.backtest.sweep import SweepError

    address, host, port = scheduler_address(raw)
    try:  # a plain TCP connect first: "nothing listens" in a moment, not after the Dask timeout
        socket.create_connection((host, port), timeout=min(timeout_s, 5.0)).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise SweepError(
            f"--scheduler {address}: cannot connect ({why}); is a Dask scheduler running there "
            f"(`dask scheduler`)? Leave out --scheduler to run on a local cluster"
        ) from None
    try:
        with _quiet("distributed"), interrupt_after():  # a Ctrl-C: once the client is on the stack
            client = stack.enter_context(Client(address, timeout=f"{timeout_s}s"))
    except Exception as exc:  # anything from a server that is not a scheduler (even MemoryError)
        if isinstance(exc, MemoryError):  # a garbage length prefix read as a frame size
            why = "its reply is not Dask's protocol"
        else:
            first = str(exc).splitlines()[0] if str(exc) else ""
            why = f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
        raise SweepError(
            f"--scheduler {address}: something answers there but not as a Dask scheduler ({why}); "
            f"check the address and port"
        ) from None
    return client


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Those loggers at CRITICAL for the block (Dask logs a failed handshake as an error, then raises)."""
    saved = [(lg, lg.level) for lg in map(logging.getLogger, loggers)]
    for lg, _ in saved:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


@contextmanager
def _quiet_if_interrupted(*loggers: str) -> Iterator[None]:
    """On Ctrl-C, those loggers at CRITICAL from then on: a cluster closed mid-task (a scatter, a
    backtest) logs the tasks it dropped ("Task exception was never retrieved") as it closes and after."""
    try:
        yield
    except KeyboardInterrupt:
        for name in loggers:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        raise


def _local_client(stack: ExitStack, workers: int, scratch: Path) -> Any:
    from multiprocessing import resource_tracker

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # not the scheduler's life story
    # Started here, not by the cluster's loop thread: starting it unblocks SIGINT in the thread that does
    # (`multiprocessing.resource_tracker`), and the worker processes that thread spawns would inherit that.
    resource_tracker.ensure_running()
    with interrupt_after():  # a Ctrl-C now: acted on once the cluster and its client are on the stack
        return _start_local(stack, workers, scratch, Client, LocalCluster)


def _start_local(stack: ExitStack, workers: int, scratch: Path, client_cls: Any, cluster_cls: Any) -> Any:
    with warnings.catch_warnings():
        # The scheduler's HTTP server (health and metrics, no dashboard) tries port 8787 first; another Dask
        # cluster or sweep on the machine holds it and a 4-line UserWarning said so: it takes another port.
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
        return _start_cluster(stack, workers, scratch, client_cls, cluster_cls)


def _start_cluster(stack: ExitStack, workers: int, scratch: Path, client_cls: Any, cluster_cls: Any) -> Any:
    cluster = stack.enter_context(
        # Worker shutdown logs closed-connection tracebacks that are not errors; a failing task
        # still raises here through gather(). The workers' temporary folders (each backtest's
        # scratch book, Dask's spill space) go under `scratch`, removed at the end even when a
        # worker is stopped mid-task.
        cluster_cls(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
            local_directory=str(scratch),
            env={"TMPDIR": str(scratch)},
            # Ctrl-C reaches the worker processes too (the terminal's process group): they start with
            # SIGINT blocked (`interrupt_after`), then ignore it (`sweep.dask_setup`); this process stops
            # the sweep and says so in one line.
            preload=["joe.backtest.sweep"],
        )
    )
    return stack.enter_context(client_cls(cluster))


def _fmt(v: Any) -> str:
    """A value for a console line: 4 significant digits for floats, plain otherwise."""
    v = getattr(v, "item", lambda: v)()  # numpy scalar → Python
    if isinstance(v, float):
        return "—" if not math.isfinite(v) else f"{v:.4g}"
    return "—" if v is None else str(v)


PERCENT = frozenset({"total_return", "cagr", "max_drawdown", "volatility", "win_rate"})


def _metric(name: str, v: Any) -> str:
    v = getattr(v, "item", lambda: v)()
    if isinstance(v, int | float) and math.isfinite(v) and name in PERCENT:
        return f"{v * 100:.2f}%"
    return _fmt(v)


def _trades(v: Any) -> str:
    v = getattr(v, "item", lambda: v)()
    return str(int(v)) if isinstance(v, int | float) and math.isfinite(v) else "—"


def _params(row: Mapping[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={_fmt(row[f'param:{k}'])}" for k in keys)


def run_sweep_command(
    console: Console,
    opts: BacktestOptions,
    config: ExecutionConfig,
    root: Path,
    sweep_file: Path,
    walk_forward: bool,
    scheduler: str | None,
    workers: int,
) -> None:
    """Load the data once, run every point on Dask, write the sweep report; prints every path.

    Ctrl-C: one line saying how far it got, nothing written, exit 130."""
    from joe.backtest.loading import load_history_sync
    from joe.backtest.overrides import OverrideError, apply_overrides, flatten_overrides
    from joe.backtest.sweep import (
        SweepError,
        SweepInterrupted,
        best_row,
        dask_mapper,
        load_spec,
        sweep,
        walk_forward_backtests,
        windows,
    )
    from joe.backtest.sweep import walk_forward as run_walk_forward
    from joe.backtest.sweep_report import write_sweep_report

    done, total = 0, 0
    unit = "backtests" if walk_forward else "points"
    scratch = Path(tempfile.mkdtemp(prefix="joe-sweep-"))
    try:
        spec = load_spec(sweep_file, config)
        total = len(spec.points)
        if walk_forward and spec.walk_forward is None:
            raise SweepError(
                f"{sweep_file}: --walk-forward needs a walk_forward: section (in_sample, out_of_sample)"
            )
        # Checked before the data is read; "" is refused there, not read as "no scheduler".
        address = scheduler_address(scheduler)[0] if scheduler is not None else None
        # --set applies to the load too (pipeline.universe_size acts there), as in a single backtest.
        load_config = apply_overrides(config, opts.overrides)
        for point in spec.points:  # a key both set: the point's value would silently replace --set's
            try:
                flatten_overrides([*opts.overrides.items(), *point.items()])
            except OverrideError as exc:
                raise SweepError(
                    f"{sweep_file}: parameters: {exc.detail} — with --set and in the sweep file, whose value "
                    f"would replace the --set one in every backtest; drop one of them"
                ) from None
        with ExitStack() as stack, _quiet_if_interrupted("asyncio", "distributed"):
            client = None
            if address is not None:  # before the data is read: a wrong address is said at once
                console.print(f"sweep: connecting to the Dask scheduler at {address}")
                client = connect_scheduler(stack, address)
            history = load_history_sync(
                opts.source, load_config, end=opts.end, universe=opts.universe, date_format=opts.date_format
            )
            if walk_forward:
                assert spec.walk_forward is not None
                n_windows = len(windows(history, opts, spec.walk_forward))  # refused here when there is none
                # each set in each window, then the best OOS; refused above the cap before any cluster starts
                total = walk_forward_backtests(spec, n_windows, sweep_file)
                console.print(
                    f"sweep: {len(spec.points)} parameter set(s) ({spec.mode}) × {n_windows} walk-forward "
                    f"window(s) = {total} backtests (with each window's out-of-sample run), chosen by "
                    f"{spec.metric}, over {opts.source}",
                    markup=False,
                    soft_wrap=True,  # one line in a log or pipe (was cut at 80 columns)
                )
            else:
                console.print(
                    f"sweep: {len(spec.points)} parameter set(s) ({spec.mode}), ranked by {spec.metric}, "
                    f"over {opts.source}",
                    markup=False,
                    soft_wrap=True,
                )
            if client is None:
                client = _local_client(stack, workers, scratch)
                console.print(f"sweep: Dask LocalCluster with {workers} worker process(es)")
            stack.callback(logging.getLogger("distributed").setLevel, logging.CRITICAL)  # shutdown noise
            mapper = dask_mapper(client, history, config, total)
            try:
                walk = run_walk_forward(spec, history, opts, mapper) if walk_forward else None
                table = walk[0] if walk is not None else sweep(spec, opts, mapper)
            except SweepInterrupted as exc:
                done, total = exc.done, exc.total
                raise KeyboardInterrupt from None
        sweep_id = backtest_id(opts, utcnow(), config, sweep_file.read_bytes()).removeprefix("bt-")
        folder = make_report_dir(root, f"sweep-{sweep_id}")  # a new folder: never another sweep's
        try:
            paths = write_sweep_report(folder, table, spec.keys, spec.metric, walk)
        except BaseException:  # Ctrl-C (or a failure) while writing: no half-written report is left
            shutil.rmtree(folder, ignore_errors=True)
            raise
    except KeyboardInterrupt:
        where = f"after {done} of {total} {unit}" if total else "before any backtest ran"
        console.print(f"[yellow]sweep interrupted[/] {where}; nothing written")
        raise typer.Exit(INTERRUPTED) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    m = spec.metric
    if walk is not None:
        for row in walk[1].to_dict(orient="records"):
            got = _metric(m, row[f"in_sample_{m}"])
            # No set had the metric in sample (no trades for a win rate...): the first set ran, unchosen.
            chosen = f"best {_params(row, spec.keys)} ({m} {got})"
            if got == "—":
                chosen = f"no set has a {m} in sample, so the first ran: {_params(row, spec.keys)}"
            console.print(
                f"window {row['window']}: in sample {row['in_sample']}, {chosen}; "
                f"out of sample {row['out_of_sample']}: "
                f"return {_metric('total_return', row['oos_total_return'])}, "
                f"Sharpe {_fmt(row['oos_sharpe'])}, "
                f"max drawdown {_metric('max_drawdown', row['oos_max_drawdown'])}, "
                f"{_trades(row['oos_trades'])} trades",
                soft_wrap=True,
                markup=False,
            )
    else:
        best = best_row(table, m)
        if best is None:
            notes = list(table["cagr_note"].dropna()) if m == "cagr" and "cagr_note" in table else []
            why = f": {notes[0]}" if notes else ""  # a window too short for a CAGR
            console.print(f"best {m}: none (no parameter set has a {m}{why}; see sweep.csv)", markup=False)
        else:
            console.print(
                f"best {m} {_metric(m, best[m])}: {_params(best, spec.keys)}", soft_wrap=True, markup=False
            )
    sys.stdout.write(f"Sweep: {folder}\n")
    for p in paths:
        sys.stdout.write(f"  {p}\n")
