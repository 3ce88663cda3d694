"""A held instrument whose data ends (delisted, merged, a file that stops) is closed at its last known
close after `paper.data_ended_sessions` market sessions without a bar, exit reason "data ended", said
once in the warnings. Before, such a position could never exit: marked at its last price for ever, its
unknown correlation counted against every entry by `correlated_exposure` (fail closed, right for live),
so the book froze for the rest of the backtest. A short gap closes nothing, and the close is causal."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.analysis.panel import Panel
from joe.backtest.engine import BacktestResult
from joe.backtest.loading import load_history_sync
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig
from joe.data.calendars import sessions_after
from joe.portfolio.paper import DATA_ENDED
from joe.runtime.data_ended import market_sessions_after

START, LATER = date(2020, 11, 2), date(2021, 4, 7)
N = ExecutionConfig().paper.data_ended_sessions


def _run(folder: Path, end: date = LATER) -> BacktestResult:
    cfg = ExecutionConfig()
    source = f"csv:{folder}"
    return run_on_history(load_history_sync(source, cfg, end=end), cfg, BacktestOptions(source, START, end))


def _rows(folder: Path, symbol: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{symbol}.csv")


def _keep(folder: Path, symbol: str, keep: pd.Series) -> None:
    df = _rows(folder, symbol)
    df.loc[keep.to_numpy()].to_csv(folder / f"{symbol}.csv", index=False)


@pytest.fixture(scope="module")
def clean(market_dir: Path) -> BacktestResult:
    return _run(market_dir)


@pytest.fixture(scope="module")
def held(clean: BacktestResult) -> tuple[str, date]:
    """A symbol held for a while in the middle of the window, and a day it was held on (its cut day)."""
    for t in clean.trades:
        opened, closed = t.opened_at.date(), t.closed_at.date()
        if date(2020, 12, 1) <= opened <= date(2021, 2, 1) and np.busday_count(opened, closed) >= 8:
            return t.symbol, (pd.Timestamp(opened) + pd.offsets.BDay(2)).date()
    raise AssertionError("no trade held 8+ days in the window: the fixture market changed")


def _cut_copy(market_dir: Path, tmp_path: Path, symbol: str, last: date) -> Path:
    folder = tmp_path / "prices"
    shutil.copytree(market_dir, folder)
    df = _rows(folder, symbol)
    _keep(folder, symbol, pd.to_datetime(df["date"]).dt.date <= last)
    return folder


def _exit_day(last: date, days: pd.DatetimeIndex) -> date:
    """The first market day with N market sessions and N of the NYSE's since `last`."""
    after = [d.date() for d in days if d.date() > last]
    return next(d for k, d in enumerate(after, 1) if k >= N and sessions_after("XNYS", last, d) >= N)


def _fills(result: BacktestResult, upto: date) -> list[tuple[object, ...]]:
    return [
        (f.ts.date(), f.symbol, f.side.value, f.quantity, f.price)
        for f in result.fills
        if f.ts.date() <= upto
    ]


def test_a_position_whose_data_ends_is_closed_and_the_book_trades_on(
    market_dir: Path, tmp_path: Path, clean: BacktestResult, held: tuple[str, date]
) -> None:
    symbol, last = held
    folder = _cut_copy(market_dir, tmp_path, symbol, last)
    result = _run(folder)

    ended = [t for t in result.trades if t.reason == DATA_ENDED]
    assert [t.symbol for t in ended] == [symbol]
    (t,) = ended
    assert t.opened_at.date() <= last
    days = pd.bdate_range(START, LATER)
    assert t.closed_at.date() == _exit_day(last, days)
    close = float(_rows(folder, symbol)["close"].iloc[-1])  # its last known close, less the paper costs
    lo, hi = (close * 0.999, close) if t.quantity > 0 else (close, close * 1.001)  # a sell gives, a buy pays
    assert lo <= float(t.exit_price) <= hi
    said = [w for w in result.warnings if symbol in w and DATA_ENDED in w]
    assert len(said) == 1 and str(last) in said[0]
    # The book is not frozen: positions open after the close, as many as on the clean data (± a few).
    after = t.closed_at.date()
    entries = [f for f in result.fills if f.ts.date() > after and f.symbol != symbol]
    clean_entries = [f for f in clean.fills if f.ts.date() > after and f.symbol != symbol]
    assert len(entries) >= len(clean_entries) // 2 > 0
    assert result.open_positions == result.days[-1].positions
    assert all(tr.symbol != symbol or tr.closed_at.date() <= after for tr in result.trades)


