"""Domain types shared by every layer: instruments, market data, signals, orders, fills, positions."""

from joe.core.ids import client_order_id, new_run_id
from joe.core.models import (
    AccountInfo,
    AssetClass,
    Bar,
    Fill,
    Instrument,
    OrderIntent,
    OrderLeg,
    OrderType,
    Position,
    Quote,
    Side,
    Signal,
    TimeInForce,
)
from joe.core.order import IllegalTransition, Order, OrderState, OverfillError

__all__ = [
    "AccountInfo",
    "AssetClass",
    "Bar",
    "Fill",
    "IllegalTransition",
    "Instrument",
    "Order",
    "OrderIntent",
    "OrderLeg",
    "OrderState",
    "OrderType",
    "OverfillError",
    "Position",
    "Quote",
    "Side",
    "Signal",
    "TimeInForce",
    "client_order_id",
    "new_run_id",
]
