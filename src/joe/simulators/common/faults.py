"""A fault plan: named faults armed by a test (or a control endpoint) and consumed by a simulator.

A fault is armed with a count (how many times it fires) and parameters. Simulators call `take(name)`
at the point where the fault could apply; it returns the parameters (and uses one shot) or None.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Armed:
    remaining: int
    params: dict[str, Any] = field(default_factory=dict)
    skip: int = 0


class FaultPlan:
    """Thread-safe registry of armed faults; `fired` keeps a log for assertions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, _Armed] = {}
        self.fired: list[tuple[str, dict[str, Any]]] = []

    def arm(self, name: str, count: int = 1, *, skip: int = 0, **params: Any) -> None:
        """Arm `name` to fire `count` times (-1 = forever), after letting `skip` opportunities pass."""
        with self._lock:
            self._armed[name] = _Armed(count, dict(params), skip)

    def disarm(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._armed.clear()
            else:
                self._armed.pop(name, None)

    def active(self, name: str) -> bool:
        with self._lock:
            a = self._armed.get(name)
            return a is not None and a.remaining != 0

    def take(self, name: str) -> dict[str, Any] | None:
        """Consume one shot of `name` if armed; returns its parameters."""
        with self._lock:
            a = self._armed.get(name)
            if a is None or a.remaining == 0:
                return None
            if a.skip > 0:
                a.skip -= 1
                return None
            if a.remaining > 0:
                a.remaining -= 1
            self.fired.append((name, dict(a.params)))
            return dict(a.params)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: {"remaining": v.remaining, "skip": v.skip, **v.params} for k, v in self._armed.items()}
