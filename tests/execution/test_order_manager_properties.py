"""Property test: random interleavings of broker observations for one bracket.

Venue actions (partial fills of every leg, execution corrections, venue-side cancels, Joe's cancels,
refused cancels) produce observations; the test delivers them in a random order (a status report
never overtakes an earlier status report of the same order — the stream is ordered per order),
duplicates some, and loses some (a disconnect), with reconciliations at random points. At the end
(everything delivered, one reconciliation) Joe's orders, fills, commissions and position equal the
venue's, no fill is counted twice or lost, and no order id was sent twice.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.fake_venue import FakeVenue
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import ZERO, OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.core.reports import Observation, OrderStatusReport, VenueOrderStatus
from joe.execution.order_manager import OrderManager
from joe.store import open_store

S = OrderState
V = VenueOrderStatus
LEGS = ("entry", "stop", "target")

action = st.one_of(
    st.tuples(st.just("fill"), st.sampled_from(LEGS), st.integers(1, 40)),
    st.tuples(st.just("correct"), st.integers(0, 9), st.integers(1, 40)),
    st.tuples(st.just("venue_cancel"), st.sampled_from(LEGS), st.just(0)),
    st.tuples(st.just("joe_cancel"), st.sampled_from(LEGS), st.just(0)),
    st.tuples(st.just("refuse_cancels"), st.booleans(), st.just(0)),
    st.tuples(st.just("deliver"), st.integers(0, 50), st.integers(1, 4)),
    st.tuples(st.just("duplicate"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("lose"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("reconcile"), st.just(0), st.just(0)),
)


def _bracket(qty: int) -> list[OrderIntent]:
    q = Decimal(qty)
    sig = "p-1"
    return [
        OrderIntent(
            client_order_id(sig, "entry"),
            sig,
            OrderLeg.ENTRY,
            "AAPL",
            Side.BUY,
            q,
            OrderType.LIMIT,
            limit_price=Decimal(100),
        ),
        OrderIntent(
            client_order_id(sig, "stop"),
            sig,
            OrderLeg.STOP_LOSS,
            "AAPL",
            Side.SELL,
            q,
            OrderType.STOP,
            stop_price=Decimal(95),
            reduce_only=True,
        ),
        OrderIntent(
            client_order_id(sig, "target"),
            sig,
            OrderLeg.TAKE_PROFIT,
            "AAPL",
            Side.SELL,
            q,
            OrderType.LIMIT,
            limit_price=Decimal(110),
            reduce_only=True,
        ),
    ]


def _deliverable(pending: list[Observation]) -> list[int]:
    """Indices that may go next: anything but a status report behind another of the same order."""
    seen: set[str] = set()
    ok = []
    for n, o in enumerate(pending):
        if isinstance(o, OrderStatusReport):
            if o.client_order_id in seen:
                continue
            seen.add(o.client_order_id)
        ok.append(n)
    return ok


async def _run(qty: int, resize: bool, steps: list[tuple[str, Any, Any]], order_seed: int) -> None:
    venue = FakeVenue(resize_children=resize)
    store = open_store("sqlite://")
    om = OrderManager(venue, store, NullAudit(), confirm_timeout=0.0)
    await om.start(consume=False)
    intents = _bracket(qty)
    ids = dict(zip(LEGS, (i.client_order_id for i in intents), strict=True))
    await om.submit(intents)
    pending: list[Observation] = []
    delivered: list[Observation] = []

    def collect() -> None:
        pending.extend(venue.outbox)
        venue.outbox.clear()

    async def give(idx: int) -> None:
        obs = pending.pop(idx)
        delivered.append(obs)
        await om.process(obs)
        collect()

    collect()
    for kind, a, b in steps:
        if kind == "fill":
            venue.execute(ids[a], Decimal(b))
        elif kind == "correct" and venue.executions:
            keys = sorted(venue.executions)
            venue.correct(keys[a % len(keys)], Decimal(b))
        elif kind == "venue_cancel":
            venue.venue_cancel(ids[a])
        elif kind == "joe_cancel":
            await om.cancel(ids[a])
        elif kind == "refuse_cancels":
            venue.refuse_cancel = a
        elif kind == "deliver":
            for _ in range(b):
                ok = _deliverable(pending)
                if ok:
                    await give(ok[a % len(ok)])
        elif kind == "duplicate" and delivered:
            await om.process(delivered[a % len(delivered)])
            collect()
        elif kind == "lose" and pending:
            pending.pop(a % len(pending))
        elif kind == "reconcile":
            await om.reconcile()
        collect()
    n = order_seed
    while pending:
        ok = _deliverable(pending)
        await give(ok[n % len(ok)])
        n = n * 31 + 7
    venue.refuse_cancel = False
    await om.reconcile()
    collect()
    while pending:
        await give(0)

    # Joe's orders, fills and position equal the venue's.
    assert len(venue.sent) == len(set(venue.sent)) == 3, "an order id was sent twice"
    joe_net = ZERO
    for leg, coid in ids.items():
        v = venue.orders[coid]
        o = store.load_order(coid)
        assert o is not None
        venue_fills = {k: fr for k, (fr, _) in venue.executions.items() if fr.fill.client_order_id == coid}
        assert set(o.fills) == set(venue_fills), leg
        for k, fr in venue_fills.items():
            assert o.fills[k].quantity == fr.fill.quantity, (leg, k)
            assert o.fills[k].commission == venue.executions[k][1], (leg, k)
        assert o.filled_quantity == v.filled == sum((f.quantity for f in o.fills.values()), ZERO), leg
        assert o.quantity == v.quantity or v.status is not V.WORKING, leg
        expect = {
            V.FILLED: {S.FILLED},
            V.CANCELLED: {S.CANCELLED},
            V.WORKING: {S.PARTIALLY_FILLED} if v.filled else {S.ACCEPTED},
        }[v.status]
        assert o.state in expect, (leg, v.status, o.state, v.filled)
        joe_net += o.filled_quantity * o.intent.side.sign
        stored = {f.fill_id: f.quantity for f in store.fills(coid)}
        assert stored == {k: fr.fill.quantity for k, fr in venue_fills.items()}, leg
    assert joe_net == venue.net.get("AAPL", ZERO)
    await om.stop()  # its leg trims end before the store closes (they read it)
    store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 60),
    st.booleans(),
    st.lists(action, max_size=30),
    st.integers(0, 10**6),
)
def test_random_interleavings_converge_to_the_venue(
    qty: int, resize: bool, steps: list[tuple[str, Any, Any]], order_seed: int
) -> None:
    asyncio.run(_run(qty, resize, steps, order_seed))
