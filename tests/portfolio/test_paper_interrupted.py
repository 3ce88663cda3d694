"""A paper order a stopped run left half-way (SIGKILL, power loss, a full disk between the
write-ahead and the booking): the next run's book resolves it and trades on, never bricked.

Found by the hostile review of 2026-12-02: a paper run on a 40 MiB tmpfs with 700 KiB free
failed in its trade stage with an entry left SUBMITTING (shown by `joe status` as a working order
forever); the same window on an exit left its order NEW, and every later run then failed at the
settle stage with `StaleOrderError` (the exit's id was taken by the stuck order).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from joe.config.schema import ExecutionConfig
from joe.core.events import NullAudit
from joe.core.models import Direction, Signal
from joe.core.order import OrderState
from joe.portfolio import PaperPortfolio, PriceBar
from joe.store import open_store

T0 = datetime(2018, 12, 31, tzinfo=UTC)

STOP_BAR = {"X1": PriceBar(D(99), D(99), D(90), D(91))}  # through the long's stop at 95


def sig(n: int) -> Signal:
    """A long on `X<n>` at 100, stop 95, target 110, 10 shares."""
    return Signal(
        f"s{n}", f"X{n}", "test", Direction.LONG, D(100), D(95), D(110), 0.9, "test", T0, quantity=D(10)
    )


def load(tmp: Path) -> tuple[PaperPortfolio, NullAudit]:
    """The paper book of `tmp` as a new run opens it, with an audit sink of its own."""
    audit = NullAudit()
    store = open_store(f"sqlite:///{tmp / 'joe.db'}", data_dir=tmp)
    return PaperPortfolio.load(store, audit, ExecutionConfig()), audit


class DiskFull(OSError):
    pass


@contextlib.contextmanager
def _full_disk() -> Iterator[None]:
    raise DiskFull(28, "database or disk is full")
    yield  # pragma: no cover


def _break_booking(pf: PaperPortfolio, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transaction that books a fill fails, as on a full disk (the write-ahead before it works)."""
    monkeypatch.setattr(pf.store, "atomic", lambda **_: _full_disk())


async def test_an_exit_interrupted_before_its_booking_is_settled_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pf, _ = load(tmp_path)
    await pf.submit([sig(1)], T0)
    with monkeypatch.context() as m:
        _break_booking(pf, m)
        with pytest.raises(DiskFull):
            await pf.on_prices(STOP_BAR, T0 + timedelta(days=1))
    assert [o.state for o in pf.store.orders(mode="paper")] == [OrderState.FILLED, OrderState.NEW]

    again, audit = load(tmp_path)
    stuck = again.resolve_interrupted()
    report = await again.on_prices(STOP_BAR, T0 + timedelta(days=1))

    assert [r[3] for r in report.closed] == ["stop loss"]  # not StaleOrderError on every later run
    assert not again.ledger.positions and len(again.store.closed_positions("paper")) == 1
    states = sorted(o.state.value for o in again.store.orders(mode="paper"))
    assert states == ["FILLED", "FILLED", "REJECTED"]  # entry, the exit's retry, the stuck attempt
    rejected = [p for e, p, ids in audit.records if e == "order.rejected"]
    assert len(stuck) == 1 and rejected and rejected[0]["interrupted"] is True
    assert again.run_closed == 1 and len(again.run_fills) == 1


async def test_an_entry_interrupted_before_its_fill_is_no_working_order_and_is_not_traded_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pf, _ = load(tmp_path)
    with monkeypatch.context() as m:
        _break_booking(pf, m)
        with pytest.raises(DiskFull):
            await pf.submit([sig(1)], T0)
    assert [o.state for o in pf.store.orders(mode="paper")] == [OrderState.SUBMITTING]

    again, audit = load(tmp_path)
    assert len(again.resolve_interrupted()) == 1
    working = {OrderState.NEW, OrderState.SUBMITTING, OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED}
    assert not again.store.orders(working, mode="paper")
    assert not again.store.fills(mode="paper") and not again.ledger.positions
    assert again.ledger.cash == D(100_000)  # nothing of it was booked
    assert [e for e, _, _ in audit.records] == ["order.rejected"]
    # A rerun of the same day's signal does not trade it a second time, and a second open resolves nothing.
    assert (await again.submit([sig(1)], T0))[0].action == "skipped"
    assert load(tmp_path)[0].resolve_interrupted() == []


async def test_a_book_without_interrupted_orders_changes_nothing(tmp_path: Path) -> None:
    pf, _ = load(tmp_path)
    await pf.submit([sig(1), sig(2)], T0)
    await pf.on_prices(STOP_BAR, T0 + timedelta(days=1))
    again, audit = load(tmp_path)
    assert again.resolve_interrupted() == [] and not audit.records
