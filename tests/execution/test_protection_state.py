"""Protection is a state per signal: raised (`UnprotectedPosition`) and cleared (`ProtectionRestored`).

Against the fake venue; the IBKR end-to-end case (an OCA partial target fill) is in
tests/ibkr/test_order_truth_protection.py."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from execution.fake_venue import FakeVenue
from execution.test_order_manager import placed_bracket, state
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.store import Store, open_store

D = Decimal


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(data_dir=tmp_path)
    yield s
    s.close()


def replacement_stop(qty: str = "100") -> OrderIntent:
    return OrderIntent(
        client_order_id("sig-1", "stop-replace-1"), "sig-1", OrderLeg.STOP_LOSS, "AAPL", Side.SELL, D(qty),
        OrderType.STOP, stop_price=D("95.00"), reduce_only=True,
    )  # fmt: skip


async def test_raised_when_the_stop_is_cancelled_cleared_when_a_stop_covers_again(store: Store) -> None:
    venue = FakeVenue()
    raised: list[Any] = []
    cleared: list[Any] = []
    om, (entry, stop, _) = await placed_bracket(
        venue, store, on_unprotected=raised.append, on_restored=cleared.append
    )
    venue.execute(entry, D(100))
    await venue.deliver(om)
    venue.venue_cancel(stop)
    await venue.deliver(om)
    assert [(e.position, e.protected) for e in raised] == [(100, 0)]
    assert set(om.unprotected_now) == {"sig-1"}
    await om.submit([replacement_stop()])  # what the safety layer does: a new stop
    await venue.deliver(om)
    assert om.unprotected_now == {}
    assert [(e.signal_id, e.position, e.protected) for e in cleared] == [("sig-1", 100, 100)]
    assert len(raised) == 1  # nothing raised again


async def test_cleared_when_the_position_is_closed(store: Store) -> None:
    venue = FakeVenue()
    cleared: list[Any] = []
    om, (entry, stop, target) = await placed_bracket(venue, store, on_restored=cleared.append)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    venue.venue_cancel(stop)
    await venue.deliver(om)
    assert set(om.unprotected_now) == {"sig-1"}
    venue.execute(target, D(100))  # the target closes the position
    await venue.deliver(om)
    assert om.unprotected_now == {} and [c.reason for c in cleared] == ["position closed"]
    assert state(store, target).state is OrderState.FILLED


async def test_oca_partial_target_fill_is_not_reported_unprotected(store: Store) -> None:
    """A partial target fill arrives before the broker's report of the stop it reduced (OCA): the
    over-cover is asked about, not reported."""
    venue = FakeVenue()
    om, (entry, stop, target) = await placed_bracket(venue, store)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    venue.execute(target, D(30))
    venue.orders[stop].quantity = D(70)  # the broker reduced the stop (OCA); its report comes later
    fills = [o for o in venue.outbox if not hasattr(o, "status")]
    venue.outbox[:] = fills  # the stop's status report has not arrived yet
    await venue.deliver(om)
    assert om.unprotected == [] and om.unprotected_now == {}
    assert state(store, stop).quantity == 70 and om.position_of("sig-1") == 70
