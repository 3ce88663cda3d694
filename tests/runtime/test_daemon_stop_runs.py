"""A daemon that stops (SIGTERM) or dies (SIGKILL) around its scheduled `joe run --once` (review r1012
findings 2 and 3): no run starts after stopping, a running child takes no new entry and still records
itself, a child the daemon gives up on records ``run.failed``, the desk is not restarted after the
stop, and an orphaned child keeps the data folder's lock (a second Joe is refused)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from joe.core.events import NullAudit
from joe.runtime.daemon_live import DeskHolder
from joe.runtime.daemon_runs import pipeline_runner
from joe.runtime.schedule import ScheduledRun
from runtime.daemon_harness import JOE, audit_records, run_rows

RUN = ScheduledRun("after_open", datetime(2026, 12, 1, 14, 45, tzinfo=UTC), date(2026, 12, 1))


async def test_no_scheduled_run_starts_once_the_daemon_is_stopping(project: Path) -> None:
    audit = NullAudit()
    await pipeline_runner("sim", audit, stopping=lambda: True)(RUN)
    assert [k for k, _p, _ in audit.records] == ["daemon.run_skipped"]
    assert not (project / "data/joe.db").exists() or run_rows(project) == []


async def test_a_running_child_takes_no_new_entry_after_stop_and_still_records_its_run(project: Path) -> None:
    """The stop comes as soon as the child is started: every signal is denied (run_stopping), the run
    finishes its report and its row, exit 0."""
    audit = NullAudit()
    calls = iter([False])  # the pre-start check: not stopping yet; every later one: stopping
    await pipeline_runner("sim", audit, stopping=lambda: next(calls, True))(RUN)
    kinds = [k for k, _p, _ in audit.records]
    assert kinds == ["daemon.run_entries_stopped", "daemon.run_finished"]
    finished = audit.records[-1][1]
    assert finished["rc"] == 0 and finished["entries_stopped"] is True
    denied = [r for r in audit_records(project, "risk.denied") if r["payload"].get("rule") == "run_stopping"]
    assert denied, "the child's signals were refused because the daemon is stopping"
    assert not audit_records(project, "order.attempt")  # a fresh book: no exit to make, and no entry was sent
    assert [s for _r, s in run_rows(project)] == ["ok"]


async def test_a_child_the_daemon_gives_up_on_records_run_failed(project: Path) -> None:
    """The settle bound ran out (the runner is cancelled): the child is aborted, not killed silently."""
    audit = NullAudit()
    task = asyncio.create_task(pipeline_runner("sim", audit, grace_s=60)(RUN))
    deadline = time.monotonic() + 120
    while not audit_records(project, "run.started"):
        assert time.monotonic() < deadline and not task.done(), "the child never started its run"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert audit_records(project, "run.failed"), "the aborted run is recorded"
    assert all(s == "failed" for _r, s in run_rows(project))  # no row left "running" (none if not begun)
    assert [k for k, _p, _ in audit.records][-1] == "daemon.run_aborted"


class _Desk:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.monitor = type("M", (), {"requester": None})()

    async def start(self) -> None:
        self.log.append("start")

    async def stop(self) -> None:
        self.log.append("stop")


async def test_after_stopping_the_desk_is_not_restarted_after_a_hand_over() -> None:
    log: list[str] = []
    stopping = False

    async def build() -> Any:
        log.append("connect")

        async def close() -> None:
            log.append("close")

        return _Desk(log), close

    holder = DeskHolder(build, NullAudit(), stopping=lambda: stopping)
    await holder.start()

    async def run(_s: Any) -> None:
        nonlocal stopping
        stopping = True  # SIGTERM while the scheduled run holds the broker

    await holder.hand_over(run)(RUN)
    assert log == ["connect", "start", "stop", "close"]  # no reconnect, reconcile or replay after it
    assert holder.desk is None


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, date, datetime
    from joe.core.events import NullAudit
    from joe.runtime.daemon_runs import pipeline_runner
    from joe.runtime.schedule import ScheduledRun
    from joe.safety.lock import InstanceLock

    lock = InstanceLock.for_data_dir(sys.argv[1]).acquire()  # as `joe daemon` does
    run = ScheduledRun("after_open", datetime(2026, 12, 1, 14, 45, tzinfo=UTC), date(2026, 12, 1))
    asyncio.run(pipeline_runner("sim", NullAudit())(run))
    """
)


