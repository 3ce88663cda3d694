"""The daemon honours the kill switch within one check period, refuses to start next to another Joe
(exit 3), and `joe status` shows its heartbeat."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from joe.safety.control import SafetyContext, kill, resume
from joe.safety.daemon_gate import DaemonSafety
from joe.safety.kill_switch import KillLevel, write_kill_file
from joe.safety.lock import InstanceLock


class Mono:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_kill_file_and_kill_stop_daemon_entries_within_one_period(ctx: SafetyContext) -> None:
    mono = Mono()
    gate = DaemonSafety(ctx, every_s=5, monotonic=mono)
    assert gate.entries_allowed()
    write_kill_file(ctx.data_dir, KillLevel.HALT, "touch from a shell")
    mono.t = 4.9
    assert gate.entries_allowed()  # not re-read yet (cached for one period)
    mono.t = 5.0
    assert not gate.entries_allowed()  # the next check sees the file and halts
    assert ctx.states.current().by == "kill-file"
    (ctx.data_dir / "KILL").unlink()
    resume(ctx, reason="checked, all fine", by="cli:alice")
    mono.t = 10.0
    assert gate.entries_allowed()
    kill(ctx, KillLevel.REDUCE, reason="telegram /stopentry", by="telegram:42")
    mono.t = 15.0
    assert not gate.entries_allowed()


def test_a_broken_store_means_no_entries(ctx: SafetyContext) -> None:
    gate = DaemonSafety(ctx, every_s=0)
    ctx.store.engine.dispose()
    ctx.store.get_state = None  # type: ignore[method-assign,assignment]
    assert gate.entries_allowed() is False


def test_daemon_next_to_another_joe_exits_3(data_dir: Path, tmp_path: Path) -> None:
    with InstanceLock.for_data_dir(data_dir):
        exe = Path(sys.executable).with_name("joe")
        proc = subprocess.run(
            [str(exe), "daemon"],
            cwd=tmp_path,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 3, proc.stderr[-1500:]
    assert f"another Joe is running (pid {os.getpid()})" in proc.stderr


def test_a_daemon_child_runs_under_its_parent_lock(data_dir: Path) -> None:
    from joe.safety.lock import PARENT_ENV, child_env

    code = f"from joe.safety.lock import inherited; print(inherited({str(data_dir)!r}))"
    with InstanceLock.for_data_dir(data_dir):
        as_child = subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, **child_env()}, capture_output=True, text=True
        )
        stranger = subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, PARENT_ENV: "1"}, capture_output=True, text=True
        )
    assert as_child.stdout.strip() == "True" and stranger.stdout.strip() == "False"
    free = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **child_env()}, capture_output=True, text=True
    )
    assert free.stdout.strip() == "False"  # nobody holds the lock: the child must take it itself
