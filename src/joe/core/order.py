"""`Order` and its explicit state machine.

States and legal transitions (anything else raises `IllegalTransition`):

    NEW ─► SUBMITTING ─► ACCEPTED ─► PARTIALLY_FILLED ─► FILLED
            │   │           │  ▲          │
            │   └► REJECTED │  └ (modify) │
            └► UNKNOWN      ├► CANCEL_PENDING ─► CANCELLED (or FILLED / PARTIALLY_FILLED if a fill raced)
                            ├► CANCELLED / EXPIRED / REJECTED

UNKNOWN is the fail-closed state for an ambiguous submit (timeout after send): the order may or may
not exist at the broker until reconciliation moves it on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from joe.core.clock import utcnow
from joe.core.models import ZERO, Fill, OrderIntent


class OrderState(StrEnum):
    NEW = "NEW"
    SUBMITTING = "SUBMITTING"
    UNKNOWN = "UNKNOWN"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCEL_PENDING = "CANCEL_PENDING"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_working(self) -> bool:
        return self in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.CANCEL_PENDING)


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED}
)

_S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _S.NEW: frozenset({_S.SUBMITTING, _S.REJECTED, _S.CANCELLED}),
    _S.SUBMITTING: frozenset(
        {_S.ACCEPTED, _S.REJECTED, _S.UNKNOWN, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED}
    ),
    _S.UNKNOWN: frozenset(
        {_S.ACCEPTED, _S.REJECTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}
    ),
    _S.ACCEPTED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELLED, _S.EXPIRED, _S.REJECTED}
    ),
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELLED, _S.EXPIRED}
    ),
    _S.CANCEL_PENDING: frozenset({_S.CANCELLED, _S.PARTIALLY_FILLED, _S.FILLED, _S.EXPIRED, _S.ACCEPTED}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class IllegalTransition(Exception):
    """Raised when an event would move an order along an edge the state machine does not have."""


class OverfillError(Exception):
    """Raised when a fill would take the filled quantity above the order quantity."""


@dataclass
class OrderTransition:
    """One recorded state change (persisted as an order event)."""

    from_state: OrderState
    to_state: OrderState
    ts: datetime
    reason: str = ""


@dataclass
class Order:
    """A broker order built from one `OrderIntent`, with its own lifecycle.

    Mutations go only through `transition` and `apply_fill`, so the state machine and the
    overfill guard cannot be bypassed.
    """

    intent: OrderIntent
    state: OrderState = OrderState.NEW
    broker_order_id: str | None = None
    filled_quantity: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    fills: dict[str, Fill] = field(default_factory=dict)
    history: list[OrderTransition] = field(default_factory=list)
    reject_reason: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def client_order_id(self) -> str:
        return self.intent.client_order_id

    @property
    def quantity(self) -> Decimal:
        return self.intent.quantity

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    def can_transition(self, to: OrderState) -> bool:
        return to in TRANSITIONS[self.state]

    def transition(self, to: OrderState, reason: str = "", ts: datetime | None = None) -> OrderTransition:
        """Move to `to` or raise `IllegalTransition`. Returns the recorded transition."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"order {self.client_order_id}: {self.state} -> {to} is not allowed"
                + (f" ({reason})" if reason else "")
            )
        if to is OrderState.FILLED and self.filled_quantity < self.quantity:
            raise IllegalTransition(
                f"order {self.client_order_id}: cannot be FILLED with {self.filled_quantity}/{self.quantity}"
            )
        if to is OrderState.REJECTED:
            self.reject_reason = reason or self.reject_reason
        t = OrderTransition(self.state, to, ts or utcnow(), reason)
        self.state = to
        self.updated_at = t.ts
        self.history.append(t)
        return t

    def apply_fill(self, fill: Fill) -> bool:
        """Apply an execution. Returns False (and changes nothing) for a fill id already applied.

        Raises `OverfillError` if the fill would exceed the order quantity, and `IllegalTransition`
        if the order is in a state that cannot take fills.
        """
        if fill.fill_id in self.fills:
            return False
        if fill.client_order_id != self.client_order_id:
            raise ValueError(
                f"fill {fill.fill_id} belongs to {fill.client_order_id}, not {self.client_order_id}"
            )
        if fill.quantity <= 0:
            raise ValueError(f"fill {fill.fill_id}: quantity must be > 0")
        if self.state.is_terminal:
            raise IllegalTransition(f"order {self.client_order_id}: cannot take a fill in state {self.state}")
        new_filled = self.filled_quantity + fill.quantity
        if new_filled > self.quantity:
            raise OverfillError(
                f"order {self.client_order_id}: fill {fill.fill_id} of {fill.quantity} would fill "
                f"{new_filled} > {self.quantity}"
            )
        target = OrderState.FILLED if new_filled == self.quantity else OrderState.PARTIALLY_FILLED
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"order {self.client_order_id}: cannot take a fill in state {self.state}")
        prev_value = (self.avg_fill_price or ZERO) * self.filled_quantity
        self.avg_fill_price = (prev_value + fill.price * fill.quantity) / new_filled
        self.filled_quantity = new_filled
        self.fills[fill.fill_id] = fill
        self.transition(target, reason=f"fill {fill.fill_id}", ts=fill.ts)
        return True
