"""Orders, order events and fills: exact round trips, write-ahead history, idempotent fills."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from store_builders import T0, make_fill, make_order

from joe.core.models import OrderType, TimeInForce
from joe.core.order import Order, OrderState
from joe.store import StaleOrderError, Store, StoreError
from joe.store.schema import order_events

_ids = itertools.count()
_fixture_ok = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=40
)


def _event_count(store: Store, coid: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(order_events).where(order_events.c.client_order_id == coid)
        ).scalar_one()


def test_new_order_round_trips(store: Store) -> None:
    o = make_order(order_type=OrderType.LIMIT, time_in_force=TimeInForce.DAY, reduce_only=True)
    store.save_order(o, broker="capital", mode="live")
    back = store.load_order(o.client_order_id)
    assert back == o
    assert back is not None and back.intent.limit_price == Decimal("187.1234567891")
    assert store.order_context(o.client_order_id) == ("capital", "live")


def test_order_with_history_and_fills_round_trips(store: Store) -> None:
    o = make_order(qty="10")
    store.save_order(o, broker="sim", mode="paper")  # write-ahead: NEW is stored before submitting
    o.transition(OrderState.SUBMITTING, ts=T0 + timedelta(seconds=1))
    store.save_order(o, broker="sim", mode="paper")
    o.transition(OrderState.ACCEPTED, reason="ack", ts=T0 + timedelta(seconds=2))
    o.broker_order_id = "B-1"
    o.apply_fill(make_fill("f1", qty="3", price="100.05", minutes=1))
    o.apply_fill(make_fill("f2", qty="7", price="100.1", minutes=2))
    store.save_order(o, broker="sim", mode="paper")

    back = store.load_order(o.client_order_id)
    assert back == o
    assert back is not None
    assert back.state is OrderState.FILLED
    assert back.filled_quantity == Decimal("10")
    assert back.avg_fill_price == o.avg_fill_price == Decimal("100.085")
    assert [t.to_state for t in back.history] == [
        OrderState.SUBMITTING,
        OrderState.ACCEPTED,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
    ]
    assert set(back.fills) == {"f1", "f2"}
    assert _event_count(store, o.client_order_id) == 4


def test_saving_again_does_not_duplicate_events(store: Store) -> None:
    o = make_order()
    o.transition(OrderState.SUBMITTING)
    for _ in range(3):
        store.save_order(o, broker="sim", mode="paper")
    assert _event_count(store, o.client_order_id) == 1
    loaded = store.load_order(o.client_order_id)
    assert loaded is not None
    loaded.transition(OrderState.ACCEPTED)
    store.save_order(loaded, broker="sim", mode="paper")
    assert _event_count(store, o.client_order_id) == 2


def test_stale_copy_cannot_move_an_order_backwards(store: Store) -> None:
    o = make_order()
    o.transition(OrderState.SUBMITTING)
    o.transition(OrderState.ACCEPTED)
    store.save_order(o, broker="sim", mode="paper")
    fresh = make_order()  # e.g. rebuilt from the same intent after a restart
    with pytest.raises(StaleOrderError):
        store.save_order(fresh, broker="sim", mode="paper")
    back = store.load_order(o.client_order_id)
    assert back is not None and back.state is OrderState.ACCEPTED


def test_created_at_is_kept_on_update(store: Store) -> None:
    o = make_order()
    store.save_order(o, broker="sim", mode="paper")
    o.created_at = T0 + timedelta(days=3)
    o.transition(OrderState.SUBMITTING)
    store.save_order(o, broker="sim", mode="paper")
    back = store.load_order(o.client_order_id)
    assert back is not None and back.created_at == T0 and back.state is OrderState.SUBMITTING


def test_orders_filters_by_state_mode_and_broker(store: Store) -> None:
    a, b, c = make_order("a"), make_order("b"), make_order("c")
    b.transition(OrderState.SUBMITTING)
    b.transition(OrderState.ACCEPTED)
    c.transition(OrderState.REJECTED, reason="no margin")
    store.save_order(a, broker="sim", mode="paper")
    store.save_order(b, broker="ibkr", mode="live")
    store.save_order(c, broker="ibkr", mode="live")
    assert [o.client_order_id for o in store.orders()] == ["a", "b", "c"]
    assert [o.client_order_id for o in store.orders(mode="live")] == ["b", "c"]
    assert [o.client_order_id for o in store.orders(state={OrderState.ACCEPTED, OrderState.NEW})] == [
        "a",
        "b",
    ]
    assert [o.client_order_id for o in store.orders(broker="sim")] == ["a"]
    rejected = store.orders(state={OrderState.REJECTED})
    assert rejected[0].reject_reason == "no margin"
    assert store.load_order("missing") is None


def test_bad_mode_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="mode"):
        store.save_order(make_order(), broker="sim", mode="real-money")


def test_record_fill_is_idempotent_and_needs_the_order(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown order"):
        store.record_fill(make_fill("f0", coid="nobody"), broker="sim", mode="paper")
    store.save_order(make_order(), broker="sim", mode="paper")
    f = make_fill("f1")
    assert store.record_fill(f, broker="sim", mode="paper") is True
    assert store.record_fill(f, broker="sim", mode="paper") is False
    assert store.fills() == [f]
    assert store.fills("joe-1") == [f]
    assert store.fills("other") == []
    assert store.fills(mode="live") == []


@_fixture_ok
@given(ids=st.lists(st.sampled_from([f"x{i}" for i in range(8)]), min_size=1, max_size=30))
def test_fills_never_duplicate(store: Store, ids: list[str]) -> None:
    coid = f"ord-{next(_ids)}"
    store.save_order(make_order(coid), broker="sim", mode="paper")
    inserted = [
        store.record_fill(make_fill(f"{coid}-{i}", coid=coid), broker="sim", mode="paper") for i in ids
    ]
    assert sum(inserted) == len(set(ids))
    # The first occurrence of each id is the one that inserted.
    assert inserted == [ids.index(i) == n for n, i in enumerate(ids)]
    assert len(store.fills(coid)) == len(set(ids))


fill_qtys = st.lists(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(50), places=4), max_size=6)


@_fixture_ok
@given(
    qtys=fill_qtys,
    prices=st.lists(st.decimals(min_value=1, max_value=1000, places=5), min_size=6, max_size=6),
)
def test_any_fill_sequence_round_trips(store: Store, qtys: list[Decimal], prices: list[Decimal]) -> None:
    coid = f"prop-{next(_ids)}"
    total = sum(qtys, Decimal(0)) + Decimal("0.5")
    o = make_order(coid, qty=str(total), order_type=OrderType.MARKET)
    store.save_order(o, broker="sim", mode="shadow")
    o.transition(OrderState.SUBMITTING, ts=T0)
    o.transition(OrderState.ACCEPTED, ts=T0)
    store.save_order(o, broker="sim", mode="shadow")
    for n, (q, p) in enumerate(zip(qtys, prices, strict=False)):
        o.apply_fill(make_fill(f"{coid}-{n}", coid=coid, qty=str(q), price=str(p), minutes=n))
        store.save_order(o, broker="sim", mode="shadow")
        back = store.load_order(coid)
        assert back == o
    final = store.load_order(coid)
    assert final is not None
    assert final.filled_quantity == sum(qtys, Decimal(0))
    assert final.avg_fill_price == o.avg_fill_price
    assert isinstance(final, Order) and final.remaining == Decimal("0.5")


def test_two_copies_the_stale_one_cannot_overwrite_a_fill(store: Store) -> None:
    """Copy A takes a fill and saves; stale copy B (loaded before) tries to cancel: refused."""
    o = make_order(qty="10")
    o.transition(OrderState.SUBMITTING)
    o.transition(OrderState.ACCEPTED)
    store.save_order(o, broker="sim", mode="live")
    a = store.load_order(o.client_order_id)
    b = store.load_order(o.client_order_id)
    assert a is not None and b is not None and a.version == b.version == 1
    a.apply_fill(make_fill("f1", qty="4"))
    store.save_order(a, broker="sim", mode="live")
    b.transition(OrderState.CANCELLED, "stale view")
    with pytest.raises(StaleOrderError, match="version 1"):
        store.save_order(b, broker="sim", mode="live")
    back = store.load_order(o.client_order_id)
    assert back is not None and back.state is OrderState.PARTIALLY_FILLED
    assert back.filled_quantity == 4 and back.version == 2 and set(back.fills) == {"f1"}


def test_a_fill_revision_replaces_the_stored_row(store: Store) -> None:
    o = make_order(qty="100")
    o.transition(OrderState.SUBMITTING)
    o.transition(OrderState.ACCEPTED)
    o.apply_fill(make_fill("0001.01", qty="100"))
    store.save_order(o, broker="ibkr", mode="live")
    o.apply_fill(make_fill("0001.01", qty="50", price="187.5"), revision=2)
    store.save_order(o, broker="ibkr", mode="live")
    back = store.load_order(o.client_order_id)
    assert back is not None and back == o
    assert back.fill_revisions == {"0001.01": 2} and back.filled_quantity == 50
    assert [(f.fill_id, f.quantity) for f in store.fills(o.client_order_id)] == [("0001.01", Decimal(50))]
    assert back.history[-1].from_reconciliation  # FILLED -> PARTIALLY_FILLED is a broker correction


def test_a_commission_set_after_the_fill_is_stored(store: Store) -> None:
    o = make_order(qty="10")
    o.transition(OrderState.SUBMITTING)
    o.transition(OrderState.ACCEPTED)
    o.apply_fill(make_fill("f1", qty="10"))
    store.save_order(o, broker="ibkr", mode="live")
    assert o.set_commission("f1", Decimal("1.00"))
    store.save_order(o, broker="ibkr", mode="live")
    assert store.fills(o.client_order_id)[0].commission == Decimal("1.00")


def test_pending_commissions_wait_for_their_fill(store: Store) -> None:
    assert store.pending_commission("x.1") is None
    store.add_pending_commission("x.1", Decimal("0.5"), broker="ibkr", currency="USD", ts=T0)
    store.add_pending_commission("x.1", Decimal("1.0"), broker="ibkr", currency="USD", ts=T0)
    p = store.pending_commission("x.1")
    assert p is not None and p.commission == Decimal("1.0") and p.currency == "USD"
    assert [c.fill_id for c in store.pending_commissions()] == ["x.1"]
    store.drop_pending_commission("x.1")
    assert store.pending_commissions() == []


def test_unaudited_fills_are_the_outbox(store: Store) -> None:
    o = make_order(qty="10")
    o.transition(OrderState.SUBMITTING)
    o.transition(OrderState.ACCEPTED)
    o.apply_fill(make_fill("f1", qty="4"))
    o.apply_fill(make_fill("f2", qty="6", minutes=1))
    store.save_order(o, broker="ibkr", mode="live", pending_audit={"f1", "f2"})
    assert [f.fill_id for f, _, _ in store.unaudited_fills()] == ["f1", "f2"]
    store.mark_fills_audited(["f1"])
    assert [(f.fill_id, b, m) for f, b, m in store.unaudited_fills()] == [("f2", "ibkr", "live")]
    # Saving again (e.g. a later state change) never flips the flag back.
    store.save_order(o, broker="ibkr", mode="live")
    assert [f.fill_id for f, _, _ in store.unaudited_fills()] == ["f2"]


def test_children_and_attempts_are_queryable(store: Store) -> None:
    parent = make_order("joe-p")
    store.save_order(parent, broker="ibkr", mode="live")
    for coid in ("joe-s", "joe-t"):
        child = make_order(coid)
        child.parent_client_order_id = "joe-p"
        store.save_order(child, broker="ibkr", mode="live")
    assert [c.client_order_id for c in store.child_orders("joe-p")] == ["joe-s", "joe-t"]
    for n in (1, 0):
        ex = make_order(f"joe-x{n}", signal_id="sig-x")
        ex.attempt = n
        store.save_order(ex, broker="ibkr", mode="live")
    assert [(o.client_order_id, o.attempt) for o in store.leg_attempts("sig-x", "entry")] == [
        ("joe-x0", 0),
        ("joe-x1", 1),
    ]
