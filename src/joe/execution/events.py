"""What the `OrderManager` reports up to its caller (the safety layer): alerts and unprotected positions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class AlertKind(StrEnum):
    LATE_FILL = "late_fill"  # a fill on an order Joe had as cancelled/rejected/expired
    INVALID_FILL = "invalid_fill"  # a fill report that cannot be an execution of its order
    OVERFILL = "overfill"  # the broker filled more than Joe's copy of the order
    UNKNOWN_ORDER = "unknown_order"  # a report for an order Joe did not place (external)
    AUDIT_FAILED = "audit_failed"  # an audit write failed; the change is stored and re-audited
    BROKER_CORRECTION = "broker_correction"  # the broker contradicted Joe's state; Joe followed
    UNRESOLVED = "unresolved"  # an ambiguous outcome the broker could not settle yet
    LOST = "lost"  # an order Joe sent that the broker, asked repeatedly, does not know (never resent)
    EXTERNAL = "external"  # an order, fill or position at the broker that Joe did not place (never touched)
    MISMATCH = "mismatch"  # the broker and Joe disagree and the Reconciler cannot explain why
    # an execution Joe did not place (the owner on the platform, a broker close-out) changed a position
    # Joe opened: booked as an outside change of the signal, never as a fill of Joe's orders
    OWNER_TRADE = "owner_trade"
    PROTECTION_RESTORED = "protection_restored"  # a position reported unprotected is covered again
    # a protective order's price level changed at the broker without Joe asking (the account owner in
    # TWS / on the platform): Joe's copy follows the broker, the change is audited and alerted
    OUTSIDE_AMEND = "outside_amend"


@dataclass(frozen=True, slots=True)
class ExecutionAlert:
    """Something a human (or the safety layer) should know about; always audited too."""

    kind: AlertKind
    message: str
    ts: datetime
    client_order_id: str | None = None
    signal_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnprotectedPosition:
    """An open position whose working protective stop does not cover it (cancelled or rejected by
    the broker, or a size different from the position). Quantities are unsigned units; `position`
    is what Joe's fills say is open for the signal, `protected` what its working stops cover."""

    signal_id: str
    symbol: str
    position: Decimal
    protected: Decimal
    reason: str
    ts: datetime
    stop_client_order_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProtectionRestored:
    """The clear event of an `UnprotectedPosition`: the signal's working stops cover its position
    again (re-placed, resized, or the position closed). `position` / `protected` as there."""

    signal_id: str
    symbol: str
    position: Decimal
    protected: Decimal
    reason: str
    ts: datetime
