"""A margin monitor that cannot read the account is blind: said at once, and fail closed after a bound.

The daemon reads the broker account every ``daemon.margin_check_s`` seconds (`MarginMonitor`). When a
read fails (broker unavailable, no connection) while positions are open, nobody watches the margin:
`BlindMargin` alerts (``margin`` alert, level ``blind``; audited ``safety.margin_blind``) on the first
failed read, and once blind for longer than `bound_s` moves the trading state to REDUCING (exits only,
DESIGN: fail closed on the live path; broker-side stops stay). The next good reading audits
``safety.margin_sight_restored``; the REDUCING state stays until `joe resume` (a human decides).
With no open position a failed read is audited only (nothing at risk).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState

BLIND_CHECKS = 3  # checks missed in a row before REDUCING (bound = BLIND_CHECKS × margin_check_s)
MIN_BOUND_S = 180.0


def blind_bound_s(margin_check_s: float) -> float:
    """Seconds a blind margin monitor is tolerated with positions open: 3 checks, at least 3 minutes."""
    return max(BLIND_CHECKS * margin_check_s, MIN_BOUND_S)


class BlindMargin:
    """Tracks how long the margin monitor has been without a reading (see the module docstring).

    `positions`: how many positions are open now; `clock`: aware UTC time (the safety context's)."""

    def __init__(
        self,
        ctx: SafetyContext,
        broker: str,
        bound_s: float,
        positions: Callable[[], int],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ctx = ctx
        self.broker = broker
        self.bound_s = bound_s
        self.positions = positions
        self.clock = clock or ctx.clock
        self.since: datetime | None = None
        self.alerted = False
        self.reduced = False

    def seen(self) -> None:
        """A reading reached the margin monitor."""
        if self.since is not None and self.alerted:
            blind_s = (self.clock() - self.since).total_seconds()
            self.ctx.audit.record("safety.margin_sight_restored", {"broker": self.broker, "blind_s": blind_s})
        self.since, self.alerted, self.reduced = None, False, False

    def blind(self, why: str) -> None:
        """A read failed (`why`): alert with positions open; REDUCING once blind beyond the bound."""
        now = self.clock()
        self.since = self.since or now
        blind_s = (now - self.since).total_seconds()
        held = self.positions()
        if held == 0:
            self.ctx.audit.record("safety.margin_blind", {"broker": self.broker, "reason": why[:300],
                                                          "blind_s": blind_s, "positions": 0})  # fmt: skip
            return
        detail = f"margin monitor blind for {blind_s:.0f}s with {held} position(s) open: {why[:200]}"
        if not self.alerted:
            self.alerted = True
            self.ctx.audit.record("safety.margin_blind", {"broker": self.broker, "reason": why[:300],
                                                          "blind_s": blind_s, "positions": held})  # fmt: skip
            self.ctx.alerts.margin("blind", self.broker, detail)
        if blind_s > self.bound_s and not self.reduced:
            self.reduced = True
            self.ctx.alerts.margin("blind", self.broker, detail + f"; beyond {self.bound_s:.0f}s: REDUCING")
            self.ctx.states.escalate(TradingState.REDUCING, by=f"margin-blind:{self.broker}", reason=detail)
