"""Issue 17: the report's metrics against hand-computed values on a known equity curve and trade list
(the return metrics come from empyrical-reloaded; these formulas are the textbook ones)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal as D

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.backtest.metrics import compute_metrics, max_drawdown_spell, monthly_returns, regime_breakdown
from joe.core.models import Direction, Signal
from joe.portfolio.ledger import ClosedTrade

EQUITY = pd.Series(
    [100.0, 110.0, 99.0, 99.0, 121.0],
    index=pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]),
)
T0 = datetime(2024, 1, 2, tzinfo=UTC)


def _trade(sid: str, qty: str, entry: str, exit_: str, pnl: str) -> ClosedTrade:
    return ClosedTrade(sid, "AAA", D(qty), D(entry), D(exit_), T0, T0, "stop loss", D(pnl), sid)


def _signal(sid: str, entry: str, stop: str, target: str, direction: Direction = Direction.LONG) -> Signal:
    return Signal(sid, "AAA", "trend_following", direction, D(entry), D(stop), D(target), 0.5, "why", T0)


def test_return_metrics_match_hand_computation() -> None:
    r = np.array([0.1, -0.1, 0.0, 121 / 99 - 1])
    m = compute_metrics(EQUITY, [], {}, exposure=[0.5, 0.5, 1.0, 0.0, 0.0], traded_notional=252.0, fees=3.5)
    # The first point is the starting equity: 4 trading days, from 2024-01-03.
    assert (m["start"], m["end"], m["days"], m["starting_equity"]) == ("2024-01-03", "2024-01-08", 4, 100.0)
    assert m["total_return"] == pytest.approx(0.21)
    # 4 days: too short for a CAGR (1.21 ** 63 - 1 would be 1.6e5 "a year"); the note says why.
    assert m["cagr"] is None and m["cagr_note"].startswith("n/a (window < 1 month): 4 trading day(s)")
    assert m["volatility"] == pytest.approx(np.std(r, ddof=1) * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(np.mean(r) / np.std(r, ddof=1) * math.sqrt(252))
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert m["sortino"] == pytest.approx(np.mean(r) / downside * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(-0.1)
    # Peak 2024-01-03 (110), trough 01-04 (99), recovered 01-08 (121): 3 trading days, 5 calendar days.
    assert (m["max_drawdown_days"], m["max_drawdown_calendar_days"]) == (3, 5)
    assert (m["max_drawdown_peak"], m["max_drawdown_trough"], m["max_drawdown_recovered"]) == (
        "2024-01-03",
        "2024-01-04",
        "2024-01-08",
    )
    assert m["exposure"] == pytest.approx(0.4)
    # 252 traded over 4 daily returns (4/252 of a year) on a mean equity of 105.8.
    assert m["turnover"] == pytest.approx(252 / 105.8 / (4 / 252))
    assert m["turnover_unit"] == "traded notional (entries + exits) / mean equity, per year"
    assert m["fees"] == 3.5


def test_unrecovered_drawdown_lasts_to_the_end() -> None:
    spell = max_drawdown_spell(
        pd.Series([1.0, 2.0, 1.5, 1.0, 1.8], index=pd.bdate_range("2024-01-01", periods=5))
    )
    assert spell is not None and spell.recovery is None
    assert spell.depth == pytest.approx(-0.5) and spell.trading_days == 3


def test_trade_metrics_match_hand_computation() -> None:
    trades = [
        _trade("a", "10", "100", "110", "100"),  # risk (100 - 95) × 10 = 50 → +2R
        _trade("b", "-5", "50", "52", "-10"),  # short, risk (55 - 50) × 5 = 25 → -0.4R
        _trade("c", "2", "10", "11", "2"),  # no signal known: no R
    ]
    signals = {
        "a": _signal("a", "100", "95", "120"),
        "b": _signal("b", "50", "55", "40", Direction.SHORT),
    }
    m = compute_metrics(EQUITY, trades, signals)
    assert m["trades"] == 3
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(102 / 10)
    assert m["avg_r_multiple"] == pytest.approx((2.0 - 0.4) / 2)
    assert m["net_pnl"] == pytest.approx(92)


def test_no_losing_trade_has_no_profit_factor() -> None:
    m = compute_metrics(EQUITY, [_trade("a", "1", "1", "2", "1")], {})
    assert m["profit_factor"] is None and m["win_rate"] == 1.0 and m["avg_r_multiple"] is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-0.05, 0.05), min_size=30, max_size=120))
def test_monthly_and_regime_tables_compound_to_the_total(rets: list[float]) -> None:
    idx = pd.bdate_range("2023-01-02", periods=len(rets) + 1)
    equity = pd.Series(100 * np.cumprod([1.0, *(1 + np.array(rets))]), index=idx)
    total = equity.iloc[-1] / equity.iloc[0]
    monthly = monthly_returns(equity)
    cells = monthly.to_numpy().ravel()
    assert np.prod(1 + cells[np.isfinite(cells)]) == pytest.approx(total, rel=1e-9)
    labels = ["bull" if i % 3 else "bear" for i in range(len(equity))]
    table = regime_breakdown(equity, labels)
    assert np.prod(1 + table["return"].to_numpy()) == pytest.approx(total, rel=1e-9)
    assert table["days"].sum() == len(rets)
