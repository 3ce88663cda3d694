"""The owner sells part of Joe's IBKR position in TWS while TWS's clock is off this host's.

Joe books such a sale as an *outside change* of its position (joe.execution.outside) only when it came
after Joe's entry. The entry's time must be compared as TWS stamped it: with Joe's clock ahead of TWS's
by more than a second, the sale looked older than the entry, was recorded as external, and Joe kept its
full position and stop; the stop then sold 100 of the 60 left - the account ended short 40 (review of
db9e45d, finding 1). The simulator's books are the truth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, MarketOrder, Stock

from joe.execution.reconciler import Reconciler
from joe.simulators.common import SimClock
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import running_sim, wait_for
from .truth import filled_bracket


@pytest.fixture(
    params=[0, -90, -3 * 3600, 3 * 3600], ids=["level", "tws90s-behind", "tws3h-behind", "tws3h-ahead"]
)
async def skewed(request: pytest.FixtureRequest) -> AsyncIterator[IBKRSimulator]:
    """TWS on a clock `param` seconds off this host's."""
    start = datetime.now(UTC) + timedelta(seconds=request.param)
    async with running_sim(SimClock(start)) as s:
        yield s


def _held(sim: IBKRSimulator) -> Decimal:
    pos = sim.book.positions.get("AAPL")
    return Decimal(pos.qty) if pos else Decimal(0)


async def _owner_sells(sim: IBKRSimulator, qty: int) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=0, timeout=3)
    try:
        before = _held(sim)
        ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("SELL", qty))
        await wait_for(lambda: _held(sim) == before - qty, what="the owner's sale")
    finally:
        ib.disconnect()


async def test_owners_sale_is_an_outside_change_and_the_stop_sells_only_the_rest(
    skewed: IBKRSimulator, make_om: Any, store: Store
) -> None:
    sim = skewed
    om, _ = await filled_bracket(sim, make_om, store, "skew-part")
    await _owner_sells(sim, 40)
    report = await Reconciler(om).reconcile()
    assert report.explained, report.summary()
    outside = [i.quantity for i in store.reconcile_items("ibkr", "live", "outside_change")]
    assert outside == [Decimal(-40)], report.summary()
    assert store.reconcile_items("ibkr", "live", "external_position") == []
    assert om.position_of("skew-part") == 60 == _held(sim)
    sim.set_price("AAPL", 90)  # through the stop: it must sell the 60 left, not 100
    await wait_for(lambda: _held(sim) == 0 or _held(sim) < 0, what="the stop's fill")
    assert _held(sim) == 0  # flat, not short
