"""Joe closes its deal by dealId while the owner closes part of it on the platform (issue 9, the race
of an exit with the owner, netting account): the owner's partial close lands between Joe's read of
the deal and its DELETE. The DELETE closes what is left (1 of 2); the exit must read 1 of 1 — the
broker's confirm, not the size read before — and the owner's close is an outside change of the
signal, never a second fill of the exit (which would count 2 closed of a deal of 2 plus the owner's
1: a short position that exists nowhere). The simulator's books are the truth.

The two closes often land in one millisecond (the DELETE follows the owner's trade at once): two
rows with one key, once booked as one fill (about 1 run in 7, `position_mismatch GOLD broker 0 Joe
1`); each is now a row of its own (`joe.brokers.capital.rows`; made deterministic, with the clock
frozen, in `test_truth_same_instant.py`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from capital.conftest import *  # noqa: F403  (sim, client, audit)
from capital.test_truth_om import manager, state, until
from capital.truth_helpers import adapter, around, books, bracket, held, outside_changes
from joe.brokers.capital import CapitalClient
from joe.core.models import Side
from joe.core.order import OrderState
from joe.execution.events import AlertKind
from joe.execution.reconciler import Reconciler
from joe.simulators.capital import CapitalSimulator
from joe.store import Store


async def test_the_owners_partial_close_racing_joes_close_is_not_the_exits_fill(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    xc = adapter(client)
    om = await manager(xc, store)
    try:
        sig = "race-close"
        stop, target = around(sim, "GOLD", "2")
        group = bracket(sig, "GOLD", Side.BUY, "2", stop, target)
        await om.submit(group)
        await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
        close = xc.trading.close_position

        async def owner_first(deal_id: str) -> Any:
            sim.manual_trade("GOLD", "SELL", 1)  # netting: reduces Joe's deal to 1, just before the DELETE
            return await close(deal_id)

        xc.trading.close_position = owner_first  # type: ignore[method-assign]
        ex = await om.exit(sig)
        assert ex is not None
        await until(lambda: state(om, ex.client_order_id) is OrderState.FILLED)
        assert held(sim) == 0 and books(sim, "GOLD") == []
        o = om.order(ex.client_order_id)
        assert o is not None and (o.quantity, o.filled_quantity) == (1, 1)  # never "2 filled of 1"
        report = await Reconciler(om).reconcile()
        assert report.explained, report.summary()
        assert outside_changes(store) == [(sig, Decimal(-1))]  # the owner's close, booked once
        o = om.order(ex.client_order_id)
        assert o is not None and o.filled_quantity == 1
        assert om.position_of(sig) == 0 == held(sim)
        kinds = [a.kind for a in om.alerts]
        assert AlertKind.OWNER_TRADE in kinds and AlertKind.OVERFILL not in kinds
    finally:
        await om.stop()
