"""`Order` and its explicit state machine.

States and legal transitions (anything else raises `IllegalTransition`):

    NEW ─► SUBMITTING ─► ACCEPTED ─► PARTIALLY_FILLED ─► FILLED
            │   │           │  ▲          │
            │   └► REJECTED │  └ (modify) │
            └► UNKNOWN      ├► CANCEL_PENDING ─► CANCELLED (or FILLED / PARTIALLY_FILLED if a fill raced)
                            ├► CANCELLED / EXPIRED / REJECTED

Broker-truth edges (`BROKER_CORRECTIONS`; only taken by `apply_fill` or by
`transition(..., correction=True)`, and recorded as such) — the broker's word beats Joe's copy:

    CANCELLED / REJECTED / EXPIRED ─► PARTIALLY_FILLED / FILLED   a late fill is a fact (alerted)
    CANCELLED / REJECTED / EXPIRED ─► ACCEPTED                    the broker reports it still working
    FILLED ─► PARTIALLY_FILLED                                    an execution correction (IBKR
                                                                  execId revision) lowered the fill
    LOST ─► ACCEPTED / PARTIALLY_FILLED / FILLED / CANCELLED / EXPIRED   the broker found it after all

LOST (terminal) is the Reconciler's verdict on an order Joe sent that the broker, asked a bounded
number of times, does not know: alerted and audited, never resent.

UNKNOWN is the fail-closed state for an ambiguous submit (timeout after send): the order may or may
not exist at the broker until a query (never a resend) moves it on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    LOST = "LOST"  # Joe sent it; the broker, asked repeatedly, does not know it (Reconciler). Never resent.

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_working(self) -> bool:
        return self in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.CANCEL_PENDING)


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED, OrderState.LOST}
)
# Acknowledged by the broker and not done: the order rests there and may fill.
LIVE_STATES = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)
# The order may still fill at the broker: live, being cancelled, or sent with its outcome not yet known
# (a SUBMITTING or UNKNOWN send may have reached it). Protection and over-cover checks count these.
MAY_FILL_STATES = (*LIVE_STATES, OrderState.CANCEL_PENDING, OrderState.SUBMITTING, OrderState.UNKNOWN)

_S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _S.NEW: frozenset({_S.SUBMITTING, _S.REJECTED, _S.CANCELLED}),
    _S.SUBMITTING: frozenset(
        {_S.ACCEPTED, _S.REJECTED, _S.UNKNOWN, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.LOST}
    ),
    _S.UNKNOWN: frozenset(
        {_S.ACCEPTED, _S.REJECTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED, _S.LOST}
    ),
    _S.ACCEPTED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELLED, _S.EXPIRED, _S.REJECTED, _S.LOST}
    ),
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELLED, _S.EXPIRED, _S.LOST}
    ),
    _S.CANCEL_PENDING: frozenset(
        {_S.CANCELLED, _S.PARTIALLY_FILLED, _S.FILLED, _S.EXPIRED, _S.ACCEPTED, _S.LOST}
    ),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.LOST: frozenset(),
}


# Edges where the broker's word overrides what Joe had concluded (see the module docstring).
BROKER_CORRECTIONS: dict[OrderState, frozenset[OrderState]] = {
    _S.CANCELLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.ACCEPTED}),
    _S.REJECTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.ACCEPTED}),
    _S.EXPIRED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.ACCEPTED}),
    _S.FILLED: frozenset({_S.PARTIALLY_FILLED, _S.ACCEPTED}),  # an execution corrected down / busted
    _S.PARTIALLY_FILLED: frozenset({_S.ACCEPTED}),  # its only execution busted (corrected to 0)
    _S.LOST: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.ACCEPTED, _S.CANCELLED, _S.EXPIRED}),
}


def is_legal(from_state: OrderState, to_state: OrderState, *, correction: bool = False) -> bool:
    """True if `from_state -> to_state` is an edge of the diagram (broker-truth edges only with
    `correction`)."""
    if to_state in TRANSITIONS[from_state]:
        return True
    return correction and to_state in BROKER_CORRECTIONS.get(from_state, frozenset())


class IllegalTransition(Exception):
    """Raised when an event would move an order along an edge the state machine does not have."""


class OverfillError(Exception):
    """Raised when a fill would take the filled quantity above the order quantity."""


class InvalidFill(ValueError):
    """A fill report that cannot be a true execution of this order (bad price/quantity, other side,
    other symbol, other order). Never applied; the caller audits and alerts."""


def validate_fill(order: Order, fill: Fill, *, correction: bool = False) -> None:
    """Check that `fill` can be an execution of `order`.

    Rules: price and quantity finite and > 0 — except that a `correction` (a later revision of an
    execution, IBKR "execution correction") may have quantity 0: the broker busted it; `fill.side`,
    `fill.symbol` and `fill.client_order_id` equal the order's; commission finite. Raises
    `InvalidFill` naming the field and both values.
    """
    where = f"fill {fill.fill_id} for order {order.client_order_id}"
    bust = correction and isinstance(fill.quantity, Decimal) and fill.quantity == 0
    for name, value in (("price", fill.price), ("quantity", fill.quantity)):
        if bust and name == "quantity":
            continue
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            raise InvalidFill(f"{where}: {name} must be a finite number > 0, got {value!r}")
    if not isinstance(fill.commission, Decimal) or not fill.commission.is_finite():
        raise InvalidFill(f"{where}: commission must be finite, got {fill.commission!r}")
    if fill.client_order_id != order.client_order_id:
        raise InvalidFill(f"{where}: it belongs to order {fill.client_order_id}")
    if fill.side is not order.intent.side:
        raise InvalidFill(f"{where}: side {fill.side} does not match the order's side {order.intent.side}")
    if fill.symbol != order.intent.symbol:
        raise InvalidFill(
            f"{where}: symbol {fill.symbol!r} does not match the order's {order.intent.symbol!r}"
        )


@dataclass
class OrderTransition:
    """One recorded state change (persisted as an order event). `from_reconciliation` marks a change
    Joe learned by asking the broker (or from a broker-truth correction) rather than from a live event."""

    from_state: OrderState
    to_state: OrderState
    ts: datetime
    reason: str = ""
    from_reconciliation: bool = False


@dataclass
class Order:
    """A broker order built from one `OrderIntent`, with its own lifecycle.

    Mutations go only through `transition`, `apply_fill`, `set_commission` and `apply_broker_values`,
    so the state machine and the overfill guard cannot be bypassed. `version` is the store's
    optimistic-concurrency counter (0 = never saved); `fill_revisions` holds the correction revision
    of each applied fill id; `parent_client_order_id` links a bracket child to its entry; `attempt`
    numbers retries of one leg (0 = first).
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
    version: int = 0
    parent_client_order_id: str | None = None
    attempt: int = 0
    fill_revisions: dict[str, int] = field(default_factory=dict)

    @property
    def client_order_id(self) -> str:
        return self.intent.client_order_id

    @property
    def quantity(self) -> Decimal:
        return self.intent.quantity

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    def can_transition(self, to: OrderState, *, correction: bool = False) -> bool:
        return is_legal(self.state, to, correction=correction)

    def transition(
        self,
        to: OrderState,
        reason: str = "",
        ts: datetime | None = None,
        *,
        correction: bool = False,
        from_reconciliation: bool = False,
    ) -> OrderTransition:
        """Move to `to` or raise `IllegalTransition`. Returns the recorded transition.

        `correction=True` also allows the broker-truth edges (`BROKER_CORRECTIONS`); such a
        transition is recorded as `from_reconciliation`.
        """
        if not is_legal(self.state, to, correction=correction):
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
        is_correction = to not in TRANSITIONS[self.state]
        t = OrderTransition(
            self.state, to, ts or utcnow(), reason, from_reconciliation=from_reconciliation or is_correction
        )
        self.state = to
        self.updated_at = t.ts
        self.history.append(t)
        return t

    def apply_fill(
        self, fill: Fill, revision: int = 0, *, from_reconciliation: bool = False, overfill: bool = False
    ) -> bool:
        """Apply an execution; a fill is a fact, so it is taken in any state that has been sent.

        Returns False (and changes nothing) for a fill id already applied at the same or a higher
        `revision`; a higher revision REPLACES the earlier fill (quantity and price adjusted, never
        added). A fill on an order Joe had as CANCELLED/REJECTED/EXPIRED moves it on along a
        broker-truth edge (the caller alerts). Raises `InvalidFill` (see `validate_fill`),
        `OverfillError` if the total would exceed the order quantity (unless `overfill`: the broker
        says it filled more than Joe asked; the fill is a fact, so the order's quantity is raised to
        what filled — the caller alerts), and `IllegalTransition` for an order never sent (NEW).
        """
        validate_fill(self, fill, correction=revision > 0)
        previous = self.fills.get(fill.fill_id)
        if previous is not None and revision <= self.fill_revisions.get(fill.fill_id, 0):
            return False
        new_filled = self.filled_quantity + fill.quantity - (previous.quantity if previous else ZERO)
        quantity = max(self.quantity, new_filled) if overfill else self.quantity
        if new_filled > quantity:
            raise OverfillError(
                f"order {self.client_order_id}: fill {fill.fill_id} of {fill.quantity} would fill "
                f"{new_filled} > {self.quantity}"
            )
        if new_filled == quantity:
            target = OrderState.FILLED
        elif new_filled > 0:
            target = OrderState.PARTIALLY_FILLED
        else:  # every execution busted: the order works again with nothing filled (the broker's word)
            target = OrderState.ACCEPTED
        needs_move = target is not self.state or target is OrderState.PARTIALLY_FILLED
        if needs_move and not is_legal(self.state, target, correction=True):
            raise IllegalTransition(f"order {self.client_order_id}: cannot take a fill in state {self.state}")
        if quantity != self.quantity:
            self.intent = replace(self.intent, quantity=quantity)
        fills = dict(self.fills)
        if previous is not None and previous.commission and not fill.commission:
            # keep a commission already matched (and its currency)
            fill = replace(
                fill, commission=previous.commission, commission_currency=previous.commission_currency
            )
        fills[fill.fill_id] = fill
        self.fills = fills
        self.fill_revisions[fill.fill_id] = revision
        self.filled_quantity = new_filled
        value = sum((f.price * f.quantity for f in fills.values()), ZERO)
        self.avg_fill_price = value / new_filled if new_filled else None
        why = f"fill {fill.fill_id}" + (f" revision {revision}" if previous is not None else "")
        if needs_move:
            self.transition(
                target, reason=why, ts=fill.ts, correction=True, from_reconciliation=from_reconciliation
            )
        else:
            self.updated_at = fill.ts
        return True

    def set_commission(self, fill_id: str, commission: Decimal, currency: str = "") -> bool:
        """Put the broker's commission (in `currency`; "" = not stated) on an applied fill; False if
        the fill is unknown or already has it."""
        f = self.fills.get(fill_id)
        if f is None or (f.commission, f.commission_currency) == (commission, currency):
            return False
        self.fills[fill_id] = replace(f, commission=commission, commission_currency=currency)
        return True

    def apply_broker_values(
        self,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> bool:
        """Take the quantity/prices the broker reports it holds for this order (a confirmed modify,
        or a broker-side resize of a bracket child). Returns True if anything changed.

        Raises `ValueError` for a quantity below what is already filled or not > 0.
        """
        changes: dict[str, Decimal] = {}
        if quantity is not None and quantity != self.intent.quantity:
            if quantity <= 0 or quantity < self.filled_quantity:
                raise ValueError(
                    f"order {self.client_order_id}: quantity {quantity} is not > 0 or below the "
                    f"filled {self.filled_quantity}"
                )
            changes["quantity"] = quantity
        if limit_price is not None and limit_price != self.intent.limit_price:
            changes["limit_price"] = limit_price
        if stop_price is not None and stop_price != self.intent.stop_price:
            changes["stop_price"] = stop_price
        if not changes:
            return False
        self.intent = replace(self.intent, **changes)  # type: ignore[arg-type]
        return True
