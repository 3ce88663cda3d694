"""Deterministic client order ids and domain-model validation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.core import OrderIntent, OrderLeg, OrderType, Side, Signal, client_order_id
from joe.core.models import Direction, Position

text = st.text(min_size=1, max_size=40)


@given(text, text)
def test_client_order_id_is_deterministic(signal_id: str, leg: str) -> None:
    assert client_order_id(signal_id, leg) == client_order_id(signal_id, leg)
    assert len(client_order_id(signal_id, leg)) <= 40


@given(text, text, text, text)
def test_client_order_id_differs_for_different_intents(s1: str, l1: str, s2: str, l2: str) -> None:
    if (s1, l1) != (s2, l2):
        assert client_order_id(s1, l1) != client_order_id(s2, l2)


def test_client_order_id_rejects_empty() -> None:
    with pytest.raises(ValueError):
        client_order_id("", "entry")
    with pytest.raises(ValueError):
        client_order_id("sig", "")


def test_signal_geometry_is_validated() -> None:
    ts = datetime(2024, 1, 2, tzinfo=UTC)
    Signal("s", "X", "trend", Direction.LONG, Decimal(10), Decimal(9), Decimal(12), 0.5, "ok", ts)
    Signal("s", "X", "trend", Direction.SHORT, Decimal(10), Decimal(11), Decimal(8), 0.5, "ok", ts)
    with pytest.raises(ValueError, match="geometry"):
        Signal("s", "X", "trend", Direction.LONG, Decimal(10), Decimal(11), Decimal(12), 0.5, "bad", ts)
    with pytest.raises(ValueError, match="geometry"):
        Signal("s", "X", "trend", Direction.SHORT, Decimal(10), Decimal(9), Decimal(8), 0.5, "bad", ts)


def test_intent_validation() -> None:
    with pytest.raises(ValueError, match="quantity"):
        OrderIntent("c", "s", OrderLeg.ENTRY, "X", Side.BUY, Decimal(0))
    with pytest.raises(ValueError, match="limit_price"):
        OrderIntent("c", "s", OrderLeg.ENTRY, "X", Side.BUY, Decimal(1), OrderType.LIMIT)
    with pytest.raises(ValueError, match="stop_price"):
        OrderIntent("c", "s", OrderLeg.ENTRY, "X", Side.BUY, Decimal(1), OrderType.STOP)


def test_position_pnl_signs() -> None:
    long = Position("X", Decimal(10), Decimal(100), market_price=Decimal(110))
    short = Position("X", Decimal(-10), Decimal(100), market_price=Decimal(110))
    assert long.unrealized_pnl == Decimal(100)
    assert short.unrealized_pnl == Decimal(-100)
    assert long.direction is Direction.LONG and short.direction is Direction.SHORT
