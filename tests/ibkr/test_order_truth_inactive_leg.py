"""A protective stop the broker stops working (r9 finding 5). IBKR can answer a live stop with an
error and the status "Inactive" (received, then rejected or held by the system): the order is still
listed but no longer fills. Joe kept it ACCEPTED and counted it as cover, so a price through the stop
sold nothing and nothing was reported. Now, once its entry is done, it is alerted and cancelled (its
end is the broker's word) and the position is reported unprotected, for the lost-protection reaction.
A bracket leg waiting on a parent that still works is left alone. The simulator's books are the truth."""

from __future__ import annotations

import asyncio
from typing import Any

from joe.execution.events import AlertKind
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, wait_for
from .truth import S, agree, at_broker, filled_bracket, ids, joe, settle


async def test_an_inactive_stop_is_cancelled_and_the_position_reported(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    om, legs = await filled_bracket(sim178, make_om, store, "inactive")
    assert not om.unprotected_now
    sim178.deactivate(legs[1].client_order_id, 201, "Order rejected - reason: short sale restriction")
    await wait_for(lambda: at_broker(sim178, legs[1].client_order_id).status == "Cancelled", what="cancelled")
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert joe(store, legs[1].client_order_id).state is S.CANCELLED
    raised = om.unprotected_now.get("inactive")
    assert raised is not None and (raised.position, raised.protected) == (100, 0)
    assert any(a.kind is AlertKind.BROKER_CORRECTION and "Inactive" in a.message for a in om.alerts)


async def test_a_leg_waiting_on_a_working_parent_is_left_alone(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("waiting")  # limit entry at 99: rests, its legs wait on it
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.deactivate(legs[1].client_order_id)
    await asyncio.sleep(0.3)
    assert at_broker(sim178, legs[1].client_order_id).status == "Inactive"  # not cancelled by Joe
    assert joe(store, legs[1].client_order_id).state is S.ACCEPTED
    assert not om.unprotected_now  # nothing filled, nothing to protect


async def test_an_inactive_market_exit_no_longer_hides_the_position(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """The exit cancelled the stop and target; the broker acknowledges it, then leaves it Inactive."""
    om, legs = await filled_bracket(sim178, make_om, store, "inactive-x")
    sim178.faults.arm("delay_fills", seconds=1.0)  # the market exit rests a moment before it matches
    ex = await om.exit("inactive-x")
    assert ex is not None
    sim178.deactivate(ex.client_order_id)
    await wait_for(lambda: at_broker(sim178, ex.client_order_id).status == "Cancelled", what="exit cancelled")
    await asyncio.sleep(1.2)  # the delayed match finds nothing to fill
    await settle(lambda: agree(sim178, store, [*ids(legs), ex.client_order_id]))
    assert sim178.book.positions["AAPL"].qty == 100  # still long: the exit never worked
    raised = om.unprotected_now.get("inactive-x")
    assert raised is not None and (raised.position, raised.protected) == (100, 0)


async def test_a_refused_cancel_of_an_inactive_stop_is_not_repeated(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """TWS refuses the cancel (10148): the stop comes back ACCEPTED and Inactive — asked once, not in a
    loop of cancels; the alert says what happened."""
    om, legs = await filled_bracket(sim178, make_om, store, "inactive-r")
    cancels = len(sim178.client_messages(4))  # cancelOrder
    sim178.faults.arm("refuse_cancel", count=5, state="Inactive")
    sim178.deactivate(legs[1].client_order_id)
    await wait_for(lambda: bool(sim178.faults.fired), what="the cancel refused")
    await asyncio.sleep(0.5)
    assert len(sim178.client_messages(4)) == cancels + 1
    assert joe(store, legs[1].client_order_id).state is S.ACCEPTED  # the broker's word: still listed
    assert sum("Inactive" in a.message for a in om.alerts) == 1
