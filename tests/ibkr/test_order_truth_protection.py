"""Protection as a state, end to end at IBKR (OrderManager → IBKRExecutionClient → ib_async → TWS sim).

An OCA partial target fill: the broker reduces the stop itself (ocaType 2); its report trails the
target's fill. Joe asks instead of reporting the over-cover, and nothing stays raised."""

from __future__ import annotations

from typing import Any

from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, wait_for
from .truth import agree, at_broker, ids, settle


async def test_oca_partial_target_fill_leaves_no_unprotected_state(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("oca-part", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.fill(legs[2].client_order_id, 30, "110")  # the target fills 30 of 100
    await wait_for(lambda: at_broker(sim178, legs[1].client_order_id).sim.quantity == 70, what="OCA")
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert sim178.book.positions["AAPL"].qty == 70
    assert om.position_of(legs[0].signal_id) == 70
    assert om.unprotected_now == {}
    assert om.unprotected == []  # not even briefly


async def test_broker_cancelled_stop_raised_then_cleared_by_a_new_stop(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    from decimal import Decimal

    from joe.core.ids import client_order_id
    from joe.core.models import OrderIntent, OrderLeg, OrderType, Side

    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("re-stop", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.broker_cancel(legs[1].client_order_id, reason="price check")
    await wait_for(lambda: legs[0].signal_id in om.unprotected_now, what="raised")
    stop = OrderIntent(
        client_order_id(legs[0].signal_id, "stop-replace-1"), legs[0].signal_id, OrderLeg.STOP_LOSS,
        "AAPL", Side.SELL, Decimal(100), OrderType.STOP, stop_price=Decimal(95), reduce_only=True,
    )  # fmt: skip
    await om.submit([stop])
    await wait_for(lambda: om.unprotected_now == {}, what="cleared")
    [restored] = om.journal.restored
    assert (restored.signal_id, restored.position, restored.protected) == (legs[0].signal_id, 100, 100)
    await settle(lambda: agree(sim178, store, [*ids(legs), stop.client_order_id]))
