"""`BrokerHealth`: the brokers' own wire records, counted by their `CircuitBreaker`.

Order outcomes reach the breaker through the `OrderManager` (`joe.safety.breaker_feed`). Trouble
on the wire itself does not: a 5xx or 429 answer to a price or account read, a connection that
drops, a gateway that will not take a connection. Every broker client audits those facts, so this
listens to the audit log (`AuditLog.add_listener`) and maps the records of one broker:

=====================================================  ======================
audit record (written by the broker client)            breaker event
=====================================================  ======================
``capital.request`` answered 5xx, or a garbled body    SERVER_ERROR
``capital.request`` answered 429                       RATE_LIMITED
``capital.request`` not sent (connection failed)       DISCONNECT
``capital.request`` sent, no answer                    TIMEOUT
``capital.stream.drop`` (the price WebSocket closed)   DISCONNECT
``ibkr.connection_lost`` / ``ibkr.connectivity_lost``  DISCONNECT
``ibkr.connect_failed`` (a (re)connect refused)        DISCONNECT
=====================================================  ======================

One outage is one disconnect: every connection of a broker (IBKR's market data and order
clients, Capital.com's REST session and price stream) sees the same drop, so disconnects of one
broker closer together than `coalesce_s` count once — also across a rebuilt desk: a new feed's
first disconnect is checked against the breaker's persisted last one.

`watch_broker_health` wires one broker's breaker to the audit log. Live gets it through
`joe.safety.broker_safety.BrokerSafety`; shadow (``joe run --once`` and the daemon's shadow
connection) calls it directly: shadow sends no order, but it reads the same broker over the same
clients, so the same wire trouble trips the same breaker and HALTs trading as live would have.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from joe.config.schema import BreakerConfig
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext

_DISCONNECT_EVENTS = {
    "capital.stream.drop",
    "ibkr.connection_lost",
    "ibkr.connectivity_lost",
    "ibkr.connect_failed",
}


def classify(event: str, payload: Mapping[str, Any]) -> BreakerEvent | None:
    """The breaker event one audited broker record counts as (None: not wire trouble)."""
    if event in _DISCONNECT_EVENTS:
        return BreakerEvent.DISCONNECT
    if event != "capital.request":
        return None
    outcome = payload.get("outcome")
    if outcome == "not_sent":
        return BreakerEvent.DISCONNECT
    if outcome == "no_answer":
        return BreakerEvent.TIMEOUT
    if outcome == "garbled":
        return BreakerEvent.SERVER_ERROR
    if outcome != "error":
        return None
    status = payload.get("status")
    if status == 429:
        return BreakerEvent.RATE_LIMITED
    if isinstance(status, int) and 500 <= status < 600:
        return BreakerEvent.SERVER_ERROR
    return None


class BrokerHealth:
    """Feeds `breaker` from the audit records of its broker (see the module docstring).

    `on_record` takes an `AuditRecord` (anything with ``event`` and ``payload``)."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        *,
        coalesce_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.breaker = breaker
        self.coalesce_s = coalesce_s
        self._mono = monotonic
        self._last_disconnect: float | None = None
        self.counted: list[tuple[str, BreakerEvent]] = []

    def on_record(self, record: Any) -> None:
        event = str(getattr(record, "event", ""))
        if not event.startswith(f"{self.breaker.broker}."):
            return
        payload = getattr(record, "payload", None) or {}
        kind = classify(event, payload)
        if kind is None:
            return
        if kind is BreakerEvent.DISCONNECT:
            now = self._mono()
            if self._last_disconnect is not None and now - self._last_disconnect < self.coalesce_s:
                return
            if self._last_disconnect is None and self._same_outage_as_stored():
                self._last_disconnect = now
                return
            self._last_disconnect = now
        self.counted.append((event, kind))
        self.breaker.record(kind, _detail(event, payload))

    def _same_outage_as_stored(self) -> bool:
        """A fresh feed (the daemon rebuilt its desk after the drop this record reports): the breaker's
        persisted last disconnect, closer than `coalesce_s` by its clock, is the same outage."""
        last = self.breaker.last_seen(BreakerEvent.DISCONNECT)
        return last is not None and (self.breaker.now() - last).total_seconds() < self.coalesce_s


def _detail(event: str, p: Mapping[str, Any]) -> str:
    if event == "capital.request":
        status = f" {p['status']}" if p.get("status") is not None else ""
        where = f"{p.get('method', '')} {p.get('path', '')}"
        return f"{where}:{status} {p.get('outcome', '')} {p.get('error', '')}".strip()
    return f"{event} {p.get('error') or p.get('message') or ''}".strip()


def watch_broker_health(
    ctx: SafetyContext, broker: str, config: BreakerConfig
) -> tuple[BrokerHealth, Callable[[], None]]:
    """`broker`'s `CircuitBreaker` fed by its wire records in ``ctx.audit``: (the feed, its remover).

    With an audit sink that has no ``add_listener`` (a test's `NullAudit`) nothing is heard and the
    remover does nothing."""
    health = BrokerHealth(CircuitBreaker(broker, config, ctx, clock=ctx.clock))
    add = getattr(ctx.audit, "add_listener", None)
    remove: Callable[[], None] = add(health.on_record) if add is not None else (lambda: None)
    return health, remove
