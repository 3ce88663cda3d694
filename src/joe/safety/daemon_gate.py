"""The daemon's view of the safety layer: may it take an entry right now?

`DaemonSafety.entries_allowed` is what `joe.runtime.daemon.Daemon` asks before any entry. It re-reads
the kill file and the persisted trading state at most every `every_s` seconds (a SQLite read and a
stat are cheap, but the monitor may ask many times a second), so a `touch data/KILL` or a
`joe kill` from another shell stops the daemon's entries within one heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from joe.core.logging import get_logger
from joe.safety.control import SafetyContext, entry_allowed

log = get_logger("joe.safety.daemon")


class DaemonSafety:
    def __init__(
        self, ctx: SafetyContext, *, every_s: float = 5.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ctx = ctx
        self.every_s = every_s
        self._mono = monotonic
        self._checked_at: float | None = None
        self._allowed = False  # fail closed until the first check

    def recheck(self) -> None:
        """Read the trading state and the kill file again on the next `entries_allowed` (e.g. right
        after a reconciliation moved the state to HALTED)."""
        self._checked_at = None

    def entries_allowed(self) -> bool:
        now = self._mono()
        if self._checked_at is None or now - self._checked_at >= self.every_s:
            self._checked_at = now
            try:
                allowed, rec = entry_allowed(self.ctx)
            except Exception as e:  # the store or the audit log failed: no entries (fail closed)
                log.error("safety.check_failed", error=type(e).__name__)
                allowed = False
            else:
                if allowed != self._allowed:
                    log.warning("safety.entries", allowed=allowed, state=rec.state.value, by=rec.by)
            self._allowed = allowed
        return self._allowed
