"""A modify's size is the order's total, fills included (r9 finding 6): asking a partly filled order
for less than it has filled was sent as is (the simulator took it; Joe's copy kept the old size), so
Joe and the broker disagreed on the order. Refused before anything is sent, naming the filled size."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import InvalidOrder
from joe.core.models import OrderType
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import single, wait_for
from .truth import agree, at_broker, joe, settle


async def test_a_modify_below_the_filled_size_is_refused_unsent(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    it = single("part-mod", order_type=OrderType.LIMIT, limit_price=Decimal(99))
    await om.submit([it])
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    sim178.fill(it.client_order_id, 30, 99)
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    placed = len(sim178.placed)
    with pytest.raises(InvalidOrder, match="below the 30 already filled"):
        await om.modify(it.client_order_id, quantity=Decimal(20))
    assert len(sim178.placed) == placed  # nothing sent
    await om.modify(it.client_order_id, quantity=Decimal(50))  # above what filled: sent, followed
    await wait_for(lambda: at_broker(sim178, it.client_order_id).sim.quantity == 50, what="resized")
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    assert at_broker(sim178, it.client_order_id).sim.quantity == 50 == joe(store, it.client_order_id).quantity
