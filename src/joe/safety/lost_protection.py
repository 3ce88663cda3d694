"""Reaction to lost protection: an open position without a resting stop at the broker.

DESIGN.md: "Protection is an invariant ... a stop cancelled or rejected by the broker is re-placed or
the position is reduced, with an alert." The `OrderManager` (or the reconciler) reports an
`UnprotectedPosition`; `LostProtectionHandler.on_unprotected` then:

1. audits ``safety.protection_lost`` and alerts (CRITICAL);
2. tries to re-place the stop through the `ProtectionPort`, retrying until
   ``safety.protection_deadline_s`` has passed;
3. if the stop is back: audits ``safety.protection_restored``; otherwise exits the position
   reduce-only (``safety.protection_exit``), and if even that fails, HALTS trading
   (``by protection:<symbol>``) so nothing new opens while a position is naked.

The port is a small protocol so the handler is wired to whatever owns order truth (the
`OrderManager` when it lands); it never touches a broker itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState


@dataclass(frozen=True, slots=True)
class UnprotectedPosition:
    """An open position whose protective stop is gone (`why`: cancelled / rejected / missing)."""

    symbol: str
    quantity: Decimal
    stop_price: Decimal | None
    why: str
    position_ref: str = ""


class ProtectionPort(Protocol):
    """What the handler asks of the order owner."""

    async def replace_stop(self, p: UnprotectedPosition) -> bool:
        """Send a new protective stop for the whole position; True once the broker holds it."""
        ...

    async def exit_reduce_only(self, p: UnprotectedPosition) -> bool:
        """Close the position with a reduce-only order; True once it is flat."""
        ...


class Outcome(StrEnum):
    RESTORED = "restored"
    EXITED = "exited"
    HALTED = "halted"


class LostProtectionHandler:
    """See the module docstring. `deadline_s` bounds how long re-placing may take."""

    def __init__(
        self,
        ctx: SafetyContext,
        port: ProtectionPort,
        *,
        deadline_s: float = 30.0,
        retry_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.port = port
        self.deadline_s = deadline_s
        self.retry_s = retry_s
        self._sleep = sleep
        self._mono = monotonic

    async def on_unprotected(self, p: UnprotectedPosition) -> Outcome:
        ids = {"position": p.position_ref or p.symbol}
        base = {"symbol": p.symbol, "quantity": p.quantity, "stop_price": p.stop_price, "why": p.why}
        self.ctx.audit.record("safety.protection_lost", {**base, "deadline_s": self.deadline_s}, **ids)
        self.ctx.alerts.lost_protection(p.symbol, "lost", f"{p.why}; re-placing within {self.deadline_s:g}s")
        end = self._mono() + self.deadline_s
        attempts = 0
        while True:
            attempts += 1
            left = end - self._mono()
            try:
                ok = await asyncio.wait_for(self.port.replace_stop(p), timeout=max(left, 0.001))
            except Exception as e:  # a timeout or a refusal: retry until the deadline
                ok = False
                self.ctx.audit.record(
                    "safety.protection_retry", {**base, "error": f"{type(e).__name__}: {e}"}, **ids
                )
            if ok:
                self.ctx.audit.record("safety.protection_restored", {**base, "attempts": attempts}, **ids)
                self.ctx.alerts.lost_protection(
                    p.symbol, "restored", f"stop back after {attempts} attempt(s)"
                )
                return Outcome.RESTORED
            if self._mono() + self.retry_s >= end:
                break
            await self._sleep(self.retry_s)
        try:
            exited = await self.port.exit_reduce_only(p)
        except Exception as e:
            exited = False
            self.ctx.audit.record(
                "safety.protection_exit_failed", {**base, "error": f"{type(e).__name__}: {e}"}, **ids
            )
        if exited:
            self.ctx.audit.record("safety.protection_exit", {**base, "attempts": attempts}, **ids)
            self.ctx.alerts.lost_protection(
                p.symbol, "exited", "stop not restored in time: closed reduce-only"
            )
            return Outcome.EXITED
        self.ctx.states.escalate(
            TradingState.HALTED,
            by=f"protection:{p.symbol}",
            reason=f"{p.symbol} unprotected ({p.why}); stop not restored and exit failed",
        )
        self.ctx.alerts.lost_protection(
            p.symbol, "NAKED", "stop not restored and exit failed: trading HALTED"
        )
        return Outcome.HALTED
