"""The owner's trades on Joe's IBKR position (issue 9, "a fill is a fact" — of whose order): the
account owner trades from TWS (client id 0, no orderRef). IBKR holds one net position per instrument,
so the part of an owner's opposite execution that takes the broker below what Joe holds is an
*outside change* of Joe's signal (recorded once, audited, alerted as an owner trade) — never a fill of
Joe's orders — and Joe's orders that would now reverse the position are shrunk. The owner's executions
that only add, or only close the owner's own part, stay external. The simulator is the truth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, MarketOrder, Stock

from joe.core.models import OrderLeg, OrderType
from joe.core.order import OrderState
from joe.execution.events import AlertKind
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import Reconciler
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import wait_for
from .truth import filled_bracket


@pytest.fixture
async def owner(sim178: IBKRSimulator) -> AsyncIterator[IB]:
    """The account owner trading in TWS: client id 0, orders without an orderRef."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim178.port, clientId=0, timeout=3)
    try:
        yield ib
    finally:
        ib.disconnect()


async def _trade(sim: IBKRSimulator, owner: IB, side: str, qty: int) -> None:
    before = _held(sim)
    owner.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder(side, qty))
    after = before + (qty if side == "BUY" else -qty)
    await wait_for(lambda: _held(sim) == after, what="the owner's trade filled")


def _held(sim: IBKRSimulator) -> Decimal:
    pos = sim.book.positions.get("AAPL")
    return Decimal(pos.qty) if pos else Decimal(0)


def _working(sim: IBKRSimulator) -> list[tuple[str, Decimal]]:
    return sorted((w.placed.order_type, w.sim.quantity - w.sim.filled) for w in sim.book.working())


def _remaining(om: OrderManager, coid: str) -> Decimal | None:
    o = om.order(coid)
    return None if o is None else o.remaining


def _outside(store: Store) -> list[tuple[str, Decimal]]:
    items = store.reconcile_items("ibkr", "live", "outside_change")
    return [(str((i.detail or {})["signal_id"]), i.quantity) for i in items]


async def test_owner_sells_part_legs_shrink_and_joe_equals_broker(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    """The owner sells 40 of Joe's 100 in TWS: the next reconciliation books −40 on Joe's signal, and
    Joe's stop and target (100 at the broker: TWS does not resize them) shrink to 60, so the stop
    firing leaves the account flat, not short 40."""
    sim = sim178
    om, legs = await filled_bracket(sim, make_om, store, "oc-part")
    await _trade(sim, owner, "SELL", 40)
    report = await Reconciler(om).reconcile()
    assert report.explained, report.summary()
    assert _outside(store) == [("oc-part", Decimal(-40))]
    assert om.position_of("oc-part") == 60 == _held(sim)
    assert AlertKind.OWNER_TRADE in [a.kind for a in om.alerts]
    await wait_for(lambda: _working(sim) == [("LMT", Decimal(60)), ("STP", Decimal(60))], what="legs at 60")
    entry = om.order(legs[0].client_order_id)
    assert entry is not None and entry.filled_quantity == 100  # Joe's own fill is unchanged
    legs_left = lambda: [_remaining(om, i.client_order_id) for i in legs[1:]]  # noqa: E731
    await wait_for(lambda: legs_left() == [60, 60], what="Joe's legs at 60")
    sim.set_price("AAPL", 90)  # the stop fires
    await wait_for(lambda: _held(sim) == 0, what="stop filled")
    # Joe catches up with the broker's reports (it asks the broker on some): waited for, not slept.
    await wait_for(lambda: om.position_of("oc-part") == 0, what="Joe flat")
    await asyncio.sleep(0.3)
    assert _held(sim) == 0  # flat at the broker, never short
    assert (await Reconciler(om).reconcile()).explained
    assert _outside(store) == [("oc-part", Decimal(-40))]  # once


async def test_owner_sells_part_then_joe_exits_the_rest(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    sim = sim178
    om, _ = await filled_bracket(sim, make_om, store, "oc-exit")
    await _trade(sim, owner, "SELL", 40)
    ex = await om.exit("oc-exit")  # Joe learns the owner's sale with its exit
    assert ex is not None and ex.quantity == 60
    await wait_for(lambda: _held(sim) == 0, what="exit filled")
    await wait_for(lambda: om.position_of("oc-exit") == 0, what="Joe flat")
    o = om.order(ex.client_order_id)
    assert o is not None and (o.quantity, o.filled_quantity) == (60, 60)
    assert _outside(store) == [("oc-exit", Decimal(-40))]
    assert om.unprotected_now == {}
    assert (await Reconciler(om).reconcile()).explained


async def test_owner_closes_own_part_first_then_part_of_joes(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    """The owner buys 50 (the owner's own: external), then sells 80: 50 closes the owner's own, 30
    Joe's. Joe books −30; nothing stays external; the account and Joe agree."""
    sim = sim178
    om, _ = await filled_bracket(sim, make_om, store, "oc-mix")
    rec = Reconciler(om)
    await _trade(sim, owner, "BUY", 50)
    r1 = await rec.reconcile()
    assert r1.explained and om.position_of("oc-mix") == 100 and _outside(store) == []
    await _trade(sim, owner, "SELL", 80)
    r2 = await rec.reconcile()
    assert r2.explained, r2.summary()
    assert _outside(store) == [("oc-mix", Decimal(-30))]
    assert om.position_of("oc-mix") == 70 == _held(sim)
    assert store.reconcile_item("ibkr", "live", "external_position", "AAPL") is None
    await wait_for(lambda: _working(sim) == [("LMT", Decimal(70)), ("STP", Decimal(70))], what="legs at 70")


async def test_owner_sells_while_joes_exit_is_working(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    """Joe's limit exit of 60 rests; the owner sells 70 in TWS: 30 stays, so the working exit shrinks
    to 30 and the legs (40 while the exit rested) are cancelled — no order can reverse the account."""
    sim = sim178
    om, legs = await filled_bracket(sim, make_om, store, "oc-work")
    ex = await om.exit("oc-work", quantity=Decimal(60), order_type=OrderType.LIMIT, limit_price=Decimal(105))
    assert ex is not None
    await wait_for(lambda: ("LMT", Decimal(60)) in _working(sim), what="exit resting")
    await _trade(sim, owner, "SELL", 70)
    assert (await Reconciler(om).reconcile()).explained
    assert _outside(store) == [("oc-work", Decimal(-70))]  # the account held only Joe's 100
    await wait_for(lambda: _working(sim) == [("LMT", Decimal(30))], what="exit 30 alone")
    sim.set_price("AAPL", 106)
    await wait_for(lambda: _held(sim) == 0, what="exit filled")
    # Joe catches up with the broker's reports (it asks the broker on some): waited for, not slept.
    await wait_for(lambda: om.position_of("oc-work") == 0, what="Joe flat")
    await asyncio.sleep(0.3)
    assert _held(sim) == 0  # flat at the broker, never short
    o = om.order(ex.client_order_id)
    assert o is not None and o.filled_quantity == 30
    assert [om.order(i.client_order_id).state for i in legs[1:]] == [OrderState.CANCELLED] * 2  # type: ignore[union-attr]
    assert ex.intent.leg is OrderLeg.EXIT
