"""Helpers for tests that run `joe daemon`, `joe sim` or `joe web` as separate processes: a process
ready when it says so (`announced`), `joe sim` on a port the OS picked (`sim_process`), a port that
refuses connections (`refused_port`), and the daemon's audit records and heartbeat read from its data
folder (what an operator would read)."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from joe.runtime.daemon import HEARTBEAT_KEY
from joe.store import open_store
from market_clock import market_instant

JOE = str(Path(sys.executable).with_name("joe"))


class Announced:
    """A process started by `announced`: its Popen, the match of the line that said it is ready, and
    every line it has written so far (stdout and stderr merged; a thread keeps reading them, so the
    process never blocks on a full pipe however much it writes)."""

    def __init__(self, proc: subprocess.Popen[str], match: re.Match[str], lines: list[str]) -> None:
        self.proc, self.match, self.lines = proc, match, lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def announced(
    cmd: list[str],
    ready: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> Iterator[Announced]:
    """Run `cmd` until it writes a line matching the regex `ready` (its own word that it is ready, e.g.
    the simulator's "listening on 127.0.0.1:PORT", printed after the socket listens); stopped
    (SIGTERM, then SIGKILL after 10 s) on exit. An exit or `timeout` seconds (process start-up on a
    loaded 2-core machine: imports alone take seconds) before that line fail with what it wrote.

    This replaces "pick a free port, close it, pass the number on, poll until something accepts": the
    port could be taken in between by another xdist worker, and the poll then connected to THAT
    process (another test's simulator) while ours had exited."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
    )
    lines: list[str] = []
    fresh: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            fresh.put(lines[-1])
        fresh.put(None)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = fresh.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{cmd[1:3]} did not say it is ready within {timeout:.0f} s:\n"
                                     + "\n".join(lines)) from None  # fmt: skip
            if line is None:
                proc.wait(10)
                raise AssertionError(f"{cmd[1:3]} exited {proc.returncode} before it was ready:\n"
                                     + "\n".join(lines))  # fmt: skip
            if m := re.search(ready, line):
                break
        yield Announced(proc, m, lines)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        reader.join(10)


class Sim:
    """A running `joe sim`: the port it listens on (read from its banner), the IBKR control port when
    asked for, and the exports its banner prints."""

    def __init__(self, run: Announced, kind: str) -> None:
        self.run, self.proc = run, run.proc
        listening = re.search(SIM_READY[kind], run.text, re.MULTILINE)
        assert listening is not None, run.text
        self.port = int(listening.group(1))
        control = re.search(r"control port .*http://127\.0\.0\.1:(\d+)/_sim/", run.text)
        self.control_port = int(control.group(1)) if control else None
        self.exports = dict(re.findall(r"^\s*export (\w+)=(\S+)$", run.text, re.MULTILINE))
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def control(self) -> str:
        """The IBKR control base URL (`http://127.0.0.1:N`), or Capital.com's own URL (it serves /_sim/)."""
        return f"http://127.0.0.1:{self.control_port}" if self.control_port else self.url


SIM_READY = {
    "ibkr": r"^IBKR simulator .* listening on 127\.0\.0\.1:(\d+);",
    "capital": r"^Capital\.com simulator on http://127\.0\.0\.1:(\d+) ",
}


@contextmanager
def sim_process(
    kind: str,
    *args: str,
    port: int = 0,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    market_clock: bool = True,
) -> Iterator[Sim]:
    """`joe sim <kind> --port <port> [args]` as its own process, ready when its banner is printed (after
    its sockets listen). `port` 0 (the default) lets the OS pick a free one, read back from the banner,
    so no other process can take it in between; give a port only when the test needs that one (a
    restart on the same port, a paper port the live gate accepts). Ask for the IBKR control port with
    `"--control-port", "0"`. `env` defaults to this environment without CAPITAL_*/IBKR_* and
    JOE_SIM_CLOCK_START. The simulator's clock starts at Joe's market instant in `env`
    (JOE_SIM_CLOCK_START, unless `env` sets it: tests/market_clock.py), so its market is the Tuesday
    Joe's runs judge, whatever the weekday;
    `market_clock=False` leaves the clock to `env` (default: the wall clock, for a test of the
    simulator's time against this host's)."""
    if env is None:  # nor a JOE_SIM_CLOCK_START left exported from a rehearsal: the test's instant rules
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CAPITAL_", "IBKR_")) and k != "JOE_SIM_CLOCK_START"
        }
    if market_clock:
        env = {"JOE_SIM_CLOCK_START": market_instant(env), **env}
    cmd = [JOE, "sim", kind, "--port", str(port), *args]
    # The banner's first line names the port; the whole banner ends with the `joe run --once` hint.
    with announced(cmd, r"joe run --once", env=env, timeout=timeout) as run:
        yield Sim(run, kind)


@contextmanager
def ibkr_simulator() -> Iterator[int]:
    """`joe sim ibkr` as its own process on a port the OS picked; yields that port."""
    with sim_process("ibkr") as sim:
        yield sim.port


@contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 where a connection is refused for as long as the block runs: bound by this
    process, never listened on, so no other test's server can take it meanwhile (a port found free and
    closed again can be, and a "nothing listening" check would then reach that server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def audit_events(project: Path, event: str) -> list[dict[str, Any]]:
    """Every audit record named `event` in `project/data/audit`, oldest first. A last line without its
    newline is a record the daemon is still writing: left for the next read."""
    out = []
    for f in sorted((project / "data/audit").glob("*.jsonl")):
        complete = filter(None, f.read_text().split("\n")[:-1])
        out += [r for r in map(json.loads, complete) if r.get("event") == event]
    return out


def read_heartbeat(project: Path) -> dict[str, Any]:
    """The daemon's last heartbeat from `project/data/joe.db` ({} before the first one)."""
    if not (project / "data/joe.db").exists():
        return {}
    store = open_store(f"sqlite:///{project / 'data/joe.db'}", data_dir=project / "data")
    try:
        beat = store.get_state(HEARTBEAT_KEY)
    finally:
        store.close()
    return beat if isinstance(beat, dict) else {}
