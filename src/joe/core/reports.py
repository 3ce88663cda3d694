"""What a broker adapter *observes*, as typed reports. Adapters report; only the `OrderManager` decides.

The model is NautilusTrader's execution reports (order status, fill, position status, and a mass
status bundling them for one reconciliation pass). A report is a fact about the venue at a moment,
never a decision about Joe's `Order`: an adapter that sees IBKR error 201 reports a `BrokerNotice`
with its code and `CodeMeaning`; whether the order is dead is decided by the `OrderManager`, which
asks the broker (`ExecutionClient.order_status`) whenever a notice is ambiguous.

Units: prices in the instrument's quote currency, quantities in units/contracts (unsigned on
orders and fills, signed on positions), commissions in `commission_currency`, timestamps UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from joe.core.models import ZERO, AccountInfo, Fill, OrderLeg, OrderType, Side


class VenueOrderStatus(StrEnum):
    """An order's status as the broker states it, mapped from its own words (IBKR `orderStatus`
    text, Capital.com confirm/working-order status). Not Joe's `OrderState`."""

    PENDING_SUBMIT = "PENDING_SUBMIT"  # sent, not yet acknowledged (IBKR PendingSubmit/ApiPending)
    WORKING = "WORKING"  # acknowledged and resting (IBKR PreSubmitted/Submitted; Capital working order)
    PENDING_CANCEL = "PENDING_CANCEL"  # a cancel is in flight; fills are still possible
    FILLED = "FILLED"  # completely filled
    CANCELLED = "CANCELLED"  # dead; may have part-filled first (see filled_quantity)
    REJECTED = "REJECTED"  # never accepted by the venue
    EXPIRED = "EXPIRED"  # time in force ran out
    INACTIVE = "INACTIVE"  # IBKR Inactive: held, not working, not necessarily dead
    NOT_FOUND = "NOT_FOUND"  # the broker was asked and has no order with this id


class CodeMeaning(StrEnum):
    """What a broker message code means for the order it names (`../shared/specs/ibkr-message-codes.md`)."""

    NOTICE = "notice"  # informational; the order is unaffected
    REJECTED = "rejected"  # a *new, never acknowledged* order was refused
    REQUEST_REFUSED = "request_refused"  # a cancel/modify was refused; the order keeps its previous state
    CONNECTIVITY = "connectivity"
    MARKET_DATA = "market_data"
    PACING = "pacing"
    AMBIGUOUS = "ambiguous"  # unknown code or context-dependent: ask the broker


@dataclass(frozen=True, slots=True)
class OrderStatusReport:
    """One order as the broker holds it now. `client_order_id` is the broker's copy of Joe's id
    (IBKR `orderRef`, Capital `dealReference`); empty for an order Joe did not place (external)."""

    broker: str
    client_order_id: str
    broker_order_id: str | None
    symbol: str
    side: Side
    quantity: Decimal  # total quantity at the broker now (after any broker-side resize)
    status: VenueOrderStatus
    ts: datetime
    filled_quantity: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    order_type: OrderType | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    parent_broker_order_id: str | None = None
    oca_group: str = ""
    leg: OrderLeg | None = None
    raw_status: str = ""  # the broker's own status text, for the audit record
    reason: str = ""
    from_reconciliation: bool = False
    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class FillReport:
    """One execution. `fill.fill_id` is the broker's execution identity with any correction suffix
    removed (IBKR execId `A.B.C.01.01` → `A.B.C.01`); `revision` orders corrections of that id
    (a higher revision replaces a lower one; it never adds). `changes`: for an execution that is
    not one of Joe's orders, the client order id of Joe's entry whose position (deal) the broker
    says it changed (Capital.com: the owner's close of a deal Joe opened); "" when the broker does
    not say (see `joe.execution.outside`)."""

    broker: str
    fill: Fill
    revision: int = 0
    raw_exec_id: str = ""
    from_reconciliation: bool = False
    changes: str = ""


@dataclass(frozen=True, slots=True)
class CommissionReport:
    """A commission for one execution; may arrive before or after its `FillReport`."""

    broker: str
    fill_id: str  # same identity as `FillReport.fill.fill_id` (correction suffix removed)
    commission: Decimal
    currency: str = ""
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class BrokerNotice:
    """A message from the broker about an order or the session (IBKR `error(reqId, code, msg)`,
    a Capital.com `errorCode`). `meaning` comes from the broker's code table; the adapter never
    turns a notice into a state change itself."""

    broker: str
    code: str
    message: str
    meaning: CodeMeaning
    ts: datetime
    client_order_id: str | None = None
    broker_order_id: str | None = None
    request: str = ""  # what the notice answers, when known: "place", "modify", "cancel", ""


@dataclass(frozen=True, slots=True)
class PositionReport:
    """A net position at the broker. `quantity` is signed (> 0 long). For Capital.com hedging
    accounts there is one report per deal (`broker_position_id` = dealId, `client_order_id` =
    the dealReference that opened it, empty if unknown)."""

    broker: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal
    ts: datetime
    broker_position_id: str | None = None
    client_order_id: str = ""
    stop_level: Decimal | None = None  # a stop attached to the position itself (Capital.com)
    limit_level: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MassStatus:
    """Everything one reconciliation pass needs from a broker, read at `ts`."""

    broker: str
    ts: datetime
    orders: list[OrderStatusReport] = field(default_factory=list)
    fills: list[FillReport] = field(default_factory=list)
    commissions: list[CommissionReport] = field(default_factory=list)
    positions: list[PositionReport] = field(default_factory=list)
    account: AccountInfo | None = None


def since_on_broker_clock(since: datetime, broker_now: datetime, host_now: datetime) -> datetime:
    """The start, on the broker's clock, of an executions window that holds every execution since
    `since`, an instant read on Joe's clock (an order's `created_at`; `mass_status(joes_clock=True)`).
    Executions are stamped on the broker's clock: with the broker behind Joe's by d, the window starts d
    earlier; with it ahead, `since` is left as it is (never later than the instant: a slightly wider
    window re-reads executions, unique by their identity, and survives a skew that changed since `since`
    was read). A `since` already on the broker's clock (a checkpoint) is never passed here."""
    behind = host_now - broker_now
    return since - behind if behind.total_seconds() > 0 else since


Observation = OrderStatusReport | FillReport | CommissionReport | BrokerNotice | PositionReport
"""What an adapter's `observations()` stream yields. A `PositionReport` on it is a live position
update (IBKR `position`, pushed for every change of the account's position, whoever traded): the
only live sign at IBKR of a trade the owner made in TWS (its execDetails go to the client that
placed it, never to Joe's)."""


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """Increments a broker enforces (IBKR `minTick`/`sizeIncrement`; Capital.com `dealingRules`)."""

    symbol: str
    tick_size: Decimal
    min_size: Decimal
    size_increment: Decimal
    max_size: Decimal | None = None
