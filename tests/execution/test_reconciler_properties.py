"""Property test of the Reconciler: Joe is down at random times (observations lost), restarts at
random times (a new OrderManager and Reconciler on the same store), the owner trades on the side.
At the end every execution of Joe's orders is stored exactly once (applied once across passes and
restarts), Joe's fills equal the venue's, and every pass where nothing Joe cannot know happened is
explained (the owner's trades are external)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.fake_venue import FakeVenue, VOrder
from execution.test_order_manager import bracket
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import Reconciler
from joe.store import open_store

D = Decimal
LEGS = (0, 1, 2)  # entry, stop, target

action = st.one_of(
    st.tuples(st.just("fill"), st.sampled_from(LEGS), st.integers(1, 60)),
    st.tuples(st.just("deliver"), st.just(0), st.just(0)),
    st.tuples(st.just("lose"), st.just(0), st.just(0)),  # Joe was down: the stream is gone
    st.tuples(st.just("reconcile"), st.just(0), st.just(0)),
    st.tuples(st.just("restart"), st.just(0), st.just(0)),
    st.tuples(st.just("owner"), st.sampled_from(("AAPL", "MSFT")), st.integers(1, 9)),
)


def _owner_trade(venue: FakeVenue, symbol: str, qty: int) -> None:
    venue._n += 1
    i = OrderIntent(f"ext-{venue._n}", "", OrderLeg.ENTRY, symbol, Side.BUY, D(qty), OrderType.MARKET)
    venue.orders[i.client_order_id] = VOrder(i, f"X{venue._n}", None, D(qty))
    venue.execute(i.client_order_id, D(qty))


def _blank_external(venue: FakeVenue) -> None:
    """The broker reports the owner's orders and executions without a Joe id."""
    from dataclasses import replace

    real = venue.mass_status

    async def mass(since: Any = None, **kw: Any) -> Any:
        m = await real(since)
        m.orders[:] = [replace(r, client_order_id="") if r.client_order_id.startswith("ext-") else r
                       for r in m.orders]  # fmt: skip
        m.fills[:] = [
            replace(f, fill=replace(f.fill, client_order_id="")) if f.fill.client_order_id.startswith("ext-")
            else f for f in m.fills
        ]  # fmt: skip
        return m

    venue.mass_status = mass  # type: ignore[method-assign]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, max_size=25))
def test_every_fill_once_across_downtime_and_restarts(actions: list[tuple[str, Any, int]]) -> None:
    asyncio.run(_run(actions))


async def _run(actions: list[tuple[str, Any, int]]) -> None:
    store = open_store("sqlite://")
    venue = FakeVenue()
    _blank_external(venue)
    om = OrderManager(venue, store, NullAudit())
    rec = Reconciler(om)
    await rec.start()
    intents = bracket("rp")
    await om.submit(intents)
    ids = [i.client_order_id for i in intents]
    applied: list[str] = []
    for kind, a, b in actions:
        if kind == "fill":
            venue.execute(ids[a], D(b))
        elif kind == "deliver":
            await venue.deliver(om)
        elif kind == "lose":
            venue.outbox.clear()
        elif kind == "reconcile":
            r = await rec.reconcile()
            applied += r.applied_fills
            assert r.explained, r.summary()
        elif kind == "restart":
            venue.outbox.clear()  # what the dead process never saw
            om = OrderManager(venue, store, NullAudit())
            rec = Reconciler(om)
            r = await rec.start()
            applied += r.applied_fills
            assert r.explained, r.summary()
        elif kind == "owner":
            _owner_trade(venue, a, b)
    await venue.deliver(om)
    r = await rec.reconcile()
    applied += r.applied_fills
    assert r.explained, r.summary()
    assert len(applied) == len(set(applied))  # no pass applied a fill another had applied
    for coid in ids:
        v = venue.orders[coid]
        joe = store.load_order(coid)
        assert joe is not None and joe.filled_quantity == v.filled, coid
        mine = {k for k, (fr, _) in venue.executions.items() if fr.fill.client_order_id == coid}
        assert {f.fill_id for f in store.fills(coid)} == mine, coid
    ext = {i.symbol: i.quantity for i in store.reconcile_items("fake", "live", "external_position")}
    for sym in ("AAPL", "MSFT"):
        owner = sum((v.filled for v in venue.orders.values() if v.intent.client_order_id.startswith("ext-")
                     and v.intent.symbol == sym), D(0))  # fmt: skip
        assert ext.get(sym, D(0)) == owner, sym
    await om.stop()  # its background tasks end before the store closes
    store.close()
