"""An order whose send may have happened is asked for, never resent (issue 9, review r9 finding 2).

The process dies (its task is cancelled and its connection closed) while POST /positions is on the
wire; the broker executes it late. A new OrderManager on the same store must find the deal by its
dealReference — asking again over its in-doubt window — and must never read "the broker could not
be asked" as "absent". The simulator's books are the truth.
"""

from __future__ import annotations

import asyncio

import pytest

from capital.conftest import make_client
from capital.truth_helpers import adapter, books, entry, posts
from joe.brokers.base import EntriesRefused, OrderOutcomeUnknown
from joe.brokers.capital import CapitalClient
from joe.core.events import NullAudit
from joe.core.models import Side
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.simulators.capital import CapitalSimulator
from joe.store import Store


async def _posted(sim: CapitalSimulator) -> None:
    """Until the POST is at the broker (on the wire, not answered)."""
    for _ in range(500):
        if posts(sim):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the POST never reached the simulator")


async def _die_while_posting(
    sim: CapitalSimulator, store: Store, signal: str, latency: float
) -> tuple[str, CapitalClient]:
    """Process 1 submits an entry and dies with its POST on the wire (answered `latency` s late).
    Its client is returned unclosed: a dead process does not log out (closing it is the test's
    cleanup, at the end)."""
    c1 = make_client(sim)
    await c1.open()
    om1 = OrderManager(adapter(c1), store, NullAudit(), confirm_timeout=2.0)
    await om1.start()
    sim.faults.arm("latency", 1, path="/positions", method="POST", seconds=latency)
    order = entry(signal, "GOLD", Side.BUY, "1")
    t = asyncio.create_task(om1.submit([order]))
    await _posted(sim)
    t.cancel()  # the process dies here
    await asyncio.gather(t, return_exceptions=True)
    await om1.stop()
    left = store.load_order(order.client_order_id)
    assert left is not None and left.state is OrderState.SUBMITTING  # the send may have happened
    return order.client_order_id, c1


async def _restart(sim: CapitalSimulator, store: Store, window: float) -> tuple[OrderManager, CapitalClient]:
    c2 = make_client(sim)
    await c2.open()
    om = OrderManager(adapter(c2), store, NullAudit(), confirm_timeout=2.0,
                      in_doubt_window=window, in_doubt_interval=0.1)  # fmt: skip
    await om.start()
    return om, c2


async def test_restart_while_post_in_flight_finds_the_deal_never_posts_again(
    sim: CapitalSimulator, store: Store
) -> None:
    cid, c1 = await _die_while_posting(sim, store, "doubt-a", latency=1.5)
    assert books(sim) == []  # not executed yet when the new process starts
    om, c2 = await _restart(sim, store, window=8.0)
    try:
        o = om.order(cid)
        assert o is not None and o.state is OrderState.FILLED and o.filled_quantity == 1
        await om.submit([entry("doubt-a", "GOLD", Side.BUY, "1")])  # the same intent again: adopted
        assert posts(sim) == 1
        assert [(d, s, r) for _, d, s, r in books(sim)] == [("BUY", 1, cid)]
    finally:
        await om.stop()
        await c2.close()
        await c1.close()


async def test_broker_unreadable_is_not_absent_the_order_stays_unknown(
    sim: CapitalSimulator, store: Store
) -> None:
    """While the broker cannot be asked (503 on GET /confirms) the in-doubt order stays UNKNOWN, new
    entries on its instrument are refused, nothing is resent; once the broker answers, the next
    reconciliation adopts the deal."""
    cid, c1 = await _die_while_posting(sim, store, "doubt-b", latency=2.0)
    sim.faults.arm("http_5xx", -1, path="/confirms", method="GET", status=503)
    om, c2 = await _restart(sim, store, window=0.5)
    try:
        o = om.order(cid)
        assert o is not None and o.state is OrderState.UNKNOWN
        sim.faults.disarm("http_5xx")
        with pytest.raises(EntriesRefused, match="GOLD"):
            await om.submit([entry("doubt-other", "GOLD", Side.BUY, "1")])
        assert posts(sim) == 1
        for _ in range(400):  # the broker executes the dead process's POST (bounded: a hang is a failure)
            if books(sim):
                break
            await asyncio.sleep(0.05)
        assert books(sim), "the broker never executed the dead process's POST (20 s)"
        await om.reconcile()
        o = om.order(cid)
        assert o is not None and o.state is OrderState.FILLED and o.filled_quantity == 1
        assert posts(sim) == 1 and len(books(sim)) == 1
    finally:
        await om.stop()
        await c2.close()
        await c1.close()


async def test_never_arrived_stays_unknown_and_is_never_resent(sim: CapitalSimulator, store: Store) -> None:
    """The POST never reaches the broker (a 5xx the dead process never read): Joe cannot tell that from
    "not processed yet", so after its window the order is UNKNOWN and submitting it again raises
    `OrderOutcomeUnknown` without a second POST."""
    c1 = make_client(sim)
    await c1.open()
    om1 = OrderManager(adapter(c1), store, NullAudit(), confirm_timeout=2.0)
    await om1.start()
    sim.faults.arm("latency", 1, path="/positions", method="POST", seconds=0.8)
    sim.faults.arm("http_5xx", 1, path="/positions", method="POST", status=500)
    order = entry("doubt-c", "GOLD", Side.BUY, "1")
    t = asyncio.create_task(om1.submit([order]))
    await _posted(sim)
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)
    await om1.stop()
    await asyncio.sleep(0.7)
    om, c2 = await _restart(sim, store, window=0.5)
    try:
        assert om.order(order.client_order_id).state is OrderState.UNKNOWN  # type: ignore[union-attr]
        with pytest.raises(OrderOutcomeUnknown):
            await om.submit([order])
        assert posts(sim) == 1 and books(sim) == []
    finally:
        await om.stop()
        await c2.close()
        await c1.close()
