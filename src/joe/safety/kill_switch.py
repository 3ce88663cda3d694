"""`KillSwitch`: the layered stop — reduce, halt, flatten — and the kill file.

Levels: ``reduce`` → REDUCING (exits only); ``halt`` → HALTED (no new orders; working entry orders
cancelled; protective stops stay); ``flatten`` → HALTED, then every position is closed reduce-only
at the broker and working orders are cancelled (`joe.safety.flatten`).

The kill file ``<data dir>/KILL`` is the switch that needs nothing but a shell (``touch data/KILL``):
the run checks it before anything else (the daemon will on every tick). Its first word may name the
level (``reduce``, ``halt`` — the default — or ``flatten``); the rest is the reason. While it exists
``joe resume`` refuses: remove it first.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from joe.audit.redaction import redact_text
from joe.safety.trading_state import TradingState

KILL_FILE = "KILL"
MAX_REASON = 500
MAX_READ = 4096


class KillLevel(StrEnum):
    REDUCE = "reduce"
    HALT = "halt"
    FLATTEN = "flatten"

    @property
    def state(self) -> TradingState:
        return TradingState.REDUCING if self is KillLevel.REDUCE else TradingState.HALTED


@dataclass(frozen=True, slots=True)
class KillFile:
    """A kill file found on disk: its level and reason."""

    path: Path
    level: KillLevel
    reason: str


def kill_file_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / KILL_FILE


def read_kill_file(data_dir: Path | str) -> KillFile | None:
    """The kill file of `data_dir`, or None when there is no ``KILL`` entry at all.

    Fail closed: ANY directory entry called ``KILL`` is a kill — a dangling symlink, a directory, a
    fifo, a socket, a device — and so is one that cannot be looked at or read (permissions, I/O error,
    a data folder that is not a directory). Only a regular file (or a symlink to one) is read, at most
    `MAX_READ` bytes and without blocking, for its level and reason; anything else is HALT, the reason
    naming what was found.
    """
    path = kill_file_path(data_dir)
    try:
        st = os.lstat(path)  # lexists: a dangling symlink exists
    except FileNotFoundError:
        return None
    except OSError as e:
        return KillFile(path, KillLevel.HALT, f"kill file cannot be checked ({e.strerror}): fail closed")
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
        except OSError as e:
            return KillFile(
                path, KillLevel.HALT, f"kill file is a symlink that cannot be followed ({e.strerror})"
            )
        if not stat.S_ISREG(target.st_mode):
            return KillFile(path, KillLevel.HALT, f"kill file is a symlink to a {_kind(target.st_mode)}")
    elif not stat.S_ISREG(st.st_mode):
        return KillFile(path, KillLevel.HALT, f"kill file is a {_kind(st.st_mode)}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            raw = os.read(fd, MAX_READ)
        finally:
            os.close(fd)
    except OSError as e:
        return KillFile(path, KillLevel.HALT, f"kill file present but unreadable ({e.strerror})")
    text = raw.decode("utf-8", errors="replace").strip()
    first, _, rest = text.partition(" ")
    try:
        level = KillLevel(first.lower())
        reason = rest.strip()
    except ValueError:
        level, reason = KillLevel.HALT, text
    reason = redact_text(reason)[:MAX_REASON] or "kill file present"
    return KillFile(path, level, reason)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def write_kill_file(data_dir: Path | str, level: KillLevel, reason: str) -> Path:
    """Create the kill file (used by tests and by anyone scripting the switch)."""
    path = kill_file_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{level.value} {reason}\n")
    return path
