"""The quote path's value types keep their contract with their written-out constructors: a
`WatchedPosition` refuses what it always refused, both it and a `QuoteBatch` stay frozen, compare and
copy by value; and the monitor's mids of a small batch (plain Python) are numpy's to the last bit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.core.models import Side
from joe.execution.position_monitor import _PY_MID, PositionMonitor
from joe.execution.protection import TrailingStop, Trigger, TriggerKind, WatchedPosition
from joe.execution.quotes import InstrumentIndex, QuoteBatch

from .helpers import Requests

D = Decimal


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"position_id": ""}, "position_id must not be empty"),
        ({"quantity": D(0)}, "p: quantity must be > 0 (side gives the direction), got 0"),
        ({"entry_price": D("-1")}, "p: entry_price must be > 0, got -1"),
        (
            {"stop": None, "trailing": TrailingStop(D(1), D(1))},
            "p: a trailing stop needs a resting stop to move",
        ),
        ({"stop": D(110)}, "p: the stop 110 must be below the take-profit 105"),
        ({"side": Side.SELL, "stop": D(95)}, "p: the stop 95 must be above the take-profit 105"),
        ({"exit_at": datetime(2026, 12, 2)}, "p: exit_at must be timezone-aware (UTC)"),
    ],
)
def test_watched_position_refuses_what_it_always_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "position_id": "p", "symbol": "AAA", "side": Side.BUY, "quantity": D(10), "entry_price": D(100),
        "stop": D(95), "take_profit": D(105),
    }  # fmt: skip
    with pytest.raises(ValueError) as err:
        WatchedPosition(**{**base, **kwargs})  # type: ignore[arg-type]
    assert str(err.value) == message


def test_watched_position_is_a_frozen_value() -> None:
    at = datetime(2026, 12, 2, tzinfo=UTC)
    w = WatchedPosition("p", "AAA", Side.SELL, D(2), D(100), stop=D(105), take_profit=D(90), exit_at=at)
    assert (w.position_id, w.symbol, w.side, w.quantity, w.entry_price) == ("p", "AAA", Side.SELL, 2, 100)
    assert (w.stop, w.take_profit, w.trailing, w.exit_at) == (D(105), D(90), None, at)
    same = WatchedPosition(
        position_id="p", symbol="AAA", side=Side.SELL, quantity=D(2), entry_price=D(100), stop=D(105),
        take_profit=D(90), exit_at=at,
    )  # fmt: skip
    assert w == same and hash(w) == hash(same)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.stop = D(104)  # type: ignore[misc]
    moved = dataclasses.replace(w, stop=D(104))
    assert (moved.stop, w.stop) == (D(104), D(105))
    with pytest.raises(ValueError, match="must be above the take-profit"):
        dataclasses.replace(w, stop=D(80))  # replace() goes through the same checks
    assert WatchedPosition("q", "AAA", Side.BUY, D(1), D(1)).stop is None


def test_quote_batch_is_a_frozen_value() -> None:
    b = QuoteBatch(np.array([0], np.int32), np.array([5], np.int64), np.array([1.0]), np.array([2.0]))
    assert len(b) == 1 and b.mid.tolist() == [1.5] and b.ts.tolist() == [5]
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.bid = np.array([0.5])  # type: ignore[misc]
    kw = QuoteBatch(inst=b.inst, ts=b.ts, bid=b.bid, ask=b.ask)
    assert (kw.inst is b.inst, kw.ts is b.ts, kw.bid is b.bid, kw.ask is b.ask) == (True, True, True, True)


PRICE = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(PRICE, PRICE), min_size=1, max_size=2 * _PY_MID))
def test_the_monitor_marks_every_batch_size_with_numpys_mid(quotes: list[tuple[float, float]]) -> None:
    idx = InstrumentIndex()
    mon = PositionMonitor(idx, Requests())
    n = len(quotes)
    bid = np.array([b for b, _ in quotes])
    ask = np.array([a for _, a in quotes])
    for k in range(n):  # each quote in a batch of its own (the plain-Python mid) ...
        sym = f"S{k}"
        mon.on_batch(QuoteBatch.of([idx.id(sym)], [k], bid[k : k + 1], ask[k : k + 1]))
    single = [mon.mark(f"S{k}") for k in range(n)]
    mon2 = PositionMonitor(idx, Requests())
    mon2.on_batch(QuoteBatch.of(list(range(n)), list(range(n)), bid, ask))  # ... and all in one
    assert single == [mon2.mark(f"S{k}") for k in range(n)] == ((bid + ask) * 0.5).tolist()


def test_a_level_exactly_at_the_mid_fires_in_small_and_large_batches() -> None:
    # bid/ask whose mid is exactly the stop; the crossing is the same whichever way the mid is taken
    for n in (1, _PY_MID, _PY_MID + 1, 4 * _PY_MID):
        idx = InstrumentIndex(["AAA"])
        mon = PositionMonitor(idx, Requests())
        seen: list[Trigger] = []
        mon.listeners.append(seen.append)
        mon.add(WatchedPosition("p", "AAA", Side.BUY, D(1), D(100), stop=D("99.5"), take_profit=D(101)))
        bid = np.full(n, 100.0)
        ask = np.full(n, 100.0)
        bid[-1], ask[-1] = 99.25, 99.75  # mid 99.5: at the stop
        mon.on_batch(QuoteBatch.of(np.zeros(n), np.arange(n), bid, ask))
        assert [(t.kind, t.price, t.ts_ns) for t in seen] == [(TriggerKind.STOP, 99.5, n - 1)], n
