"""`joe backtest --sweep FILE [--walk-forward] [--scheduler ADDR]`: the sweep on a Dask cluster."""

from __future__ import annotations

import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console

from joe.backtest.runner import BacktestOptions, backtest_id, make_report_dir
from joe.config.schema import ExecutionConfig
from joe.core.clock import utcnow


def _client(stack: ExitStack, scheduler: str | None, workers: int, console: Console) -> Any:
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # not the scheduler's life story
    if scheduler:
        console.print(f"sweep: connecting to the Dask scheduler at {scheduler}")
        return stack.enter_context(Client(scheduler, timeout="10s"))
    cluster = stack.enter_context(
        # Worker shutdown logs closed-connection tracebacks that are not errors; a failing task still
        # raises here through gather().
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    )
    console.print(f"sweep: Dask LocalCluster with {workers} worker process(es)")
    return stack.enter_context(Client(cluster))


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
    """Load the data once, run every point on Dask, write the sweep report; prints every path."""
    from joe.backtest.loading import load_history_sync
    from joe.backtest.sweep import SweepError, dask_mapper, load_spec, sweep
    from joe.backtest.sweep import walk_forward as run_walk_forward
    from joe.backtest.sweep_report import write_sweep_report

    spec = load_spec(sweep_file, config)
    if walk_forward and spec.walk_forward is None:
        raise SweepError(
            f"{sweep_file}: --walk-forward needs a walk_forward: section (in_sample, out_of_sample)"
        )
    history = load_history_sync(
        opts.source, config, end=opts.end, universe=opts.universe, date_format=opts.date_format
    )
    console.print(f"sweep: {len(spec.points)} parameter set(s) over {opts.source}")
    with ExitStack() as stack:
        mapper = dask_mapper(_client(stack, scheduler, workers, console), history, config)
        walk = run_walk_forward(spec, history, opts, mapper) if walk_forward else None
        table = walk[0] if walk is not None else sweep(spec, opts, mapper)
    sweep_id = backtest_id(opts, utcnow(), config, sweep_file.read_bytes()).removeprefix("bt-")
    folder = make_report_dir(root, f"sweep-{sweep_id}")  # a new folder: never another sweep's
    paths = write_sweep_report(folder, table, spec.keys, spec.metric, walk)
    if walk is not None:
        for row in walk[1].to_dict(orient="records"):
            console.print(f"window {row['window']}: {row}", soft_wrap=True)
    else:
        best = table.sort_values(spec.metric, ascending=False, na_position="last").iloc[0]
        params = {k: getattr(best[f"param:{k}"], "item", lambda v=best[f"param:{k}"]: v)() for k in spec.keys}
        console.print(f"best {spec.metric} {best[spec.metric]}: {params}", soft_wrap=True)
    sys.stdout.write(f"Sweep: {folder}\n")
    for p in paths:
        sys.stdout.write(f"  {p}\n")
