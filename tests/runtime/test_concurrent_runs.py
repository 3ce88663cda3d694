"""Two `joe run --once` on one data folder (issue 15): the single-instance lock lets one run and
refuses the other with "another Joe is running (pid N)", exit 3; nothing is booked twice and no run
row is left `running`. Two real processes, as a user would start them from two terminals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from joe.safety.lock import holder_pid
from joe.store import open_store
from proc_freeze import freeze_outside_a_write

JOE = str(Path(sys.executable).with_name("joe"))


def _start(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [JOE, "run", "--once"],
        cwd=project,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _book(project: Path) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, str]]]:
    """(run id, status) of every run row; fill ids; (symbol, opened at) of every position."""
    db = project / "data" / "joe.db"
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT run_id, status FROM pipeline_runs ORDER BY started_at").fetchall()
    store = open_store(f"sqlite:///{db}", data_dir=project / "data")
    try:
        fills = [f.fill_id for f in store.fills(mode="paper")]
        positions = [(p.symbol, str(p.opened_at)) for p in store.open_positions("paper")]
    finally:
        store.close()
    return runs, fills, positions


def _audit(project: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for f in sorted((project / "data/audit").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]


SMALL = "version: 1\npipeline:\n  universe_size: 20\nai:\n  enabled: false\n"


@pytest.mark.timeout(600)
def test_two_runs_started_together_one_trades_the_other_is_refused(project: Path) -> None:
    (project / "config/execution.yaml").write_text(SMALL)
    a, b = _start(project), _start(project)
    procs = {a.pid: a, b.pid: b}
    deadline = time.monotonic() + 120
    while (holder := holder_pid(project / "data")) not in procs:
        assert time.monotonic() < deadline and a.poll() is None and b.poll() is None
        time.sleep(0.005)
    # Whichever won is frozen until the other is done: however slowly the other starts, it finds the
    # folder held (without this a small run may finish before a slow interpreter asks for the lock).
    freeze_outside_a_write(
        holder, project / "data" / "joe.db", lambda: holder_pid(project / "data") == holder
    )
    try:
        (other,) = [p for pid, p in procs.items() if pid != holder]
        other_out = other.communicate(timeout=300)
    finally:
        os.kill(holder, signal.SIGCONT)
    outs = {holder: (procs[holder], *procs[holder].communicate(timeout=600)), other.pid: (other, *other_out)}
    codes = sorted(p.returncode for p, _, _ in outs.values())
    assert codes == [0, 3], {pid: err[-1500:] for pid, (_, _, err) in outs.items()}
    (winner,) = [pid for pid, (p, _, _) in outs.items() if p.returncode == 0]
    (loser,) = [pid for pid, (p, _, _) in outs.items() if p.returncode == 3]
    err = " ".join(outs[loser][2].split())
    assert f"Refused: another Joe is running (pid {winner})" in err
    assert "Report:" not in outs[loser][1] and "Traceback" not in err
    runs, fills, positions = _book(project)
    assert [s for _, s in runs] == ["ok"]  # one run, finished; none left `running`
    assert len(fills) == len(set(fills)) == len(positions) > 0  # each entry booked once
    assert len({s for s, _ in positions}) == len(positions)
    refused = [r for r in _audit(project) if r["event"] == "run.refused"]
    assert [r["payload"]["holder_pid"] for r in refused] == [winner]  # type: ignore[index]


@pytest.mark.timeout(600)
def test_a_run_started_while_another_holds_the_folder_waits_for_nothing_and_changes_nothing(
    project: Path,
) -> None:
    (project / "config/execution.yaml").write_text(SMALL)
    first = _start(project)
    deadline = time.monotonic() + 120
    while holder_pid(project / "data") != first.pid:  # the first run holds the lock
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-1500:]
        time.sleep(0.02)
    # Freeze the holder while the second starts: a second interpreter takes about as long to start
    # as a small run takes to finish, so without this the first may be done before the second asks.
    freeze_outside_a_write(
        first.pid, project / "data" / "joe.db", lambda: holder_pid(project / "data") == first.pid
    )
    try:
        second = subprocess.run(
            [JOE, "run", "--once"],
            cwd=project,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-1500:]
    assert second.returncode == 3, second.stderr[-1500:]
    assert f"another Joe is running (pid {first.pid})" in " ".join(second.stderr.split())
    runs, fills, positions = _book(project)
    assert [s for _, s in runs] == ["ok"]
    # Once the first is done, the folder is free: a rerun of the same date books nothing new.
    again = subprocess.run(
        [JOE, "run", "--once"], cwd=project, env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-1500:]
    runs2, fills2, positions2 = _book(project)
    assert [s for _, s in runs2] == ["ok", "ok"] and fills2 == fills and positions2 == positions
    assert holder_pid(project / "data") is None


def _hold_empty(path: Path) -> int:
    """Take the lock as a holder does in the instant before it writes its pid (file still empty)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    return fd


def test_the_refusal_names_the_pid_written_just_after_the_holder_took_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from joe.safety import lock as lock_module
    from joe.safety.lock import AlreadyRunning, InstanceLock

    lock = InstanceLock.for_data_dir(tmp_path)
    fd = _hold_empty(lock.path)
    # The holder writes its pid while the refused process waits to look again (its first pause),
    # not on a 50 ms timer racing the 0.5 s it looks for (a loaded machine can start a thread late).
    waits: list[float] = []

    def holder_writes_its_pid(seconds: float) -> None:
        if not waits:
            os.pwrite(fd, b"4242\n", 0)
        waits.append(seconds)

    monkeypatch.setattr(lock_module, "time", SimpleNamespace(sleep=holder_writes_its_pid))
    try:
        with pytest.raises(AlreadyRunning, match=r"another Joe is running \(pid 4242\)"):
            lock.acquire()
    finally:
        os.close(fd)
    assert waits, "the pid was there at the first look: this did not test the wait"


def test_a_lock_let_go_while_its_pid_was_being_cleared_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from joe.safety import lock as lock_module
    from joe.safety.lock import InstanceLock

    lock = InstanceLock.for_data_dir(tmp_path)
    fd = _hold_empty(lock.path)  # the holder cleared its pid and is about to close
    # It closes while the other process waits to look again (not on a timer racing that wait).
    waits: list[float] = []

    def holder_lets_go(seconds: float) -> None:
        if not waits:
            os.close(fd)
        waits.append(seconds)

    monkeypatch.setattr(lock_module, "time", SimpleNamespace(sleep=holder_lets_go))
    try:
        lock.acquire()
        assert lock.held and holder_pid(tmp_path) == os.getpid()
        assert waits, "the lock was free at the first look: this did not test the wait"
    finally:
        if not waits:
            os.close(fd)
        lock.release()
