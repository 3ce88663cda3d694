"""Non-finite numbers in an intent are refused with an error naming the field (review r9 finding 5:
NaN raised a bare `decimal.InvalidOperation`, Infinity was "below the minimum size")."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.fake_venue import FakeVenue
from joe.brokers.base import InvalidOrder
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.execution.order_manager import OrderManager
from joe.store import open_store

BAD = ["NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "0", "-1", "-0"]


def _intent(**kw: object) -> OrderIntent:
    args: dict[str, object] = {"quantity": Decimal(100)} | kw
    return OrderIntent("c1", "s1", OrderLeg.ENTRY, "AAPL", Side.BUY, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", BAD)
def test_a_bad_quantity_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ValueError, match=r"intent c1: quantity must be a finite number > 0"):
        _intent(quantity=Decimal(value))


@pytest.mark.parametrize("field", ["limit_price", "stop_price", "stop_loss", "take_profit"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_price_is_refused_naming_the_field(field: str, value: str) -> None:
    kw: dict[str, object] = {field: Decimal(value)}
    if field == "limit_price":
        kw["order_type"] = OrderType.LIMIT
    if field == "stop_price":
        kw["order_type"] = OrderType.STOP
    with pytest.raises(ValueError, match=rf"intent c1: {field} must be a finite number"):
        _intent(**kw)


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_any_decimal_quantity_builds_or_raises_value_error(q: Decimal) -> None:
    try:
        it = _intent(quantity=q)
    except ValueError as e:
        assert "quantity" in str(e)
    else:
        assert it.quantity.is_finite() and it.quantity > 0


@pytest.mark.parametrize("value", ["NaN", "Infinity", "0"])
async def test_modify_to_a_bad_quantity_is_invalid_order(value: str) -> None:
    store = open_store("sqlite://")
    venue = FakeVenue()
    om = OrderManager(venue, store, NullAudit())
    await om.start(consume=False)
    it = _intent(order_type=OrderType.LIMIT, limit_price=Decimal(90))
    await om.submit([it])
    await venue.deliver(om)
    with pytest.raises(InvalidOrder, match="quantity must be a finite number > 0"):
        await om.modify("c1", quantity=Decimal(value))
    assert venue.orders["c1"].quantity == 100
