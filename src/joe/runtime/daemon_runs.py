"""The daemon's scheduled pipeline runs: the very `joe run --once` stages, in a child process.

A child process keeps the quote path responsive while the (CPU-heavy) analysis runs, contains a
crash, and guarantees the daemon and `joe run --once` share one pipeline. A child refused for
safety (exit 3, e.g. live mode, which the batch pipeline does not trade) or failing is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from joe.core.events import AuditSink
from joe.data.calendars import calendar_for
from joe.runtime.schedule import Anchor, Schedule, ScheduledRun, ScheduleRule


def schedule_from_config(cfg: Any) -> Schedule:
    """`daemon.schedule` of config/execution.yaml as a `Schedule` (null entries are left out)."""
    rules = []
    if cfg.pre_open_scan_min is not None:
        rules.append(ScheduleRule("pre_open_scan", Anchor.OPEN, -cfg.pre_open_scan_min))
    if cfg.after_open_min is not None:
        rules.append(ScheduleRule("after_open", Anchor.OPEN, cfg.after_open_min))
    if cfg.pre_close_min is not None:
        rules.append(ScheduleRule("pre_close", Anchor.CLOSE, -cfg.pre_close_min))
    try:
        calendar = calendar_for(cfg.exchange)
    except ValueError as exc:
        raise ValueError(f"config daemon.schedule.exchange: {exc}") from None
    return Schedule(calendar, rules)


def pipeline_runner(broker: str, audit: AuditSink) -> Callable[[ScheduledRun], Coroutine[Any, Any, None]]:
    """`on_run` for the `Daemon`: runs `joe run --once --broker <broker>` and audits the outcome.
    The run's `no_entries` (the daemon's stale instruments when it fired) go as `--no-entry`."""

    async def run(scheduled: ScheduledRun) -> None:
        cmd = [sys.executable, "-m", "joe.cli.main", "run", "--once", "--broker", broker]
        if scheduled.no_entries:
            cmd += ["--no-entry", ",".join(scheduled.no_entries)]
        from joe.safety.lock import child_env

        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **child_env()},  # runs under the daemon's single-instance lock
        )
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await proc.wait()
            raise
        report = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("Report: ")]
        payload = {"name": scheduled.name, "rc": proc.returncode, "report": report[-1][8:] if report else ""}
        audit.record("daemon.run_finished", payload)
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"joe run --once exited {proc.returncode}: {' | '.join(tail)}")

    return run
