"""The protections' locks as a `RiskGate` rule: no entry on a locked symbol, none under a global lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joe.safety.protections.policies import ALL
from joe.safety.rules.order import _deny

if TYPE_CHECKING:
    from joe.safety.risk_gate import Denial, GateBook, ProposedOrder, RiskGate


class ProtectionLocks:
    """``safety.protections``: stop-loss streak guard, cooldown after a stop, drawdown, low-profit locks."""

    name = "protection"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        for lock in book.locks:
            if lock.scope in (ALL, order.symbol) and lock.until > book.now:
                what = "everything" if lock.scope == ALL else order.symbol
                return _deny(
                    self.name,
                    f"{lock.policy} locks {what}: {lock.reason}",
                    "locked",
                    f"until {lock.until:%Y-%m-%d %H:%M}",
                )
        return None
