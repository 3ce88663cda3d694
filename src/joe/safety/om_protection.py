"""Wiring the lost-protection reaction to the `OrderManager` (`joe.execution.order_manager`).

`protection_reaction(om, ctx, deadline_s)` returns the ``on_unprotected`` callback the `OrderManager`
takes: each `joe.execution.events.UnprotectedPosition` it reports runs `LostProtectionHandler` with
`OrderManagerPort`, which re-places the missing stop as a new reduce-only stop for the uncovered size
(at the entry's stop level) and counts it restored once the broker has it working; failing that it
asks the `OrderManager` for a reduce-only exit and counts it done once the position is flat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType
from joe.core.order import Order, OrderState
from joe.safety.control import SafetyContext
from joe.safety.lost_protection import LostProtectionHandler, UnprotectedPosition

_WORKING = {OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED}


class OrderOwner(Protocol):
    """What the port needs of the `OrderManager`."""

    book: Any

    async def submit(self, intents: list[OrderIntent]) -> list[Order]: ...

    async def exit(self, signal_id: str) -> Order | None: ...

    def order(self, coid: str) -> Order | None: ...

    def position_of(self, signal_id: str) -> Decimal: ...


class OrderManagerPort:
    """`ProtectionPort` over an `OrderManager`; `poll_s` is how often the broker's answer is checked."""

    def __init__(self, om: OrderOwner, *, poll_s: float = 0.2) -> None:
        self.om = om
        self.poll_s = poll_s
        self._attempt: dict[str, int] = {}

    def _entry(self, signal_id: str) -> Order | None:
        return next(
            (o for o in self.om.book.signal_orders(signal_id) if o.intent.leg is OrderLeg.ENTRY), None
        )

    async def replace_stop(self, p: UnprotectedPosition) -> bool:
        signal_id = p.position_ref
        entry = self._entry(signal_id)
        if entry is None or entry.intent.stop_loss is None or p.quantity <= 0:
            return False
        n = self._attempt.get(signal_id, 0) + 1
        self._attempt[signal_id] = n
        intent = OrderIntent(
            client_order_id(signal_id, f"{OrderLeg.STOP_LOSS.value}-replace-{n}"),
            signal_id,
            OrderLeg.STOP_LOSS,
            p.symbol,
            entry.intent.side.opposite,
            p.quantity,
            OrderType.STOP,
            stop_price=p.stop_price or entry.intent.stop_loss,
            reduce_only=True,
        )
        (order,) = await self.om.submit([intent])
        while True:  # the caller bounds this by its deadline
            current = self.om.order(order.client_order_id) or order
            if current.state in _WORKING:
                return True
            if current.state.is_terminal:
                return False
            await asyncio.sleep(self.poll_s)

    async def exit_reduce_only(self, p: UnprotectedPosition) -> bool:
        await self.om.exit(p.position_ref)
        for _ in range(int(30 / self.poll_s)):
            if self.om.position_of(p.position_ref) == 0:
                return True
            await asyncio.sleep(self.poll_s)
        return False


def protection_reaction(
    om: OrderOwner, ctx: SafetyContext, *, deadline_s: float = 30.0, poll_s: float = 0.2
) -> Callable[[Any], Awaitable[None]]:
    """The ``on_unprotected`` callback for the `OrderManager` (see the module docstring)."""
    handler = LostProtectionHandler(ctx, OrderManagerPort(om, poll_s=poll_s), deadline_s=deadline_s)

    async def on_unprotected(event: Any) -> None:
        entry = OrderManagerPort(om)._entry(event.signal_id)
        stop = entry.intent.stop_loss if entry is not None else None
        await handler.on_unprotected(
            UnprotectedPosition(
                event.symbol,
                Decimal(event.position) - Decimal(event.protected),
                stop,
                event.reason,
                position_ref=event.signal_id,
            )
        )

    return on_unprotected


def alert_bridge(ctx: SafetyContext, breaker: Any | None = None) -> Callable[[Any], None]:
    """The ``on_alert`` callback for the `OrderManager`: each `ExecutionAlert` becomes an execution
    alert (late fills and corrections as fills/warnings, unresolved outcomes as UNKNOWN, CRITICAL), and
    an unresolved outcome also counts against the broker's `CircuitBreaker` when one is given (a
    `joe.safety.breaker_feed.BreakerFeed` also given to the `OrderManager` as ``on_event`` counts each
    order once across its events and alerts)."""
    from joe.safety.circuit_breaker import BreakerEvent

    kinds = {"late_fill": "fill", "broker_correction": "reject", "invalid_fill": "reject"}

    def on_alert(alert: Any) -> None:
        kind = str(getattr(alert.kind, "value", alert.kind))
        ctx.alerts.order_event(
            kinds.get(kind, "unknown"),
            str(alert.client_order_id or alert.signal_id or "?"),
            f"{kind}: {alert.message}",
            f"{kind}|{alert.client_order_id}",
        )
        if breaker is not None and hasattr(breaker, "on_alert"):  # a BreakerFeed: one count per order
            breaker.on_alert(alert)
        elif breaker is not None and kind in ("unresolved", "unknown_order"):
            breaker.record(BreakerEvent.UNKNOWN, alert.message)

    return on_alert
