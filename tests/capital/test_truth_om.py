"""Issue 9's Capital.com examples end to end: OrderManager + CapitalExecutionClient + the simulator.

Each test ends by comparing Joe's store (through the OrderManager) with the simulator's books.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from capital.conftest import make_client
from capital.test_truth_submit import FailingAudit
from capital.truth_helpers import adapter, around, books, bracket, entry, posts
from joe.brokers.base import InvalidOrder, OrderOutcomeUnknown
from joe.brokers.capital import CapitalClient
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core.events import NullAudit
from joe.core.models import Side
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.simulators.capital import CapitalSimulator
from joe.store import Store


async def until(pred: Callable[[], bool], timeout: float = 120.0) -> None:
    """Wait for the OrderManager's background consumer to apply what the broker reported."""
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    assert pred()


async def manager(xc: CapitalExecutionClient, store: Store) -> OrderManager:
    om = OrderManager(xc, store, NullAudit(), confirm_timeout=2.0)
    await om.start()
    return om


@pytest.fixture
async def om(client: CapitalClient, store: Store) -> AsyncIterator[OrderManager]:
    m = await manager(adapter(client), store)
    yield m
    await m.stop()


def state(om: OrderManager, cid: str) -> OrderState | None:
    o = om.order(cid)
    return None if o is None else o.state


async def test_bracket_through_the_order_manager(sim: CapitalSimulator, om: OrderManager) -> None:
    stop, target = around(sim, "GOLD", "2")
    group = bracket("om-a", "GOLD", Side.BUY, "1", stop, target)
    await om.submit(group)
    await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
    await until(lambda: state(om, group[1].client_order_id) is OrderState.ACCEPTED)
    [(deal, _, size, ref)] = books(sim)
    e = om.order(group[0].client_order_id)
    assert e is not None and (e.filled_quantity, e.broker_order_id, ref) == (size, deal, e.client_order_id)
    mass = await om.client.mass_status()
    assert set(e.fills) == {f.fill.fill_id for f in mass.fills}  # one fill, one identity
    assert om.unprotected == []


async def test_1b_unknown_outcome_is_asked_for_never_posted_twice(
    sim: CapitalSimulator, store: Store
) -> None:
    client = make_client(sim, order_timeout_s=0.3, read_retries=1)
    await client.open()
    om = await manager(adapter(client), store)
    try:
        sim.faults.arm("delay_response", 1, path="/positions", method="POST", seconds=0.8)
        # The first 5 GETs pass (instrument rules, the OrderManager's one targeted check for the id —
        # GET /confirms/{ref} — and the netting check: preferences, positions, working orders); every
        # later GET (the lookup after the POST timed out) gets a 503.
        sim.faults.arm("http_5xx", -1, skip=5, method="GET", status=503, code="error.service.unavailable")
        order = entry("om-1b", "GOLD", Side.BUY, "1")
        with pytest.raises(OrderOutcomeUnknown):
            await om.submit([order])
        assert state(om, order.client_order_id) is OrderState.UNKNOWN
        with pytest.raises(OrderOutcomeUnknown):
            await om.submit([order])  # the same intent again: asked for, never re-sent
        assert posts(sim) == 1
        sim.faults.disarm()
        await om.submit([order])  # now the broker answers: the order is adopted
        await until(lambda: state(om, order.client_order_id) is OrderState.FILLED)
        assert posts(sim) == 1 and [r for *_, r in books(sim)] == [order.client_order_id]
    finally:
        await om.stop()
        await client.close()


