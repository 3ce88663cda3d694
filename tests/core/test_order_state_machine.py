"""Property tests of the Order state machine: no illegal state, no overfill, idempotent fills."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.core import (
    Fill,
    IllegalTransition,
    Order,
    OrderIntent,
    OrderLeg,
    OrderState,
    OverfillError,
    Side,
    client_order_id,
)
from joe.core.order import TRANSITIONS, is_legal

TS = datetime(2024, 1, 2, tzinfo=UTC)


def make_order(qty: int = 100) -> Order:
    coid = client_order_id("sig-1", "entry")
    return Order(OrderIntent(coid, "sig-1", OrderLeg.ENTRY, "AAPL", Side.BUY, Decimal(qty)))


def fill(order: Order, fid: str, qty: int, price: str = "10") -> Fill:
    return Fill(fid, order.client_order_id, "AAPL", Side.BUY, Decimal(qty), Decimal(price), TS)


events = st.one_of(
    st.tuples(st.just("transition"), st.sampled_from(list(OrderState))),
    st.tuples(st.just("fill"), st.tuples(st.integers(0, 6), st.integers(1, 60))),
)


@settings(max_examples=400)
@given(st.integers(1, 200), st.lists(events, max_size=40))
def test_random_event_sequences_keep_invariants(qty: int, seq: list[tuple[str, object]]) -> None:
    order = make_order(qty)
    applied: set[str] = set()
    for kind, arg in seq:
        before_state, before_filled = order.state, order.filled_quantity
        if kind == "transition":
            assert isinstance(arg, OrderState)
            legal = arg in TRANSITIONS[order.state] and not (
                arg is OrderState.FILLED and order.filled_quantity < order.quantity
            )
            if legal:
                order.transition(arg)
                assert order.state is arg
            else:
                with pytest.raises(IllegalTransition):
                    order.transition(arg)
                assert order.state is before_state
        else:
            fid_n, fqty = arg  # type: ignore[misc]
            fid = f"x{fid_n}"
            f = fill(order, fid, fqty)
            try:
                changed = order.apply_fill(f)
            except (OverfillError, IllegalTransition):
                changed = None
                assert order.state is before_state
                assert order.filled_quantity == before_filled
            if fid in applied:
                assert changed is False
                assert order.filled_quantity == before_filled
            elif changed:
                applied.add(fid)
        # Invariants after every event.
        assert order.filled_quantity <= order.quantity
        assert order.filled_quantity == sum((f.quantity for f in order.fills.values()), Decimal(0))
        if order.state is OrderState.FILLED:
            assert order.filled_quantity == order.quantity
        for t in order.history:
            assert is_legal(t.from_state, t.to_state, correction=t.from_reconciliation)


def test_terminal_states_accept_no_plain_transition_but_a_late_fill_moves_them_on() -> None:
    for terminal in (OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED):
        order = make_order()
        order.transition(OrderState.SUBMITTING)
        order.transition(OrderState.ACCEPTED)
        order.transition(terminal)
        for s in OrderState:
            with pytest.raises(IllegalTransition):
                order.transition(s)
        # A fill is a fact: never dropped because of Joe's local state.
        assert order.apply_fill(fill(order, "late", 1))
        assert order.state is OrderState.PARTIALLY_FILLED and order.filled_quantity == 1
        assert order.history[-1].from_reconciliation


def test_a_higher_revision_replaces_a_fill_never_adds() -> None:
    order = make_order(100)
    order.transition(OrderState.SUBMITTING)
    order.transition(OrderState.ACCEPTED)
    assert order.apply_fill(fill(order, "0001.01", 100, "10"))
    assert order.state is OrderState.FILLED
    assert order.apply_fill(fill(order, "0001.01", 50, "10.5"), revision=2)
    assert order.filled_quantity == 50 and order.state is OrderState.PARTIALLY_FILLED
    assert order.avg_fill_price == Decimal("10.5")
    assert not order.apply_fill(fill(order, "0001.01", 100, "10"), revision=1)  # an older revision
    assert order.apply_fill(fill(order, "0002.01", 50, "11"))
    assert order.filled_quantity == 100 and order.state is OrderState.FILLED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", Decimal(0)),
        ("price", Decimal(-5)),
        ("price", Decimal("NaN")),
        ("price", Decimal("Infinity")),
        ("quantity", Decimal("NaN")),
        ("quantity", Decimal("-1")),
        ("quantity", Decimal("Infinity")),
        ("side", Side.SELL),
        ("symbol", "MSFT"),
        ("commission", Decimal("NaN")),
    ],
)
def test_invalid_fills_are_refused_and_change_nothing(field: str, value: object) -> None:
    from dataclasses import replace

    from joe.core.order import InvalidFill

    order = make_order(10)
    order.transition(OrderState.SUBMITTING)
    order.transition(OrderState.ACCEPTED)
    bad = replace(fill(order, "e1", 1), **{field: value})
    with pytest.raises(InvalidFill, match=field):
        order.apply_fill(bad)
    assert order.filled_quantity == 0 and order.state is OrderState.ACCEPTED and not order.fills


def test_partial_then_full_fill_and_vwap() -> None:
    order = make_order(100)
    order.transition(OrderState.SUBMITTING)
    order.transition(OrderState.ACCEPTED)
    assert order.apply_fill(fill(order, "e1", 40, "10"))
    assert order.state is OrderState.PARTIALLY_FILLED
    assert not order.apply_fill(fill(order, "e1", 40, "10"))  # duplicate execution id
    assert order.filled_quantity == 40
    assert order.apply_fill(fill(order, "e2", 60, "11"))
    assert order.state is OrderState.FILLED
    assert order.avg_fill_price == Decimal("10.6")
    with pytest.raises(OverfillError):
        order.apply_fill(fill(order, "e3", 1))


def test_overfill_is_refused_without_side_effects() -> None:
    order = make_order(10)
    order.transition(OrderState.SUBMITTING)
    order.transition(OrderState.ACCEPTED)
    order.apply_fill(fill(order, "e1", 7))
    with pytest.raises(OverfillError):
        order.apply_fill(fill(order, "e2", 4))
    assert order.filled_quantity == 7 and order.state is OrderState.PARTIALLY_FILLED


def test_fill_for_another_order_is_refused() -> None:
    order = make_order(10)
    order.transition(OrderState.SUBMITTING)
    other = Fill("e9", "joe-other", "AAPL", Side.BUY, Decimal(1), Decimal(1), TS)
    with pytest.raises(ValueError):
        order.apply_fill(other)
