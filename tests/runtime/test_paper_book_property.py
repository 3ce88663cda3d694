"""Issue 15, the slow end-to-end case: a forward-only sequence of `joe run --once --as-of` dates run
through the real CLI (one process per run, as a user runs them) on the sample data keeps true accounts:
- cash + Σ quantity × mark = equity, each mark the symbol's last close on or before the as-of;
- every stop/target touched between runs is booked on the day it was touched at the right price
  (oracle: one walk over every bar from the entry, whatever the run dates were);
- rerunning a date changes nothing.
The same checks over random sequences (25+ examples, in-process through the run stages on a synthetic
universe) are in `test_paper_book_stages_property.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pandas as pd
import pytest

from joe.core.models import Side
from joe.data import open_source
from joe.portfolio.costs import CostModel
from joe.portfolio.exits import check_exit, ratchet
from joe.portfolio.ledger import PaperPosition
from joe.portfolio.replay import bars_between, to_decimal
from joe.runtime.bootstrap import bootstrap

JOE = str(Path(sys.executable).with_name("joe"))
CONFIG = "version: 1\npipeline:\n  universe_size: 40\nai:\n  enabled: false\n"
SPAN = pd.bdate_range("2016-01-04", "2018-12-31")


def _run(as_of: date) -> None:
    out = subprocess.run(
        [JOE, "run", "--once", "--as-of", as_of.isoformat()],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert out.returncode == 0, out.stderr[-2000:]


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


@pytest.mark.timeout(900)
def test_forward_cli_runs_keep_true_accounts(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    sample_history: dict[str, pd.DataFrame],
) -> None:
    # Far apart, so stops and targets are touched between runs (the 1999 → 2018 kind).
    picks = [SPAN.get_loc(pd.Timestamp(d)) for d in ("2016-03-01", "2016-09-15", "2018-02-09")]
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
        assert store.closed_positions("paper") and opened  # exits between runs and positions still held
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
