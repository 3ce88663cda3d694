"""Capital.com netting accounts and working orders (r9 finding 4). On a netting account a deal nets
against the opposite position (spec §5.1): a resting SELL limit entry of one signal, filled after
another signal's BUY opened a long, closed that long instead of opening its own short. The broker was
flat while Joe kept the long (its legs gone, reported unprotected) and the SELL entry still working.
An entry is now refused while an opposite working order rests on the epic (nothing sent); on a hedging
account both stand. The simulator's books are the truth."""

from __future__ import annotations

from decimal import Decimal

import pytest

from capital.test_truth_om import manager
from capital.truth_helpers import adapter, books, bracket, mid, posts, tick
from joe.brokers.base import InvalidOrder
from joe.brokers.capital import CapitalClient
from joe.core.models import OrderIntent, OrderType, Side
from joe.core.order import OrderState
from joe.simulators.capital import CapitalSimulator
from joe.store import Store


def _groups(sim: CapitalSimulator) -> tuple[list[OrderIntent], list[OrderIntent]]:
    m = mid(sim, "GOLD")
    up = tick(m * Decimal("1.01"))
    short = bracket(
        "net-b", "GOLD", Side.SELL, "1", tick(m * Decimal("1.05")), tick(m * Decimal("0.95")),
        order_type=OrderType.LIMIT, limit_price=up,
    )  # fmt: skip
    long = bracket("net-a", "GOLD", Side.BUY, "1", tick(m * Decimal("0.95")), tick(m * Decimal("1.05")))
    return short, long


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
async def test_an_entry_against_an_opposite_working_order_is_refused_on_netting(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    om = await manager(adapter(client), store)
    try:
        short, long = _groups(sim)
        await om.submit(short)
        assert len(sim.account().orders) == 1  # the SELL limit rests
        sent = posts(sim)
        with pytest.raises(InvalidOrder, match="working SELL order"):
            await om.submit(long)
        assert posts(sim) == sent and books(sim) == []  # nothing sent for the BUY
        entry = om.order(long[0].client_order_id)
        assert entry is not None and entry.state is OrderState.REJECTED
        level = short[0].limit_price
        assert level is not None
        sim.set_mid("GOLD", float(level * Decimal("1.001")))  # the SELL limit fills: a short of its own
        [(_, direction, size, ref)] = books(sim)
        assert (direction, size, ref) == ("SELL", 1, short[0].client_order_id)
    finally:
        await om.stop()


@pytest.mark.parametrize("sim", ["frozen"], indirect=True)
async def test_a_hedging_account_keeps_both(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    sim.set_hedging(True)
    om = await manager(adapter(client), store)
    try:
        short, long = _groups(sim)
        await om.submit(short)
        await om.submit(long)
        assert [(d, s) for _, d, s, _ in books(sim)] == [("BUY", 1)] and len(sim.account().orders) == 1
    finally:
        await om.stop()
