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

import logging
from collections.abc import Callable

from joe.safety.control import SafetyContext, entry_allowed
from joe.safety.trading_state import TradingState

BY = "audit-disk"
log = logging.getLogger(__name__)


def guard_audit_disk(ctx: SafetyContext) -> Callable[[], None]:
    """Move to REDUCING when `ctx.audit` meets a full disk — and at once when it is full already (a
    process started on a full disk: no room for its space reserve, said before any listener was
    there); returns the remover (a no-op for an audit sink that cannot tell, such as `NullAudit`)."""
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
    if not _has_room(ctx):
        where = getattr(ctx.audit, "directory", "the audit folder")
        try:
            on_full(f"the audit disk is full (no room for the audit log's space reserve in {where})")
        except Exception as e:  # the state is stored all the same (fail closed); its record is not
            log.warning("audit disk guard: the move to REDUCING was not audited: %s", type(e).__name__)
    return remove


def _has_room(ctx: SafetyContext) -> bool:
    has_room = getattr(ctx.audit, "has_room", None)
    return True if has_room is None else bool(has_room())


def entry_gate(ctx: SafetyContext) -> Callable[[], str | None]:
    """The gate an `OrderManager` asks right before it sends an entry: None when entries are allowed
    (the kill file and the trading state, `control.entry_allowed`) and the audit log has room (its
    space reserve in place, `AuditLog.has_room`: a full disk refuses entries even before the trading
    state has moved, and after a `joe resume` given while the disk is still full), else why not."""

    def gate() -> str | None:
        allowed, rec = entry_allowed(ctx)
        if not allowed:
            return f"trading is {rec.state.value}: {rec.reason}"
        if not _has_room(ctx):
            return "the audit disk is full (the audit log's space reserve is used up)"
        return None

    return gate
