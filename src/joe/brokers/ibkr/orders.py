"""Translation of Joe's `OrderIntent` into ib_async `Order`s (single orders and brackets).

A bracket is: parent entry (transmit=0) → take-profit LMT (transmit=0) → stop-loss STP or TRAIL
(transmit=1, which releases the group at TWS). Both children carry `parentId` and share one OCA
group (ocaType 2: the sibling is reduced by each fill and cancelled when one fills completely), so
every entry has broker-side protection. `orderRef` is always Joe's client_order_id.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ib_async import Contract, Order, Stock

from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, TimeInForce

OCA_REDUCE_WITH_BLOCK = 2

_TIF = {TimeInForce.DAY: "DAY", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC"}


def stock(symbol: str, exchange: str = "SMART", currency: str = "USD") -> Contract:
    """An (unqualified) US stock contract routed via SMART."""
    return Stock(symbol, exchange, currency)


def _f(x: Decimal | None) -> float:
    # ib_async encodes floats; Decimal stays Joe's type everywhere else.
    assert x is not None
    return float(x)


def base_order(intent: OrderIntent, account: str) -> Order:
    """One ib_async order for `intent` alone (no bracket children), orderRef = client_order_id."""
    o = Order(
        action=intent.side.value,
        totalQuantity=float(intent.quantity),
        tif=_TIF[intent.time_in_force],
        orderRef=intent.client_order_id,
        account=account,
        transmit=True,
    )
    t = intent.order_type
    if t is OrderType.MARKET:
        o.orderType = "MKT"
    elif t is OrderType.LIMIT:
        o.orderType, o.lmtPrice = "LMT", _f(intent.limit_price)
    elif t is OrderType.STOP:
        o.orderType, o.auxPrice = "STP", _f(intent.stop_price)
    elif t is OrderType.STOP_LIMIT:
        o.orderType, o.lmtPrice, o.auxPrice = "STP LMT", _f(intent.limit_price), _f(intent.stop_price)
    elif t is OrderType.TRAILING_STOP:
        o.orderType = "TRAIL"
        if intent.trailing_percent is not None:
            o.trailingPercent = float(intent.trailing_percent)
        elif intent.trailing_distance is not None:
            o.auxPrice = float(intent.trailing_distance)
        else:
            raise ValueError(f"intent {intent.client_order_id}: TRAILING_STOP needs a distance or percent")
        if intent.stop_price is not None:
            o.trailStopPrice = float(intent.stop_price)
    else:  # pragma: no cover - exhaustive over OrderType
        raise ValueError(f"unsupported order type {t}")
    return o


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """One order to send: Joe's intent for it and the ib_async order (orderId set by the executor)."""

    intent: OrderIntent
    order: Order


def child_intents(entry: OrderIntent) -> list[OrderIntent]:
    """Take-profit and stop-loss intents protecting an entry (empty if the entry has neither)."""
    out: list[OrderIntent] = []
    exit_side = entry.side.opposite
    if entry.take_profit is not None:
        out.append(
            OrderIntent(
                client_order_id=client_order_id(entry.signal_id, OrderLeg.TAKE_PROFIT.value),
                signal_id=entry.signal_id, leg=OrderLeg.TAKE_PROFIT, symbol=entry.symbol, side=exit_side,
                quantity=entry.quantity, order_type=OrderType.LIMIT, limit_price=entry.take_profit,
                time_in_force=TimeInForce.GTC, reduce_only=True,
            )
        )
    trailing = entry.trailing_distance is not None or entry.trailing_percent is not None
    if entry.stop_loss is not None or trailing:
        out.append(
            OrderIntent(
                client_order_id=client_order_id(entry.signal_id, OrderLeg.STOP_LOSS.value),
                signal_id=entry.signal_id, leg=OrderLeg.STOP_LOSS, symbol=entry.symbol, side=exit_side,
                quantity=entry.quantity,
                order_type=OrderType.TRAILING_STOP if trailing else OrderType.STOP,
                stop_price=entry.stop_loss, trailing_distance=entry.trailing_distance,
                trailing_percent=entry.trailing_percent, time_in_force=TimeInForce.GTC, reduce_only=True,
            )
        )
    return out


def plan(intent: OrderIntent, account: str) -> list[PlannedOrder]:
    """Orders to send for `intent`: the order itself, plus bracket children for a protected entry.

    Transmit flags: only the last order of a group transmits; parentIds are filled in by
    `link_bracket` once order ids are allocated.
    """
    if not intent.is_entry:
        return [PlannedOrder(intent, base_order(intent, account))]
    # The entry's own stop/target fields become the children; the parent order ignores them.
    parent = PlannedOrder(intent, base_order(intent, account))
    children = [PlannedOrder(ci, base_order(ci, account)) for ci in child_intents(intent)]
    group = [parent, *children]
    oca = f"oca-{intent.client_order_id}"
    for i, p in enumerate(group):
        p.order.transmit = i == len(group) - 1
        if i > 0:
            p.order.ocaGroup = oca
            p.order.ocaType = OCA_REDUCE_WITH_BLOCK
    return group


def link_bracket(group: list[PlannedOrder], order_ids: list[int]) -> None:
    """Assign order ids, and point every child at the parent's id."""
    for p, oid in zip(group, order_ids, strict=True):
        p.order.orderId = oid
    for p in group[1:]:
        p.order.parentId = order_ids[0]
