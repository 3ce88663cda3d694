"""Freeze a `joe` process that holds a lock while another process is shown the lock is held.

"Start A; once A holds the lock, start B and expect B to be refused" only holds if A still runs when B
asks: a small run can finish in about the time a second interpreter takes to start, and on a loaded CI
machine it did (B ran normally, exit 0 not 3). The holder is stopped (SIGSTOP) until B is done, then
resumed (SIGCONT): however slowly B starts, it finds A holding the lock. A is stopped only at a moment
it holds no SQLite write transaction on `db` (a frozen writer would make B wait out the busy timeout,
which a live holder never makes it do)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def freeze_outside_a_write(pid: int, db: Path, holds: Callable[[], bool] | None = None) -> None:
    """SIGSTOP `pid` at a moment it holds no write transaction on the SQLite file `db` (`holds`, when
    given, must then be true: e.g. "it still holds the lock")."""
    for _ in range(500):
        os.kill(pid, signal.SIGSTOP)
        try:
            with sqlite3.connect(db, timeout=0) as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.rollback()
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.002)
            continue
        if holds is not None:
            assert holds(), "the frozen process no longer holds what it held"
        return
    pytest.fail(f"pid {pid} held a write transaction on {db} at every try")


@contextmanager
def frozen(pid: int, db: Path, holds: Callable[[], bool] | None = None) -> Iterator[None]:
    """`pid` stopped (outside a write on `db`) for the block, resumed after it whatever happens."""
    freeze_outside_a_write(pid, db, holds)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
