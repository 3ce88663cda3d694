"""An exit waiting for the broker to confirm the cancels of its protective orders stops when it is
cancelled, even when the cancellation races the event it waits for (3.11's `asyncio.wait_for`
swallows that cancellation, gh-86296; `exits.await_terminal` uses `asyncio.timeout`)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from execution.fake_venue import FakeVenue
from execution.test_order_manager import placed_bracket
from joe.brokers.base import BrokerOrderRef
from joe.store import open_store


async def test_cancelled_exit_stops_even_when_the_cancel_races_the_event(tmp_path: Path) -> None:
    store = open_store(data_dir=tmp_path)
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store, confirm_timeout=30.0)
    venue.execute(ids[0], Decimal(100))
    await venue.deliver(om)

    async def never_confirmed(order: BrokerOrderRef) -> None:
        return None  # the broker does not answer the cancel: the exit waits

    venue.cancel = never_confirmed  # type: ignore[method-assign]
    signal = om.order(ids[0]).intent.signal_id  # type: ignore[union-attr]
    task = asyncio.create_task(om.exit(signal))
    for _ in range(50):  # let it reach the wait
        await asyncio.sleep(0)
    assert not task.done()
    om.changed.set()  # the awaited event and the cancellation land in the same loop iteration
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)  # bounded: the old code kept waiting for 30 s
    await om.stop()  # its background tasks end before the store closes
    store.close()
