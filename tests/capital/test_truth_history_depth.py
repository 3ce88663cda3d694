"""Capital.com's activity history is one day deep (`lastPeriod` <= 86400 s, spec §4.5). An attached
stop/target's fate was read from the entry's *opening* row in that window: a stop that fired more
than a day after the entry left Joe's target ACCEPTED with "the broker has no such order", an
UNRESOLVED alert that halted trading (CI at 00:06 UTC: the opening was 39 h before the stop). The
entry's deal is known from Joe's store (the dealId at acknowledgement); the simulator's books are
the truth: the deal is gone, the stop filled it, the target went with it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from capital.conftest import make_client
from capital.test_truth_in_doubt import _posted
from capital.test_truth_om import state, until
from capital.truth_helpers import adapter, around, books, bracket, entry, exit_intent, posts
from joe.brokers.capital import CapitalClient
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core.events import NullAudit
from joe.core.models import Side
from joe.core.order import OrderState
from joe.execution.events import AlertKind
from joe.execution.order_manager import OrderManager
from joe.simulators.capital import CapitalSimulator
from joe.store import Store


async def manager(xc: CapitalExecutionClient, store: Store, sim: CapitalSimulator) -> OrderManager:
    """An OrderManager on the simulator's clock (Joe's clock and the broker's agree, as in a run)."""
    om = OrderManager(xc, store, NullAudit(), confirm_timeout=2.0, clock=sim.clock)
    await om.start()
    return om


