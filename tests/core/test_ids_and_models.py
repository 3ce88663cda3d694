"""Deterministic client order ids and domain-model validation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.core import OrderIntent, OrderLeg, OrderType, Side, Signal, client_order_id
from joe.core.ids import signal_id
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


# Parts drawn mostly from separators and short runs, so naive joins would collide often.
_parts = st.lists(
    st.sampled_from(["a", "b", ":", "\x1f", "%", "3A", "A", "|", "é"]), min_size=1, max_size=6
).map("".join)


@given(st.lists(st.tuples(_parts, _parts, st.integers(0, 3)), min_size=2, max_size=30, unique=True))
def test_client_order_id_never_collides(inputs: list[tuple[str, str, int]]) -> None:
    ids = [client_order_id(s, leg, attempt) for s, leg, attempt in inputs]
    assert len(set(ids)) == len(ids)


def test_client_order_id_examples_from_issue_9() -> None:
    assert client_order_id("a\x1fb", "c") != client_order_id("a", "b\x1fc")
    assert client_order_id("s", "exit", 1) != client_order_id("s", "exit") == client_order_id("s", "exit", 0)
    with pytest.raises(ValueError):
        client_order_id("s", "exit", -1)


@given(st.lists(st.tuples(_parts, _parts, _parts, _parts), min_size=2, max_size=30, unique=True))
def test_signal_id_never_collides(inputs: list[tuple[str, str, str, str]]) -> None:
    ids = [signal_id(*parts) for parts in inputs]
    assert len(set(ids)) == len(ids)
    assert ids == [signal_id(*parts) for parts in inputs]  # deterministic


def test_signal_id_examples_from_issue_9() -> None:
    assert signal_id("trend", "ABC", "2024-01-02", "LONG") != signal_id("TREND", "abc", "2024-01-02", "LONG")
    assert signal_id("trend:x", "y", "d", "LONG") != signal_id("trend", "x:y", "d", "LONG")
    assert signal_id("trend", "AAPL", "2024-01-02", "LONG") == "trend:AAPL:2024-01-02:LONG"  # still readable
    with pytest.raises(ValueError, match="symbol"):
        signal_id("trend", "", "d", "LONG")


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


@given(text, text, st.integers(0, 5))
def test_every_client_order_id_is_recognised_as_joes(sig: str, leg: str, attempt: int) -> None:
    from joe.core.ids import is_client_order_id

    assert is_client_order_id(client_order_id(sig, leg, attempt))


@pytest.mark.parametrize("other", ["", "0", "abc", "joe-", "joe-XYZ", "joe-" + "A" * 24, "jo-" + "a" * 24,
                                   "joe-" + "a" * 23, "joe-" + "a" * 25, "p_12345"])  # fmt: skip
def test_an_owner_or_broker_reference_is_not_joes(other: str) -> None:
    from joe.core.ids import is_client_order_id

    assert not is_client_order_id(other)
