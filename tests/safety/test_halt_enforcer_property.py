"""Property: whatever orders a broker's `OrderManager` holds, a HALTED pass asks to cancel exactly the
working entry orders (never a stop, target, exit or reduce-only order, never a terminal one), reports
the ones not yet cancellable as pending, and a failing cancel is reported, not raised."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from joe.core.models import OrderIntent, OrderLeg, Side
from joe.core.order import Order, OrderState
from joe.safety.halt_enforcer import cancel_working_entries


class FakeStore:
    def __init__(self, orders: list[Order]) -> None:
        self._orders = orders

    def orders(
        self, state: set[OrderState] | None = None, mode: str | None = None, broker: str | None = None
    ) -> list[Order]:
        return [o for o in self._orders if state is None or o.state in state]


class FakeOwner:
    broker, mode = "ibkr", "live"

    def __init__(self, orders: list[Order], refuse: set[str]) -> None:
        self.store: Any = FakeStore(orders)
        self._by_id = {o.client_order_id: o for o in orders}
        self.refuse = refuse
        self.asked: list[str] = []

    async def cancel(self, coid: str) -> None:
        self.asked.append(coid)
        if coid in self.refuse:
            raise ConnectionError("socket closed")

    def order(self, coid: str) -> Order | None:
        return self._by_id.get(coid)


order_st = st.tuples(
    st.sampled_from(list(OrderLeg)), st.sampled_from(list(OrderState)), st.booleans(), st.booleans()
)


@settings(max_examples=200, deadline=None)
@given(st.lists(order_st, max_size=12))
async def test_cancels_exactly_the_working_entries(
    specs: list[tuple[OrderLeg, OrderState, bool, bool]],
) -> None:
    orders = []
    refuse = set()
    for n, (leg, state, reduce_only, fails) in enumerate(specs):
        o = Order(OrderIntent(f"c{n}", f"s{n}", leg, "AAPL", Side.BUY, Decimal(1), reduce_only=reduce_only))
        o.state = state
        orders.append(o)
        if fails:
            refuse.add(o.client_order_id)
    owner = FakeOwner(orders, refuse)
    report = await cancel_working_entries(owner)
    entries = [o for o in orders if o.intent.leg is OrderLeg.ENTRY and not o.intent.reduce_only]
    working = {
        o.client_order_id for o in entries if o.state in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)
    }
    not_yet = {
        o.client_order_id
        for o in entries
        if o.state in (OrderState.NEW, OrderState.SUBMITTING, OrderState.UNKNOWN)
    }
    assert set(owner.asked) == working and len(owner.asked) == len(working)
    assert set(report.cancelled) == working - refuse
    assert set(report.failed) == working & refuse
    assert set(report.pending) == not_yet
