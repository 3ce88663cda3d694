"""Exits when the owner closed part of Joe's position elsewhere (review r9 finding 5, the Capital case
of finding 1): at the end of `OrderManager.exit` Joe's state equals the broker's — position, legs —
with no later reconciliation needed and no phantom `UnprotectedPosition`. Netting account."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from capital.conftest import *  # noqa: F403  (sim, client, audit)
from capital.test_truth_om import manager, state, until
from capital.truth_helpers import adapter, around, books, bracket
from joe.brokers.capital import CapitalClient
from joe.core.models import Side
from joe.core.order import OrderState
from joe.simulators.capital import CapitalSimulator
from joe.store import Store


@pytest.mark.parametrize(("owner", "part"), [(1, "2"), (1, None), (2, "2"), (1, "1")])
async def test_exit_after_owner_closed_part_joe_equals_broker(
    sim: CapitalSimulator, client: CapitalClient, store: Store, owner: int, part: str | None
) -> None:
    om = await manager(adapter(client), store)
    try:
        await _exit_after_owner(sim, om, owner, part)
    finally:
        await om.stop()


async def _exit_after_owner(sim: CapitalSimulator, om: Any, owner: int, part: str | None) -> None:
    sig = f"xb-cap-{owner}-{part}"
    stop, target = around(sim, "GOLD", "2")
    group = bracket(sig, "GOLD", Side.BUY, "3", stop, target)
    await om.submit(group)
    await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
    sim.manual_trade("GOLD", "SELL", owner)  # the owner closes part of the position on the platform
    ex = await om.exit(sig, quantity=Decimal(part) if part else None)
    assert ex is not None
    await until(lambda: state(om, ex.client_order_id) is OrderState.FILLED)
    await asyncio.sleep(0.2)  # room for anything wrong still queued to show
    held = sum((s for _, _, s, _ in books(sim, "GOLD")), Decimal(0))
    assert held == 3 - owner - min(Decimal(part or 3), 3 - owner)
    await until(lambda: om.position_of(sig) == held)  # applied (not "within 0.2 s"), no reconciliation
    assert om.position_of(sig) == held  # Joe == broker, without a reconciliation
    for i in group[1:]:
        o = om.order(i.client_order_id)
        assert o is not None
        if held == 0:
            assert o.state.is_terminal, (i.leg, o.state)
        else:
            assert o.state is OrderState.ACCEPTED and o.remaining <= held, (i.leg, o.state, o.remaining)
    assert om.unprotected_now == {}
