"""Pure translation of raw TWS messages (as ib_async decodes them) into Joe's report types.

Nothing here keeps state or decides an order's fate: an `OrderView` is the broker's latest copy of
one order (from openOrder/completedOrder, updated by orderStatus), and the report builders read it.

Facts used (`../shared/specs/ibkr-tws.md`, `ibkr-message-codes.md`):
- orderStatus text: PendingSubmit/ApiPending (sent), PreSubmitted/Submitted (working), PendingCancel,
  Filled, Cancelled/ApiCancelled, Inactive. ib_async's local "ValidationError" never comes off the wire.
- An execution correction resends the execution with an execId that differs only after its last dot
  (`0000e0d5.6553e2a1.01.01` → `….01.02`); the later one replaces the earlier.
- Unset doubles arrive as 1.7976931348623157E308 (`UNSET_DOUBLE`).
- Every contract on one underlying carries the underlying's `symbol` (an AAPL option, CFD or future
  says `symbol=AAPL`); `secType`, `currency` and `conId` tell them apart (`joe_symbol`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from joe.core.clock import ensure_utc, utcnow
from joe.core.models import ZERO, Fill, OrderLeg, OrderType, Side
from joe.core.reports import CommissionReport, FillReport, OrderStatusReport, VenueOrderStatus

BROKER = "ibkr"
UNSET_DOUBLE = 1.7976931348623157e308

_STATUS = {
    "PendingSubmit": VenueOrderStatus.PENDING_SUBMIT,
    "ApiPending": VenueOrderStatus.PENDING_SUBMIT,
    "PreSubmitted": VenueOrderStatus.WORKING,
    "Submitted": VenueOrderStatus.WORKING,
    "PendingCancel": VenueOrderStatus.PENDING_CANCEL,
    "Filled": VenueOrderStatus.FILLED,
    "Cancelled": VenueOrderStatus.CANCELLED,
    "ApiCancelled": VenueOrderStatus.CANCELLED,
    "Inactive": VenueOrderStatus.INACTIVE,
}
ACKNOWLEDGED = frozenset({"PreSubmitted", "Submitted", "PendingCancel", "Filled"})

_TYPES = {
    "MKT": OrderType.MARKET,
    "LMT": OrderType.LIMIT,
    "STP": OrderType.STOP,
    "STP LMT": OrderType.STOP_LIMIT,
    "TRAIL": OrderType.TRAILING_STOP,
}


# What Joe trades at IBKR (`orders.stock`): a stock in US dollars. Only such a contract is Joe's symbol.
JOE_SEC_TYPE = "STK"
JOE_CURRENCY = "USD"


def joe_symbol(contract: Any) -> str:
    """The symbol Joe knows `contract` by: the plain `symbol` for the contract Joe trades (a USD stock,
    `orders.stock`), else a key naming the contract (`AAPL:OPT:USD:<conId>`), so the account owner's
    option, CFD or future on a stock Joe holds is never read as that stock (its position netted
    against Joe's, its executions booked as changes of Joe's position). A missing secType or currency
    (an unqualified contract Joe built) counts as Joe's."""
    sec = getattr(contract, "secType", "") or JOE_SEC_TYPE
    cur = getattr(contract, "currency", "") or JOE_CURRENCY
    if sec == JOE_SEC_TYPE and cur == JOE_CURRENCY:
        return str(contract.symbol)
    return f"{contract.symbol}:{sec}:{cur}:{getattr(contract, 'conId', 0) or 0}"


def decimal(x: float | int | str | Decimal) -> Decimal:
    """A broker float as Decimal via its shortest repr (100.25 stays 100.25, 100.0 becomes 100)."""
    if isinstance(x, Decimal):
        return x
    f = float(x)
    return Decimal(int(f)) if f.is_integer() else Decimal(repr(f))


def price(x: Any) -> Decimal | None:
    """A wire price, or None when unset ("" / None / UNSET_DOUBLE)."""
    if x is None or x == "":
        return None
    f = float(x)
    if f != f or abs(f) >= UNSET_DOUBLE:
        return None
    return decimal(f)


def venue_status(text: str) -> VenueOrderStatus:
    """IBKR status text → `VenueOrderStatus`; an unknown text is INACTIVE (not working, not provably dead)."""
    return _STATUS.get(text, VenueOrderStatus.INACTIVE)


def split_exec_id(exec_id: str) -> tuple[str, int]:
    """(identity, revision) of an IBKR execId: `A.B.01.01` → (`A.B.01`, 0), `A.B.01.02` → (`A.B.01`, 1).

    An id without a numeric suffix after its last dot is its own identity at revision 0.
    """
    head, dot, tail = exec_id.rpartition(".")
    if not dot or not head or not tail.isdigit():
        return exec_id, 0
    return head, max(0, int(tail) - 1)


def side_of(action: str) -> Side:
    """BUY/SELL (orders) or BOT/SLD (executions) → `Side`."""
    return Side.BUY if action.upper() in ("BUY", "BOT") else Side.SELL


