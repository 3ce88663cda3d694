"""A full exit of a signal whose entry is still working (a resting limit partly filled): the exit
closes what filled AND stops the entry from adding more, else the rest fills after the exit with its
protective legs already cancelled — an open, unprotected position Joe meant to close. The simulator
is the truth."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from joe.core.order import OrderState
from joe.store import Store

from .helpers import bracket_intents, wait_for
from .truth import agree, ids, settle


async def test_full_exit_cancels_the_working_rest_of_the_entry(
    sim178: Any, make_om: Any, store: Store
) -> None:
    sim = sim178
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents("xe-rest", limit="99")
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.fill(legs[0].client_order_id, 30, 99)  # the resting limit fills 30 of 100
    await wait_for(lambda: om.position_of("xe-rest") == 30, what="partial entry")
    ex = await om.exit("xe-rest")
    assert ex is not None and ex.quantity == 30
    await wait_for(lambda: sim.book.positions["AAPL"].qty == 0, what="exit filled")
    sim.set_price("AAPL", 98)  # the entry's limit trades: it must no longer be working
    await asyncio.sleep(0.4)
    assert sim.book.positions["AAPL"].qty == 0
    assert sim.book.working() == []
    entry = om.order(legs[0].client_order_id)
    assert entry is not None and entry.state is OrderState.CANCELLED and entry.filled_quantity == 30
    assert om.position_of("xe-rest") == 0 and om.unprotected_now == {}


async def test_partial_exit_leaves_the_entry_working(sim178: Any, make_om: Any, store: Store) -> None:
    """A partial exit is not a close: the entry keeps working (the trader asked for less)."""
    sim = sim178
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents("xe-part", limit="99")
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.fill(legs[0].client_order_id, 30, 99)
    await wait_for(lambda: om.position_of("xe-part") == 30, what="partial entry")
    ex = await om.exit("xe-part", quantity=Decimal(10))
    assert ex is not None
    await wait_for(lambda: sim.book.positions["AAPL"].qty == 20, what="exit filled")
    entry = om.order(legs[0].client_order_id)
    assert entry is not None and entry.state is OrderState.PARTIALLY_FILLED
