"""The owner's trades in TWS learnt from the live stream (issue 9, "outside trades learnt late"): the
owner's execDetails go only to the TWS client that placed them, but every position change is pushed
to Joe's client (`position`). The `OrderManager` acts on that push at once — no reconciliation, no
exit in between: the owner's sale is booked as an outside change of Joe's signal and the protective
legs that would now sell more than the account holds are shrunk, so a stop firing leaves the account
flat, never short. The simulator's books are the truth."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from ib_async import IB

from joe.core.models import OrderType
from joe.core.order import OrderState
from joe.execution.events import AlertKind
from joe.execution.reconciler import Reconciler
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import wait_for
from .test_order_truth_outside import _held, _outside, _remaining, _trade, _working, owner
from .truth import filled_bracket

__all__ = ["owner"]  # the fixture, shared with the reconciliation-time tests
D60, D105 = Decimal(60), Decimal(105)


async def test_the_owners_sale_is_booked_and_the_legs_shrink_without_a_reconciliation(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    sim = sim178
    om, legs = await filled_bracket(sim, make_om, store, "live-part")
    await _trade(sim, owner, "SELL", 40)
    await wait_for(lambda: _outside(store) == [("live-part", Decimal(-40))], what="the sale booked live")
    assert om.position_of("live-part") == 60 == _held(sim)
    assert AlertKind.OWNER_TRADE in [a.kind for a in om.alerts]
    await wait_for(lambda: _working(sim) == [("LMT", Decimal(60)), ("STP", Decimal(60))], what="legs at 60")
    await wait_for(
        lambda: [_remaining(om, i.client_order_id) for i in legs[1:]] == [60, 60], what="Joe's legs at 60"
    )
    assert om.unprotected_now == {}
    sim.set_price("AAPL", 90)  # the stop fires: 60, not 100
    await wait_for(lambda: _held(sim) == 0, what="stop filled")
    await wait_for(lambda: om.position_of("live-part") == 0, what="Joe flat")
    await asyncio.sleep(0.3)
    assert _held(sim) == 0  # flat, never short
    report = await Reconciler(om).reconcile()
    assert report.explained, report.summary()
    assert _outside(store) == [("live-part", Decimal(-40))]  # booked once


async def test_the_owners_own_buy_is_not_joes_and_a_later_sale_takes_only_the_shortfall(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    sim = sim178
    om, _ = await filled_bracket(sim, make_om, store, "live-mix")
    await _trade(sim, owner, "BUY", 50)  # adds: the owner's own position, nothing of Joe's changed
    await asyncio.sleep(0.3)
    assert _outside(store) == [] and om.position_of("live-mix") == 100
    assert _working(sim) == [("LMT", Decimal(100)), ("STP", Decimal(100))]  # never grown, never shrunk
    await _trade(sim, owner, "SELL", 80)  # 50 of the owner's own, 30 of Joe's
    await wait_for(lambda: _outside(store) == [("live-mix", Decimal(-30))], what="the shortfall booked live")
    assert om.position_of("live-mix") == 70
    await wait_for(lambda: _working(sim) == [("LMT", Decimal(70)), ("STP", Decimal(70))], what="legs at 70")


async def test_the_owners_sale_shrinks_a_resting_exit_and_cancels_the_legs(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    sim = sim178
    om, legs = await filled_bracket(sim, make_om, store, "live-exit")
    ex = await om.exit("live-exit", quantity=D60, order_type=OrderType.LIMIT, limit_price=D105)
    assert ex is not None
    await wait_for(lambda: ("LMT", Decimal(60)) in _working(sim), what="exit resting")
    await _trade(sim, owner, "SELL", 70)  # 30 stay: the exit of 60 would sell 30 short
    await wait_for(lambda: _working(sim) == [("LMT", Decimal(30))], what="the exit at 30 alone")
    assert _outside(store) == [("live-exit", Decimal(-70))]
    sim.set_price("AAPL", 106)
    await wait_for(lambda: _held(sim) == 0, what="exit filled")
    await asyncio.sleep(0.3)
    await wait_for(lambda: om.position_of("live-exit") == 0, what="Joe flat")
    assert _held(sim) == 0  # flat at the broker, never short
    o = om.order(ex.client_order_id)
    assert o is not None and o.filled_quantity == 30
    assert [om.order(i.client_order_id).state for i in legs[1:]] == [OrderState.CANCELLED] * 2  # type: ignore[union-attr]


async def test_the_owners_sale_while_joes_exit_is_being_placed_is_fitted_after_it(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    """The sale lands between the exit's sizing and its send (the exit is sized for 60 of 100 and
    the legs shrunk to 40): once the exit is placed, it and the legs are fitted to what stays (30)."""
    sim = sim178
    om, legs = await filled_bracket(sim, make_om, store, "live-race")
    send = om.client.submit
    sold = asyncio.Event()

    async def sale_first(intents: Any) -> Any:
        if intents[0].leg.value == "exit":
            await _trade(sim, owner, "SELL", 70)
            await wait_for(lambda: _outside(store) != [], what="the sale booked while the exit is placed")
            sold.set()
        return await send(intents)

    om.client.submit = sale_first  # type: ignore[method-assign]
    ex = await om.exit("live-race", quantity=D60, order_type=OrderType.LIMIT, limit_price=D105)
    assert ex is not None and sold.is_set()
    await wait_for(lambda: _working(sim) == [("LMT", Decimal(30))], what="the exit fitted to 30, legs gone")
    sim.set_price("AAPL", 106)
    await wait_for(lambda: _held(sim) == 0, what="exit filled")
    await wait_for(lambda: om.position_of("live-race") == 0, what="Joe flat")
    assert _held(sim) == 0  # flat at the broker, never short
    assert _outside(store) == [("live-race", Decimal(-70))]
    assert [om.order(i.client_order_id).state for i in legs[1:]] == [OrderState.CANCELLED] * 2  # type: ignore[union-attr]
