"""Issue 9's IBKR examples end to end: OrderManager → IBKRExecutionClient → ib_async → TWS simulator.

Every test ends by comparing Joe's store with the simulator's books (the broker is the truth):
each order's state, size, filled quantity and price, and the net position.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from joe.core.models import OrderType
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, single, wait_for
from .truth import S, agree, at_broker, ids, joe, settle


async def test_1a_second_process_same_intent_one_bracket(
    sim178: IBKRSimulator, make_om: Any, store: Store, tmp_path: Path
) -> None:
    """Process 1 places a limit bracket and exits; process 2 (same data folder: order-id file and
    store) places the same intent: still one bracket at the broker, position 100 not 200."""
    sim178.set_price("AAPL", 100)
    order_ids = tmp_path / "ibkr-order-ids.json"
    legs = bracket_intents("one")
    first = await make_om(sim178, store, client_id=51, order_ids=order_ids)
    await first.submit(legs)
    await wait_for(lambda: len(sim178.placed) == 3, what="bracket at the broker")
    await first.stop()
    await first.client.close()
    second = await make_om(sim178, store, client_id=51, order_ids=order_ids)
    await second.submit(legs)
    await asyncio.sleep(0.2)
    assert len(sim178.placed) == 3 and len(sim178.book.orders) == 3
    sim178.set_price("AAPL", 98.5)
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert sim178.book.positions["AAPL"].qty == 100


async def test_1a_second_process_with_its_own_store_still_one_bracket(
    sim178: IBKRSimulator, make_om: Any, store: Store, other_store: Store, tmp_path: Path
) -> None:
    """The same, with a second process that has its own (empty) store: the OrderManager asks the
    broker (orderRef) before the first send and adopts the bracket it finds there."""
    sim178.set_price("AAPL", 100)
    order_ids = tmp_path / "ibkr-order-ids.json"
    legs = bracket_intents("one-b")
    first = await make_om(sim178, store, client_id=52, order_ids=order_ids)
    await first.submit(legs)
    await wait_for(lambda: len(sim178.placed) == 3, what="bracket at the broker")
    await first.stop()
    await first.client.close()
    second = await make_om(sim178, other_store, client_id=52, order_ids=order_ids)
    await second.submit(legs)
    await asyncio.sleep(0.2)
    assert len(sim178.book.orders) == 3
    sim178.set_price("AAPL", 98.5)
    await settle(lambda: agree(sim178, other_store, ids(legs)))


async def test_2a_exit_after_bracket_fill_never_reverses(
    sim: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """After the entry fills, a reduce-only exit sells 100 and takes the stop and target with it:
    the target price trading later leaves the account flat, never short."""
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents("exit", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    ex = await om.exit(legs[0].signal_id)
    assert ex is not None and ex.quantity == 100
    await settle(lambda: agree(sim, store, [*ids(legs), ex.client_order_id]))
    sim.set_price("AAPL", 111)  # the old target's price trades
    sim.set_price("AAPL", 94)  # and the old stop's
    await settle(lambda: agree(sim, store, [*ids(legs), ex.client_order_id]))
    assert sim.book.positions["AAPL"].qty == 0 and sim.book.working() == []
    assert joe(store, ex.client_order_id).state is S.FILLED


async def test_2c_rejected_exit_can_be_retried(sim178: IBKRSimulator, make_om: Any, store: Store) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    entry = single("retry", qty=100)
    await om.submit([entry])
    await settle(lambda: agree(sim178, store, [entry.client_order_id]))
    sim178.faults.arm("reject_next", code=201, reason="Order rejected - reason: simulated")
    first = await om.exit(entry.signal_id)
    assert first is not None
    await wait_for(lambda: joe(store, first.client_order_id).state is S.REJECTED, what="exit rejected")
    second = await om.exit(entry.signal_id)
    assert second is not None and second.client_order_id != first.client_order_id
    await settle(lambda: agree(sim178, store, [entry.client_order_id, second.client_order_id]))
    assert joe(store, second.client_order_id).state is S.FILLED
    assert sim178.book.positions["AAPL"].qty == 0


@pytest.mark.parametrize("leg", [0, 1], ids=["on-entry", "on-stop"])
async def test_3a_10349_then_fill_bracket_intact(
    sim178: IBKRSimulator, make_om: Any, store: Store, leg: int
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    sim178.faults.arm("notice_10349", skip=leg)
    legs = bracket_intents(f"tif-{leg}")
    await om.submit(legs)
    await wait_for(lambda: len(sim178.placed) == 3, what="sent")
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.set_price("AAPL", 98.5)
    await settle(lambda: agree(sim178, store, ids(legs)))
    states = [joe(store, c).state for c in ids(legs)]
    assert states == [S.FILLED, S.ACCEPTED, S.ACCEPTED]


async def test_3b_10148_refused_cancel_is_not_a_cancel(
    sim: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    it = single("nocancel", order_type=OrderType.LIMIT, limit_price=Decimal(99))
    await om.submit([it])
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    sim.faults.arm("refuse_cancel", state="Submitted")
    await om.cancel(it.client_order_id)
    await wait_for(lambda: ("refuse_cancel", {"state": "Submitted"}) in sim.faults.fired, what="10148 sent")
    await asyncio.sleep(0.2)
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    assert joe(store, it.client_order_id).state is not S.CANCELLED
    sim.set_price("AAPL", 98.5)
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    assert joe(store, it.client_order_id).state is S.FILLED


async def test_3c_201_on_a_live_stop_is_not_rejected(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("live-stop", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.order_error(legs[1].client_order_id, 201, "Order rejected - reason: simulated revision refused")
    await asyncio.sleep(0.2)
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert joe(store, legs[1].client_order_id).state is S.ACCEPTED
    sim178.set_price("AAPL", 94)  # it fires
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert joe(store, legs[1].client_order_id).state is S.FILLED
    assert sim178.book.positions["AAPL"].qty == 0


async def test_3d_refused_modify_leaves_joe_at_the_broker_price(
    sim: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents("mod", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.faults.arm("refuse_modify", code=110)
    await om.modify(legs[1].client_order_id, stop_price=Decimal("97.03"))
    await wait_for(lambda: bool(sim.faults.fired), what="110 sent")
    await asyncio.sleep(0.2)
    await settle(lambda: agree(sim, store, ids(legs)))
    assert joe(store, legs[1].client_order_id).intent.stop_price == Decimal(95)
    await om.modify(legs[1].client_order_id, stop_price=Decimal("96.5"))  # accepted: Joe follows
    await wait_for(
        lambda: at_broker(sim, legs[1].client_order_id).placed.aux_price == Decimal("96.5"), what="moved"
    )
    await settle(lambda: agree(sim, store, ids(legs)))
    assert joe(store, legs[1].client_order_id).intent.stop_price == Decimal("96.5")


async def test_4a_corrections_replace(sim178: IBKRSimulator, make_om: Any, store: Store) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    it = single("corr", order_type=OrderType.LIMIT, limit_price=Decimal(90))
    await om.submit([it])
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    sim178.faults.arm("correct_exec", qty=50, price="89.5")
    sim178.fill(it.client_order_id, 100, 90)
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    joe = store.load_order(it.client_order_id)
    assert joe is not None and joe.filled_quantity == 50 and len(joe.fills) == 1
    sim178.fill(it.client_order_id, 50, 90)  # the real second fill is not an overfill
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    joe = store.load_order(it.client_order_id)
    assert joe is not None and joe.state is S.FILLED and len(joe.fills) == 2
    assert joe.avg_fill_price == (Decimal("89.5") * 50 + Decimal(90) * 50) / 100


async def test_4c_commission_first_ends_on_its_fill(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    sim178.faults.arm("commission_first")
    it = single("comm")
    await om.submit([it])
    await settle(lambda: agree(sim178, store, [it.client_order_id]))

    def charged() -> None:
        joe = store.load_order(it.client_order_id)
        assert joe is not None and [f.commission for f in joe.fills.values()] == [Decimal("1.00")]

    await settle(charged)
    assert om.order(it.client_order_id) is not None


async def test_5a_partial_entry_then_cancel_resizes_protection(
    sim: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents("part")
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.fill(legs[0].client_order_id, 30, 99)
    await settle(lambda: agree(sim, store, ids(legs)))
    await om.cancel(legs[0].client_order_id)
    await wait_for(lambda: at_broker(sim, legs[0].client_order_id).status == "Cancelled", what="cancelled")
    await settle(lambda: agree(sim, store, ids(legs)))
    stop = store.load_order(legs[1].client_order_id)
    assert stop is not None and (stop.quantity, stop.state) == (30, S.ACCEPTED)
    sim.set_price("AAPL", 94)  # the resized stop fires: flat, and Joe's stop says FILLED 30/30
    await settle(lambda: agree(sim, store, ids(legs)))
    stop = store.load_order(legs[1].client_order_id)
    assert stop is not None and (stop.state, stop.filled_quantity, stop.quantity) == (S.FILLED, 30, 30)
    assert sim.book.positions["AAPL"].qty == 0


async def test_5b_modify_parent_quantity_resizes_children(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("grow")
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    await om.modify(legs[0].client_order_id, quantity=Decimal(200))
    await wait_for(lambda: at_broker(sim178, legs[2].client_order_id).sim.quantity == 200, what="resized")
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert [at_broker(sim178, c).sim.quantity for c in ids(legs)] == [200, 200, 200]
    sim178.set_price("AAPL", 98.5)
    sim178.set_price("AAPL", 94)  # the stop fires for the whole 200: nothing left unprotected
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert sim178.book.positions["AAPL"].qty == 0


@pytest.mark.parametrize("qty", [200, 50])
async def test_5b_refused_parent_modify_leaves_children_unchanged(
    sim178: IBKRSimulator, make_om: Any, store: Store, qty: int
) -> None:
    """Review r9 finding 4: TWS refuses the parent's resize (201): the children keep their size at
    the broker and in Joe (they follow only a CONFIRMED parent size); the stop then closes exactly
    the position (no reversal). Grow and shrink alike."""
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents(f"refused-{qty}")
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.faults.arm("refuse_modify", code=201, message="Order rejected - reason: simulated margin refusal")
    await om.modify(legs[0].client_order_id, quantity=Decimal(qty))
    await wait_for(lambda: any(a for a in sim178.faults.fired if a[0] == "refuse_modify"), what="refused")
    await asyncio.sleep(0.3)
    assert [at_broker(sim178, c).sim.quantity for c in ids(legs)] == [100, 100, 100]
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.set_price("AAPL", 98.5)  # the entry fills its real size
    sim178.set_price("AAPL", 94)  # the stop fires
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert sim178.book.positions["AAPL"].qty == 0


async def test_5c_broker_cancels_the_stop_unprotected_reported(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store)
    legs = bracket_intents("naked", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    sim178.broker_cancel(legs[1].client_order_id, reason="price check")
    await settle(lambda: agree(sim178, store, ids(legs)))
    await wait_for(lambda: bool(om.unprotected), what="unprotected position reported")
    event = om.unprotected[-1]
    assert (event.signal_id, event.position, event.protected) == (legs[0].signal_id, 100, 0)
