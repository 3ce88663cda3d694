"""The backtest's `MemoryStore` keeps the `Store` contract for every call the day loop makes: the same
scenario on the SQL store (in-memory SQLite) and on the memory store gives the same answers and the
same refusals (the day loop's end-to-end proof is test_backtest_equals_runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.backtest.memstore import MemoryStore
from joe.core.models import Fill, OrderIntent, OrderLeg, Side
from joe.core.order import Order, OrderState
from joe.store import DuplicatePositionError, NotFoundError, StaleOrderError, StoreError, open_store
from joe.store.records import equity_marks_of

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def _scenario(store: Any) -> list[object]:
    """Open, update, close positions; orders and fills; equity and state — every answer recorded."""
    out: list[object] = []

    def refused(fn: Any, *a: Any, **k: Any) -> None:
        with pytest.raises(StoreError) as e:
            fn(*a, **k)
        out.append(type(e.value).__name__)

    for i, sym in enumerate(["AAA", "BBB", "CCC"]):
        store.open_position(
            mode="paper", broker="sim", symbol=sym, quantity=Decimal(10 - 3 * i), avg_price=Decimal("20.5"),
            opened_at=_day(i), signal_id=f"s{i}", stop_loss=Decimal(19), take_profit=Decimal(25),
        )  # fmt: skip
    refused(
        store.open_position, mode="paper", broker="sim", symbol="AAA", quantity=Decimal(1),
        avg_price=Decimal(1), signal_id="s0",
    )  # fmt: skip
    ids = [p.id for p in store.open_positions("paper", "sim")]
    store.update_position(ids[0], stop_loss=Decimal("19.75"), high_water=Decimal(22))
    store.close_position(ids[1], Decimal(24), "take profit", Decimal("34.9"), _day(5))
    store.close_position(ids[0], Decimal("19.75"), "trailing stop", Decimal("-7.5"), _day(4))
    refused(store.close_position, ids[0], Decimal(1), "again", Decimal(0), _day(6))
    refused(store.update_position, 999, stop_loss=Decimal(1))
    for p in store.open_positions("paper", "sim") + store.closed_positions("paper"):
        out.append((p.symbol, p.quantity, p.status, p.stop_loss, p.high_water, p.exit_reason, p.closed_at))
    out.append([p.symbol for p in store.closed_positions("paper", since=_day(5))])
    out.append([p.symbol for p in store.closed_positions("paper", limit=1)])
    out.append(
        [
            (p.symbol, p.status)
            for s in ("s0", "s1", "s2", "nope")
            if (p := store.position_for_signal("paper", "sim", s))
        ]
    )

    order = Order(OrderIntent("c1", "s2", OrderLeg.ENTRY, "CCC", Side.BUY, Decimal(4)))
    store.save_order(order, broker="sim", mode="paper")
    order.transition(OrderState.SUBMITTING, "send")
    store.save_order(order, broker="sim", mode="paper")
    refused(store.save_order, Order(order.intent), broker="sim", mode="paper")  # a fresh copy over it
    stale = store.load_order("c1")
    order.transition(OrderState.ACCEPTED, "ack")
    fill = Fill("f1", "c1", "CCC", Side.BUY, Decimal(4), Decimal("20.5"), _day(2), Decimal("0.1"), "c1")
    order.apply_fill(fill)
    store.save_order(order, broker="sim", mode="paper")
    assert stale is not None
    stale.transition(OrderState.CANCELLED, "late")
    refused(store.save_order, stale, broker="sim", mode="paper")  # behind the stored version
    out.append(store.record_fill(fill, broker="sim", mode="paper"))  # already saved with the order
    refused(
        store.record_fill,
        Fill("f2", "zz", "CCC", Side.BUY, Decimal(1), Decimal(1), _day(2)),
        broker="sim",
        mode="paper",
    )
    loaded = store.load_order("c1")
    assert loaded is not None
    out.append((loaded.state, loaded.version, loaded.filled_quantity, [h.to_state for h in loaded.history]))
    out.append(store.load_order("none"))
    out.append([(f.fill_id, f.price) for f in store.fills(mode="paper")])

    for n, eq in [(2, "100"), (0, "99"), (2, "101.5"), (1, "98")]:
        store.record_equity(_day(n), "paper", Decimal(eq), Decimal(50))
    out.append([(p.ts, p.equity) for p in store.equity_curve("paper")])
    out.append([(p.ts, p.equity) for p in store.equity_curve("paper", since=_day(1))])
    store.record_equity(_day(2) + timedelta(hours=20), "paper", Decimal("97"), Decimal(50))  # same day
    for now in (
        _day(-1),
        _day(0),
        _day(1) + timedelta(hours=3),
        _day(2),
        _day(2) + timedelta(hours=21),
        _day(9),
    ):
        out.append(store.equity_marks("paper", now))  # the RiskGate's day start and peak
    store.set_state("k", {"a": [1, "x", None]})
    out.append(store.get_state("k"))
    out.append(store.get_state("missing", 7))
    with pytest.raises(TypeError):
        store.set_state("bad", Decimal(1))
    acct = store.save_paper_account(cash=Decimal(5), starting_cash=Decimal(10), realized_pnl=Decimal(-5))
    out.append((acct.cash, acct.starting_cash, acct.realized_pnl, acct.currency))
    run = store.start_run("r1", "paper", "sim", "csv:x", as_of=T0)
    out.append((run.run_id, run.status, run.as_of))
    refused(store.start_run, "r1", "paper", "sim", "csv:x")
    return out


def test_memory_store_answers_like_the_sql_store(tmp_path: Path) -> None:
    sql = open_store("sqlite://", data_dir=tmp_path)
    try:
        expected = _scenario(sql)
    finally:
        sql.close()
    assert _scenario(MemoryStore()) == expected
    assert "DuplicatePositionError" in expected and "StaleOrderError" in expected  # refusals were exercised
    assert {DuplicatePositionError, NotFoundError, StaleOrderError} <= set(StoreError.__subclasses__())


def test_a_call_the_memory_store_does_not_keep_is_refused_by_name() -> None:
    with pytest.raises(NotImplementedError, match="paper_track_record"):
        MemoryStore().paper_track_record()


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(st.tuples(st.integers(0, 24 * 12), st.integers(50, 150)), max_size=30),
    nows=st.lists(st.integers(-12, 24 * 14), min_size=1, max_size=5),
)
def test_equity_marks_kept_incrementally_equal_a_pass_over_the_curve(
    points: list[tuple[int, int]], nows: list[int]
) -> None:
    """Day start and peak read in O(log n) are those of the whole curve up to `now`, whatever the order
    the points came in (a point back in time rebuilds the index)."""
    store = MemoryStore()
    for hours, eq in points:
        store.record_equity(T0 + timedelta(hours=hours), "paper", Decimal(eq), Decimal(0))
        for h in nows:
            now = T0 + timedelta(hours=h)
            assert store.equity_marks("paper", now) == equity_marks_of(store.equity_curve("paper"), now)
    assert store.equity_marks("live", T0) == (None, None)
