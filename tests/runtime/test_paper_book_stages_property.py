"""Property (issue 15), fast: random forward-only sequences of runs through the real run stages
(`open_book → load_market → settle_book → trade`, in-process) on a small synthetic universe whose
prices hypothesis draws (gaps through levels included), with the signals of each date drawn too.

Checked after every sequence, against oracles that never look at how the runs were spaced:
- cash = starting cash − Σ signed fill notional − Σ commissions, and cash + Σ quantity × mark = equity,
  each mark the symbol's last close on or before the last as-of;
- every stop / target / trailing stop touched between runs is booked on the bar it was touched, at
  that level (or the open when the bar gapped through it) after costs; untouched positions stay open;
- rerunning the last date changes nothing.
Analysis and the report are left out (their own tests cover them): the signals stand in for the
analysis result, so 25+ examples fit in seconds. `test_paper_book_property.py` keeps the slow case
through the real CLI on the sample data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from joe.audit.chain import tail
from joe.core.models import Direction, Instrument, Side, Signal
from joe.portfolio.costs import CostModel
from joe.portfolio.exits import check_exit, ratchet
from joe.portfolio.ledger import PaperPosition
from joe.portfolio.replay import bars_between, to_decimal
from joe.runtime import stages
from joe.runtime.bootstrap import Runtime, bootstrap
from joe.runtime.stages import RunOptions, RunState

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
N_BARS = 160
DAYS = pd.bdate_range("2020-01-01", periods=N_BARS, tz=UTC)
# A short panel (60 bars) so a run long after the last one reads held symbols' history from the source.
CONFIG = "version: 1\npipeline:\n  history_bars: 60\nrisk:\n  max_positions: 6\nai:\n  enabled: false\n"


def make_prices(seed: int) -> dict[str, pd.DataFrame]:
    """Random-walk daily OHLCV per symbol, with occasional opening gaps of several percent."""
    rng = np.random.default_rng(seed)
    out = {}
    for sym in SYMBOLS:
        r = rng.normal(0, 0.02, N_BARS)
        close = 40 * np.exp(np.cumsum(r))
        gap = np.where(rng.random(N_BARS) < 0.08, rng.normal(0, 0.06, N_BARS), rng.normal(0, 0.004, N_BARS))
        op = np.concatenate([[close[0]], close[:-1]]) * np.exp(gap)
        high = np.maximum(op, close) * np.exp(np.abs(rng.normal(0, 0.01, N_BARS)))
        low = np.minimum(op, close) * np.exp(-np.abs(rng.normal(0, 0.01, N_BARS)))
        out[sym] = pd.DataFrame(
            {"open": op, "high": high, "low": low, "close": close, "volume": 2e6}, index=DAYS
        ).round(4)
    return out


class FrameSource:
    """A `MarketData` over in-memory frames, clipped at the run's as-of as local sources are."""

    name = "frames"

    def __init__(self, frames: dict[str, pd.DataFrame], as_of: date | None) -> None:
        end = pd.Timestamp(as_of, tz=UTC) if as_of else DAYS[-1]
        self.frames = {s: f.loc[f.index <= end] for s, f in frames.items()}

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        return [Instrument(s) for s in self.frames]

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        return self.frames[symbol]

    async def sentiment(self, symbols: list[str]) -> dict[str, Any]:
        return {}

    def describe(self) -> str:
        return "synthetic frames"


class _Quiet:
    def stage(self, name: str, detail: str = "") -> None:
        pass


@dataclass
class _Result:
    """Stands in for the analysis result: `trade` reads the approved signals."""

    approved: list[Signal]


@dataclass(frozen=True)
class Call:
    symbol: str
    long: bool
    stop_pct: float
    target_pct: float
    trailing: bool
    qty: int


CALLS = st.lists(
    st.builds(
        Call,
        st.sampled_from(SYMBOLS),
        st.booleans(),
        st.floats(0.01, 0.08),
        st.floats(0.01, 0.15),
        st.booleans(),
        st.integers(1, 400),
    ),
    min_size=1,
    max_size=3,
)


