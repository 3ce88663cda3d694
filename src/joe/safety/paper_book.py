"""Building the `GateBook` for a run on daily bars (paper today, backtest later) from the market
snapshot, the paper portfolio and the equity curve in the store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from joe.config.schema import ProtectionsConfig
from joe.core.models import AccountInfo, Instrument, Position
from joe.safety.protections import ClosedTrade, Lock, active_locks, default_protections
from joe.safety.risk_gate import GateBook, QuoteMark

if TYPE_CHECKING:  # only the interface: a backtest's book is a MemoryStore (no SQLAlchemy loaded)
    from joe.store import Store


def _last_close(panel: object, closes: np.ndarray, upto: int) -> QuoteMark | None:
    """The last valid close at or before row `upto`, with its bar date."""
    if upto >= 0 and not np.isnan(closes[upto]):
        i = upto  # the usual case: a bar on the day (no pass over the whole history)
    else:
        valid = np.flatnonzero(~np.isnan(closes[: upto + 1]))
        if not len(valid):
            return None
        i = int(valid[-1])
    when = panel.date_at(i)  # type: ignore[attr-defined]
    return QuoteMark(Decimal(repr(round(float(closes[i]), 6))), when)


def _returns(cols: dict[str, np.ndarray], index: pd.DatetimeIndex) -> pd.DataFrame:
    """Daily returns of the closes `cols` (symbol → closes on the rows of `index`): the frame
    `DataFrame(cols, index).pct_change(fill_method=None).iloc[1:]` by the same arithmetic (each close
    over the one before, minus one; a missing close gives NaN) without pandas' frame operations, which
    cost more than the rest of the book on every backtest day (test: tests/safety/test_paper_book_returns.py).
    """
    closes = np.column_stack(list(cols.values())) if len(index) else np.empty((0, len(cols)))
    with np.errstate(all="ignore"):  # as pandas' arithmetic: inf and NaN are values, not warnings
        r = closes[1:] / closes[:-1] - 1
    return pd.DataFrame(r, index=index[1:], columns=list(cols))


def daily_book(
    *,
    store: Store,
    mode: str,
    panel: object,
    instruments: dict[str, Instrument],
    as_of_idx: int,
    account: AccountInfo,
    positions: list[Position],
    symbols: Iterable[str],
    lookback: int,
    protections: ProtectionsConfig | None = None,
    opening_equity: Decimal | None = None,
    equity_account: str = "",
    minute: datetime | None = None,
    shadow_book: Store | None = None,
) -> GateBook:
    """The book at the close of row `as_of_idx` of `panel` (a `joe.analysis.panel.Panel`).

    `minute` (aware UTC): the instant a live or shadow run trades at (its clock), where the
    protections' locks are judged — a stop-out at the broker earlier that day is a closed trade by
    then, while the bar's date (00:00 UTC of the session) is before it; None: the bar's date (paper,
    backtest: the decision is at the close). `shadow_book`: a shadow run's book (`twin-shadow.db`,
    its positions in mode "paper"): its closed trades are the ones its locks judge, as a live
    account's are the OrderManager's — shadow shows what live would do, locks included.

    The day's starting equity (what ``risk.daily_loss_limit_pct`` is measured from) is the last equity
    mark of an earlier day; on the book's first day, the first mark of the day; with no mark at all,
    `opening_equity` (the paper book's starting cash), else the account's equity now — never "none",
    so day one has a limit too. The marks are `equity_account`'s only ("broker:account_id" of a
    live/shadow run; "" for the paper book): another account's never count.
    """
    dates: pd.DatetimeIndex = panel.dates  # type: ignore[attr-defined]
    now = panel.date_at(as_of_idx)  # type: ignore[attr-defined]
    wanted = sorted({*symbols, *(p.symbol for p in positions)} & set(panel.symbols))  # type: ignore[attr-defined]
    quotes: dict[str, QuoteMark] = {}
    cols: dict[str, np.ndarray] = {}
    for s in wanted:
        closes = panel.close[:, panel.col(s)]  # type: ignore[attr-defined]
        if (q := _last_close(panel, closes, as_of_idx)) is not None:
            quotes[s] = q
        start = max(0, as_of_idx - lookback)
        cols[s] = closes[start : as_of_idx + 1]
    # The returns frame, and the slice of dates it is indexed by (a DatetimeIndex slice costs tens of
    # microseconds), are built when a rule first reads it (`GateBook.daily_returns`): a book without a
    # held position to correlate never does.
    lo = max(0, as_of_idx - lookback)
    returns_fn = (lambda: _returns(cols, dates[lo : as_of_idx + 1])) if cols else None
    start_eq, peak = store.equity_marks(mode, now, equity_account)  # this account's marks only
    if start_eq is None:
        start_eq = opening_equity if opening_equity is not None else account.equity
    if peak is None or peak < start_eq:
        peak = start_eq
    return GateBook(
        now=now,
        equity=account.equity,
        positions=positions,
        quotes=quotes,
        instruments=instruments,
        day_start_equity=start_eq,
        peak_equity=peak,
        available_funds=account.available_funds,
        returns_fn=returns_fn,
        daily_bars=True,
        locks=protection_locks(
            store, mode, minute or now, protections or ProtectionsConfig(), start_eq, shadow_book=shadow_book
        ),
    )


def protection_locks(
    store: Store,
    mode: str,
    now: datetime,
    cfg: ProtectionsConfig,
    equity: Decimal,
    *,
    shadow_book: Store | None = None,
) -> list[Lock]:
    """The protections' locks at `now`, from the trades closed in the longest lookback: the paper book's
    closed positions, in live the trades of the `OrderManager`'s record (`live_closed_trades`), and in
    shadow the closed positions of `shadow_book` (the shadow book's own store, mode "paper")."""
    hours = max(
        cfg.stoploss_guard_lookback_h, cfg.max_drawdown_lookback_h, cfg.low_profit_lookback_h, cfg.cooldown_h
    )
    since = now - timedelta(hours=hours)
    trades = [
        ClosedTrade(r.symbol, r.closed_at, r.realized_pnl, abs(r.quantity) * r.avg_price, r.exit_reason or "")
        for r in store.closed_positions(mode, since=since)
        if r.closed_at is not None and r.closed_at <= now
    ]
    if shadow_book is not None:  # a shadow run's trades are its book's, kept in its own store
        trades += [
            ClosedTrade(
                r.symbol, r.closed_at, r.realized_pnl, abs(r.quantity) * r.avg_price, r.exit_reason or ""
            )
            for r in shadow_book.closed_positions("paper", since=since)
            if r.closed_at is not None and r.closed_at <= now
        ]
    if mode == "live":  # a live account's trades are the OrderManager's orders and fills
        from joe.safety.live_trades import live_closed_trades

        trades += [t for t in live_closed_trades(store, mode, since) if t.closed_at <= now]
    return active_locks(default_protections(cfg, equity), trades, now)