async def test_1c_audit_failure_after_post_loses_nothing(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    om = await manager(adapter(client, audit=FailingAudit("capital.order.sent")), store)
    try:
        order = entry("om-1c", "GOLD", Side.BUY, "1")
        await om.submit([order])
        await om.submit([order])
        await until(lambda: state(om, order.client_order_id) is OrderState.FILLED)
        assert posts(sim) == 1 and len(books(sim)) == 1
    finally:
        await om.stop()


async def test_2b_netting_exit_capped_at_the_live_position(sim: CapitalSimulator, om: OrderManager) -> None:
    stop, target = around(sim, "GOLD", "2")
    group = bracket("om-2b", "GOLD", Side.BUY, "2", stop, target)
    await om.submit(group)
    await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
    sim.manual_trade("GOLD", "SELL", 1)  # the trader closes one unit elsewhere
    ex = await om.exit("om-2b", quantity=None)
    assert ex is not None
    await until(lambda: state(om, ex.client_order_id) is OrderState.FILLED)
    assert books(sim) == []  # flat: no short left
    assert om.position_of("om-2b") == 0  # Joe == broker


async def test_2b_owner_close_is_not_booked_on_joes_exit(sim: CapitalSimulator, om: OrderManager) -> None:
    stop, target = around(sim, "GOLD", "2")
    group = bracket("om-2b2", "GOLD", Side.BUY, "2", stop, target)
    await om.submit(group)
    await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
    sim.manual_trade("GOLD", "SELL", 1)
    ex = await om.exit("om-2b2", quantity=None)
    assert ex is not None
    await until(lambda: state(om, ex.client_order_id) is OrderState.FILLED)
    assert om.order(ex.client_order_id).filled_quantity == 1  # type: ignore[union-attr]


async def test_6a_netting_sell_entry_against_a_long_is_refused(
    sim: CapitalSimulator, om: OrderManager
) -> None:
    sim.manual_trade("GOLD", "BUY", 2)
    lo, hi = around(sim, "GOLD", "2")
    group = bracket("om-6a", "GOLD", Side.SELL, "1", hi, lo)
    with pytest.raises(InvalidOrder, match="netting"):
        await om.submit(group)
    assert posts(sim) == 0 and [(d, s) for _, d, s, _ in books(sim)] == [("BUY", 2)]
    assert all(state(om, i.client_order_id) in (None, OrderState.REJECTED) for i in group)
    assert om.position_of("om-6a") == 0  # Joe records no short


@pytest.mark.parametrize("hedging", [False, True])
async def test_6b_exit_closes_joes_deal_not_the_traders(
    sim: CapitalSimulator, om: OrderManager, hedging: bool
) -> None:
    sim.set_hedging(hedging)
    trader = sim.manual_trade("GOLD", "BUY", 1)["affectedDeals"][0]["dealId"]
    order = entry("om-6b", "GOLD", Side.BUY, "1")
    await om.submit([order])
    await until(lambda: state(om, order.client_order_id) is OrderState.FILLED)
    ex = await om.exit("om-6b")
    assert ex is not None
    await until(lambda: state(om, ex.client_order_id) is OrderState.FILLED)
    assert [d for d, *_ in books(sim)] == [trader]


async def test_6c_reconciling_a_503_never_adopts_the_traders_deal(
    sim: CapitalSimulator, om: OrderManager
) -> None:
    sim.faults.arm("http_5xx", 1, path="/positions", method="POST", status=503, code="error.service")
    order = entry("om-6c", "GOLD", Side.BUY, "1")
    trader = sim.manual_trade("GOLD", "BUY", 1)["affectedDeals"][0]["dealId"]
    with pytest.raises(OrderOutcomeUnknown):
        await om.submit([order])
    await om.reconcile()
    o = om.order(order.client_order_id)
    assert o is not None and o.state is not OrderState.FILLED and o.filled_quantity == 0
    assert o.broker_order_id != trader
    assert [d for d, *_ in books(sim)] == [trader]


async def test_presend_check_is_one_get_of_the_confirm(sim: CapitalSimulator, om: OrderManager) -> None:
    """Before the first send the OrderManager asks one targeted question — GET /confirms/{ref} — and
    the adapter does not repeat it (issue 9's cost point)."""
    order = entry("om-presend", "GOLD", Side.BUY, "1")
    start = len(sim.requests)
    await om.submit([order])
    sent = sim.requests[start:]
    post = next(i for i, r in enumerate(sent) if r.method == "POST" and r.path == "/positions")
    before = [r.path for r in sent[:post] if r.method == "GET"]
    assert sum(1 for p in before if p.startswith("/confirms/")) == 1
    assert not any(p.startswith("/history") for p in before)
    # One list of working orders: the netting check (an opposite working order would close the new
    # position, r9 finding 4), not a search for the id.
    assert before.count("/workingorders") == 1
    assert posts(sim) == 1
