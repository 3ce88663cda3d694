"""Shared by the live daemon tests: `joe daemon` as its own process, its heartbeat and audit log,
and the store it leaves behind (read after it exits, or between its writes: SQLite WAL)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from joe.runtime.daemon import HEARTBEAT_KEY
from joe.store import open_store

JOE = str(Path(sys.executable).with_name("joe"))


async def until(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def read_store(data: Path, fn: Callable[[Any], Any]) -> Any:
    store = open_store(f"sqlite:///{data / 'joe.db'}", data_dir=data)
    try:
        return fn(store)
    finally:
        store.close()


def heartbeat(data: Path) -> dict[str, Any] | None:
    if not (data / "joe.db").exists():
        return None
    beat = read_store(data, lambda s: s.get_state(HEARTBEAT_KEY))
    return beat if isinstance(beat, dict) else None


class DaemonProc:
    """`joe daemon --broker <broker>` as its own process (heartbeat every 0.2 s; no schedule unless
    `schedule`)."""

    def __init__(
        self, project: Path, env: dict[str, str], broker: str, *extra: str, schedule: bool = False
    ) -> None:
        self.project = project
        self.data = project / "data"
        sched = [] if schedule else ["--no-schedule"]
        cmd = [JOE, "daemon", "--broker", broker, "--heartbeat", "0.2", *sched, *extra]
        self.proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip

    async def beat(
        self, pred: Callable[[dict[str, Any]], bool], what: str, timeout: float = 90
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if self.proc.poll() is not None:
                err = self.proc.communicate()[1][-4000:]
                raise AssertionError(f"joe daemon exited {self.proc.returncode}: {err}")
            b = heartbeat(self.data)
            if b is not None and b.get("pid") == self.proc.pid and pred(b):
                return b
            await asyncio.sleep(0.1)
        raise AssertionError(f"no heartbeat with {what}")

    async def terminate(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        return await self._wait()

    async def kill(self) -> None:
        self.proc.kill()
        await self._wait()

    async def _wait(self) -> tuple[int, str]:
        while self.proc.poll() is None:  # the simulator runs on this loop: never block it
            await asyncio.sleep(0.05)
        _out, err = self.proc.communicate()
        return self.proc.returncode, err


def audit_kinds(project: Path) -> list[str]:
    return [str(rec.get("event")) for rec in audit_records(project)]


def audit_records(project: Path, event: str | None = None) -> list[dict[str, Any]]:
    """The audit log's records in order (only `event`'s when given). Read while the daemon writes: a
    last line without its newline is a record still being written, not yet one to read."""
    out = []
    for f in sorted((project / "data/audit").glob("*.jsonl")):
        text = f.read_text()
        lines = text.split("\n")[:-1]  # complete lines only (each record ends with a newline)
        for line in filter(None, lines):
            rec = json.loads(line)
            if event is None or rec.get("event") == event:
                out.append(rec)
    return out


def run_rows(project: Path) -> list[tuple[str, str]]:
    """(run_id, status) of every pipeline run in the project's store, read-only; [] before the store
    or its table exists (a run still starting)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{project / 'data/joe.db'}?mode=ro", uri=True) as conn:
            return [(str(a), str(b)) for a, b in conn.execute("select run_id, status from pipeline_runs")]
    except sqlite3.OperationalError:
        return []


async def settled(
    read: Callable[[], Any],
    poke: Callable[[], Awaitable[None]] | None = None,
    quiet_s: float = 1.5,
    timeout: float = 60.0,
) -> Any:
    """`read()` once it has not changed for `quiet_s` seconds (e.g. a trailing stop whose last step
    has landed at the broker); `poke` runs before each wait (e.g. one more quote at the same price:
    the monitor reconsiders the trail on quotes)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last = read()
    while True:
        if poke is not None:
            await poke()
        await asyncio.sleep(quiet_s)
        now = read()
        if now == last:
            return now
        assert loop.time() < end, f"still changing after {timeout}s: {now}"
        last = now
