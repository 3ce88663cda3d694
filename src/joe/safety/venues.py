"""Adapters that let `joe.safety.flatten` drive a broker through the `ExecutionClient` protocol (the
thin adapters the `OrderManager` uses: IBKR's `IBKRExecutionClient`, Capital.com's
`CapitalExecutionClient`). The older `Executor` adapters already have the `FlattenVenue` shape.

The broker is asked every time (positions, open orders via `mass_status`): flattening never trusts a
local copy of what is open.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from joe.brokers.base import BrokerOrderRef, ExecutionClient
from joe.core.events import OrderEvent, OrderEventType
from joe.core.models import OrderIntent, OrderLeg, OrderType, Position
from joe.core.reports import OrderStatusReport, VenueOrderStatus

_OPEN = {VenueOrderStatus.PENDING_SUBMIT, VenueOrderStatus.WORKING, VenueOrderStatus.INACTIVE}


def _intent_of(r: OrderStatusReport) -> OrderIntent:
    """The intent a working order at the broker stands for (what `cancel` needs to name it)."""
    otype = r.order_type or OrderType.MARKET
    if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) and r.limit_price is None:
        otype = OrderType.MARKET
    if otype in (OrderType.STOP, OrderType.STOP_LIMIT) and r.stop_price is None:
        otype = OrderType.MARKET
    qty = r.quantity if r.quantity > 0 else Decimal(1)
    return OrderIntent(
        r.client_order_id,
        r.client_order_id,
        r.leg or OrderLeg.ENTRY,
        r.symbol,
        r.side,
        qty,
        otype,
        limit_price=r.limit_price,
        stop_price=r.stop_price,
        reduce_only=r.leg in (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT, OrderLeg.EXIT),
    )


class ClientVenue:
    """`FlattenVenue` over an `ExecutionClient`."""

    def __init__(self, client: ExecutionClient) -> None:
        self.client = client
        self.name = client.name
        self._open: dict[str, OrderStatusReport] = {}

    async def positions(self) -> list[Position]:
        net: dict[str, list[Any]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for r in await self.client.positions():
            net[r.symbol][0] += r.quantity
            net[r.symbol][1] = r.avg_price
        return [Position(s, q, px) for s, (q, px) in net.items() if q != 0]

    async def open_orders(self) -> list[OrderEvent]:
        ms = await self.client.mass_status()
        self._open = {r.client_order_id: r for r in ms.orders if r.status in _OPEN and r.client_order_id}
        return [
            # raw["symbol"]: flatten keeps the orders of an instrument still held (its stop stays).
            OrderEvent(
                OrderEventType.ACCEPTED, r.client_order_id, r.ts, r.broker_order_id, raw={"symbol": r.symbol}
            )
            for r in self._open.values()
        ]

    async def place(self, intent: OrderIntent) -> Any:
        return await self.client.submit([intent])

    async def cancel(self, client_order_id: str) -> None:
        r = self._open.get(client_order_id)
        if r is None:
            return
        await self.client.cancel(BrokerOrderRef(_intent_of(r), r.broker_order_id, r.parent_broker_order_id))