async def _next_run(sim: CapitalSimulator, store: Store) -> tuple[CapitalClient, OrderManager]:
    """The next run's process: a fresh client and a started OrderManager on the same store, on the
    simulator's clock, asking about in-doubt orders for 1 s (a short window, for the test)."""
    client = make_client(sim)
    await client.open()
    om = OrderManager(adapter(client), store, NullAudit(), confirm_timeout=2.0, clock=sim.clock,
                      in_doubt_window=1.0, in_doubt_interval=0.1)  # fmt: skip
    await om.start()
    return client, om


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
@pytest.mark.parametrize("days_later", [0.5, 1.6, 4.0])
async def test_a_stop_firing_days_after_the_entry_settles_both_legs_after_a_restart(
    sim: CapitalSimulator, client: CapitalClient, store: Store, days_later: float
) -> None:
    stop, target = around(sim, "GOLD", "2")
    group = bracket("deep-a", "GOLD", Side.BUY, "1", stop, target)
    entry_id, stop_id, target_id = (i.client_order_id for i in group)
    om = await manager(adapter(client), store, sim)
    try:
        await om.submit(group)
        await until(lambda: state(om, stop_id) is state(om, target_id) is OrderState.ACCEPTED)
    finally:
        await om.stop()  # the process ends with the bracket resting at the broker

    sim.clock.advance(days_later * 86400)
    sim.set_mid("GOLD", float(stop * Decimal("0.99")))  # through the stop: the broker closes the deal
    assert books(sim) == []  # the truth: nothing held, no leg left

    again = await manager(adapter(client), store, sim)  # the next run: a fresh adapter, the same store
    try:
        await until(lambda: state(again, target_id) is OrderState.CANCELLED)
        await until(lambda: state(again, stop_id) is OrderState.FILLED)
        assert state(again, entry_id) is OrderState.FILLED
        assert [a for a in again.alerts if a.kind is AlertKind.UNRESOLVED] == []
        assert again.unprotected == []
    finally:
        await again.stop()


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
@pytest.mark.parametrize("days_later", [0.75, 2.5])
async def test_an_entry_killed_mid_post_whose_stop_fired_days_ago_settles_both_legs(
    sim: CapitalSimulator, store: Store, days_later: float
) -> None:
    """Review r10days #3: the process dies with the bracket's POST on the wire (no dealId stored:
    no acknowledgement), the broker opens the deal, its stop fires 7 h later, and the next run comes
    `days_later` after that (the next day's run; a Friday kill and a Monday run): the opening row has
    left the day-deep history. Before: the stop was booked from the fills since the checkpoint but the
    target had no deal to ask about — UNKNOWN, UNRESOLVED, entries on GOLD refused. Now the deal comes
    from the fills' opening row (and else the entry's confirm); the simulator is the truth."""
    stop, target = around(sim, "GOLD", "2")
    group = bracket("deep-k", "GOLD", Side.BUY, "1", stop, target)
    entry_id, stop_id, target_id = (i.client_order_id for i in group)
    c1 = make_client(sim)
    await c1.open()
    om1 = await manager(adapter(c1), store, sim)
    sim.faults.arm("latency", 1, path="/positions", method="POST", seconds=0.5)
    t = asyncio.create_task(om1.submit(group))
    await _posted(sim)
    t.cancel()  # the process dies here
    await asyncio.gather(t, return_exceptions=True)
    await om1.stop()
    await until(lambda: len(books(sim)) == 1)  # the broker executed the POST late
    sim.clock.advance(0.3 * 86400)
    sim.set_mid("GOLD", float(stop * Decimal("0.99")))  # through the stop: the broker closes the deal
    assert books(sim) == []
    sim.clock.advance(days_later * 86400)

    c2, again = await _next_run(sim, store)
    try:
        await until(lambda: state(again, target_id) not in (OrderState.ACCEPTED, None))
        assert state(again, entry_id) is OrderState.FILLED
        assert state(again, stop_id) is OrderState.FILLED
        assert state(again, target_id) is OrderState.CANCELLED
        fills = store.fills(stop_id)  # booked once, at the broker's price through the stop
        assert len(fills) == 1 and fills[0].quantity == 1 and fills[0].price < stop, fills
        assert [a for a in again.alerts if a.kind is AlertKind.UNRESOLVED] == []
        assert posts(sim) == 1  # asked for, never resent
    finally:
        await again.stop()
        await c2.close()
        await c1.close()


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
@pytest.mark.parametrize("days_later", [0.2, 1.5, 3.5])
async def test_an_exit_killed_mid_delete_is_filled_when_the_next_run_comes_days_later(
    sim: CapitalSimulator, store: Store, days_later: float
) -> None:
    """Review r10days #5: the process dies with an exit's DELETE on the wire; the broker closes the deal;
    the next run comes `days_later` after (the next day; after a weekend). Before: past one day the close
    row had left the day-deep `lastPeriod` history, so the exit was CANCELLED with nothing filled and Joe
    still held the long the broker had closed. Now a gone deal's close is looked for over a week of
    one-day windows: the exit is FILLED, once, and no second DELETE is sent."""
    c1 = make_client(sim)
    await c1.open()
    om1 = await manager(adapter(c1), store, sim)
    e = entry("deep-x", "GOLD", Side.BUY, "1")
    await om1.submit([e])
    await until(lambda: state(om1, e.client_order_id) is OrderState.FILLED)
    x = exit_intent("deep-x", "GOLD", Side.SELL, "1")
    sim.faults.arm("latency", 1, path="/positions/", method="DELETE", seconds=0.5)
    t = asyncio.create_task(om1.submit([x]))
    await until(lambda: any(r.method == "DELETE" for r in sim.requests))
    t.cancel()  # the process dies here
    await asyncio.gather(t, return_exceptions=True)
    await om1.stop()
    await until(lambda: books(sim) == [])  # the broker closed the deal late
    sim.clock.advance(days_later * 86400)

    c2, again = await _next_run(sim, store)
    try:
        await until(lambda: state(again, x.client_order_id) not in (OrderState.SUBMITTING, None))
        o = again.order(x.client_order_id)
        assert o is not None and o.state is OrderState.FILLED and o.filled_quantity == 1, o
        assert sum(f.quantity for f in store.fills(x.client_order_id)) == 1
        assert sum(1 for r in sim.requests if r.method == "DELETE") == 1  # asked for, never resent
        assert [a for a in again.alerts if a.kind is AlertKind.UNRESOLVED] == []
    finally:
        await again.stop()
        await c2.close()
        await c1.close()
