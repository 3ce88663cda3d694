"""Pure mapping: OrderIntent → ib_async orders; raw TWS order messages → reports; tick/size rules."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.base import InvalidOrder
from joe.brokers.ibkr.orders import base_order
from joe.brokers.ibkr.rules import check_intent, on_grid, rules_from_details
from joe.brokers.ibkr.translate import OrderView, decimal, status_report, venue_status
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side, TimeInForce
from joe.core.reports import InstrumentRules, VenueOrderStatus

UNSET = 1.7976931348623157e308
W = VenueOrderStatus


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


def test_base_order_types() -> None:
    o = base_order(
        entry(order_type=OrderType.STOP_LIMIT, stop_price=Decimal(2), limit_price=Decimal(1)), "DU1"
    )
    assert (o.orderType, o.auxPrice, o.lmtPrice, o.account) == ("STP LMT", 2.0, 1.0, "DU1")
    assert o.orderRef == client_order_id("s", "entry") and o.transmit
    o = base_order(entry(order_type=OrderType.TRAILING_STOP, trailing_percent=Decimal(1)), "")
    assert (o.orderType, o.trailingPercent, o.auxPrice) == ("TRAIL", 1.0, UNSET)
    o = base_order(entry(time_in_force=TimeInForce.DAY), "")
    assert o.tif == "DAY"
    with pytest.raises(ValueError, match="distance or percent"):
        base_order(entry(order_type=OrderType.TRAILING_STOP), "")


def test_decimal_conversion() -> None:
    assert decimal(100.0) == Decimal(100) and str(decimal(100.0)) == "100"
    assert str(decimal(190.25)) == "190.25" and str(decimal(0.1)) == "0.1"


def test_venue_status_words() -> None:
    assert venue_status("PreSubmitted") is venue_status("Submitted") is W.WORKING
    assert venue_status("PendingSubmit") is venue_status("ApiPending") is W.PENDING_SUBMIT
    assert venue_status("Cancelled") is venue_status("ApiCancelled") is W.CANCELLED
    assert venue_status("PendingCancel") is W.PENDING_CANCEL and venue_status("Filled") is W.FILLED
    assert venue_status("Inactive") is W.INACTIVE
    assert venue_status("ValidationError") is W.INACTIVE  # ib_async's local word is never a broker state


def _view(qty: float = 100) -> OrderView:
    contract = SimpleNamespace(symbol="AAPL")
    order = SimpleNamespace(
        orderId=7, clientId=1, permId=0, action="SELL", totalQuantity=qty, orderType="STP", lmtPrice=UNSET,
        auxPrice=95.0, trailStopPrice=UNSET, parentId=5, ocaGroup="oca-x", orderRef="joe-stop", tif="GTC",
    )  # fmt: skip
    return OrderView.from_order(contract, order, "PreSubmitted")


def test_order_view_from_status_messages() -> None:
    v = _view()
    assert (v.limit_price, v.stop_price, v.quantity, v.acknowledged) == (None, Decimal(95), 100, True)
    resized = v.with_status("Submitted", 0, 30, 0, 9001)  # the broker resized the child to 30
    assert resized.quantity == 30 and resized.perm_id == 9001
    cancelled = v.with_status("Cancelled", 0, 0, 0, 9001)  # remaining 0 on a cancel is not a resize
    assert cancelled.quantity == 100
    part = v.with_status("Submitted", 40, 60, 94.5, 9001)
    r = status_report(part, leg=OrderLeg.STOP_LOSS)
    assert (r.status, r.quantity, r.filled_quantity, r.avg_fill_price) == (
        W.WORKING,
        100,
        40,
        Decimal("94.5"),
    )
    assert (r.client_order_id, r.broker_order_id, r.parent_broker_order_id) == ("joe-stop", "7", "5")
    assert (r.side, r.leg, r.oca_group, r.raw_status) == (Side.SELL, OrderLeg.STOP_LOSS, "oca-x", "Submitted")


RULES = InstrumentRules("XYZ", tick_size=Decimal("0.005"), min_size=Decimal(1), size_increment=Decimal(1))


def test_rules_from_contract_details() -> None:
    r = rules_from_details("XYZ", SimpleNamespace(minTick=0.005, minSize=UNSET, sizeIncrement=0.0))
    assert (r.tick_size, r.min_size, r.size_increment) == (Decimal("0.005"), 1, 1)
    with pytest.raises(InvalidOrder, match="minTick"):
        rules_from_details("XYZ", SimpleNamespace(minTick=0.0))


@given(ticks=st.integers(1, 10**7), off=st.integers(1, 4))
def test_on_grid_prices_pass_and_off_grid_fail(ticks: int, off: int) -> None:
    good = Decimal(ticks) * RULES.tick_size
    check_intent(RULES, entry(order_type=OrderType.LIMIT, limit_price=good, symbol="XYZ"))
    bad = good + Decimal(off) / 1000  # 0.001..0.004 off a 0.005 grid
    assert not on_grid(bad, RULES.tick_size)
    with pytest.raises(InvalidOrder, match="limit_price"):
        check_intent(RULES, entry(order_type=OrderType.LIMIT, limit_price=bad, symbol="XYZ"))


@pytest.mark.parametrize("field", ["stop_price", "stop_loss", "take_profit", "trailing_distance"])
def test_every_price_field_is_checked(field: str) -> None:
    kw: dict[str, object] = {field: Decimal("10.1624")}
    if field == "stop_price":
        kw["order_type"] = OrderType.STOP
    with pytest.raises(InvalidOrder, match=field):
        check_intent(RULES, entry(**kw))


@pytest.mark.parametrize("qty", ["0.5", "2.5"])
def test_sizes_below_min_or_off_increment_are_refused(qty: str) -> None:
    with pytest.raises(InvalidOrder, match="quantity"):
        check_intent(RULES, entry(quantity=Decimal(qty)))
