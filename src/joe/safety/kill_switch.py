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

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from joe.audit.redaction import redact_text
from joe.safety.trading_state import TradingState

KILL_FILE = "KILL"
MAX_REASON = 500


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
    """The kill file of `data_dir`, or None. An unreadable or odd file still means HALT (fail closed)."""
    path = kill_file_path(data_dir)
    if not path.exists():
        return None
    try:
        text = path.read_text(errors="replace").strip()
    except OSError as e:
        return KillFile(path, KillLevel.HALT, f"kill file present but unreadable ({e.strerror})")
    first, _, rest = text.partition(" ")
    try:
        level = KillLevel(first.lower())
        reason = rest.strip()
    except ValueError:
        level, reason = KillLevel.HALT, text
    reason = redact_text(reason)[:MAX_REASON] or "kill file present"
    return KillFile(path, level, reason)


def write_kill_file(data_dir: Path | str, level: KillLevel, reason: str) -> Path:
    """Create the kill file (used by tests and by anyone scripting the switch)."""
    path = kill_file_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{level.value} {reason}\n")
    return path
