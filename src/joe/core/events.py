"""Events that flow up from brokers and execution, and the audit sink protocol every layer writes to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from joe.core.models import Fill


class OrderEventType(StrEnum):
    """What a broker told us about an order."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    MODIFIED = "modified"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A broker-side order event mapped back to Joe's `client_order_id`."""

    type: OrderEventType
    client_order_id: str
    ts: datetime
    broker_order_id: str | None = None
    fill: Fill | None = None
    filled_quantity: Decimal | None = None
    remaining: Decimal | None = None
    reason: str = ""
    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class AuditSink(Protocol):
    """Anything that can take an audit record (the real one is `joe.audit.log.AuditLog`)."""

    def record(self, event_type: str, payload: dict[str, Any] | None = None, **ids: str | None) -> Any: ...


class NullAudit:
    """An audit sink that keeps records in memory; for unit tests of code that takes an `AuditSink`."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any], dict[str, str | None]]] = []

    def record(self, event_type: str, payload: dict[str, Any] | None = None, **ids: str | None) -> None:
        self.records.append((event_type, dict(payload or {}), ids))
