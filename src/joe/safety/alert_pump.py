"""`AlertPump`: a long-running process delivers its queued execution alerts as they come.

Guards queue alerts (`ExecutionAlerts`); a `joe run --once` flushes them when it ends
(`RunGuard.finish`). The daemon never ends on its own, so without a pump the margin warning, the
breaker trip or the lost stop it saw would wait in memory forever (and the queue would grow). The
daemon calls the pump every few seconds (a periodic task) and once more when it stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from joe.safety.control import SafetyContext


class AlertPump:
    """Delivers `ctx.alerts` through the manager `make_manager()` builds (once, on first use)."""

    def __init__(self, ctx: SafetyContext, make_manager: Callable[[], Any]) -> None:
        self.ctx = ctx
        self.make_manager = make_manager
        self._manager: Any = None
        self.sent = 0

    async def __call__(self) -> None:
        if not self.ctx.alerts.pending:
            return
        if self._manager is None:
            self._manager = self.make_manager()
        manager = self._manager
        self.sent += await self.ctx.alerts.flush(manager if getattr(manager, "enabled", True) else None)

    async def close(self) -> None:
        """Deliver what is left, then close the manager's channels."""
        try:
            await self()
        finally:
            if self._manager is not None and hasattr(self._manager, "aclose"):
                await self._manager.aclose()
