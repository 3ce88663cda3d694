"""`AuditThrottle`: a flood of one kind of record from one source (wrong tokens from one client,
messages from a chat that is not allowed) is summarised instead of written one by one.

Each record costs an fsync, and a caller that keeps knocking must not be able to fill the disk or stall
the process that writes it (the daemon's loop when it serves the dashboard). At most `burst` records per
key per `window_s`; the first one written after that carries how many were left out (``suppressed``), so
every attempt is still counted in the audit log."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_KEYS = 10_000  # bounded memory whatever the number of sources


class AuditThrottle:
    def __init__(
        self, burst: int = 20, window_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1 or window_s <= 0:
            raise ValueError("AuditThrottle needs burst >= 1 and window_s > 0")
        self.burst = burst
        self.window_s = window_s
        self.monotonic = monotonic
        self._keys: dict[str, tuple[float, int, int]] = {}  # key -> (window start, written, left out)

    def admit(self, key: str) -> int | None:
        """None: do not write this one (it is counted). Otherwise write it, with the returned number of
        records left out before it (0: none) as its ``suppressed`` field when non-zero."""
        now = self.monotonic()
        start, written, suppressed = self._keys.get(key, (now, 0, 0))
        if now - start >= self.window_s:
            start, written = now, 0
        if written >= self.burst:
            self._keys[key] = (start, written, suppressed + 1)
            return None
        self._keys[key] = (start, written + 1, 0)
        if len(self._keys) > MAX_KEYS:
            self._keys.pop(next(iter(self._keys)))
        return suppressed
