"""Positions: lifecycle, one open position per signal, queries, and the paper track record."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from store_builders import T0, make_signal

from joe.store import DuplicatePositionError, NotFoundError, Store, StoreError, TrackRecord


def _open(
    store: Store, signal_id: str | None = "sig-1", mode: str = "paper", broker: str = "sim", **kw: object
):
    args: dict[str, object] = {
        "mode": mode,
        "broker": broker,
        "symbol": "AAPL",
        "quantity": Decimal("-5"),
        "avg_price": Decimal("101.25"),
        "opened_at": T0,
        "signal_id": signal_id,
        "stop_loss": Decimal("105"),
        "take_profit": Decimal("95.5"),
        "trailing_distance": Decimal("1.5"),
    }
    args.update(kw)
    return store.open_position(**args)  # type: ignore[arg-type]


def test_open_update_close_round_trip(store: Store) -> None:
    p = _open(store)
    assert p.is_open and p.quantity == Decimal("-5") and p.high_water == Decimal("101.25")
    assert p.opened_at == T0 and p.realized_pnl == 0
    assert store.open_positions("paper") == [p]

    moved = store.update_position(p.id, stop_loss=Decimal("102.5"), high_water=Decimal("99.75"))
    assert moved.stop_loss == Decimal("102.5") and moved.high_water == Decimal("99.75")
    assert moved.take_profit == Decimal("95.5")  # untouched
    assert store.get_position(p.id) == moved

    closed = store.close_position(
        p.id,
        exit_price=Decimal("99.9"),
        exit_reason="trailing stop",
        realized_pnl=Decimal("6.75"),
        closed_at=T0 + timedelta(days=2),
    )
    assert not closed.is_open and closed.exit_reason == "trailing stop"
    assert closed.realized_pnl == Decimal("6.75") and closed.closed_at == T0 + timedelta(days=2)
    assert store.open_positions("paper") == []
    assert store.closed_positions("paper") == [closed]


def test_closed_positions_cannot_change(store: Store) -> None:
    p = _open(store)
    store.close_position(p.id, Decimal(100), "target", Decimal(1), T0)
    with pytest.raises(StoreError, match="already closed"):
        store.close_position(p.id, Decimal(100), "target", Decimal(1), T0)
    with pytest.raises(StoreError, match="already closed"):
        store.update_position(p.id, stop_loss=Decimal(1))
    with pytest.raises(NotFoundError):
        store.update_position(9999, stop_loss=Decimal(1))


def test_one_open_position_per_signal(store: Store) -> None:
    first = _open(store)
    with pytest.raises(DuplicatePositionError):
        _open(store)
    # Another account or mode is a different book.
    _open(store, broker="ibkr")
    _open(store, mode="shadow")
    # Positions without a signal (e.g. adopted from the broker) are not constrained.
    _open(store, signal_id=None)
    _open(store, signal_id=None)
    assert store.position_for_signal("paper", "sim", "sig-1") == first
    store.close_position(first.id, Decimal(100), "stop", Decimal(-1), T0 + timedelta(hours=1))
    # The closed one is still found, so callers can see the signal was already traded ...
    found = store.position_for_signal("paper", "sim", "sig-1")
    assert found is not None and not found.is_open
    # ... and the database no longer blocks a new one for it.
    again = _open(store)
    assert store.position_for_signal("paper", "sim", "sig-1") == again
    assert store.position_for_signal("paper", "sim", "unknown") is None


def test_unique_open_index_is_the_backstop(store: Store) -> None:
    from sqlalchemy import insert

    from joe.store.schema import positions

    _open(store)
    row = {
        "mode": "paper",
        "broker": "sim",
        "symbol": "AAPL",
        "quantity": Decimal(1),
        "avg_price": Decimal(1),
        "signal_id": "sig-1",
        "status": "open",
        "opened_at": T0,
        "realized_pnl": Decimal(0),
        "fees": Decimal(0),
        "updated_at": T0,
    }
    with pytest.raises(Exception, match=r"(?i)unique"), store.engine.begin() as conn:
        conn.execute(insert(positions).values(**row))


def test_queries_filter_and_order(store: Store) -> None:
    a = _open(store, "a", opened_at=T0 + timedelta(hours=2))
    b = _open(store, "b", opened_at=T0 + timedelta(hours=1), broker="ibkr")
    c = _open(store, "c", mode="live")
    assert store.open_positions("paper") == [b, a]
    assert store.open_positions("paper", broker="sim") == [a]
    assert store.open_positions("live") == [c]
    for n, p in enumerate((a, b)):
        store.close_position(p.id, Decimal(1), "x", Decimal(n), T0 + timedelta(days=n + 1))
    closed = store.closed_positions("paper")
    assert [p.signal_id for p in closed] == ["a", "b"]
    assert [p.signal_id for p in store.closed_positions("paper", limit=1)] == ["b"]
    assert [p.signal_id for p in store.closed_positions("paper", since=T0 + timedelta(days=2))] == ["b"]
    assert [p.signal_id for p in store.closed_positions("paper", broker="sim")] == ["a"]
    with pytest.raises(ValueError):
        _open(store, "zero", quantity=Decimal(0))


def _run(store: Store, run_id: str, started, as_of, signals: list[str]) -> None:
    store.start_run(run_id, "paper", "sim", "sample", as_of=as_of, started_at=started)
    store.save_signals(run_id, [make_signal(sid) for sid in signals])


def test_paper_track_record_counts_on_the_day_runs(store: Store) -> None:
    assert store.paper_track_record(now=T0) == TrackRecord(paper_days=0, closed_paper_trades=0)
    _run(store, "r1", T0, T0, ["s0", "s1", "s2"])
    for i in range(3):
        p = _open(store, f"s{i}", opened_at=T0)
        if i < 2:
            store.close_position(p.id, Decimal(1), "target", Decimal(1), T0 + timedelta(days=1))
    _run(store, "r2", T0 + timedelta(days=1, hours=3), T0 + timedelta(days=1), [])
    # Live and shadow activity does not count.
    live = _open(store, "live-1", mode="live", opened_at=T0 - timedelta(days=100))
    store.close_position(live.id, Decimal(1), "target", Decimal(1), T0)
    rec = store.paper_track_record(now=T0 + timedelta(days=30, hours=23))
    assert rec == TrackRecord(paper_days=30, closed_paper_trades=2)


def test_back_dated_runs_make_no_track_record(store: Store) -> None:
    """Issue 10: 13 back-dated `--as-of` runs in 45 seconds made paper_days=3246 and 100 closed trades."""
    for n in range(13):
        sids = [f"b{n}-{k}" for k in range(8)]
        _run(store, f"old{n}", T0 + timedelta(seconds=3 * n), T0 - timedelta(days=3246 - 200 * n), sids)
        for sid in sids:
            p = _open(store, sid, opened_at=T0 - timedelta(days=3246 - 200 * n))
            store.close_position(p.id, Decimal(1), "stop", Decimal(-1), T0 - timedelta(days=3200 - 200 * n))
    assert store.paper_track_record(now=T0 + timedelta(seconds=45)) == TrackRecord(0, 0)
    # An honest run today starts the clock; the trades the back-dated runs closed still do not count.
    _run(store, "today", T0 + timedelta(minutes=5), T0, [])
    assert store.paper_track_record(now=T0 + timedelta(days=3, hours=1)) == TrackRecord(3, 0)


def test_trade_opened_on_the_day_but_closed_on_a_future_bar_does_not_count(store: Store) -> None:
    _run(store, "r1", T0, T0 - timedelta(days=1), ["s0"])
    p = _open(store, "s0", opened_at=T0 - timedelta(days=1))
    # A forward-dated run (as-of beyond its own day) books the close: not a closed trade yet.
    _run(store, "future", T0 + timedelta(hours=1), T0 + timedelta(days=90), [])
    store.close_position(p.id, Decimal(1), "target", Decimal(1), T0 + timedelta(days=80))
    assert store.paper_track_record(now=T0 + timedelta(days=2)).closed_paper_trades == 0
