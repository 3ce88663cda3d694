"""Capital.com's activity history is one day deep (`lastPeriod` <= 86400 s, spec §4.5). An attached
stop/target's fate was read from the entry's *opening* row in that window: a stop that fired more
than a day after the entry left Joe's target ACCEPTED with "the broker has no such order", an
UNRESOLVED alert that halted trading (CI at 00:06 UTC: the opening was 39 h before the stop). The
entry's deal is known from Joe's store (the dealId at acknowledgement); the simulator's books are
the truth: the deal is gone, the stop filled it, the target went with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from capital.test_truth_om import state, until
from capital.truth_helpers import adapter, around, books, bracket
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
