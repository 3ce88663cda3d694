"""The paper book as a `FlattenVenue`, so ``kill --flatten`` in paper mode runs the same code as at a
broker. Paper has no working orders (it fills at once); a reduce-only close fills at the run's mark.

``joe kill --flatten`` has no prices of its own, so in paper mode it leaves a *pending* flatten in
the store (`request_paper_flatten`); the next paper run closes every position at its marks before
anything else (`run_pending_paper_flatten`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from joe.audit.redaction import redact_text
from joe.core.events import OrderEvent
from joe.core.models import OrderIntent, Position

if TYPE_CHECKING:
    from joe.portfolio import PaperPortfolio
    from joe.safety.control import SafetyContext
    from joe.safety.flatten import FlattenReport

PENDING_KEY = "safety.paper_flatten_pending"


class PaperVenue:
    """`FlattenVenue` over a loaded `PaperPortfolio`, closing at `marks` (else the entry price)."""

    name = "paper"

    def __init__(self, pf: PaperPortfolio, marks: Mapping[str, Decimal], ts: datetime) -> None:
        self.pf = pf
        self.marks = marks
        self.ts = ts

    async def positions(self) -> list[Position]:
        return await self.pf.positions()

    async def open_orders(self) -> list[OrderEvent]:
        return []

    async def place(self, intent: OrderIntent) -> Any:
        if not intent.reduce_only:
            raise ValueError("the paper venue only takes reduce-only closes from the safety layer")
        for pos in list(self.pf.ledger.positions.values()):
            if pos.symbol == intent.symbol and abs(pos.quantity) == intent.quantity:
                level = self.marks.get(pos.symbol) or pos.mark or pos.entry_price
                # The portfolio's own close path: same order state machine, store and audit as any exit.
                self.pf._close(pos, level, "flatten (kill switch)", self.ts)
                return {"closed": pos.position_id, "price": str(level)}
        raise ValueError(f"no open paper position of {intent.quantity} {intent.symbol}")

    async def cancel(self, client_order_id: str) -> None:
        return None


def request_paper_flatten(ctx: SafetyContext, *, reason: str, by: str) -> None:
    """Leave a flatten for the next paper run (see the module docstring)."""
    reason, by = redact_text(reason), redact_text(by)
    ctx.store.set_state(PENDING_KEY, {"reason": reason, "by": by, "at": ctx.clock().isoformat()})
    ctx.audit.record("safety.flatten_requested", {"venue": "paper", "reason": reason, "by": by})


def paper_flatten_pending(ctx: SafetyContext) -> dict[str, Any] | None:
    raw = ctx.store.get_state(PENDING_KEY)
    return raw if isinstance(raw, dict) else None


async def run_pending_paper_flatten(
    ctx: SafetyContext, pf: PaperPortfolio, marks: Mapping[str, Decimal], ts: datetime
) -> FlattenReport | None:
    """Close every paper position at `marks` if a flatten is pending; clears it when flat."""
    from joe.safety.control import flatten

    pending = paper_flatten_pending(ctx)
    if pending is None:
        return None
    (report,) = await flatten(
        ctx,
        [PaperVenue(pf, marks, ts)],
        reason=str(pending.get("reason", "")),
        by=str(pending.get("by", "?")),
        attempts=1,
        pause_s=0,
    )
    if report.flat:
        ctx.store.delete_state(PENDING_KEY)
    return report