@pytest.mark.parametrize("gap", [1, 2, N - 1])
def test_a_short_gap_closes_nothing(
    market_dir: Path, tmp_path: Path, held: tuple[str, date], gap: int
) -> None:
    symbol, last = held
    folder = tmp_path / "prices"
    shutil.copytree(market_dir, folder)
    df = _rows(folder, symbol)
    day = pd.to_datetime(df["date"]).dt.date
    missing = set(pd.bdate_range(pd.Timestamp(last) + pd.offsets.BDay(1), periods=gap).date)
    _keep(folder, symbol, ~day.isin(missing))  # the symbol misses `gap` days and resumes
    result = _run(folder)
    assert [t for t in result.trades if t.reason == DATA_ENDED] == []
    assert not [w for w in result.warnings if DATA_ENDED in w]


def test_the_close_is_causal(market_dir: Path, tmp_path: Path, held: tuple[str, date]) -> None:
    """Results up to day D are the same whether all the data ends at D or goes on: D before the
    close (the symbol might yet resume) and D on the day of the close."""
    symbol, last = held
    folder = _cut_copy(market_dir, tmp_path, symbol, last)
    longer = _run(folder)
    closed_on = next(t.closed_at.date() for t in longer.trades if t.reason == DATA_ENDED)
    for d in ((pd.Timestamp(last) + pd.offsets.BDay(2)).date(), closed_on):
        short = _run(folder, end=d)
        assert [r for r in longer.days if r.day <= d] == short.days
        assert _fills(longer, d) == _fills(short, d)
        assert [t for t in longer.trades if t.closed_at.date() <= d] == short.trades
    assert len(longer.fills) > len(_fills(longer, closed_on))


@settings(max_examples=60, deadline=None)
@given(
    traded=st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=1, max_size=30),
    last=st.integers(0, 29),
    until=st.integers(0, 40),
)
def test_market_sessions_count_days_others_trade_and_are_causal(
    traded: list[list[bool]], last: int, until: int
) -> None:
    """`market_sessions_after` counts the panel's dates in (last, until] on which some instrument has a
    close, and reads nothing after `until` (the panel cut after it gives the same count)."""
    n = len(traded)
    dates = pd.bdate_range("2021-01-04", periods=n, tz="UTC")
    close = np.where(np.array(traded), 10.0, np.nan)
    nan = np.full_like(close, np.nan)

    def panel(rows: int) -> Panel:
        return Panel(
            dates[:rows], ["A", "B", "C"], close[:rows], close[:rows], close[:rows], close[:rows], nan[:rows]
        )

    day = pd.bdate_range("2021-01-04", periods=41, tz="UTC")
    t_last: datetime = day[last].to_pydatetime()
    t_until: datetime = day[until].to_pydatetime()
    want = sum(1 for k in range(n) if t_last < dates[k] <= t_until and any(traded[k]))
    assert market_sessions_after(panel(n), t_last, t_until) == want
    cut = int(dates.searchsorted(day[until], side="right"))
    assert market_sessions_after(panel(cut), t_last, t_until) == want


@pytest.mark.parametrize("defect", ["nan_close", "negative_low"])
def test_a_bad_row_while_held_is_not_an_end_of_data(
    market_dir: Path, tmp_path: Path, held: tuple[str, date], defect: str
) -> None:
    # A bad row inside the window excludes its symbol from that day on (the quality stage): the file is
    # broken, not ended, so the position keeps its mark until the file is fixed — never "data ended".
    sym, day = held
    folder = tmp_path / "prices"
    shutil.copytree(market_dir, folder)
    df = _rows(folder, sym)
    at = pd.to_datetime(df["date"]).dt.date == day
    assert at.any()
    if defect == "nan_close":
        df.loc[at.to_numpy(), "close"] = np.nan
    else:
        df.loc[at.to_numpy(), "low"] = -1.0
    df.to_csv(folder / f"{sym}.csv", index=False)
    result = _run(folder)
    assert not [t for t in result.trades if t.reason == DATA_ENDED], "a broken file taken as delisted"
