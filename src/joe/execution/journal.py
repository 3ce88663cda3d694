"""`ExecutionJournal`: the `OrderManager`'s audit records, alerts and unprotected-position reports.

An audit write that fails never loses a fact: the store holds it (fills carry an outbox flag and are
re-audited by `reaudit_outbox`), and the failure itself becomes an `AUDIT_FAILED` alert.

`move_audited` is how the `OrderManager` stores a state it decides or is told outside the broker's
report stream (a cancel requested, a send refused or in doubt, an order lost): audited first, then
stored — as the submit's write-ahead (``order.attempt`` before the send). A crash between the two
leaves the record of a move the store does not hold yet (the restart asks the broker), never a stored
state without its record (issue 13 invariant ``order_events_audited``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from joe.core.events import AuditSink
from joe.core.models import Fill, OrderIntent
from joe.core.order import Order, OrderState
from joe.core.reports import FillReport
from joe.execution.events import AlertKind, ExecutionAlert, ProtectionRestored, UnprotectedPosition
from joe.store import Store

if TYPE_CHECKING:
    from joe.execution.book import OrderBook

log = logging.getLogger(__name__)

UnprotectedHandler = Callable[[UnprotectedPosition], Awaitable[None] | None]
AlertHandler = Callable[[ExecutionAlert], Awaitable[None] | None]
RestoredHandler = Callable[[ProtectionRestored], Awaitable[None] | None]
# Every order event as audited: (event name, payload, the order). The safety layer's `BreakerFeed`
# counts the outcomes (rejects, fills, timeouts, unresolved sends) for the broker's circuit breaker.
OrderEventHandler = Callable[[str, dict[str, Any], Order], None]


class ExecutionJournal:
    """Writes audit records (`AuditSink`), keeps and forwards alerts and unprotected positions."""

    def __init__(
        self,
        audit: AuditSink,
        broker: str,
        mode: str,
        clock: Callable[[], datetime],
        on_alert: AlertHandler | None = None,
        on_unprotected: UnprotectedHandler | None = None,
        on_restored: RestoredHandler | None = None,
    ) -> None:
        self.audit = audit
        self.broker = broker
        self.mode = mode
        self.clock = clock
        self.on_alert = on_alert
        self.on_unprotected = on_unprotected
        self.on_restored = on_restored
        self.on_event: OrderEventHandler | None = None
        self.alerts: list[ExecutionAlert] = []
        self.unprotected: list[UnprotectedPosition] = []  # every report, in order (history)
        self.unprotected_now: dict[str, UnprotectedPosition] = {}  # raised and not cleared, by signal
        self.restored: list[ProtectionRestored] = []

    def record(self, event: str, payload: dict[str, Any], **ids: str | None) -> bool:
        """Write one audit record; False (logged) if the write failed."""
        try:
            self.audit.record(event, {"broker": self.broker, "mode": self.mode} | payload, **ids)
        except Exception:  # the store holds the fact; the outbox re-audits fills later
            log.exception("audit write of %s failed", event)
            return False
        return True

    async def order_event(self, event: str, payload: dict[str, Any], o: Order) -> bool:
        """Audit an event of order `o`; a failed write raises an `AUDIT_FAILED` alert."""
        ok = self.record(event, payload, client_order_id=o.client_order_id, signal_id=o.intent.signal_id)
        if self.on_event is not None:
            try:
                self.on_event(event, payload, o)
            except Exception:  # an observer must never stop the order's own processing
                log.exception("order event observer failed on %s", event)
        if not ok:
            await self.alert(
                AlertKind.AUDIT_FAILED, f"audit write of {event} failed; stored, re-audited later", o
            )
        return ok

    async def move_audited(
        self, book: OrderBook, o: Order, to: OrderState, reason: str, event: str, payload: dict[str, Any]
    ) -> bool:
        """Audit `event` for `o`, then store its move to `to` (`OrderBook.move`); False, nothing written,
        when `o` can no longer make that move (a report moved it meanwhile)."""
        if not o.can_transition(to):
            log.warning("order %s: %s -> %s skipped (%s)", o.client_order_id, o.state, to, reason)
            return False
        await self.order_event(event, payload, o)
        book.move(o, to, reason)
        return o.state is to

    async def alert(self, kind: AlertKind, message: str, o: Order | None = None) -> None:
        a = ExecutionAlert(
            kind, message, self.clock(), o.client_order_id if o else None, o.intent.signal_id if o else None
        )
        self.alerts.append(a)
        if kind is not AlertKind.AUDIT_FAILED:
            self.record(
                "execution.alert", {"kind": kind.value, "message": message}, client_order_id=a.client_order_id
            )
        await _call(self.on_alert, a)

    async def report_unprotected(self, event: UnprotectedPosition) -> None:
        self.unprotected.append(event)
        self.unprotected_now[event.signal_id] = event
        self.record(
            "position.unprotected",
            {
                "symbol": event.symbol,
                "position": str(event.position),
                "protected": str(event.protected),
                "reason": event.reason,
                "stops": list(event.stop_client_order_ids),
            },
            signal_id=event.signal_id,
        )
        await _call(self.on_unprotected, event)

    async def report_restored(self, event: ProtectionRestored) -> None:
        """Clear a raised `UnprotectedPosition` (audited as ``position.protected``)."""
        self.unprotected_now.pop(event.signal_id, None)
        self.restored.append(event)
        self.record(
            "position.protected",
            {
                "symbol": event.symbol,
                "position": str(event.position),
                "protected": str(event.protected),
                "reason": event.reason,
            },
            signal_id=event.signal_id,
        )
        await _call(self.on_restored, event)

    def reaudit_outbox(self, store: Store) -> int:
        """Audit every stored fill not yet confirmed audited; returns how many are now audited."""
        done = []
        for f, broker, mode in store.unaudited_fills():
            payload = fill_payload(f, None) | {"reaudit": True, "broker": broker, "mode": mode}
            if self.record("order.fill", payload, client_order_id=f.client_order_id):
                done.append(f.fill_id)
        store.mark_fills_audited(done)
        return len(done)


async def _call(handler: Callable[[Any], Awaitable[None] | None] | None, arg: Any) -> None:
    if handler is None:
        return
    try:
        result = handler(arg)
        if inspect.isawaitable(result):
            await result
    except Exception:  # a failing listener must not break order handling
        log.exception("handler %r failed", handler)


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def intent_payload(i: OrderIntent) -> dict[str, Any]:
    return {
        "symbol": i.symbol,
        "side": i.side.value,
        "leg": i.leg.value,
        "quantity": str(i.quantity),
        "order_type": i.order_type.value,
        "limit_price": _s(i.limit_price),
        "stop_price": _s(i.stop_price),
        "reduce_only": i.reduce_only,
    }


def fill_payload(f: Fill, fr: FillReport | None) -> dict[str, Any]:
    return {
        "fill_id": f.fill_id,
        "symbol": f.symbol,
        "side": f.side.value,
        "quantity": str(f.quantity),
        "price": str(f.price),
        "commission": str(f.commission),
        "commission_currency": f.commission_currency,
        "ts": f.ts.isoformat(),
        "revision": fr.revision if fr else None,
        "raw_exec_id": fr.raw_exec_id if fr else None,
        "from_reconciliation": fr.from_reconciliation if fr else None,
    }
