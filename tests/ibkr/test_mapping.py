"""Pure mapping: OrderIntent → ib_async orders, and IBKR statuses → Joe's order state machine."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.ibkr.orders import OCA_REDUCE_WITH_BLOCK, base_order, link_bracket, plan
from joe.brokers.ibkr.tracking import decimal, on_status
from joe.core.events import OrderEventType
from joe.core.ids import client_order_id
from joe.core.models import Fill, OrderIntent, OrderLeg, OrderType, Side, TimeInForce
from joe.core.order import Order, OrderState

UNSET = 1.7976931348623157e308


def entry(**kw: object) -> OrderIntent:
    base: dict[str, object] = dict(
        client_order_id=client_order_id("s", "entry"),
        signal_id="s",
        leg=OrderLeg.ENTRY,
        symbol="AAPL",
        side=Side.SELL,
        quantity=Decimal(50),
    )
    base.update(kw)
    return OrderIntent(**base)  # type: ignore[arg-type]


def test_bracket_plan_for_a_short_entry() -> None:
    group = plan(entry(stop_loss=Decimal(105), take_profit=Decimal(90)), "DU1")
    parent, tp, sl = (p.order for p in group)
    link_bracket(group, [7, 8, 9])
    assert [o.transmit for o in (parent, tp, sl)] == [False, False, True]
    assert (parent.orderId, tp.parentId, sl.parentId, parent.parentId) == (7, 7, 7, 0)
    assert (tp.action, tp.orderType, tp.lmtPrice, tp.tif) == ("BUY", "LMT", 90.0, "GTC")
    assert (sl.action, sl.orderType, sl.auxPrice) == ("BUY", "STP", 105.0)
    assert tp.ocaGroup == sl.ocaGroup != "" and tp.ocaType == sl.ocaType == OCA_REDUCE_WITH_BLOCK
    assert [p.intent.leg for p in group] == [OrderLeg.ENTRY, OrderLeg.TAKE_PROFIT, OrderLeg.STOP_LOSS]
    assert [o.orderRef for o in (parent, tp, sl)] == [p.intent.client_order_id for p in group]
    assert group[2].intent.client_order_id == client_order_id("s", "stop") and group[2].intent.reduce_only
    assert all(o.account == "DU1" for o in (parent, tp, sl))


def test_entry_without_protection_and_exit_are_single_orders() -> None:
    (only,) = plan(entry(), "")
    assert only.order.transmit and only.order.orderType == "MKT" and not only.order.ocaGroup
    ex = entry(leg=OrderLeg.EXIT, stop_loss=Decimal(1), take_profit=Decimal(2))
    assert len(plan(ex, "")) == 1  # exits never get children


def test_base_order_types() -> None:
    o = base_order(entry(order_type=OrderType.STOP_LIMIT, stop_price=Decimal(2), limit_price=Decimal(1)), "")
    assert (o.orderType, o.auxPrice, o.lmtPrice) == ("STP LMT", 2.0, 1.0)
    o = base_order(entry(order_type=OrderType.TRAILING_STOP, trailing_percent=Decimal(1)), "")
    assert (o.orderType, o.trailingPercent, o.auxPrice) == ("TRAIL", 1.0, UNSET)
    o = base_order(entry(time_in_force=TimeInForce.DAY), "")
    assert o.tif == "DAY"
    with pytest.raises(ValueError, match="distance or percent"):
        base_order(entry(order_type=OrderType.TRAILING_STOP), "")


def _order(qty: int = 10) -> Order:
    return Order(entry(quantity=Decimal(qty)))


def test_status_mapping_lifecycle() -> None:
    o = _order()
    o.transition(OrderState.SUBMITTING)
    assert on_status(o, "PendingSubmit").event is None and o.state is OrderState.SUBMITTING
    assert on_status(o, "PreSubmitted").event is OrderEventType.ACCEPTED
    assert on_status(o, "Submitted").event is None  # already accepted
    assert on_status(o, "PendingCancel").event is None and o.state is OrderState.CANCEL_PENDING
    assert on_status(o, "Cancelled", 202, "Order Canceled").event is OrderEventType.CANCELLED
    assert on_status(o, "Submitted").event is None and o.state is OrderState.CANCELLED  # terminal sticks


def test_status_mapping_reject_vs_cancel() -> None:
    o = _order()
    o.transition(OrderState.SUBMITTING)
    ch = on_status(o, "Cancelled", 201, "Order rejected - reason: margin")
    assert ch.event is OrderEventType.REJECTED and o.state is OrderState.REJECTED and "201" in ch.reason
    o2 = _order()
    o2.transition(OrderState.SUBMITTING)
    assert on_status(o2, "Cancelled").event is OrderEventType.CANCELLED
    o3 = _order()
    o3.transition(OrderState.SUBMITTING)
    assert on_status(o3, "Inactive").event is OrderEventType.REJECTED


STATUSES = [
    "PendingSubmit",
    "PreSubmitted",
    "Submitted",
    "ApiPending",
    "PendingCancel",
    "Cancelled",
    "Filled",
]
STATUSES += ["ApiCancelled", "Inactive", "ValidationError"]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(STATUSES), st.sampled_from([0, 201, 202, 110])),
            st.integers(1, 6).map(lambda q: ("fill", q)),
        ),
        max_size=30,
    )
)
def test_any_status_sequence_keeps_the_state_machine_legal(steps: list[tuple[str, int]]) -> None:
    """Whatever TWS sends, mapping never makes an illegal transition and terminal states stick."""
    o = _order(10)
    o.transition(OrderState.SUBMITTING)
    n = 0
    for kind, arg in steps:
        before = o.state
        if kind == "fill":
            n += 1
            f = Fill(
                f"e{n}", o.client_order_id, "AAPL", Side.SELL, Decimal(arg), Decimal(1), datetime.now(UTC)
            )
            if o.state.is_terminal or o.filled_quantity + f.quantity > o.quantity:
                continue  # the ledger filters these before apply_fill
            o.apply_fill(f)
        else:
            on_status(o, kind, arg)
        if before.is_terminal:
            assert o.state is before
    assert o.filled_quantity <= o.quantity


def test_decimal_conversion() -> None:
    assert decimal(100.0) == Decimal(100) and str(decimal(100.0)) == "100"
    assert str(decimal(190.25)) == "190.25" and str(decimal(0.1)) == "0.1"
