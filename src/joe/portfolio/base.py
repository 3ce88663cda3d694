"""`PortfolioManager`: the one interface for Paper, Live and Shadow portfolios.

The pipeline hands it signals (already sized and risk-checked); it turns them into orders,
tracks positions and cash, evaluates exits on new prices and reports PnL and the track record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from joe.core.models import AccountInfo, Fill, Position, Signal
from joe.core.order import Order
from joe.portfolio.exits import PriceBar


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """What happened to one signal handed to the portfolio."""

    signal_id: str
    symbol: str
    action: str  # "opened" | "skipped" | "rejected"
    reason: str = ""
    client_order_id: str | None = None
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class TrackRecordSummary:
    """The paper track record the live gate checks (days, closed trades) plus headline stats."""

    paper_days: int
    closed_trades: int
    win_rate: float
    realized_pnl: Decimal


@dataclass
class ExitReport:
    """Positions closed while processing prices."""

    closed: list[tuple[str, str, Decimal, str]] = field(default_factory=list)  # (symbol, id, price, reason)


class PortfolioManager(ABC):
    """Common interface of `PaperPortfolio`, and later `LivePortfolio` and `ShadowPortfolio`."""

    mode: str

    @abstractmethod
    async def submit(self, signals: Sequence[Signal], as_of: datetime) -> list[SignalOutcome]:
        """Act on sized signals (signal.quantity set). Never opens two positions for one signal."""

    @abstractmethod
    async def on_prices(self, bars: Mapping[str, PriceBar], ts: datetime) -> ExitReport:
        """Mark positions to new prices and execute stop/target/trailing exits."""

    @abstractmethod
    async def positions(self) -> list[Position]: ...

    @abstractmethod
    async def orders(self) -> list[Order]: ...

    @abstractmethod
    async def account(self) -> AccountInfo: ...

    @abstractmethod
    async def track_record(self, now: datetime | None = None) -> TrackRecordSummary: ...