@dataclass(frozen=True, slots=True)
class OrderView:
    """The broker's latest copy of one order (what openOrder/completedOrder/orderStatus said)."""

    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    parent_id: int
    oca_group: str
    order_ref: str
    status: str
    filled: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    tif: str = ""

    @classmethod
    def from_order(cls, contract: Any, order: Any, status: str, filled: Decimal | None = None) -> OrderView:
        """From an ib_async `Contract` + `Order` (openOrder, completedOrder or an order Joe sent)."""
        kind = order.orderType
        lmt = price(order.lmtPrice) if kind in ("LMT", "STP LMT") else None
        if kind == "TRAIL":
            stop = price(order.trailStopPrice)
        else:
            stop = price(order.auxPrice) if kind in ("STP", "STP LMT") else None
        fq = filled
        if fq is None:
            raw = getattr(order, "filledQuantity", None)
            fq = decimal(raw) if raw is not None and price(raw) is not None else ZERO
        return cls(
            order_id=int(order.orderId), client_id=int(order.clientId), perm_id=int(order.permId),
            symbol=joe_symbol(contract), action=order.action, quantity=decimal(order.totalQuantity),
            order_type=kind, limit_price=lmt, stop_price=stop, parent_id=int(order.parentId or 0),
            oca_group=order.ocaGroup or "", order_ref=order.orderRef or "", status=status, filled=fq,
            tif=order.tif or "",
        )  # fmt: skip

    def with_status(
        self, status: str, filled: float, remaining: float, avg: float, perm_id: int
    ) -> OrderView:
        """Apply one orderStatus message. The total quantity stays the openOrder's (orderStatus's
        `remaining` is 0 on a cancel), except when filled + remaining shows the broker resized it."""
        f = decimal(filled)
        qty = self.quantity
        if status not in ("Cancelled", "ApiCancelled", "Inactive") and (f + decimal(remaining)) > 0:
            qty = f + decimal(remaining)
        return replace(
            self, status=status, filled=f, quantity=qty, avg_fill_price=price(avg) if f > 0 else None,
            perm_id=perm_id or self.perm_id,
        )  # fmt: skip

    def as_known(self, known: OrderView) -> OrderView:
        """This copy (a completedOrder, which has no order id) with the ids of an earlier sighting."""
        return replace(
            self, order_id=known.order_id, client_id=known.client_id, parent_id=known.parent_id,
            avg_fill_price=self.avg_fill_price or known.avg_fill_price,
        )  # fmt: skip

    def keep_fill(self, prev: OrderView) -> OrderView:
        """openOrder carries no fill progress: keep what the last orderStatus said."""
        return replace(self, filled=max(prev.filled, self.filled), avg_fill_price=prev.avg_fill_price)

    @property
    def acknowledged(self) -> bool:
        return self.perm_id > 0 or self.status in ACKNOWLEDGED


def status_report(
    view: OrderView, *, leg: OrderLeg | None = None, ts: datetime | None = None,
    from_reconciliation: bool = False, reason: str = "",
) -> OrderStatusReport:  # fmt: skip
    """The `OrderStatusReport` for the broker's copy of an order."""
    return OrderStatusReport(
        broker=BROKER, client_order_id=view.order_ref,
        broker_order_id=str(view.order_id) if view.order_id else None,
        symbol=view.symbol, side=side_of(view.action), quantity=view.quantity,
        status=venue_status(view.status), ts=ts or utcnow(), filled_quantity=view.filled,
        avg_fill_price=view.avg_fill_price, order_type=_TYPES.get(view.order_type),
        limit_price=view.limit_price, stop_price=view.stop_price,
        parent_broker_order_id=str(view.parent_id) if view.parent_id else None, oca_group=view.oca_group,
        leg=leg, raw_status=view.status, reason=reason, from_reconciliation=from_reconciliation,
        raw={"perm_id": view.perm_id, "client_id": view.client_id, "tif": view.tif},
    )  # fmt: skip


def fill_report(
    contract: Any, execution: Any, *, commission: Decimal | None = None, commission_currency: str = "",
    from_reconciliation: bool = False,
) -> FillReport:  # fmt: skip
    """A `FillReport` from an ib_async `Contract` + `Execution`; fill_id is the execId without its
    correction suffix, `revision` the correction number."""
    fill_id, revision = split_exec_id(execution.execId)
    ts = execution.time if isinstance(execution.time, datetime) else utcnow()
    fill = Fill(
        fill_id=fill_id, client_order_id=execution.orderRef or "", symbol=joe_symbol(contract),
        side=side_of(execution.side), quantity=decimal(execution.shares), price=decimal(execution.price),
        ts=ensure_utc(ts), commission=commission if commission is not None else ZERO,
        broker_order_id=str(execution.orderId),
        commission_currency=commission_currency if commission is not None else "",
    )  # fmt: skip
    return FillReport(
        broker=BROKER,
        fill=fill,
        revision=revision,
        raw_exec_id=execution.execId,
        from_reconciliation=from_reconciliation,
    )


def commission_report(report: Any, ts: datetime | None = None) -> CommissionReport:
    """A `CommissionReport` keyed by the same identity as its fill (correction suffix removed)."""
    fill_id, _ = split_exec_id(report.execId)
    return CommissionReport(
        broker=BROKER,
        fill_id=fill_id,
        commission=decimal(report.commission),
        currency=report.currency or "",
        ts=ts or utcnow(),
    )
