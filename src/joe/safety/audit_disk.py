"""A full audit disk (issue 13, ``audit_full``): exits and cancels stay allowed, no new entries,
nothing lost.

The audit log frees its space reserve when an append meets a full disk (`joe.audit.reserve`) and tells
its disk-full listeners. `guard_audit_disk` is that listener: it moves the trading state to REDUCING
(exits, reduce-only orders and cancels only) with the reason, which alerts like every state change.
`entry_gate` is the `OrderManager`'s last look before it sends an entry: the entry whose own records
met the full disk is refused there (stored REJECTED and audited, in the freed space), never sent.
Trading comes back to ACTIVE only by ``joe resume --reason ...`` once the disk has room.
"""

from __future__ import annotations

from collections.abc import Callable

from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.trading_state import TradingState

BY = "audit-disk"


def guard_audit_disk(ctx: SafetyContext) -> Callable[[], None]:
    """Move to REDUCING when `ctx.audit` meets a full disk; returns the remover (a no-op for an audit
    sink that cannot tell, such as `NullAudit`)."""
    add = getattr(ctx.audit, "add_disk_full_listener", None)
    if add is None:
        return lambda: None

    def on_full(reason: str) -> None:
        ctx.states.escalate(
            TradingState.REDUCING,
            by=BY,
            reason=f"{reason}; no new entries until a human frees space and runs `joe resume --reason ...`",
        )

    remove: Callable[[], None] = add(on_full)
    return remove


def entry_gate(ctx: SafetyContext) -> Callable[[], str | None]:
    """The gate an `OrderManager` asks right before it sends an entry: None when entries are allowed
    (the kill file and the trading state, `control.entry_allowed`), else why not."""

    def gate() -> str | None:
        allowed, rec = entry_allowed(ctx)
        return None if allowed else f"trading is {rec.state.value}: {rec.reason}"

    return gate
