"""Property tests for the pure parts of the Capital adapter: exit planning never touches a deal Joe
did not open and never exits more than is live; the increment check accepts exactly the grid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.brokers.base import InvalidOrder
from joe.brokers.capital.exits import plan_exit
from joe.brokers.capital.instruments import check_intent, rules_from_market
from joe.brokers.capital.models import PositionRow
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.reports import InstrumentRules

JOE = "joe-entry"
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def row(deal_id: str, ref: str, direction: str, size: int, minute: int) -> PositionRow:
    created = (T0 + timedelta(minutes=minute)).replace(tzinfo=None).isoformat(timespec="milliseconds")
    return PositionRow.model_validate(
        {
            "position": {
                "contractSize": 1, "createdDate": created, "createdDateUTC": created, "dealId": deal_id,
                "dealReference": ref, "size": size, "leverage": 20, "upl": 0, "direction": direction,
                "level": 2000, "currency": "USD", "guaranteedStop": False,
            },
            "market": {"epic": "GOLD", "instrumentName": "Gold", "instrumentType": "COMMODITIES",
                       "marketStatus": "TRADEABLE"},
        }
    )  # fmt: skip


deals = st.lists(
    st.tuples(st.booleans(), st.sampled_from(["BUY", "SELL"]), st.integers(1, 5)), min_size=0, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(deals, st.integers(1, 12), st.booleans())
def test_exit_plan_is_capped_and_only_touches_joes_deals(
    spec: list[tuple[bool, str, int]], qty: int, hedging: bool
) -> None:
    rows = [
        row(f"d{i}", JOE if mine else f"p_d{i}", direction, size, i)
        for i, (mine, direction, size) in enumerate(spec)
    ]
    intent = OrderIntent("joe-exit", "sig", OrderLeg.EXIT, "GOLD", Side.SELL, Decimal(qty), reduce_only=True)
    joes = {r.position.dealId: r.position.size for r in rows if r.position.dealReference == JOE
            and r.position.direction == "BUY"}  # fmt: skip
    live = sum(joes.values(), Decimal(0))
    try:
        plan = plan_exit(rows, intent, JOE, hedging=hedging)
    except InvalidOrder:
        return  # refused: nothing sent, nothing touched
    assert plan.quantity == min(Decimal(qty), live) > 0
    assert set(plan.close) <= set(joes)
    if plan.net_size is None:
        assert sum(joes[d] for d in plan.close) == plan.quantity
    else:
        assert not hedging and plan.net_size == plan.quantity
        fifo = sorted(
            (r for r in rows if r.position.direction == "BUY"), key=lambda r: r.position.createdDateUTC
        )
        covered = Decimal(0)
        for r in fifo:  # netting closes oldest first: everything it reaches is Joe's
            if covered >= plan.quantity:
                break
            assert r.position.dealId in joes
            covered += r.position.size


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10_000), st.sampled_from([1, 10, 100]), st.sampled_from([1, 100]))
def test_increment_check_accepts_exactly_the_size_grid(hundredths: int, step_h: int, min_h: int) -> None:
    size = Decimal(hundredths) / 100
    step, low = Decimal(step_h) / 100, Decimal(min_h) / 100
    rules = InstrumentRules("X", Decimal("0.01"), low, step, Decimal(100))
    intent = OrderIntent("joe-x", "s", OrderLeg.ENTRY, "X", Side.BUY, size)
    ok = size >= low and size % step == 0
    if ok:
        check_intent(intent, rules)
    else:
        with pytest.raises(InvalidOrder, match="quantity"):
            check_intent(intent, rules)


def test_rules_read_size_grid_and_tick_from_the_market() -> None:
    body = {
        "instrument": {"epic": "EURUSD"},
        "dealingRules": {
            "minStepDistance": {"unit": "POINTS", "value": 0.00001},
            "minDealSize": {"unit": "POINTS", "value": 100},
            "maxDealSize": {"unit": "POINTS", "value": 1000000},
            "minSizeIncrement": {"unit": "POINTS", "value": 100},
        },
        "snapshot": {"decimalPlacesFactor": 5},
    }
    r = rules_from_market("EURUSD", body)
    assert (r.min_size, r.size_increment, r.tick_size) == (100, 100, Decimal("0.00001"))
    body["instrument"]["tickSize"] = 0.0001  # a stated tick wins over decimal places
    assert rules_from_market("EURUSD", body).tick_size == Decimal("0.0001")
    with pytest.raises(InvalidOrder, match="minDealSize"):
        rules_from_market("EURUSD", {"dealingRules": {}})
    limit = OrderIntent("joe-l", "s", OrderLeg.ENTRY, "EURUSD", Side.BUY, Decimal(100),
                        order_type=OrderType.LIMIT, limit_price=Decimal("1.08005"))  # fmt: skip
    with pytest.raises(InvalidOrder, match=r"limit_price 1\.08005"):
        check_intent(limit, rules_from_market("EURUSD", body))
