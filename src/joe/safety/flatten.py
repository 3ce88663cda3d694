"""``joe kill --flatten``: close every position reduce-only at the broker and cancel working orders.

Works on any venue with the `FlattenVenue` shape (the broker executors' `Executor` protocol today;
the `OrderManager` will take this role when it lands). Each attempt:

1. cancel working *entry* orders (nothing new may open while we close);
2. close every position with a reduce-only market order for exactly its size, opposite side;
3. cancel the remaining working orders of every instrument now flat (the protective stops and
   targets of the closed positions, only now: cancelling them first would leave a position
   unprotected if the close fails). An instrument still held — its close rejected, not filled yet,
   or the positions unreadable — keeps its orders: its broker-side stop stays until the position
   is gone (an order whose instrument is unknown is kept while any position is left);
4. read positions and orders again.

Attempts repeat, up to ``attempts`` with a pause between, while anything is left (a close rejected,
a stop that filled into a reverse position, a cancel not yet confirmed). Every request and its
outcome is audited; the report lists what is left so a human knows what to do by hand. A failure
never raises: it is reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from joe.core.clock import utcnow
from joe.core.events import AuditSink, OrderEvent
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Position, Side


class FlattenVenue(Protocol):
    """What flattening needs from a broker (a subset of `joe.brokers.base.Executor`)."""

    name: str

    async def positions(self) -> list[Position]: ...

    async def open_orders(self) -> list[OrderEvent]: ...

    async def place(self, intent: OrderIntent) -> Any: ...

    async def cancel(self, client_order_id: str) -> None: ...


@dataclass
class FlattenReport:
    """What one flatten did at one venue and what is left (empty `left_*` = flat)."""

    venue: str
    attempts: int = 0
    closed: list[dict[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    left_positions: list[dict[str, str]] = field(default_factory=list)
    left_orders: list[str] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return not self.left_positions and not self.left_orders

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "attempts": self.attempts,
            "flat": self.flat,
            "closed": self.closed,
            "cancelled": self.cancelled,
            "errors": self.errors,
            "left_positions": self.left_positions,
            "left_orders": self.left_orders,
        }


async def flatten_venue(
    venue: FlattenVenue,
    audit: AuditSink,
    *,
    reason: str,
    attempts: int = 3,
    pause_s: float = 1.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], datetime] = utcnow,
    is_entry: Callable[[str], bool] = lambda coid: False,
    symbol_of: Callable[[str], str | None] = lambda coid: None,
) -> FlattenReport:
    """Flatten `venue` (see the module docstring). Never raises; errors are in the report.

    `is_entry(client_order_id)` tells entry orders from protective ones (the store knows each
    order's leg); orders it does not recognise are cancelled after the closes, in step 3.
    `symbol_of(client_order_id)`: the order's instrument (the store knows it; else the broker's
    ``raw["symbol"]`` or Capital.com's ``raw["epic"]``), so step 3 keeps the orders of an
    instrument still held.
    """
    report = FlattenReport(venue.name)
    stamp = clock().strftime("%Y%m%dT%H%M%S%f")
    audit.record("safety.flatten_started", {"venue": venue.name, "reason": reason, "attempts": attempts})
    for attempt in range(1, attempts + 1):
        report.attempts = attempt
        positions, orders = await _snapshot(venue, report)
        if positions is None or orders is None:
            await sleep(pause_s)
            continue
        if not positions and not orders:
            break
        for o in orders:
            if is_entry(o.client_order_id):
                await _cancel(venue, audit, o.client_order_id, report)
        for p in positions:
            await _close(venue, audit, p, report, f"flatten:{stamp}:{attempt}:{p.symbol}")
        held_now, rest = await _snapshot(venue, report)
        for o in rest or []:
            if held_now is None:
                break  # the positions could not be read: every stop stays
            held = {p.symbol for p in held_now}
            symbol = symbol_of(o.client_order_id) or o.raw.get("symbol") or o.raw.get("epic")
            if held and (symbol is None or symbol in held):
                continue  # its instrument is still held: the broker-side stop stays
            await _cancel(venue, audit, o.client_order_id, report)
        await sleep(pause_s)
    positions, orders = await _snapshot(venue, report)
    report.left_positions = [{"symbol": p.symbol, "quantity": str(p.quantity)} for p in positions or []]
    report.left_orders = [o.client_order_id for o in orders or []]
    if positions is None or orders is None:
        report.left_positions.append({"symbol": "?", "quantity": "unknown: the broker could not be read"})
    audit.record("safety.flatten_finished", report.to_dict())
    return report


async def _snapshot(
    venue: FlattenVenue, report: FlattenReport
) -> tuple[list[Position] | None, list[OrderEvent] | None]:
    try:
        positions = [p for p in await venue.positions() if p.quantity != 0]
    except Exception as e:
        report.errors.append(f"positions: {type(e).__name__}: {e}")
        positions = None
    try:
        orders = [o for o in await venue.open_orders() if o.client_order_id]
    except Exception as e:
        report.errors.append(f"open orders: {type(e).__name__}: {e}")
        orders = None
    return positions, orders


async def _cancel(venue: FlattenVenue, audit: AuditSink, coid: str, report: FlattenReport) -> None:
    audit.record("order.cancel_attempt", {"venue": venue.name, "by": "flatten"}, client_order_id=coid)
    try:
        await venue.cancel(coid)
    except Exception as e:
        report.errors.append(f"cancel {coid}: {type(e).__name__}: {e}")
        audit.record("order.cancel_failed", {"error": f"{type(e).__name__}: {e}"}, client_order_id=coid)
        return
    if coid not in report.cancelled:
        report.cancelled.append(coid)


async def _close(venue: FlattenVenue, audit: AuditSink, p: Position, report: FlattenReport, sid: str) -> None:
    side = Side.SELL if p.quantity > 0 else Side.BUY
    qty = abs(Decimal(p.quantity))
    coid = client_order_id(sid, OrderLeg.EXIT.value)
    intent = OrderIntent(coid, sid, OrderLeg.EXIT, p.symbol, side, qty, OrderType.MARKET, reduce_only=True)
    ids = {"client_order_id": coid, "signal_id": sid}
    audit.record(
        "order.attempt",
        {"venue": venue.name, "symbol": p.symbol, "side": side.value, "quantity": qty, "reduce_only": True},
        **ids,
    )
    try:
        result = await venue.place(intent)
    except Exception as e:
        report.errors.append(f"close {p.symbol}: {type(e).__name__}: {e}")
        audit.record("order.rejected", {"error": f"{type(e).__name__}: {e}", "by": "flatten"}, **ids)
        return
    audit.record("order.ack", {"result": result, "by": "flatten"}, **ids)
    report.closed.append({"symbol": p.symbol, "quantity": str(p.quantity), "client_order_id": coid})
