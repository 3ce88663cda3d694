"""More cases of issue 9's kinds, end to end (OrderManager → IBKRExecutionClient → TWS simulator):
other refusal states, a cancel racing a fill, an unknown code, fills while disconnected, a broker
cancel of a target. Each ends with Joe's store equal to the simulator's books."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from joe.core.models import OrderType
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, single, wait_for
from .truth import S, agree, at_broker, ids, joe, settle

DROP_LOGS = (r"Peer closed connection", r"API connection failed", r"Make sure API port")


async def test_10148_pending_cancel_then_fill(sim178: IBKRSimulator, make_om: Any, store: Store) -> None:
    """An earlier cancel still in flight ("state: PendingCancel"): the order can still fill, and does."""
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    it = single("pc", order_type=OrderType.LIMIT, limit_price=Decimal(99))
    await om.submit([it])
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    sim178.faults.arm("refuse_cancel", state="PendingCancel")
    await om.cancel(it.client_order_id)
    await wait_for(lambda: bool(sim178.faults.fired), what="10148 sent")
    await asyncio.sleep(0.2)
    assert joe(store, it.client_order_id).state is not S.CANCELLED
    sim178.set_price("AAPL", 98.5)
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    assert joe(store, it.client_order_id).state is S.FILLED


async def test_cancel_after_the_fill_keeps_filled(sim: IBKRSimulator, make_om: Any, store: Store) -> None:
    """The fill wins the race: TWS answers the cancel with 10148 "state: Filled"; Joe stays FILLED."""
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    it = single("race", order_type=OrderType.LIMIT, limit_price=Decimal(99))
    await om.submit([it])
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    sim.set_price("AAPL", 98.5)  # fills at the broker before Joe's cancel arrives
    await om.cancel(it.client_order_id)
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    assert joe(store, it.client_order_id).state is S.FILLED
    assert sim.book.positions["AAPL"].qty == 100


async def test_unknown_code_on_a_working_order_changes_nothing(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("unknown", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    for code in (4242, 10311, 463, 322):  # undocumented / ambiguous: Joe asks the broker
        sim178.order_error(legs[1].client_order_id, code, f"simulated {code}")
    await asyncio.sleep(0.3)
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert [joe(store, c).state for c in ids(legs)] == [S.FILLED, S.ACCEPTED, S.ACCEPTED]


async def test_fills_while_disconnected_reach_the_store_once(
    sim: IBKRSimulator, make_om: Any, store: Store, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*DROP_LOGS)
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    sim.set_fill_chunk(100)
    sim.faults.arm("drop_after_execs", n=2)  # 2 of 5 executions live, 3 while the socket is down
    it = single("gap", qty=500)
    await om.submit([it])
    await wait_for(lambda: om.client.ready and om.client.conn.reconnects >= 1, what="reconnect")
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    stored = joe(store, it.client_order_id)
    assert stored.state is S.FILLED and len(stored.fills) == 5 == len(sim.book.executions)


async def test_broker_cancels_the_target_position_still_protected(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """Losing the target is not a protection breach (the stop still covers the position)."""
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("tgt", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.broker_cancel(legs[2].client_order_id, reason="price check")
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert joe(store, legs[2].client_order_id).state is S.CANCELLED
    assert not om.unprotected


async def test_partial_target_shrinks_the_stop_in_joe_too(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """OCA type 2: a partial target fill makes TWS shrink the stop; Joe's copy follows the broker."""
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("oca", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.fill(legs[2].client_order_id, 40, 110)
    await wait_for(lambda: at_broker(sim178, legs[1].client_order_id).sim.quantity == 60, what="stop 60")
    await settle(lambda: agree(sim178, store, ids(legs)))
    stop = joe(store, legs[1].client_order_id)
    assert (stop.quantity, stop.state) == (60, S.ACCEPTED)


async def test_presend_check_is_open_and_completed_orders_only(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """Before the first send the OrderManager asks IBKR one targeted question — open and completed
    orders, filtered by orderRef — not the executions (issue 9's cost point)."""
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    before = {m: len(sim178.client_messages(m)) for m in (7, 99, 16)}  # executions, completed, all open
    it = single("presend", qty=10)
    await om.submit([it])
    after = {m: len(sim178.client_messages(m)) for m in (7, 99, 16)}
    assert after[7] == before[7]  # no reqExecutions on the way to the send
    assert (after[99] - before[99], after[16] - before[16]) == (1, 1)
    await wait_for(lambda: len(sim178.placed) == 1, what="sent once")
