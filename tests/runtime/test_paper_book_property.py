"""Property (issue 15): over random forward-only sequences of `joe run --once --as-of` dates, run
in-process, the paper book keeps true accounts:
- cash + Σ quantity × mark = equity, each mark the symbol's last close on or before the as-of;
- every stop/target touched between runs is booked on the day it was touched at the right price
  (oracle: one walk over every bar from the entry, whatever the run dates were);
- rerunning a date changes nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from joe.core.models import Side
from joe.data import open_source
from joe.portfolio.costs import CostModel
from joe.portfolio.exits import check_exit, ratchet
from joe.portfolio.ledger import PaperPosition
from joe.portfolio.replay import bars_between, to_decimal
from joe.runtime.bootstrap import bootstrap
from joe.runtime.run_once import RunOptions, run_once_sync

CONFIG = "version: 1\npipeline:\n  universe_size: 40\nai:\n  enabled: false\n"
SPAN = pd.bdate_range("2016-01-04", "2018-12-31")


def _run(as_of: date) -> None:
    rt = bootstrap()
    try:
        run_once_sync(rt, RunOptions(as_of=as_of))
    finally:
        rt.close()


def _snapshot(rt: object) -> tuple[object, ...]:
    s = rt.store  # type: ignore[attr-defined]
    acct = s.get_paper_account()
    return (
        acct.cash,
        acct.realized_pnl,
        tuple((p.id, p.stop_loss, p.high_water) for p in s.open_positions("paper")),
        len(s.closed_positions("paper")),
        s.equity_curve("paper")[-1].equity,
        len(s.fills()),
    )


@pytest.fixture
def sample_history() -> dict[str, pd.DataFrame]:
    src = open_source("sample", n_synthetic=40)
    cache: dict[str, pd.DataFrame] = {}

    class Lazy(dict[str, pd.DataFrame]):
        def __missing__(self, sym: str) -> pd.DataFrame:
            import asyncio

            cache[sym] = asyncio.run(src.history(sym, "1d"))
            return cache[sym]

    return Lazy()


# Each example is 3-4 full runs (seconds each): no shrinking or explaining (they would rerun it many times).
@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(picks=st.lists(st.integers(0, len(SPAN) - 1), min_size=2, max_size=3, unique=True))
def test_random_forward_runs_keep_true_accounts(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    sample_history: dict[str, pd.DataFrame],
    picks: list[int],
) -> None:
    folder = tmp_path_factory.mktemp("book")
    (folder / "config").mkdir()
    (folder / "config/execution.yaml").write_text(CONFIG)
    monkeypatch.chdir(folder)
    for name in ("TRADING_MODE", "JOE_BROKER", "JOE_DB_URL", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOE_DATA_DIR", str(folder / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(folder / "config/execution.yaml"))
    dates = [SPAN[i].date() for i in sorted(picks)]
    for d in dates:
        _run(d)
    final = pd.Timestamp(dates[-1], tz="UTC")
    rt = bootstrap()
    try:
        before = _snapshot(rt)
        store = rt.store
        acct = store.get_paper_account()
        assert acct is not None
        opened = store.open_positions("paper")
        marks = {p.symbol: sample_history[p.symbol] for p in opened}
        marked = acct.cash
        for p in opened:
            h = marks[p.symbol]
            last = h.loc[h.index <= final].iloc[-1]
            marked += p.quantity * to_decimal(float(last["close"]))
        assert store.equity_curve("paper")[-1].equity == marked  # cash + marked positions = equity
        costs = CostModel()
        every = store.closed_positions("paper") + opened
        for row in every:
            orders = [o for o in store.orders(mode="paper") if o.intent.signal_id == row.signal_id]
            entry = next(o for o in orders if o.intent.leg.value == "entry")
            pos = PaperPosition(
                str(row.id),
                row.symbol,
                row.quantity,
                row.avg_price,
                D(0),
                row.opened_at,
                row.signal_id or "",
                entry.intent.stop_loss,
                entry.intent.take_profit,
                entry.intent.trailing_distance,
                row.avg_price,
            )
            hit = None
            for ts, bars in bars_between({row.symbol: sample_history[row.symbol]}, row.opened_at, final):
                decision = check_exit(pos, bars[row.symbol])
                if decision is not None:
                    hit = (ts, decision)
                    break
                pos = ratchet(pos, bars[row.symbol])
            if hit is None:
                assert row.closed_at is None, (row.symbol, row.closed_at, row.exit_reason)
                continue
            ts, decision = hit
            side = Side.SELL if row.quantity > 0 else Side.BUY
            assert (row.symbol, row.closed_at, row.exit_price, row.exit_reason) == (
                row.symbol,
                ts,
                costs.fill_price(side, decision.price),
                decision.reason,
            )
    finally:
        rt.close()
    _run(dates[-1])  # rerunning the last date changes nothing
    rt = bootstrap()
    try:
        assert _snapshot(rt) == before
    finally:
        rt.close()
