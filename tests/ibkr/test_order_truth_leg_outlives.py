"""A protective leg never outlives, outgrows or races the position it protects (issue 9, chaos seeds
220, 20, 129), end to end at IBKR (OrderManager → IBKRExecutionClient → ib_async → TWS simulator; the
simulator's books are the truth).

Seed 220: the broker cancelled a stop; the lost-protection reaction's replacement stop was still being
checked when its exit closed the position, was sent after it and (its level above the market) sold 2
short at once. A standalone stop or target is refused before the send when the signal holds nothing,
while an exit of it is in flight, or when it would cover more than the position with the legs already
working; an exit waits for a leg being sent and cancels it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import SendFailed
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, wait_for
from .truth import agree, ids, settle


def _stop(sig: str, n: int, qty: int, level: str = "95") -> OrderIntent:
    return OrderIntent(
        client_order_id(sig, f"stop-replace-{n}"), sig, OrderLeg.STOP_LOSS, "AAPL", Side.SELL,
        Decimal(qty), OrderType.STOP, stop_price=Decimal(level), reduce_only=True,
    )  # fmt: skip


def _working_stops(sim: IBKRSimulator) -> list[Any]:
    return [o for o in sim.book.orders.values() if not o.done and o.placed.order_type == "STP"]


async def _opened(sim: IBKRSimulator, make_om: Any, store: Store, sig: str) -> tuple[Any, list[Any]]:
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents(sig, 2, limit=None)
    await om.submit(legs)
    await wait_for(lambda: sim.book.positions.get("AAPL") is not None, what="the entry filled")
    await settle(lambda: agree(sim, store, ids(legs)))
    return om, legs


async def test_a_stop_for_a_closed_position_is_never_sent(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    om, legs = await _opened(sim178, make_om, store, "outlive-flat")
    sig = legs[0].signal_id
    await om.exit(sig)
    await wait_for(lambda: sim178.book.positions["AAPL"].qty == 0, what="the exit filled")
    late = _stop(sig, 1, 2, level="102")  # above the market: it would sell at once
    with pytest.raises(SendFailed, match="holds nothing"):
        await om.submit([late])
    assert sim178.find(late.client_order_id) is None  # nothing reached the broker
    assert store.load_order(late.client_order_id).state is OrderState.REJECTED
    assert sim178.book.positions["AAPL"].qty == 0 and _working_stops(sim178) == []


async def test_a_replacement_stop_never_covers_more_than_the_position(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    om, legs = await _opened(sim178, make_om, store, "outlive-over")
    sig = legs[0].signal_id
    with pytest.raises(SendFailed, match="would cover 4 of a position of 2"):
        await om.submit([_stop(sig, 1, 2)])  # the bracket's stop of 2 still works
    sim178.broker_cancel(legs[1].client_order_id)  # the broker cancels the bracket's stop
    await wait_for(lambda: sig in om.unprotected_now, what="reported unprotected")
    replacement = _stop(sig, 2, 2)
    await om.submit([replacement])  # now it is what protects the position: sent
    placed = lambda: sim178.find(replacement.client_order_id)  # noqa: E731
    await wait_for(lambda: placed() is not None and placed().status == "Submitted", what="working")
    await wait_for(lambda: om.unprotected_now == {}, what="protection restored")
    sim178.set_price("AAPL", 90)  # a gap down through every stop: sells the 2 held, never more
    await wait_for(lambda: sim178.book.positions["AAPL"].qty == 0, what="the stop filled")
    await asyncio.sleep(0.3)
    assert sim178.book.positions["AAPL"].qty == 0 and _working_stops(sim178) == []


@pytest.mark.parametrize("lead", [-0.2, -0.05, 0.0, 0.05, 0.2])
async def test_a_replacement_stop_racing_the_exit_never_outlives_the_position(
    sim178: IBKRSimulator, make_om: Any, store: Store, lead: float
) -> None:
    """The reaction's replacement stop and its exit run side by side, the stop `lead` seconds ahead
    (< 0: behind); its level is above the market, so it sells the moment it reaches the broker.
    Whichever way they interleave, the position closes once, never reverses, and nothing of Joe's
    rests at the broker after."""
    om, legs = await _opened(sim178, make_om, store, f"outlive-race-{lead}")
    sig = legs[0].signal_id
    sim178.broker_cancel(legs[1].client_order_id)
    await wait_for(lambda: sig in om.unprotected_now, what="reported unprotected")

    async def later(delay: float, step: Any) -> Any:
        await asyncio.sleep(delay)
        return await step()

    stop = _stop(sig, 1, 2, level="102")  # above the market (a gap went through it): fills at once
    results = await asyncio.gather(
        later(max(-lead, 0), lambda: om.submit([stop])),
        later(max(lead, 0), lambda: om.exit(sig)),
        return_exceptions=True,
    )
    assert not isinstance(results[1], BaseException), results[1]
    await wait_for(lambda: sim178.book.positions["AAPL"].qty == 0, what="the exit filled")
    await wait_for(lambda: _working_stops(sim178) == [], what="nothing left protecting a flat position")
    sim178.set_price("AAPL", 90)
    await asyncio.sleep(0.3)
    assert sim178.book.positions["AAPL"].qty == 0  # never reversed
