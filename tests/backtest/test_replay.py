"""The event replay equals a naive bar-by-bar loop, and it never looks ahead."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.backtest.replay import replay_target_positions, sma_cross_target, target_events
from joe.portfolio.costs import CostModel
from joe.portfolio.ledger import PaperLedger


def _bars(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.concatenate([[100.0], close[:-1]])
    ts = (np.arange(n, dtype=np.int64) + 1_600_000_000) * 1_000_000_000
    return ts, open_, close


def _naive(open_: np.ndarray, close: np.ndarray, target: np.ndarray, size: float) -> tuple[list, np.ndarray]:
    """Bar by bar: at each bar fill the previous bar's decision at this open, then mark at the close."""
    cash, held, fills, equity = 1_000_000.0, 0, [], []
    pending = None
    for t in range(len(close)):
        if pending is not None and pending != held:
            px = float(Decimal(repr(float(open_[t]))))
            if held:
                cash += held * size * px
                fills.append((t, -held))
            if pending:
                cash -= pending * size * px
                fills.append((t, pending))
            held = pending
        equity.append(cash + held * size * close[t])
        pending = int(target[t])
    return fills, np.array(equity)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 400), short=st.booleans())
def test_replay_equals_naive_loop(seed: int, n: int, short: bool) -> None:
    ts, open_, close = _bars(seed, n)
    rng = np.random.default_rng(seed + 1)
    target = rng.integers(-1 if short else 0, 2, n).astype(np.int8)
    ledger = PaperLedger.new(Decimal(1_000_000), allow_margin=True, max_leverage=Decimal(100))
    res = replay_target_positions("X", ts, open_, close, target, Decimal(3), ledger)
    fills, equity = _naive(open_, close, target, 3.0)
    assert [(f.bar, (1 if f.side.value == "BUY" else -1)) for f in res.fills] == fills
    np.testing.assert_allclose(res.equity, equity, rtol=0, atol=1e-6)
    # Accounting identity of the ledger: equity = start + realised + open PnL.
    last = Decimal(repr(float(close[-1])))
    open_pnl = sum((p.quantity * (last - p.entry_price) for p in ledger.positions.values()), Decimal(0))
    assert abs(float(Decimal(1_000_000) + ledger.realized_pnl + open_pnl) - res.equity[-1]) < 1e-6


def test_last_bar_decision_is_not_filled() -> None:
    ts, open_, close = _bars(1, 5)
    target = np.array([0, 0, 0, 0, 1], dtype=np.int8)
    res = replay_target_positions("X", ts, open_, close, target, Decimal(1), PaperLedger.new(Decimal(1000)))
    assert res.fills == [] and res.entries == 0


def test_costs_are_paid_on_both_sides() -> None:
    ts, open_, close = _bars(2, 6)
    target = np.array([1, 1, 0, 0, 0, 0], dtype=np.int8)
    costs = CostModel(spread_bps=Decimal(10), slippage_bps=Decimal(0), commission_min=Decimal(1))
    ledger = PaperLedger.new(Decimal(10_000))
    res = replay_target_positions("X", ts, open_, close, target, Decimal(10), ledger, costs)
    buy, sell = res.fills
    assert buy.price > Decimal(repr(float(open_[1]))) and sell.price < Decimal(repr(float(open_[3])))
    assert res.trades[0].pnl == 10 * (sell.price - buy.price) - buy.commission - sell.commission


def test_sma_cross_has_no_look_ahead() -> None:
    _, _, close = _bars(3, 600)
    full = sma_cross_target(close)
    for cut in (60, 200, 599):
        np.testing.assert_array_equal(sma_cross_target(close[:cut]), full[:cut])
    assert not full[:49].any()


def test_target_events() -> None:
    assert target_events(np.array([0, 1, 1, 0, -1, -1, 1])).tolist() == [1, 3, 4, 6]
    assert target_events(np.array([1, 1])).tolist() == [0]
