"""The two broker protocols every broker (sim, capital, ibkr) implements.

`MarketData` feeds analysis; `Executor` executes. Errors a broker raises are subclasses of
`BrokerError`; `OrderOutcomeUnknown` is the fail-closed signal: the order may or may not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

import pandas as pd

from joe.core.events import OrderEvent
from joe.core.models import AccountInfo, Fill, Instrument, OrderIntent, Position, Quote


class BrokerError(Exception):
    """Base class for every error raised by a broker adapter."""


class BrokerUnavailable(BrokerError):
    """Not connected, or the connection dropped; safe to retry reads later, not orders."""


class OrderRejected(BrokerError):
    """The broker definitively rejected the order."""


class OrderOutcomeUnknown(BrokerError):
    """An order request failed ambiguously and reconciliation could not prove what happened.

    The safety layer treats this as fail-closed: no new entries until a human looks.
    """


class EntriesRefused(BrokerError):
    """The executor refuses new entries right now (disconnected, re-syncing, or halted)."""


@dataclass(frozen=True, slots=True)
class Sentiment:
    """Client positioning for one instrument (Capital.com client sentiment style)."""

    symbol: str
    long_pct: float
    short_pct: float


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """Margin impact of a proposed order (IBKR whatIf), for the risk layer."""

    init_margin_change: Decimal
    maint_margin_change: Decimal
    equity_with_loan_after: Decimal | None = None
    commission: Decimal | None = None
    warning: str = ""


@dataclass(frozen=True, slots=True)
class PlaceResult:
    """What `Executor.place` learned synchronously."""

    client_order_id: str
    broker_order_id: str | None
    accepted: bool
    filled_quantity: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    broker_position_id: str | None = None
    reason: str = ""


# History frames: index = UTC DatetimeIndex (bar open), columns open, high, low, close, volume (float64).
HISTORY_COLUMNS = ("open", "high", "low", "close", "volume")


@runtime_checkable
class MarketData(Protocol):
    """A source of market data: history, quotes, universe, sentiment."""

    name: str

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        """Instruments to analyse; `scan` names a scanner or watchlist where the source has them."""
        ...

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """OHLCV bars as a frame with `HISTORY_COLUMNS` and a UTC DatetimeIndex."""
        ...

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Latest quote per symbol (missing symbols are left out)."""
        ...

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        """Client positioning where the source has it; empty otherwise."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Order execution at one broker."""

    name: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def account(self) -> AccountInfo: ...

    async def positions(self) -> list[Position]: ...

    async def open_orders(self) -> list[OrderEvent]: ...

    async def place(self, intent: OrderIntent) -> PlaceResult:
        """Place an order. Never retried blindly: an ambiguous failure raises `OrderOutcomeUnknown`."""
        ...

    async def modify(
        self,
        client_order_id: str,
        *,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> None: ...

    async def cancel(self, client_order_id: str) -> None: ...

    def events(self) -> AsyncIterator[OrderEvent]:
        """An async stream of order events (acks, fills, rejects, cancels)."""
        ...

    async def executions_since(self, since: datetime) -> list[Fill]: ...