@pytest.mark.timeout(600)
def test_an_orphaned_child_keeps_the_lock_and_stops_entries_when_its_daemon_is_killed(project: Path) -> None:
    data = project / "data"
    parent = subprocess.Popen([sys.executable, "-c", HOLDER, str(data)], cwd=project)
    try:
        deadline = time.monotonic() + 120
        while not audit_records(project, "run.started"):
            assert time.monotonic() < deadline and parent.poll() is None, "the scheduled child never started"
            time.sleep(0.05)
        ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent.pid)], capture_output=True, text=True)
        child = int(ps.stdout.split()[0])
        parent.kill()  # SIGKILL: the daemon dies mid-run
        parent.wait(10)
        second = subprocess.run([JOE, "run", "--once"], cwd=project, capture_output=True, text=True,
                                timeout=300)  # fmt: skip
        orphan_alive = _alive(child)
        assert second.returncode == 3 or not orphan_alive, second.stderr[-2000:]
        if orphan_alive:
            assert "another Joe is running" in second.stderr
        while _alive(child):
            time.sleep(0.2)
    finally:
        if parent.poll() is None:
            parent.kill()
    runs = sorted(run_rows(project))
    # The orphan (the first run) recorded its own end: it was not killed by its console (CI, 2026-12-02:
    # its stderr was a pipe to the killed daemon) nor marked "interrupted" by the second run.
    assert runs and runs[0][1] == "ok" and all(s == "ok" for _r, s in runs), runs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


# -- hostile review: a run the daemon's killed child left "running" is closed by the daemon -------------


async def test_a_child_killed_mid_run_has_its_run_marked_interrupted_by_the_daemon(project: Path) -> None:
    """The OOM killer (or a SIGKILL) takes the daemon's child mid-run: its row stayed "running" forever,
    since every later run is the daemon's child too (not the folder's sole holder). The daemon, whose
    runs are one at a time, closes it once the child is gone (`after_child`)."""
    from types import SimpleNamespace

    from joe.runtime.run_once import close_interrupted_runs
    from joe.store import open_store

    audit = NullAudit()
    closed: list[list[str]] = []

    def after_child() -> None:
        store = open_store(data_dir=project / "data")
        try:
            closed.append(close_interrupted_runs(SimpleNamespace(store=store, audit=audit)))  # type: ignore[arg-type]
        finally:
            store.close()

    task = asyncio.create_task(pipeline_runner("sim", audit, after_child=after_child)(RUN))
    deadline = time.monotonic() + 120
    while not audit_records(project, "run.started") or not run_rows(project):
        assert time.monotonic() < deadline and not task.done(), "the child never started its run"
        await asyncio.sleep(0.05)  # its row is in the store
    ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    children = [int(p) for p in ps.stdout.split()]
    for pid in children:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except FileNotFoundError:  # ps itself, gone
            continue
        if b"--once" in cmdline:
            os.kill(pid, 9)  # the child this test's runner started
    with pytest.raises(RuntimeError, match="exited -9"):
        await task
    runs = run_rows(project)
    assert runs and [s for _r, s in runs] == ["interrupted"], runs
    assert closed == [[runs[0][0]]]
    assert [k for k, _p, _ in audit.records if k == "run.interrupted"] == ["run.interrupted"]


def test_a_daemon_starting_closes_the_runs_a_dead_process_left_running(project: Path) -> None:
    """`joe daemon` is the long-lived sole holder (systemd restarts it, `joe run --once` by hand is
    refused while it runs): if it did not close a run a SIGKILL left "running", nobody would."""
    from joe.store import open_store

    store = open_store(data_dir=project / "data")
    try:
        store.start_run("killed-earlier", mode="paper", broker="sim", source="test")
    finally:
        store.close()
    cmd = [JOE, "daemon", "--heartbeat", "0.2", "--no-schedule"]
    proc = subprocess.Popen(cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not audit_records(project, "daemon.started"):
            assert time.monotonic() < deadline and proc.poll() is None, "the daemon did not start"
            time.sleep(0.1)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert run_rows(project) == [("killed-earlier", "interrupted")]
    assert [r["ids"]["run_id"] for r in audit_records(project, "run.interrupted")] == ["killed-earlier"]
    assert "run killed-earlier was stopped half-way" in out + err
