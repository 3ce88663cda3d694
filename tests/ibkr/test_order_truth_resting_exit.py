"""A resting exit is not protection (r9 finding 2). A limit exit of the whole position cancels the
bracket's stop and target (an exit replaces them) and then rests above the market; the price can fall
through the old stop while it waits. The position it has not closed is reported unprotected at once
(`UnprotectedPosition`, the safety layer's trigger), and cleared when the exit closes it. A market
exit, or one still being sent, still stands in for the legs it replaced (no report)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import Order, OrderState
from joe.execution.protective_cover import protection
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import wait_for
from .truth import agree, at_broker, filled_bracket, ids, settle


async def test_a_resting_limit_exit_reports_the_position_unprotected(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    om, legs = await filled_bracket(sim178, make_om, store, "rest-x")
    assert not om.unprotected_now
    ex = await om.exit("rest-x", order_type=OrderType.LIMIT, limit_price=Decimal(105))
    assert ex is not None
    await settle(lambda: agree(sim178, store, [*ids(legs), ex.client_order_id]))
    assert [at_broker(sim178, c).status for c in ids(legs)[1:]] == ["Cancelled", "Cancelled"]
    assert at_broker(sim178, ex.client_order_id).status == "Submitted"  # resting at 105
    raised = om.unprotected_now.get("rest-x")
    assert raised is not None and (raised.position, raised.protected) == (100, 0)
    sim178.set_price("AAPL", 106)  # the exit fills: nothing left to protect
    await settle(lambda: agree(sim178, store, [*ids(legs), ex.client_order_id]))
    assert sim178.book.positions["AAPL"].qty == 0
    await wait_for(lambda: "rest-x" not in om.unprotected_now, what="cleared once flat")


def _order(leg: OrderLeg, side: Side, qty: int, state: OrderState, filled: int = 0, **kw: Any) -> Order:
    it = OrderIntent(client_order_id("pc", leg.value), "pc", leg, "AAPL", side, Decimal(qty), **kw)
    o = Order(it, state=state)
    o.filled_quantity = Decimal(filled)
    return o


def test_which_exits_stand_in_for_the_protection() -> None:
    entry = _order(OrderLeg.ENTRY, Side.BUY, 100, OrderState.FILLED, 100)
    limit = {"order_type": OrderType.LIMIT, "limit_price": Decimal(105)}
    cases = [
        (_order(OrderLeg.EXIT, Side.SELL, 100, OrderState.ACCEPTED, **limit), True),  # resting: naked
        (_order(OrderLeg.EXIT, Side.SELL, 100, OrderState.PARTIALLY_FILLED, 30, **limit), True),
        (_order(OrderLeg.EXIT, Side.SELL, 100, OrderState.SUBMITTING, **limit), False),  # being sent
        (_order(OrderLeg.EXIT, Side.SELL, 100, OrderState.ACCEPTED), False),  # market: closing now
        (_order(OrderLeg.EXIT, Side.SELL, 100, OrderState.CANCELLED, **limit), True),  # gone
    ]
    for exit_order, unprotected in cases:
        p = protection([entry, exit_order])
        why = (exit_order.state, exit_order.intent.order_type)
        assert p is not None and p.unprotected is unprotected, why


def test_a_market_exit_a_correction_put_back_to_work_does_not_stand_in() -> None:
    """Chaos seed 672: a market exit the broker reported complete, then reopened (an execution
    correction cut its fill 2 -> 1; its rest works again, and rests while the market does not trade)
    no longer stands in for the stop it replaced; a market exit partly filled on its way to complete
    still does."""
    entry = _order(OrderLeg.ENTRY, Side.BUY, 2, OrderState.FILLED, 2)

    def market_exit(reopened: bool) -> Order:
        o = _order(OrderLeg.EXIT, Side.SELL, 2, OrderState.NEW)
        for to in (OrderState.SUBMITTING, OrderState.ACCEPTED):
            o.transition(to, "test")
        o.filled_quantity = Decimal(2 if reopened else 1)
        if reopened:
            o.transition(OrderState.FILLED, "fill")
            o.filled_quantity = Decimal(1)
            o.transition(OrderState.PARTIALLY_FILLED, "fill revision 1", correction=True)
        else:
            o.transition(OrderState.PARTIALLY_FILLED, "fill")
        return o

    reopened = protection([entry, market_exit(reopened=True)])
    assert reopened is not None and (reopened.position, reopened.protected) == (1, 0)
    assert reopened.unprotected and not reopened.exiting
    partly = protection([entry, market_exit(reopened=False)])
    assert partly is not None and partly.position == 1 and partly.exiting and not partly.unprotected
