"""The daemon's scheduled pipeline runs: the very `joe run --once` stages, in a child process.

A child process keeps the quote path responsive while the (CPU-heavy) analysis runs, contains a
crash, and guarantees the daemon and `joe run --once` share one pipeline. The child trades in the
daemon's mode (paper, shadow or live: the very `joe run --once` path); a child refused for safety
(exit 3) or failing is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from joe.core.events import AuditSink
from joe.data.calendars import calendar_for
from joe.runtime.schedule import Anchor, Schedule, ScheduledRun, ScheduleRule
from joe.safety.lock import child_fds
from joe.safety.run_guard import STOP_FILE_ENV

log = logging.getLogger(__name__)


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


def pipeline_runner(
    broker: str,
    audit: AuditSink,
    *,
    stopping: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] | None = None,
    poll_s: float = 0.2,
    grace_s: float = 10.0,
    after_child: Callable[[], object] | None = None,
) -> Callable[[ScheduledRun], Coroutine[Any, Any, None]]:
    """`on_run` for the `Daemon`: runs `joe run --once --broker <broker>` and audits the outcome.

    The run's `no_entries` (the daemon's stale instruments when it fired) go as `--no-entry`; a
    rehearsal `clock` (``joe daemon --clock-start``) goes as ``--clock-start`` (the minute the run's
    RiskGate judges market hours at). While the daemon is `stopping`: a run not started yet does not
    start (audited ``daemon.run_skipped``); a running child gets SIGTERM, which makes `joe run --once`
    refuse new entries and finish its exits, report and records (``daemon.run_entries_stopped``; the
    signal is the stop file named by `STOP_FILE_ENV`, which the child reads before screening and just
    before sending — no race with the child's start-up).
    Cancelled (the daemon's settle bound ran out): a second SIGTERM aborts the child, which records
    ``run.failed`` and its run row; SIGKILL after `grace_s` seconds if it is still there.
    `after_child` is called once a child that did not exit 0 is gone (killed — the OOM killer, a
    SIGKILL — or aborted): the daemon, the data folder's sole lock holder whose runs are one at a
    time, marks the run it left "running" interrupted (`joe.runtime.run_once.close_interrupted_runs`);
    no later run would, as every later run is the daemon's child too. Its failure is logged, never
    raised over the child's outcome.
    Raises RuntimeError when the child exits non-zero."""

    async def run(scheduled: ScheduledRun) -> None:
        if stopping():
            audit.record("daemon.run_skipped", {"name": scheduled.name, "reason": "daemon stopping"})
            return
        cmd = [sys.executable, "-m", "joe.cli.main", "run", "--once", "--broker", broker]
        if scheduled.no_entries:
            cmd += ["--no-entry", ",".join(scheduled.no_entries)]
        if clock is not None:
            cmd += ["--clock-start", clock().isoformat()]
        from joe.safety.lock import child_env

        stop_file = Path(tempfile.gettempdir()) / f"joe-stop-entries-{os.getpid()}-{uuid.uuid4().hex}"
        # The child writes its console to unnamed files, not pipes: a pipe would break when the daemon
        # dies and take the orphan's console with it mid-run; a file outlives its reader.
        with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_f,
                stderr=err_f,
                # runs under the daemon's single-instance lock; the stop file tells it to stop entries
                env={**os.environ, **child_env(), STOP_FILE_ENV: str(stop_file)},
                pass_fds=child_fds(),  # the lock's descriptor: the child holds the flock too
            )
            try:
                told = await _supervise(proc, scheduled, stop_file)
            finally:
                if proc.returncode not in (None, 0):  # gone, not cleanly
                    _after_child()
            out, err = _read_back(out_f), _read_back(err_f)
        report = [ln for ln in out.splitlines() if ln.startswith("Report: ")]
        payload = {"name": scheduled.name, "rc": proc.returncode, "report": report[-1][8:] if report else "",
                   "entries_stopped": told}  # fmt: skip
        audit.record("daemon.run_finished", payload)
        if proc.returncode != 0:
            tail = err.strip().splitlines()[-3:]
            raise RuntimeError(f"joe run --once exited {proc.returncode}: {' | '.join(tail)}")

    def _after_child() -> None:
        if after_child is None:
            return
        try:
            after_child()
        except Exception as exc:  # the store down: the next start (or `joe run --once`) closes it
            log.error("closing the runs a dead child left running failed: %s: %s", type(exc).__name__, exc)

    async def _supervise(proc: asyncio.subprocess.Process, scheduled: ScheduledRun, stop_file: Path) -> bool:
        """Wait for the child; tell it to stop entries once the daemon is stopping. Returns whether it
        was told. Cancelled: aborts the child (see `pipeline_runner`)."""
        talk = asyncio.ensure_future(proc.wait())
        told = False
        try:
            while not talk.done():
                if not told and stopping():
                    told = True
                    stop_file.write_text(f"daemon {os.getpid()} stopping\n")  # no new entries
                    audit.record("daemon.run_entries_stopped", {"name": scheduled.name, "pid": proc.pid})
                await asyncio.wait({talk}, timeout=poll_s)
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                stop_file.write_text("aborted\n")
                proc.send_signal(signal.SIGTERM)  # entries stopped already: this one aborts
                await asyncio.sleep(0.05)
                proc.send_signal(signal.SIGTERM)  # (the first stops entries if the file was not read)
            try:
                await asyncio.wait_for(asyncio.shield(talk), grace_s)
            except (TimeoutError, asyncio.CancelledError):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            audit.record("daemon.run_aborted", {"name": scheduled.name, "rc": proc.returncode})
            raise
        finally:
            stop_file.unlink(missing_ok=True)
        return told

    return run


def _read_back(f: Any, limit: int = 1 << 20) -> str:
    """The last `limit` bytes a child wrote to `f` (its report line and error tail are at the end)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - limit))
    return str(f.read().decode(errors="replace"))
