"""`IBKRExecutionClient.mass_status(since)`: executions since a checkpoint, inclusive at its second.

Joe asks TWS for every execution (`reqExecutions` with an empty filter) and keeps those at or after
`since`. TWS stamps an execution in whole seconds (`yyyyMMdd HH:mm:ss`), while a checkpoint (an
order's creation, a broker read time less an overlap) may carry a fraction: an execution in the
checkpoint's own second was stamped *before* it and was dropped. The cutoff is floored to the second."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from joe.core.reports import VenueOrderStatus
from joe.simulators.common import SimClock
from joe.simulators.ibkr import IBKRSimulator

from .helpers import running_sim, single, wait_for

# A Monday in the NYSE session, a quarter of a second into the minute.
T = datetime(2026, 1, 5, 15, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
async def frozen() -> AsyncIterator[IBKRSimulator]:
    """The TWS simulator with its clock standing at `T` (every execution stamped in T's second)."""
    async with running_sim(SimClock.frozen(T)) as s:
        yield s


async def test_an_execution_in_the_checkpoints_own_second_is_since_it(
    frozen: IBKRSimulator, make_client: Any
) -> None:
    frozen.set_price("AAPL", 100)
    # Joe's clock agrees with TWS's here: with TWS behind, a `since` is taken as possibly on Joe's clock
    # and the window starts earlier by the difference (the next test).
    client = await make_client(frozen, clock=lambda: T)
    it = single("since-1")
    await client.submit([it])
    rec = client.recorder
    await wait_for(lambda: rec.state(it.client_order_id) is VenueOrderStatus.FILLED, what="fill")
    [f] = [x.fill for x in (await client.mass_status()).fills]
    assert f.ts == T.replace(microsecond=0)  # stamped in whole seconds: before T
    for since in (T, T.replace(microsecond=999_999), T.replace(microsecond=0)):
        ms = await client.mass_status(since)
        assert [x.fill.fill_id for x in ms.fills] == [f.fill_id], since
    assert (await client.mass_status(T + timedelta(seconds=1))).fills == []  # the next second: after it


@pytest.mark.parametrize("host_ahead_s", [3 * 3600, 90, -3 * 3600])
async def test_since_on_joes_clock_finds_an_execution_with_tws_behind_or_ahead(
    frozen: IBKRSimulator, make_client: Any, host_ahead_s: int
) -> None:
    """An order's creation on Joe's clock is a `since` with `joes_clock` (the `OrderManager` passes one):
    with TWS's clock behind Joe's by more than every slack (3 h, and 90 s: past `EXEC_TIME_SLACK`), the
    execution it made is still in the window; with TWS ahead the window was wide enough already. Before:
    with TWS behind, the fill of an order sent while Joe was down was never read again."""
    host = T + timedelta(seconds=host_ahead_s)
    frozen.set_price("AAPL", 100)
    client = await make_client(frozen, clock=lambda: host)
    it = single("since-skew")
    created = host  # the order's creation, as Joe's clock read it
    await client.submit([it])
    rec = client.recorder
    await wait_for(lambda: rec.state(it.client_order_id) is VenueOrderStatus.FILLED, what="fill")
    ms = await client.mass_status(created, joes_clock=True)
    assert [x.fill.client_order_id for x in ms.fills] == [it.client_order_id]
    # A `since` on TWS's own clock (a checkpoint) is not moved: the second after the fill holds none.
    assert (await client.mass_status(T + timedelta(seconds=1))).fills == []
    assert ms.ts == T.replace(microsecond=0)  # the read is stamped on TWS's clock, not Joe's
