"""Fills the broker reports only as a filled quantity: its execution history no longer reaches them.

A broker's execution history is bounded. IBKR's `reqExecutions` answers the current day only (IB TWS
API docs, "Executions and Commissions"; up to 7 days with the TWS Trade Log setting; see
`../shared/specs/ibkr-tws.md` §6), while `reqCompletedOrders` still lists the order as Filled with
its `filledQuantity`. A daily batch run that reconnects the next day (a bracket's stop that fired
yesterday afternoon) therefore finds the order Filled and no execution for it. Waiting for the
executions would leave the order working in Joe's books for ever (then UNRESOLVED / LOST, trading
halted); the broker's word is that it filled, so Joe books it.

The fill Joe books for the part no execution shows is an *estimate*:

- identity: `estimate:<client_order_id>` (one per order; `revision` numbers its changes);
- quantity: what the broker says filled minus what Joe's fills of the order already show;
- price: the best evidence the broker gave, in this order (`price_source` in the audit record):
  the report's `avg_fill_price` (`avg_fill_price`: IBKR orderStatus avgFillPrice, seen when the
  same connection saw the fill), else the order's own level: the stop price for a stop or trailing
  stop (`stop_price`: the trigger; a stop that gapped filled worse), the limit price for a limit or
  stop-limit (`limit_price`: the fill was at it or better). A market order gives no level: no
  estimate is made (the caller alerts).
- if an execution of the order is seen later (a reconnect within the Trade Log window, a report
  that lagged), it replaces the estimate: the estimate shrinks by the execution's quantity
  (`shrunk_estimate`), so the order's filled quantity never counts one execution twice.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from joe.core.models import ZERO, Fill, OrderType
from joe.core.order import Order
from joe.core.reports import FillReport, OrderStatusReport

ESTIMATE_PREFIX = "estimate:"


def estimate_id(client_order_id: str) -> str:
    """The fill id of the estimated fill of one order."""
    return f"{ESTIMATE_PREFIX}{client_order_id}"


def is_estimate(fill_id: str) -> bool:
    return fill_id.startswith(ESTIMATE_PREFIX)


def estimate_price(order: Order, report: OrderStatusReport) -> tuple[Decimal, str] | None:
    """(price, source) for an estimated fill of `order` (see the module docstring), or None when
    the broker gave no price evidence (a market order without avgFillPrice)."""
    if report.avg_fill_price is not None and report.avg_fill_price > 0:
        return report.avg_fill_price, "avg_fill_price"
    kind = report.order_type or order.intent.order_type
    stop = report.stop_price if report.stop_price is not None else order.intent.stop_price
    limit = report.limit_price if report.limit_price is not None else order.intent.limit_price
    if kind in (OrderType.STOP, OrderType.TRAILING_STOP) and stop is not None and stop > 0:
        return stop, "stop_price"
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and limit is not None and limit > 0:
        return limit, "limit_price"
    return None


def estimated_fill(order: Order, report: OrderStatusReport) -> tuple[FillReport, str] | None:
    """The estimated fill that makes `order`'s filled quantity equal what `report` (the broker's
    Filled order) says, with its price source; None if nothing is missing or no price is known.
    A standing estimate is grown (a higher revision of the same id), never a second one made."""
    missing = report.filled_quantity - order.filled_quantity
    if missing <= 0:
        return None
    priced = estimate_price(order, report)
    if priced is None:
        return None
    price, source = priced
    fid = estimate_id(order.client_order_id)
    before = order.fills.get(fid)
    quantity = missing + (before.quantity if before is not None else ZERO)
    revision = order.fill_revisions.get(fid, 0) + 1 if before is not None else 0
    fill = Fill(
        fill_id=fid, client_order_id=order.client_order_id, symbol=order.intent.symbol,
        side=order.intent.side, quantity=quantity, price=price, ts=report.ts,
        broker_order_id=order.broker_order_id or report.broker_order_id,
    )  # fmt: skip
    return FillReport(broker=report.broker, fill=fill, revision=revision, from_reconciliation=True), source


def shrunk_estimate(order: Order, real: Fill) -> tuple[Fill, int] | None:
    """The estimate of `order` reduced by a real execution `real` seen for the first time (quantity
    0 = fully replaced), with its next revision; None when the order has no standing estimate or
    `real` is the estimate itself or already applied."""
    fid = estimate_id(order.client_order_id)
    est = order.fills.get(fid)
    if est is None or est.quantity <= 0 or is_estimate(real.fill_id) or real.fill_id in order.fills:
        return None
    left = max(est.quantity - real.quantity, ZERO)
    return replace(est, quantity=left), order.fill_revisions.get(fid, 0) + 1
