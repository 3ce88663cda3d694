"""`OrderLedger`: Joe's side of every IBKR order — state, fills exactly once, events and audit.

ib_async callbacks (order status, executions, commission reports) come in here, keyed by orderRef
(= client_order_id) or order id, never by ib_async `Trade` objects, which are dropped on
disconnect. Fills are de-duplicated by execId across reconnects; an execution that would overfill
is ignored and audited. A live fill's event is held up to `commission_wait` seconds so that it
carries the commission report that TWS sends right after the execution.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ib_async import Fill as IBFill
from ib_async import Trade

from joe.brokers.ibkr.tracking import Tracked, decimal, on_status, to_fill
from joe.core.events import AuditSink, OrderEvent, OrderEventType
from joe.core.models import Fill
from joe.core.order import IllegalTransition, OrderState, OverfillError

_AUDIT_TYPES = {
    OrderEventType.ACCEPTED: "order.ack",
    OrderEventType.REJECTED: "order.reject",
    OrderEventType.CANCELLED: "order.cancelled",
}


class OrderLedger:
    """Tracked orders, the fills seen so far and the outgoing event queue."""

    def __init__(self, audit: AuditSink, cancel: Callable[[Tracked], None], commission_wait: float = 0.5):
        self.audit = audit
        self._cancel = cancel
        self.commission_wait = commission_wait
        self.orders: dict[str, Tracked] = {}
        self.by_oid: dict[int, str] = {}
        self.fills: dict[str, Fill] = {}
        self.ignored_execs: set[str] = set()
        self._pending: dict[str, tuple[OrderEvent, asyncio.TimerHandle]] = {}
        self.queue: asyncio.Queue[OrderEvent] = asyncio.Queue()

    def track(self, t: Tracked) -> None:
        self.orders[t.coid] = t
        self.by_oid[t.order_id] = t.coid

    def coid(self, order_ref: str, order_id: int) -> str | None:
        return order_ref or self.by_oid.get(order_id)

    # -- events -------------------------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[OrderEvent]:
        while True:
            yield await self.queue.get()

    def emit(self, t: Tracked | None, kind: OrderEventType, reason: str = "", *, coid: str = "",
             fill: Fill | None = None) -> OrderEvent:  # fmt: skip
        ev = self._event(t, kind, reason, coid=coid, fill=fill)
        self.queue.put_nowait(ev)
        return ev

    @staticmethod
    def _event(t: Tracked | None, kind: OrderEventType, reason: str = "", *, coid: str = "",
               fill: Fill | None = None) -> OrderEvent:  # fmt: skip
        return OrderEvent(
            type=kind, client_order_id=t.coid if t else coid, ts=datetime.now(UTC),
            broker_order_id=str(t.order_id) if t else (fill.broker_order_id if fill else None), fill=fill,
            filled_quantity=t.order.filled_quantity if t else None,
            remaining=t.order.remaining if t else None, reason=reason,
        )  # fmt: skip

    def flush_all(self) -> None:
        for exec_id in list(self._pending):
            self._pending[exec_id][1].cancel()
            self._flush(exec_id)

    def _flush(self, exec_id: str) -> None:
        item = self._pending.pop(exec_id, None)
        if item is not None:
            ev = item[0]
            self.queue.put_nowait(replace(ev, fill=self.fills.get(exec_id, ev.fill)))

    # -- order status -------------------------------------------------------------------------------

    def on_status(self, trade: Trade) -> None:
        """An ib_async order status update (also used to replay open/completed orders after a re-sync)."""
        coid = self.coid(trade.order.orderRef, trade.order.orderId)
        t = self.orders.get(coid or "")
        if t is None:
            return
        if trade.order.orderId > 0:
            self.by_oid[trade.order.orderId] = t.coid
        last = trade.log[-1] if trade.log else None
        code, msg = (last.errorCode, last.message) if last else (0, "")
        status = trade.orderStatus.status
        try:
            change = on_status(t.order, status, code, msg)
        except IllegalTransition as exc:
            self.audit.record("order.illegal_transition", {"status": status, "error": str(exc)},
                              client_order_id=t.coid)  # fmt: skip
            return
        if status not in ("PendingSubmit", "PendingCancel", "ValidationError"):
            t.acked.set()
        if change.event is None:
            return
        self.audit.record(_AUDIT_TYPES.get(change.event, "order.status"),
                          {"status": status, "reason": change.reason, "error_code": code},
                          client_order_id=t.coid, broker_order_id=str(t.order_id))  # fmt: skip
        self.emit(t, change.event, change.reason)
        if change.event is OrderEventType.REJECTED:
            self._after_reject(t)

    def _after_reject(self, t: Tracked) -> None:
        if t.parent is None:
            for coid in t.children:  # TWS drops the children of a rejected parent
                c = self.orders.get(coid)
                if c is not None and c.order.can_transition(OrderState.CANCELLED):
                    c.order.transition(OrderState.CANCELLED, reason="parent rejected")
                    self.emit(c, OrderEventType.CANCELLED, "parent rejected")
            return
        parent = self.orders.get(t.parent)
        if parent is not None and parent.order.filled_quantity == 0 and not parent.order.state.is_terminal:
            # An entry whose protection was rejected must not open: cancel it (fail closed).
            self.audit.record("bracket.protection_rejected", {"child": t.coid}, client_order_id=parent.coid)
            self._cancel(parent)

    def reject_missing(self, seen_refs: set[str]) -> None:
        """UNKNOWN orders that IBKR does not know after a full re-sync were never placed."""
        for t in self.orders.values():
            if t.order.state is OrderState.UNKNOWN and t.coid not in seen_refs and not t.order.fills:
                t.order.transition(OrderState.REJECTED, reason="not found at IBKR after re-sync")
                self.audit.record("order.reject", {"reason": "not found at IBKR after re-sync"},
                                  client_order_id=t.coid)  # fmt: skip
                self.emit(t, OrderEventType.REJECTED, "not found at IBKR after re-sync")

    # -- executions ---------------------------------------------------------------------------------

    def on_fill(self, f: IBFill, live: bool) -> None:
        """One execution (live, or recovered by reqExecutions); applied exactly once by execId."""
        exec_id = f.execution.execId
        if exec_id in self.fills or exec_id in self.ignored_execs:
            return
        coid = self.coid(f.execution.orderRef, f.execution.orderId)
        if not coid:
            self.ignored_execs.add(exec_id)
            self.audit.record("order.fill_unmapped", {"exec_id": exec_id, "order_id": f.execution.orderId})
            return
        fill = to_fill(f, coid)
        t = self.orders.get(coid)
        if t is not None:
            try:
                if t.order.filled_quantity + fill.quantity > t.order.quantity:
                    # Checked here too: the order may already be FILLED (terminal), and an extra execution
                    # beyond the order quantity is never real for Joe.
                    raise OverfillError(
                        f"fill {exec_id} of {fill.quantity} would fill "
                        f"{t.order.filled_quantity + fill.quantity} > {t.order.quantity}"
                    )
                t.order.apply_fill(fill)
            except OverfillError as exc:
                self.ignored_execs.add(exec_id)
                self.audit.record("order.overfill_ignored", {"exec_id": exec_id, "error": str(exc)},
                                  client_order_id=coid)  # fmt: skip
                return
            except IllegalTransition as exc:
                # The broker executed it, so the fill is real (positions move); flag the state clash.
                self.audit.record("order.fill_illegal_state", {"exec_id": exec_id, "error": str(exc)},
                                  client_order_id=coid)  # fmt: skip
            t.acked.set()
        self.fills[exec_id] = fill
        payload: dict[str, Any] = {"exec_id": exec_id, "symbol": fill.symbol, "side": fill.side.value,
                                   "quantity": str(fill.quantity), "price": str(fill.price), "live": live}
        self.audit.record("order.fill", payload, client_order_id=coid,
                          broker_order_id=fill.broker_order_id)  # fmt: skip
        done = t is not None and t.order.state is OrderState.FILLED
        kind = OrderEventType.FILLED if done else OrderEventType.PARTIALLY_FILLED
        if live and not f.commissionReport.execId:
            ev = self._event(t, kind, coid=coid, fill=fill)
            handle = asyncio.get_running_loop().call_later(self.commission_wait, self._flush, exec_id)
            self._pending[exec_id] = (ev, handle)
        else:
            self.emit(t, kind, coid=coid, fill=fill)

    def on_commission(self, exec_id: str, commission: float) -> None:
        fill = self.fills.get(exec_id)
        if fill is None:
            return
        self.fills[exec_id] = replace(fill, commission=decimal(commission))
        self.audit.record("order.commission", {"exec_id": exec_id, "commission": str(commission)},
                          client_order_id=fill.client_order_id)  # fmt: skip
        item = self._pending.get(exec_id)
        if item is not None:
            item[1].cancel()
            self._flush(exec_id)
