"""Protective legs never exceed the filled position (issue 9, chaos seed 101), end to end at IBKR
(OrderManager → IBKRExecutionClient → ib_async → TWS simulator; the simulator's books are the truth).

An execution correction cuts a filled bracket entry 5 → 1: TWS puts the other 4 back to work while the
stop and target, activated by the first fill, stay active at 5. A stop of 5 on a position of 1 sells
4 short when it fires. Joe shrinks the legs to the filled size and grows them with the later fills:
the stop by modifies (it protects meanwhile); the target, which could fill in full before a modify
down lands (chaos seed 477), is cancelled and replaced at the filled size, and the replacement grows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, wait_for
from .truth import agree, at_broker, ids, settle


async def _filled_bracket(sim: IBKRSimulator, make_om: Any, store: Store, name: str) -> tuple[Any, list[Any]]:
    """A 5-share AAPL bracket submitted through a fresh OrderManager and filled in full at 99."""
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents(name, 5, limit="99")
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.fill(ids(legs)[0], 5, 99)
    await settle(lambda: agree(sim, store, ids(legs)))
    return om, legs


def _targets(sim: IBKRSimulator) -> list[Decimal]:
    """The sizes of the sell limits working at the broker (the signal's take-profits)."""
    return [
        o.sim.quantity
        for o in sim.book.working()
        if o.placed.order_type == "LMT" and o.placed.action == "SELL"
    ]


async def test_a_corrected_entry_shrinks_its_active_legs_to_the_filled_size(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim = sim178
    om, legs = await _filled_bracket(sim, make_om, store, "fit-corr")  # filled: the legs go active at 5
    entry, stop, target = ids(legs)
    bo = at_broker(sim, entry)
    [ex] = [e for e in sim.book.executions if e.wire.order_id == bo.order_id]
    sim.dispatch(sim.book.correct(bo, ex, Decimal(1), Decimal(99)))  # TWS: 1, not 5; 4 work again
    assert at_broker(sim, entry).status == "Submitted" and at_broker(sim, stop).active
    await wait_for(
        lambda: (
            at_broker(sim, stop).sim.quantity == 1 and at_broker(sim, target).done and _targets(sim) == [1]
        ),
        what="the active legs shrunk to the filled 1 (the target replaced)",
    )
    await settle(lambda: agree(sim, store, ids(legs)))
    assert sim.book.positions["AAPL"].qty == 1
    sim.fill(entry, 2, 99)  # the entry goes on filling: the legs follow it up
    await wait_for(
        lambda: at_broker(sim, stop).sim.quantity == 3 and _targets(sim) == [3], what="the legs grown to 3"
    )
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.fill(entry, 2, 99)  # and fills: the legs protect all 5
    await wait_for(
        lambda: at_broker(sim, stop).sim.quantity == 5 and _targets(sim) == [5], what="the legs grown to 5"
    )
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.set_price("AAPL", 94)  # through the stop: it sells what is held, never more
    await wait_for(lambda: at_broker(sim, stop).status == "Filled", what="the stop filled")
    assert sim.book.positions["AAPL"].qty == 0  # closed, not reversed
    await om.exit(legs[0].signal_id)  # nothing left to exit or protect at the broker
    assert all(o.done for o in sim.book.orders.values() if o.placed.order_ref in (stop, target))


async def test_a_correction_to_zero_cancels_the_entrys_rest_and_its_active_legs(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """A correction that takes every filled share away leaves nothing for the active legs to protect:
    there is no filled size for them to follow (IBKR refuses a quantity of 0), and a stop of 5 on a flat
    position would sell 5 short. Joe cancels the entry's rest, and its legs with it: flat, nothing active."""
    sim = sim178
    _om, legs = await _filled_bracket(sim, make_om, store, "fit-zero")  # keeps working in the background
    entry, stop, target = ids(legs)
    bo = at_broker(sim, entry)
    [ex] = [e for e in sim.book.executions if e.wire.order_id == bo.order_id]
    sim.dispatch(sim.book.correct(bo, ex, Decimal(0), Decimal(99)))  # TWS: none of it filled after all
    assert at_broker(sim, entry).status == "Submitted" and at_broker(sim, stop).active
    await wait_for(
        lambda: all(at_broker(sim, c).done for c in (entry, stop, target)),
        what="the entry's rest and its active legs cancelled",
    )
    await settle(lambda: agree(sim, store, ids(legs)))
    assert sim.book.positions["AAPL"].qty == 0
    sim.set_price("AAPL", 94)  # where the stop would have fired: nothing sells short
    await settle(lambda: agree(sim, store, ids(legs)))
    assert sim.book.positions["AAPL"].qty == 0
