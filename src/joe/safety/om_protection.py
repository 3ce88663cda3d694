"""Wiring the lost-protection reaction to the `OrderManager` (`joe.execution.order_manager`).

`protection_reaction(om, ctx, deadline_s)` returns the ``on_unprotected`` callback the `OrderManager`
takes: each `joe.execution.events.UnprotectedPosition` it reports runs `LostProtectionHandler` with
`OrderManagerPort`, which re-places the missing stop as a new reduce-only stop for the uncovered size
(at the entry's stop level) and counts it restored once the broker has it working; failing that it
asks the `OrderManager` for a reduce-only exit and counts it done once the position is flat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType
from joe.core.order import Order, OrderState
from joe.execution.protective_cover import replaces_protection
from joe.safety.control import SafetyContext
from joe.safety.lost_protection import LostProtectionHandler, UnprotectedPosition
from joe.safety.trading_state import TradingState

log = logging.getLogger(__name__)

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
        """Place a reduce-only stop for what the working stops lack; True once it works, or when
        they cover the position again. Sized from the stops' cover right now, counting Joe's resizes
        in flight at their asked size (chaos seed 220: a stop being grown to a partly filled entry's
        final size, plus a replacement for the unit it lacked, sold 1 short when both filled); when
        those cover it, nothing is placed and False asks the caller to look again (until its
        deadline: a resize that never lands ends in its exit)."""
        signal_id = p.position_ref
        entry = self._entry(signal_id)
        if entry is None or entry.intent.stop_loss is None or p.quantity <= 0:
            return False
        quantity = p.quantity
        cover = getattr(self.om, "stop_cover", None)
        if cover is not None:
            held, now, pending = cover(signal_id)
            if now >= held:
                return True  # covered again (or closed): nothing to place
            quantity = min(quantity, held - pending)
            if quantity <= 0:
                return False  # a resize in flight covers it: look again
        n = self._attempt.get(signal_id, 0) + 1
        self._attempt[signal_id] = n
        intent = OrderIntent(
            client_order_id(signal_id, f"{OrderLeg.STOP_LOSS.value}-replace-{n}"),
            signal_id,
            OrderLeg.STOP_LOSS,
            p.symbol,
            entry.intent.side.opposite,
            quantity,
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
        """True once the position is flat; False when the exit ends (rejected, cancelled) or 30 s pass
        with the position still open."""
        order = await self.om.exit(p.position_ref)
        for _ in range(int(30 / self.poll_s)):
            if self.om.position_of(p.position_ref) == 0:
                return True
            current = self.om.order(order.client_order_id) if order is not None else None
            if order is None or (current is not None and current.state.is_terminal):
                return self.om.position_of(p.position_ref) == 0
            await asyncio.sleep(self.poll_s)
        return False


def protection_reaction(
    om: OrderOwner, ctx: SafetyContext, *, deadline_s: float = 30.0, poll_s: float = 0.2
) -> ProtectionReaction:
    """The ``on_unprotected`` callback for the `OrderManager` (see the module docstring)."""
    return ProtectionReaction(om, ctx, deadline_s=deadline_s, poll_s=poll_s)


class ProtectionReaction:
    """The ``on_unprotected`` callback: runs `LostProtectionHandler` for each reported position.

    The reaction always runs as its own task and the callback returns at once. The `OrderManager`
    reports an unprotected position from the loop that applies the broker's reports (a stop the
    broker cancelled) or from inside its reconciliation (while it refuses intents: `accepting` is
    False until the pass ends); the reaction waits for exactly what those loops deliver (the new stop
    acknowledged, the exit filled), so awaited inline it would wait for itself until the deadline,
    then exit (refused too) and HALT with the stop never placed. The task starts once the manager
    accepts intents (bounded by the deadline: still closed then, the handler's own refusal path runs:
    exit, else HALT). One reaction per position at a time: the same position reported again while
    its reaction runs adds nothing. `settle()` waits for the running reactions, so a run can finish
    its protection before it goes on (and before its `OrderManager` stops)."""

    def __init__(self, om: OrderOwner, ctx: SafetyContext, *, deadline_s: float, poll_s: float) -> None:
        self.om = om
        self.deadline_s = deadline_s
        self.poll_s = poll_s
        self.ctx = ctx
        self.handler = LostProtectionHandler(ctx, OrderManagerPort(om, poll_s=poll_s), deadline_s=deadline_s)
        self.pending: set[asyncio.Task[None]] = set()
        self.running: dict[str, asyncio.Task[None]] = {}  # by signal id

    async def __call__(self, event: Any) -> None:
        running = self.running.get(event.signal_id)
        if running is not None and not running.done():
            return
        entry = OrderManagerPort(self.om)._entry(event.signal_id)
        p = UnprotectedPosition(
            event.symbol,
            Decimal(event.position) - Decimal(event.protected),
            entry.intent.stop_loss if entry is not None else None,
            event.reason,
            position_ref=event.signal_id,
        )
        task = asyncio.create_task(self._once_accepting(p), name=f"protection-{event.symbol}")
        self.pending.add(task)
        self.running[event.signal_id] = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("lost-protection reaction failed: %r", task.exception())

    async def _once_accepting(self, p: UnprotectedPosition) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.deadline_s
        while not getattr(self.om, "accepting", True) and loop.time() < end:
            await asyncio.sleep(self.poll_s)
        self._reduce_while_exit_works(p)
        await self.handler.on_unprotected(p)

    def _reduce_while_exit_works(self, p: UnprotectedPosition) -> None:
        """An exit of the position still works at the broker but does not stand in for its stop (a
        resting limit exit; a market exit a correction put back to work, chaos seed 672): no stop can
        be re-placed while it works (both could fill and reverse the position), and it may rest for
        ever (a halted market). Trading moves to REDUCING at once (by ``protection:<symbol>``; exits
        and cancels stay allowed), with a CRITICAL alert naming the exit, so nothing new opens while
        the position is naked; `joe resume` once it is closed or protected. The handler then runs as
        for any naked position (its exit step waits on that exit; HALTED if it never closes)."""
        working = [
            o for o in self.om.book.signal_orders(p.position_ref)
            if o.intent.leg is OrderLeg.EXIT and not o.state.is_terminal and not replaces_protection(o)
        ]  # fmt: skip
        if not working:
            return
        exit_ = working[-1]
        why = (
            f"{p.symbol}: {p.quantity} of {p.position_ref} has no stop while exit {exit_.client_order_id} "
            f"({exit_.intent.order_type.value}, {exit_.state.value}, filled {exit_.filled_quantity} of "
            f"{exit_.quantity}) works; a stop cannot be re-placed until it ends ({p.why})"
        )
        _, changed = self.ctx.states.escalate(TradingState.REDUCING, by=f"protection:{p.symbol}", reason=why)
        if changed:
            detail = f"{why}: entries refused until `joe resume`"
            self.ctx.alerts.lost_protection(p.symbol, "REDUCING", detail)

    async def settle(self, timeout: float | None = None) -> None:
        """Wait (at most `timeout` s) for the reactions still running."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout)


def alert_bridge(ctx: SafetyContext, breaker: Any | None = None) -> Callable[[Any], None]:
    """The ``on_alert`` callback for the `OrderManager`: each `ExecutionAlert` becomes an execution
    alert (late fills as fills; corrections, invalid fills and the owner's trades as warnings;
    unresolved outcomes as UNKNOWN, CRITICAL), and an unresolved outcome also counts against the
    broker's `CircuitBreaker` when one is given (a `joe.safety.breaker_feed.BreakerFeed` also given
    to the `OrderManager` as ``on_event`` counts each order once across its events and alerts)."""
    from joe.safety.circuit_breaker import BreakerEvent

    kinds = {
        # A correction is the broker changing a fill or a state Joe had (Joe followed it): not a reject.
        "late_fill": "fill",
        "broker_correction": "correction",
        "invalid_fill": "invalid_fill",
        "owner_trade": "owner",
    }

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
