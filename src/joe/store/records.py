"""Frozen row types the store hands back (never live ORM objects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class PositionRow:
    """A stored position (open or closed). `quantity` is signed: > 0 long, < 0 short."""

    id: int
    mode: str
    broker: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal
    status: str
    opened_at: datetime
    updated_at: datetime
    realized_pnl: Decimal
    fees: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_distance: Decimal | None = None
    high_water: Decimal | None = None
    signal_id: str | None = None
    broker_position_id: str | None = None
    closed_at: datetime | None = None
    exit_price: Decimal | None = None
    exit_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, slots=True)
class RunRow:
    """One pipeline run. `status` is "running" until `finish_run`."""

    run_id: str
    started_at: datetime
    mode: str
    broker: str
    source: str
    status: str
    as_of: datetime | None = None
    finished_at: datetime | None = None
    summary: dict[str, Any] | None = None
    report_dir: str | None = None


@dataclass(frozen=True, slots=True)
class PaperAccountRow:
    """The paper account's cash book."""

    name: str
    currency: str
    cash: Decimal
    starting_cash: Decimal
    realized_pnl: Decimal
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """One point of the equity curve."""

    ts: datetime
    mode: str
    equity: Decimal
    cash: Decimal
    account: str = ""  # "broker:account_id" of a broker account; "" for the paper book (or unknown)


def equity_account(broker: str, account_id: str) -> str:
    """The key of a broker account's equity marks ("ibkr:U1234567"): the daily-loss and drawdown baselines are
    per account, so a demo and a real account (or two brokers) in one data folder never share them."""
    return f"{broker}:{account_id}"


def equity_marks_of(curve: Sequence[EquityPoint], now: datetime) -> tuple[Decimal | None, Decimal | None]:
    """(the equity the day of `now` opened with, the peak so far) from a curve in time order.

    The day's opening equity is the last mark of an earlier day, else the day's first mark; the peak is
    the highest mark at or before `now`. (None, None) without a mark at or before `now`. Read by the
    RiskGate's daily book (``risk.daily_loss_limit_pct``, the drawdown rule).
    """
    upto = [p for p in curve if p.ts <= now]
    if not upto:
        return None, None
    earlier = [p for p in upto if p.ts.date() < now.date()]
    start = earlier[-1].equity if earlier else upto[0].equity
    return start, max(p.equity for p in upto)
