"""Translation of one Joe `OrderIntent` into an ib_async `Order` (`orderRef` = client_order_id).

Brackets are linked by `IBKRExecutionClient.submit`: the parent (transmit=0), then its children with
`parentId`, one OCA group (ocaType 2: a sibling is reduced by each fill and cancelled when one fills
completely) and transmit=1 on the last, which releases the group at TWS. A take-profit placed
alone later (the replacement of an over-sized one, `joe.execution.target_refit`) joins its bracket's
OCA group (`lone_leg_oca`), so a fill of it or of the stop still cancels the other at the broker.
"""

from __future__ import annotations

from decimal import Decimal

from ib_async import Contract, Order, Stock

from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, TimeInForce

OCA_REDUCE_WITH_BLOCK = 2


def oca_group(parent_client_order_id: str) -> str:
    """The OCA group of a bracket's children, named after its parent (Joe's entry id)."""
    return f"oca-{parent_client_order_id}"


def lone_leg_oca(intent: OrderIntent) -> str | None:
    """The OCA group a protective leg sent alone joins, or None: a reduce-only take-profit joins its
    signal's bracket group (the entry's id is derived from the signal: `portfolio.intents`), so the
    stop and it stay one-cancels-the-other. IB adds an order to a group by name; a group whose other
    members are done leaves it alone, and one already filled refuses it (201, "OCA group")."""
    if intent.leg is OrderLeg.TAKE_PROFIT and intent.reduce_only:
        return oca_group(client_order_id(intent.signal_id, OrderLeg.ENTRY.value))
    return None


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
