"""Stale order copies (issue 9, chaos defect 4: seeds 6, 7, 16, 83, 95, 146, 185, 186): a
reconciliation pass that runs while a submit is between its write-ahead and its send (the lost-
protection reaction placing a replacement stop) must neither resend that order nor replace the copy
the submit holds (two copies of one order then saved over each other: `StaleOrderError` escaped the
pass). A copy another writer saved over (another process or `OrderManager` on the same store) is
re-read and the step retried, never a crashed pass. The simulator is the truth."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.execution.events import AlertKind
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import Reconciler
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, wait_for
from .truth import agree, ids, settle


def _at_broker(sim: IBKRSimulator, coid: str) -> list[Any]:
    """Every order the broker ever took with orderRef `coid` (working or done)."""
    return [bo for bo in sim.book.orders.values() if bo.placed.order_ref == coid]


def _replacement(sig: str, qty: int = 100) -> OrderIntent:
    """The lost-protection reaction's replacement stop (`joe.safety.om_protection`)."""
    return OrderIntent(
        client_order_id(sig, f"{OrderLeg.STOP_LOSS.value}-replace-1"), sig, OrderLeg.STOP_LOSS, "AAPL",
        Side.SELL, Decimal(qty), OrderType.STOP, stop_price=Decimal(90), reduce_only=True,
    )  # fmt: skip


def _unresolved(om: OrderManager) -> list[str]:
    return [a.message for a in om.alerts if a.kind is AlertKind.UNRESOLVED]


async def test_a_pass_during_a_submit_neither_resends_nor_forks_the_order(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim = sim178
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents("stale-pass", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.broker_cancel(legs[1].client_order_id)  # what the replacement replaces (never two stops)
    await wait_for(lambda: "stale-pass" in om.unprotected_now, what="reported unprotected")
    # The replacement's submit is held inside its pre-send check: committed NEW, not yet sent.
    held, release = asyncio.Event(), asyncio.Event()
    check = om.client.presend_check

    async def slow_check(coid: str) -> bool:
        held.set()
        await release.wait()
        return bool(await check(coid))

    om.client.presend_check = slow_check  # type: ignore[method-assign]
    stop = _replacement("stale-pass")
    submit = asyncio.create_task(om.submit([stop]))
    await held.wait()
    copy = om.order(stop.client_order_id)
    assert copy is not None and copy.state is OrderState.NEW
    report = await Reconciler(om).reconcile()  # the daemon's periodic pass, meanwhile
    assert _at_broker(sim, stop.client_order_id) == []  # not resent behind the submit's back
    assert om.order(stop.client_order_id) is copy  # one copy of the order in the process
    release.set()
    await submit
    await wait_for(lambda: len(_at_broker(sim, stop.client_order_id)) == 1, what="the replacement placed")
    await settle(lambda: agree(sim, store, [*ids(legs), stop.client_order_id]))
    report = await Reconciler(om).reconcile()
    assert report.explained, report.summary()
    assert len(_at_broker(sim, stop.client_order_id)) == 1  # one intent, one order
    o, stored = om.order(stop.client_order_id), store.load_order(stop.client_order_id)
    assert o is not None and stored is not None and o.version == stored.version
    assert o.state is OrderState.ACCEPTED and _unresolved(om) == []


async def test_a_copy_saved_over_by_another_writer_is_reread_and_the_report_applied(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """Another writer on the store (another process) saves the stop after Joe cached it: the broker's
    next report on it is applied to the stored copy (re-read), and a reconciliation pass takes the
    newer stored copy instead of failing on its own."""
    sim = sim178
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents("stale-other", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    stop = legs[1].client_order_id

    def other_writer_saves() -> int:
        other = store.load_order(stop)
        assert other is not None
        store.save_order(other, broker="ibkr", mode="live")
        return other.version

    newer = other_writer_saves()
    mine = om.order(stop)
    assert mine is not None and mine.version < newer
    await om.modify(stop, stop_price=Decimal(93))  # the broker's openOrder answer is saved on a stale copy
    await wait_for(lambda: (om.order(stop) or mine).intent.stop_price == 93, what="Joe's stop at 93")
    await settle(lambda: agree(sim, store, ids(legs)))
    other_writer_saves()
    report = await Reconciler(om).reconcile()
    assert report.explained, report.summary()
    fresh, stored = om.order(stop), store.load_order(stop)
    assert fresh is not None and stored is not None and fresh.version == stored.version
    assert fresh.state is OrderState.ACCEPTED and fresh.intent.stop_price == 93
    assert _unresolved(om) == []
