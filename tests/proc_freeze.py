"""Freeze a `joe` process that holds a lock while another process is shown the lock is held.

"Start A; once A holds the lock, start B and expect B to be refused" only holds if A still runs when B
asks: a small run can finish in about the time a second interpreter takes to start, and on a loaded CI
machine it did (B ran normally, exit 0 not 3). The holder is stopped (SIGSTOP) until B is done, then
resumed (SIGCONT): however slowly B starts, it finds A holding the lock. A is stopped only at a moment
it holds neither a SQLite write transaction on `db` (a frozen writer would make B wait out the busy
timeout) nor the audit log's writer lock (`<data>/audit/.audit.lock`, a blocking flock: B's first audit
record would wait for ever, as the first CI run of this helper's pattern showed) - waits a live holder
never makes B sit out."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from joe.audit.log import LOCK_FILE


def _writing(db: Path) -> bool:
    """Whether some process holds a write transaction on the SQLite file `db`."""
    try:
        with sqlite3.connect(db, timeout=0) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
    except sqlite3.OperationalError:
        return True
    return False


def _auditing(audit_dir: Path) -> bool:
    """Whether some process holds the audit log's writer lock (`joe.audit.log`'s flock)."""
    path = audit_dir / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def freeze_outside_a_write(pid: int, db: Path, holds: Callable[[], bool] | None = None) -> None:
    """SIGSTOP `pid` at a moment it holds no write transaction on the SQLite file `db` and not the audit
    writer lock of `db`'s folder (`holds`, when given, must then be true: e.g. "it still holds the lock")."""
    for _ in range(2000):
        os.kill(pid, signal.SIGSTOP)
        if _writing(db) or _auditing(db.parent / "audit"):
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.002)
            continue
        if holds is not None:
            assert holds(), "the frozen process no longer holds what it held"
        return
    os.kill(pid, signal.SIGCONT)
    pytest.fail(f"pid {pid} held a write on {db} or its audit log at every try")


@contextmanager
def frozen(pid: int, db: Path, holds: Callable[[], bool] | None = None) -> Iterator[None]:
    """`pid` stopped (outside a write on `db`) for the block, resumed after it whatever happens."""
    freeze_outside_a_write(pid, db, holds)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
