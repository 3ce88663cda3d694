"""The protection invariant as a pure function over one signal's orders (DESIGN.md "Order truth":
every open position has a resting protective stop at the broker whose size equals the position)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from joe.core.models import ZERO, OrderLeg, OrderType
from joe.core.order import Order, OrderState

_PROTECTING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.SUBMITTING, OrderState.UNKNOWN)
_UNACKED = (OrderState.NEW, OrderState.SUBMITTING, OrderState.UNKNOWN)


def replaces_protection(exit_order: Order) -> bool:
    """Whether a non-terminal exit stands in for the protective orders it replaced: a market exit
    (it closes the position at once) or any exit not yet acknowledged (being sent). A resting exit the
    broker acknowledged — a limit above the market — may rest for ever while the price falls through
    the stop it replaced: the position it has not closed is unprotected and is reported (review r9,
    finding 2: a limit exit cancelled the stop and target, and nothing said the 100 shares were naked).
    Nor does a market exit the broker reported complete and then put back to work (an execution
    correction cut its fill, IBKR): it did not close the position at once, and its rest may rest for
    ever (a halted market) while the part the correction left open has no stop (chaos seed 672)."""
    if exit_order.state.is_terminal:
        return False
    if exit_order.state in _UNACKED:
        return True
    reopened = any(t.to_state is OrderState.FILLED for t in exit_order.history)
    return exit_order.intent.order_type is OrderType.MARKET and not reopened


@dataclass(frozen=True, slots=True)
class Protection:
    """`position`: units open in the entry's direction (from Joe's fills of every leg of the signal
    and its outside changes);
    `protected`: units covered by working stops; `entry_done`: the entry can fill no more;
    `exiting`: an exit of this signal is in flight (its protective orders are being replaced; a
    resting acknowledged non-market exit is not: `replaces_protection`)."""

    signal_id: str
    symbol: str
    position: Decimal
    protected: Decimal
    stop_ids: tuple[str, ...]
    entry_done: bool
    exiting: bool

    @property
    def unprotected(self) -> bool:
        """True when the invariant is broken: less cover than position, or (once the entry is done)
        any size difference. Never while an exit is replacing the protection."""
        if self.exiting or self.position <= 0:
            return False
        if self.protected < self.position:
            return True
        return self.entry_done and self.protected != self.position


def protection(orders: Sequence[Order], outside: Decimal = ZERO) -> Protection | None:
    """The protection state of one signal's orders (None without a filled entry). `outside`: the
    signal's recorded outside changes, signed as a trade (`joe.execution.outside`)."""
    entries = [o for o in orders if o.intent.leg is OrderLeg.ENTRY]
    if not entries or all(o.filled_quantity == 0 for o in entries):
        return None
    direction = entries[0].intent.side.sign
    net = (sum((o.filled_quantity * o.intent.side.sign for o in orders), ZERO) + outside) * direction
    stops = [o for o in orders if o.intent.leg is OrderLeg.STOP_LOSS and o.state in _PROTECTING]
    return Protection(
        signal_id=entries[0].intent.signal_id,
        symbol=entries[0].intent.symbol,
        position=net,
        protected=sum((o.remaining for o in stops), ZERO),
        stop_ids=tuple(o.client_order_id for o in stops),
        entry_done=all(o.state.is_terminal for o in entries),
        exiting=any(o.intent.leg is OrderLeg.EXIT and replaces_protection(o) for o in orders),
    )
