"""Mapping of ib_async order callbacks onto Joe's `Order` state machine.

Kept free of I/O: `StatusMapper.on_status` and `to_fill` are pure functions of the callback data
and the tracked order, so the mapping is unit-testable without a socket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from ib_async import Contract
from ib_async import Fill as IBFill
from ib_async import Order as IBOrder

from joe.core.events import OrderEventType
from joe.core.models import Fill, Side
from joe.core.order import Order, OrderState

WORKING_IB = frozenset({"PreSubmitted", "Submitted", "ApiPending"})
CANCELLED_IB = frozenset({"Cancelled", "ApiCancelled", "Inactive"})
CANCEL_CONFIRM_CODES = frozenset({202, 10148})  # "Order Canceled", "cancel pending" style notices


@dataclass
class Tracked:
    """One order Joe placed at IBKR (or learned about from orderRef after a restart)."""

    order: Order
    contract: Contract
    ib_order: IBOrder
    order_id: int
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def coid(self) -> str:
        return self.order.client_order_id


def decimal(x: float) -> Decimal:
    """Broker floats to Decimal via their shortest repr (100.25 stays 100.25, 100.0 becomes 100)."""
    f = float(x)
    return Decimal(int(f)) if f.is_integer() else Decimal(repr(f))


def to_fill(f: IBFill, coid: str) -> Fill:
    """An ib_async `Fill` as Joe's `Fill` (fill_id = execId)."""
    ex = f.execution
    ts = ex.time if isinstance(ex.time, datetime) else datetime.now(UTC)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    commission = f.commissionReport.commission if f.commissionReport.execId else 0.0
    return Fill(
        fill_id=ex.execId,
        client_order_id=coid,
        symbol=f.contract.symbol,
        side=Side.BUY if ex.side.upper() in ("BOT", "BUY") else Side.SELL,
        quantity=decimal(ex.shares),
        price=decimal(ex.price),
        ts=ts.astimezone(UTC),
        commission=decimal(commission),
        broker_order_id=str(ex.orderId),
    )


@dataclass(frozen=True, slots=True)
class StatusChange:
    """What a status callback means for Joe: the event to emit (if any) and the reason."""

    event: OrderEventType | None
    reason: str = ""


def on_status(order: Order, ib_status: str, error_code: int = 0, message: str = "") -> StatusChange:
    """Apply an IBKR order status to Joe's `order`; returns the event to emit (None = nothing new).

    Fills never come from here (executions drive FILLED/PARTIALLY_FILLED, exactly once per execId).
    A Cancelled status carrying a non-cancel error code on an unfilled, unacknowledged or freshly
    accepted order is a rejection.
    """
    s = order.state
    if ib_status in WORKING_IB:
        if s in (OrderState.SUBMITTING, OrderState.UNKNOWN):
            order.transition(OrderState.ACCEPTED, reason=ib_status)
            return StatusChange(OrderEventType.ACCEPTED, ib_status)
        return StatusChange(None)
    if ib_status == "PendingCancel":
        if s in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED):
            order.transition(OrderState.CANCEL_PENDING, reason=ib_status)
        return StatusChange(None)
    if ib_status in CANCELLED_IB:
        if s.is_terminal:
            return StatusChange(None)
        rejected = (
            error_code not in (0, *CANCEL_CONFIRM_CODES)
            and order.filled_quantity == 0
            and order.can_transition(OrderState.REJECTED)
        ) or (ib_status == "Inactive" and order.can_transition(OrderState.REJECTED))
        if rejected:
            reason = f"{error_code}: {message}" if error_code else (message or ib_status)
            order.transition(OrderState.REJECTED, reason=reason)
            return StatusChange(OrderEventType.REJECTED, reason)
        if order.can_transition(OrderState.CANCELLED):
            order.transition(OrderState.CANCELLED, reason=message or ib_status)
            return StatusChange(OrderEventType.CANCELLED, message or ib_status)
    return StatusChange(None)
