"""Signals, pipeline runs, the paper account, the equity curve, key-value state and atomic blocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from store_builders import T0, make_signal

from joe.core.models import Direction
from joe.store import NotFoundError, Store, StoreError


def test_signals_round_trip_and_are_stored_once(store: Store) -> None:
    long_ = make_signal()
    short = make_signal(
        "mr:eurusd:2024-03-01:short",
        symbol="EURUSD",
        direction=Direction.SHORT,
        entry=Decimal("1.08455"),
        stop_loss=Decimal("1.0901"),
        take_profit=Decimal("1.0712"),
        trailing_distance=None,
        score=None,
        quantity=None,
        risk_grade=None,
        meta={},
    )
    assert store.save_signals("run-1", [long_, short]) == 2
    assert store.save_signals("run-2", [long_]) == 0
    assert store.signals("run-1") == [short, long_]  # same batch: ordered by id
    back = store.get_signal(long_.signal_id)
    assert back == long_
    assert back is not None and back.meta == {"regime": "bull", "atr": 1.5} and back.confidence == 0.71
    assert store.get_signal(short.signal_id) == short
    assert store.signals("run-2") == []
    assert store.get_signal("nope") is None


def test_runs_lifecycle(store: Store) -> None:
    r = store.start_run("r1", "paper", "sim", "sample", as_of=T0, started_at=T0)
    assert r.status == "running" and r.finished_at is None and r.as_of == T0
    with pytest.raises(StoreError, match="already exists"):
        store.start_run("r1", "paper", "sim", "sample")
    store.start_run("r2", "paper", "sim", "sample", started_at=T0 + timedelta(minutes=5))
    done = store.finish_run(
        "r1",
        "ok",
        summary={"signals": 3, "equity": Decimal("100000.5")},
        report_dir="data/reports/r1",
        finished_at=T0 + timedelta(minutes=1),
    )
    assert done.status == "ok" and done.summary == {"signals": 3, "equity": "100000.5"}
    assert store.get_run("r1") == done
    latest = store.latest_run()
    assert latest is not None and latest.run_id == "r2"
    latest_ok = store.latest_run(status="ok")
    assert latest_ok is not None and latest_ok.run_id == "r1"
    assert store.get_run("zzz") is None


def test_runs_left_running_by_a_dead_process_are_marked_interrupted_once(store: Store) -> None:
    store.start_run("done", "paper", "sim", "sample", started_at=T0)
    store.finish_run("done", "ok", finished_at=T0 + timedelta(minutes=1))
    store.start_run("killed-1", "live", "ibkr", "ibkr", started_at=T0 + timedelta(hours=1))
    store.start_run("killed-2", "paper", "sim", "sample", started_at=T0 + timedelta(hours=2))
    at = T0 + timedelta(days=1)
    gone = store.interrupt_unfinished_runs(finished_at=at)
    assert sorted((r.run_id, r.status, r.mode) for r in gone) == [
        ("killed-1", "interrupted", "live"),
        ("killed-2", "interrupted", "paper"),
    ]
    assert all(r.finished_at == at for r in gone)
    done = store.get_run("done")
    assert done is not None and done.status == "ok" and done.finished_at == T0 + timedelta(minutes=1)
    assert store.interrupt_unfinished_runs(finished_at=at + timedelta(hours=1)) == []  # once
    assert store.latest_run(status="running") is None
    dated = store.start_run("r3", "shadow", "sim", "csv", as_of=date(2024, 3, 1), started_at=T0)
    assert dated.as_of == datetime(2024, 3, 1, tzinfo=UTC)  # a date is its midnight UTC
    with pytest.raises(NotFoundError):
        store.finish_run("zzz", "ok")


def test_paper_account_keeps_created_at(store: Store) -> None:
    assert store.get_paper_account() is None
    first = store.save_paper_account(
        cash=Decimal(100000), starting_cash=Decimal(100000), realized_pnl=Decimal(0), now=T0
    )
    second = store.save_paper_account(
        cash=Decimal("99012.34"),
        starting_cash=Decimal(100000),
        realized_pnl=Decimal("-987.66"),
        currency="EUR",
        now=T0 + timedelta(days=1),
    )
    assert second.created_at == first.created_at == T0
    assert second.updated_at == T0 + timedelta(days=1)
    assert store.get_paper_account() == second
    assert second.currency == "EUR" and second.cash == Decimal("99012.34")


def test_equity_curve_is_per_mode_and_ordered(store: Store) -> None:
    store.record_equity(T0 + timedelta(days=1), "paper", Decimal(101), Decimal(50))
    store.record_equity(T0, "paper", Decimal(100), Decimal(100))
    store.record_equity(T0, "live", Decimal(7), Decimal(7))
    curve = store.equity_curve("paper")
    assert [(p.ts, p.equity, p.cash) for p in curve] == [
        (T0, Decimal(100), Decimal(100)),
        (T0 + timedelta(days=1), Decimal(101), Decimal(50)),
    ]
    assert [p.equity for p in store.equity_curve("live")] == [Decimal(7)]


def test_kv_state(store: Store) -> None:
    assert store.get_state("trading_state") is None
    assert store.get_state("trading_state", "ACTIVE") == "ACTIVE"
    store.set_state("trading_state", "HALTED")
    store.set_state("kill_switch", {"on": True, "by": "cli", "reason": "test", "n": 1.5, "tags": ["a"]})
    assert store.get_state("trading_state") == "HALTED"
    assert store.get_state("kill_switch") == {
        "on": True,
        "by": "cli",
        "reason": "test",
        "n": 1.5,
        "tags": ["a"],
    }
    store.set_state("trading_state", None)
    assert store.get_state("trading_state", "default") is None  # stored null is not "missing"
    assert store.delete_state("trading_state") is True
    assert store.delete_state("trading_state") is False
    assert store.get_state("trading_state", "default") == "default"
    with pytest.raises(TypeError):
        store.set_state("bad", Decimal(1))
    with pytest.raises(TypeError):
        store.set_state("bad", float("nan"))


def test_atomic_commits_all_or_nothing(store: Store) -> None:
    with store.atomic():
        store.set_state("a", 1)
        with store.atomic():  # nested blocks join the outer transaction
            store.set_state("b", 2)
        assert store.get_state("a") == 1  # reads inside see the block's writes
    assert (store.get_state("a"), store.get_state("b")) == (1, 2)

    with pytest.raises(RuntimeError), store.atomic():
        store.set_state("c", 3)
        store.record_equity(T0, "paper", Decimal(1), Decimal(1))
        raise RuntimeError("crash between the two writes")
    assert store.get_state("c") is None
    assert store.equity_curve("paper") == []


def test_relaxed_commit_is_visible_atomic_and_leaves_the_connection_durable(store: Store) -> None:
    """`atomic(durable=False)` (the audit anchor's commit): committed and visible at once, rolled back
    whole on error, joins an enclosing durable block, and the next plain write is durable again."""
    with store.atomic(durable=False):
        store.set_state("relaxed", {"seq": 1})
    assert store.get_state("relaxed") == {"seq": 1}
    with pytest.raises(RuntimeError), store.atomic(durable=False):
        store.set_state("relaxed", {"seq": 2})
        raise RuntimeError("boom")
    assert store.get_state("relaxed") == {"seq": 1}
    with store.atomic(), store.atomic(durable=False):  # joins the outer, durable transaction
        store.set_state("relaxed", {"seq": 3})
    assert store.get_state("relaxed") == {"seq": 3}
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:  # the pooled connection is back to synchronous=FULL (2)
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
