"""`BreakerFeed`: every order outcome the `OrderManager` reports, counted by the broker's `CircuitBreaker`.

DESIGN.md: the breaker counts consecutive rejects (a fill or an accepted order ends the run), and
timeouts and UNKNOWN outcomes within its window. The `OrderManager` reports each order event through
its journal (`on_event`: the audit event name, its payload, the order) and each alert (`on_alert`);
this maps them to breaker events:

======================================================  ===================
order event / alert                                     breaker event
======================================================  ===================
``order.rejected`` (refused before or at the send)      REJECT
``order.state`` to REJECTED (the broker's answer)       REJECT
``order.state`` to ACCEPTED / PARTIALLY_FILLED / FILLED OK (ends a run of rejects)
``order.fill``                                          OK
``order.unknown`` caused by a timeout                   TIMEOUT
``order.unresolved`` (the send's outcome not settled)   UNKNOWN
``order.lost`` (sent, and the broker does not know it)  UNKNOWN
alert ``unresolved`` / ``unknown_order``                UNKNOWN
======================================================  ===================

One bracket is one outcome: its entry, stop and target rejected together count once (the group is
the entry's client order id), and the same order's reject seen twice (at the send and again in the
broker's status) counts once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joe.core.order import Order
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker

_OK_STATES = {"ACCEPTED", "PARTIALLY_FILLED", "FILLED"}
_UNKNOWN_ALERTS = {"unresolved", "unknown_order"}


def classify(event: str, payload: Mapping[str, Any]) -> BreakerEvent | None:
    """The breaker event one `OrderManager` order event counts as (None: not an outcome)."""
    if event == "order.rejected":
        return BreakerEvent.REJECT
    if event == "order.state":
        to = str(payload.get("to", ""))
        if to == "REJECTED":
            return BreakerEvent.REJECT
        return BreakerEvent.OK if to in _OK_STATES else None
    if event == "order.fill":
        return BreakerEvent.OK
    if event == "order.unknown":
        return BreakerEvent.TIMEOUT if payload.get("timeout") else None
    if event in ("order.unresolved", "order.lost"):
        return BreakerEvent.UNKNOWN
    return None


class BreakerFeed:
    """Feeds one broker's `CircuitBreaker` from its `OrderManager` (see the module docstring).

    Pass `on_event` as the `OrderManager`'s ``on_event`` and `on_alert` from its ``on_alert`` (the
    safety layer's `alert_bridge` does when given this feed)."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self._group: dict[str, str] = {}  # client order id -> its bracket's entry id
        self._counted: set[tuple[str, BreakerEvent]] = set()

    def _count(self, group: str, event: BreakerEvent, detail: str) -> None:
        if event is not BreakerEvent.OK:
            if (group, event) in self._counted:
                return
            self._counted.add((group, event))
        self.breaker.record(event, detail)

    def on_event(self, event: str, payload: Mapping[str, Any], order: Order) -> None:
        group = order.parent_client_order_id or order.client_order_id
        self._group[order.client_order_id] = group
        kind = classify(event, payload)
        if kind is None:
            return
        reason = str(payload.get("reason", "") or payload.get("to", ""))
        self._count(group, kind, f"{order.client_order_id} {order.intent.symbol}: {event} {reason}".strip())

    def on_alert(self, alert: Any) -> None:
        kind = str(getattr(alert.kind, "value", alert.kind))
        if kind not in _UNKNOWN_ALERTS:
            return
        coid = alert.client_order_id or alert.signal_id or f"alert:{alert.message}"
        self._count(self._group.get(coid, coid), BreakerEvent.UNKNOWN, f"{kind}: {alert.message}")
