"""`PaperPortfolio.settle`: every bar since the last settle through the exits, marks at the last close.

Property: whatever forward-only sequence of dates the book is settled on, the result is the same as
walking every bar once (each exit on the day its level was touched, at the level or the gapping
open, through the cost model), cash + Σ quantity × mark = equity, and settling a date twice changes
nothing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.config.schema import ExecutionConfig
from joe.core.events import NullAudit
from joe.core.models import Direction, Side, Signal
from joe.portfolio import PaperPortfolio
from joe.portfolio.costs import CostModel
from joe.portfolio.exits import check_exit, ratchet
from joe.portfolio.ledger import PaperPosition
from joe.portfolio.replay import bars_between
from joe.store import open_store

DAYS = pd.bdate_range("2020-01-01", periods=60, tz="UTC")
T0 = DAYS[0].to_pydatetime()


def frame(seed: int, stop_after: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, len(DAYS))))
    gap = rng.normal(0, 0.01, len(DAYS))
    open_ = close * np.exp(gap)
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, len(DAYS)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, len(DAYS)))
    f = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=DAYS).round(4)
    return f.iloc[:stop_after] if stop_after else f


def signal(n: int, symbol: str, direction: Direction, entry: D, trail: bool) -> Signal:
    k = D("0.04")
    stop = entry * (1 - k) if direction is Direction.LONG else entry * (1 + k)
    target = entry * (1 + 2 * k) if direction is Direction.LONG else entry * (1 - 2 * k)
    return Signal(
        f"s{n}",
        symbol,
        "test",
        direction,
        entry,
        stop.quantize(D("0.0001")),
        target.quantize(D("0.0001")),
        0.9,
        "test",
        T0,
        quantity=D(10),
        trailing_distance=(entry * k).quantize(D("0.0001")) if trail else None,
    )


def book(tmp: Path) -> PaperPortfolio:
    store = open_store(f"sqlite:///{tmp / 'joe.db'}", data_dir=tmp)
    return PaperPortfolio.load(store, NullAudit(), ExecutionConfig())


def expected_exit(
    pos: PaperPosition, history: pd.DataFrame, until: datetime
) -> tuple[datetime, D, str] | None:
    """The oracle: walk every bar after the entry once."""
    for ts, bars in bars_between({pos.symbol: history}, pos.opened_at, until):
        bar = bars[pos.symbol]
        decision = check_exit(pos, bar)
        if decision is not None:
            return ts, decision.price, decision.reason
        pos = ratchet(pos, bar)
    return None


async def test_exit_costs_match_entry_costs(tmp_path: Path) -> None:
    """Both sides pay half the spread plus slippage (costs.py's docstring)."""
    pf = book(tmp_path)
    hist = {"L": frame(1), "S": frame(2)}
    e_l, e_s = D(str(hist["L"]["close"].iloc[0])), D(str(hist["S"]["close"].iloc[0]))
    out = await pf.submit(
        [signal(1, "L", Direction.LONG, e_l, False), signal(2, "S", Direction.SHORT, e_s, False)], T0
    )
    costs = CostModel()
    assert out[0].fill is not None and out[0].fill.price == costs.fill_price(Side.BUY, e_l)
    await pf.settle(hist, DAYS[-1].to_pydatetime())
    closed = {p.symbol: p for p in pf.store.closed_positions("paper")}
    for sym, side in (("L", Side.SELL), ("S", Side.BUY)):
        if sym not in closed:
            continue
        pos = closed[sym]
        ref = PaperPosition("x", sym, pos.quantity, pos.avg_price, D(0), T0, "", *_levels(pos))
        hit = expected_exit(ref, hist[sym], DAYS[-1].to_pydatetime())
        assert hit is not None
        assert pos.exit_price == costs.fill_price(side, hit[1])
        half = costs.spread_bps / 2 + costs.slippage_bps
        assert abs(pos.exit_price - hit[1]) / hit[1] * 10_000 <= half + D("0.5")  # type: ignore[operator]


def _levels(row: object) -> tuple[D | None, D | None, D | None]:
    return (row.stop_loss, row.take_profit, row.trailing_distance)  # type: ignore[attr-defined]


async def test_a_symbol_without_new_bars_keeps_its_last_close_with_its_date(tmp_path: Path) -> None:
    pf = book(tmp_path)
    hist = {"GONE": frame(3, stop_after=20)}
    entry = D(str(hist["GONE"]["close"].iloc[0]))
    s = signal(1, "GONE", Direction.LONG, entry, False)
    s = Signal(
        s.signal_id, s.symbol, s.strategy, s.direction, entry, D(1), D(10_000), 0.9, "t", T0, quantity=D(10)
    )
    await pf.submit([s], T0)
    until = DAYS[40].to_pydatetime()
    await pf.settle(hist, until)
    (pos,) = pf.ledger.positions.values()
    assert pos.mark == D(str(hist["GONE"]["close"].iloc[19]))
    assert pf.marked_at(pos.position_id) == DAYS[19].to_pydatetime()
    equity = pf.ledger.equity
    again = book(tmp_path)  # reload: the mark survives (never the entry price)
    await again.settle(hist, until)
    assert again.ledger.equity == equity
    assert again.marked_at(pos.position_id) == DAYS[19].to_pydatetime()


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[str, Direction, bool]], list[int]]:
    n = draw(st.integers(1, 4))
    positions = [
        (f"P{i}", draw(st.sampled_from([Direction.LONG, Direction.SHORT])), draw(st.booleans()))
        for i in range(n)
    ]
    dates = sorted(set(draw(st.lists(st.integers(1, len(DAYS) - 1), min_size=1, max_size=6))))
    return positions, dates


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios(), seed=st.integers(0, 10_000), repeat=st.booleans())
async def test_any_forward_sequence_of_settles_books_every_exit_on_its_day(
    tmp_path_factory: object,
    scenario: tuple[list[tuple[str, Direction, bool]], list[int]],
    seed: int,
    repeat: bool,
) -> None:
    tmp = tmp_path_factory.mktemp("settle")  # type: ignore[attr-defined]
    positions, dates = scenario
    hist = {sym: frame(seed + i) for i, (sym, _, _) in enumerate(positions)}
    pf = book(tmp)
    sigs = [
        signal(i, sym, d, D(str(hist[sym]["close"].iloc[0])), trail)
        for i, (sym, d, trail) in enumerate(positions)
    ]
    await pf.submit(sigs, T0)
    opened = {p.signal_id: p for p in pf.ledger.positions.values()}
    costs = CostModel()
    for k in dates:
        until = DAYS[k].to_pydatetime()
        pf = book(tmp)  # each run reloads the book from the store
        await pf.settle(hist, until)
        state = (pf.ledger.cash, pf.ledger.equity, dict(pf.ledger.positions))
        # cash + Σ quantity × mark = equity, with each mark the last close on or before `until`
        marked = pf.ledger.cash + sum((p.quantity * p.mark_price for p in pf.ledger.positions.values()), D(0))
        assert marked == pf.ledger.equity
        for p in pf.ledger.positions.values():
            last = hist[p.symbol].loc[hist[p.symbol].index <= DAYS[k]].iloc[-1]
            assert p.mark == D(repr(round(float(last["close"]), 6)))
        if repeat:  # rerunning the same date changes nothing
            pf2 = book(tmp)
            await pf2.settle(hist, until)
            assert (pf2.ledger.cash, pf2.ledger.equity, dict(pf2.ledger.positions)) == state
    final = DAYS[dates[-1]].to_pydatetime()
    closed = {p.signal_id: p for p in pf.store.closed_positions("paper")}
    for sid, pos in opened.items():
        hit = expected_exit(pos, hist[pos.symbol], final)
        if hit is None:
            assert sid not in closed, f"{pos.symbol} closed without touching a level"
            continue
        ts, level, reason = hit
        row = closed[sid]
        assert row.closed_at == ts, (pos.symbol, row.closed_at, ts)
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        assert row.exit_price == costs.fill_price(side, level)
        assert row.exit_reason == reason
    assert pf.last_bar_ts() == final
    assert pf.ledger.cash == pf.ledger.starting_cash + pf.ledger.realized_pnl - sum(
        (p.quantity * p.entry_price + p.entry_commission for p in pf.ledger.positions.values()), D(0)
    )