def _signals(calls: list[Call], close: dict[str, float], ts: pd.Timestamp) -> list[Signal]:
    out = []
    for k, c in enumerate(calls):
        entry = to_decimal(close[c.symbol])
        sign = 1 if c.long else -1
        stop = to_decimal(close[c.symbol] * (1 - sign * c.stop_pct))
        target = to_decimal(close[c.symbol] * (1 + sign * c.target_pct))
        out.append(
            Signal(
                f"sig-{ts.date()}-{k}-{c.symbol}",
                c.symbol,
                "property",
                Direction.LONG if c.long else Direction.SHORT,
                entry,
                stop,
                target,
                0.5,
                "drawn",
                ts.to_pydatetime(),
                trailing_distance=abs(entry - stop) if c.trailing else None,
                quantity=D(c.qty),
            )
        )
    return out


async def _run(rt: Runtime, frames: dict[str, pd.DataFrame], day: int, calls: list[Call]) -> None:
    """One `joe run --once --as-of DAYS[day]`: each stage reloads the book from the store."""
    opts = RunOptions(source="csv:/synthetic", as_of=DAYS[day].date())
    now = datetime(2030, 1, 1, tzinfo=UTC)
    st_ = RunState(rt, opts, f"run-{day}-{uuid.uuid4().hex[:8]}", now, _Quiet(), lambda: now)
    stages.open_book(st_)
    await stages.load_market(st_)
    await stages.settle_book(st_)
    closes = {s: float(f.loc[DAYS[day], "close"]) for s, f in frames.items()}
    st_.result = _Result(_signals(calls, closes, DAYS[day]))  # type: ignore[assignment]
    await stages.trade(st_)


def _snapshot(rt: Runtime) -> tuple[Any, ...]:
    s = rt.store
    acct = s.get_paper_account()
    return (
        acct.cash if acct else None,
        acct.realized_pnl if acct else None,
        tuple((p.id, p.stop_loss, p.high_water) for p in s.open_positions("paper")),
        len(s.closed_positions("paper")),
        s.equity_curve("paper")[-1].equity,
        len(s.fills()),
    )


def _check_book(rt: Runtime, frames: dict[str, pd.DataFrame], final: pd.Timestamp) -> None:
    store = rt.store
    acct = store.get_paper_account()
    assert acct is not None
    fills = store.fills(mode="paper")
    flow = sum((f.side.sign * f.quantity * f.price + f.commission for f in fills), D(0))
    assert acct.cash == acct.starting_cash - flow  # cash follows the fills exactly
    opened = store.open_positions("paper")
    marked = acct.cash
    for p in opened:
        h = frames[p.symbol]
        marked += p.quantity * to_decimal(float(h.loc[h.index <= final].iloc[-1]["close"]))
    assert store.equity_curve("paper")[-1].equity == marked  # cash + marked positions = equity
    costs = CostModel.from_config(rt.config.paper)
    entries = {o.intent.signal_id: o for o in store.orders(mode="paper") if o.intent.leg.value == "entry"}
    for row in store.closed_positions("paper") + opened:
        entry = entries[row.signal_id]
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
        for ts, bars in bars_between({row.symbol: frames[row.symbol]}, row.opened_at, final):
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
        assert (row.closed_at, row.exit_price, row.exit_reason) == (
            ts,
            costs.fill_price(side, decision.price),
            decision.reason,
        ), row.symbol


def _scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder, in memory when the machine has /dev/shm (the audit log fsyncs every record)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="joe-book-", dir=shm))
    return tmp_path_factory.mktemp("book")


