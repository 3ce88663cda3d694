"""Helpers for tests that run `joe daemon` (and its simulator) as separate processes: a free port,
`joe sim ibkr` as a context manager, and the daemon's audit records and heartbeat read from its data
folder (what an operator would read)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from joe.runtime.daemon import HEARTBEAT_KEY
from joe.store import open_store

JOE = str(Path(sys.executable).with_name("joe"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def ibkr_simulator(port: int) -> Iterator[None]:
    """`joe sim ibkr` as its own process, listening on `port`."""
    proc = subprocess.Popen([JOE, "sim", "ibkr", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "joe sim ibkr did not start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


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