@pytest.fixture
def fresh_book(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`make(frames)` → a runtime on a new, empty book whose market data are `frames`."""
    monkeypatch.setattr(stages, "MIN_PANEL_BARS", 0)
    for name in ("TRADING_MODE", "JOE_BROKER", "JOE_DB_URL", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOE_LOG_LEVEL", "WARNING")
    made: list[tuple[Runtime, Path]] = []

    def drop() -> None:  # one example's book at a time
        while made:
            rt, folder = made.pop()
            rt.close()
            if str(folder).startswith("/dev/shm"):
                shutil.rmtree(folder, ignore_errors=True)

    def make(frames: dict[str, pd.DataFrame]) -> Runtime:
        drop()
        folder = _scratch(tmp_path_factory)
        (folder / "execution.yaml").write_text(CONFIG)
        monkeypatch.setenv("JOE_DATA_DIR", str(folder / "data"))
        monkeypatch.setenv("JOE_CONFIG", str(folder / "execution.yaml"))
        monkeypatch.setattr(
            stages, "open_market_data", lambda rt, opts: _opened(FrameSource(frames, opts.as_of))
        )
        rt = bootstrap()
        made.append((rt, folder))
        return rt

    yield make
    drop()


async def _opened(source: FrameSource) -> tuple[FrameSource, Any]:
    async def close() -> None:
        return None

    return source, close


@pytest.mark.timeout(900)  # 30 forward runs through the real stages: over the suite's 180 s on a busy machine
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**16),
    runs=st.lists(st.tuples(st.integers(60, N_BARS - 1), CALLS), min_size=1, max_size=5),
)
# Found in CI: AAA is excluded by data quality (an unconfirmed-split gap 12 bars in) yet the drawn
# signal was booked with no as-of mark (equity off by the spread). Entries without a bar are refused.
@example(seed=22383, runs=[(60, [Call("AAA", False, 0.0625, 0.125, False, 1)])])
def test_random_forward_runs_through_the_stages_keep_true_accounts(
    fresh_book: Any, seed: int, runs: list[tuple[int, list[Call]]]
) -> None:
    frames = make_prices(seed)
    rt = fresh_book(frames)
    calls: dict[int, list[Call]] = {}
    for day, drawn in runs:  # the analysis of a date is deterministic: a rerun sees the same signals
        calls.setdefault(day, drawn)
    ordered = sorted(day for day, _ in runs)  # forward only; a repeated day is a rerun of that date
    for d in ordered:
        asyncio.run(_run(rt, frames, d, calls[d]))
    _check_book(rt, frames, DAYS[ordered[-1]])
    closed = rt.store.closed_positions("paper")
    event(f"positions closed between runs: {min(len(closed), 3)}{'+' if len(closed) >= 3 else ''}")
    event(f"gap exits: {any(p.exit_reason and 'gap' in p.exit_reason for p in closed)}")
    before = _snapshot(rt)
    asyncio.run(_run(rt, frames, ordered[-1], calls[ordered[-1]]))  # rerunning changes nothing
    assert _snapshot(rt) == before


def test_a_signal_on_a_symbol_without_an_as_of_bar_is_refused_not_booked(fresh_book: Any) -> None:
    """AAA of seed 22383 is excluded by data quality on day 60: its signal is refused and audited."""
    frames = make_prices(22383)
    rt = fresh_book(frames)
    opts = RunOptions(source="csv:/synthetic", as_of=DAYS[60].date())
    now = datetime(2030, 1, 1, tzinfo=UTC)
    st_ = RunState(rt, opts, "run-excluded", now, _Quiet(), lambda: now)

    async def go() -> None:
        stages.open_book(st_)
        await stages.load_market(st_)
        await stages.settle_book(st_)
        closes = {s: float(f.loc[DAYS[60], "close"]) for s, f in frames.items()}
        calls = [Call("AAA", False, 0.0625, 0.125, False, 1), Call("BBB", True, 0.05, 0.1, False, 1)]
        st_.result = _Result(_signals(calls, closes, DAYS[60]))  # type: ignore[assignment]
        await stages.trade(st_)

    asyncio.run(go())
    assert "AAA" not in st_.snap.panel  # type: ignore[union-attr]
    assert [f.symbol for f in rt.store.fills(mode="paper")] == ["BBB"]
    said = st_.executions[f"sig-{DAYS[60].date()}-0-AAA"]
    assert said.startswith("refused: no as-of bar for AAA"), said
    refused = [r for r in tail(rt.audit.directory, 500) if r["event"] == "run.entry_refused"]
    assert [r["payload"]["symbol"] for r in refused] == ["AAA"]
