"""The broker protocols every broker (sim, capital, ibkr) implements.

`MarketData` feeds analysis. `ExecutionClient` is the thin execution adapter the `OrderManager`
(`joe.execution.order_manager`) drives: it translates requests and reports observations
(`joe.core.reports`) and never decides an order's state. `Executor` is the older, stateful
protocol that the adapters are moving away from.

Errors a broker raises are subclasses of `BrokerError`. `SendFailed` proves the request never
reached the broker; `OrderOutcomeUnknown` is the fail-closed signal: the order may or may not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

import pandas as pd

from joe.core.events import OrderEvent
from joe.core.models import AccountInfo, Fill, Instrument, OrderIntent, OrderLeg, Position, Quote, Side
from joe.core.reports import InstrumentRules, MassStatus, Observation, OrderStatusReport, PositionReport


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


class SendFailed(BrokerError):
    """The request provably never reached the broker (not connected, refused locally before any byte
    was written). Nothing exists at the broker because of it."""


class InvalidOrder(BrokerError):
    """The request does not conform to the broker's rules (size/price increments, unknown instrument);
    refused before sending, with the field and the rule in the message."""


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


@dataclass(frozen=True, slots=True)
class SubmitAck:
    """What an adapter learned synchronously from sending one order: the ids, never a final state.
    The order's fate arrives as observations or is asked for with `order_status`."""

    client_order_id: str
    broker_order_id: str | None
    broker_position_id: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerOrderRef:
    """An order Joe already sent: what an adapter needs to modify or cancel it."""

    intent: OrderIntent
    broker_order_id: str | None
    parent_broker_order_id: str | None = None


@runtime_checkable
class ExecutionClient(Protocol):
    """A thin execution adapter at one broker, driven only by the `OrderManager`.

    Rules every implementation keeps:
    - `submit` sends and returns the ids it learned; it decides nothing. It raises `SendFailed` when
      provably nothing was sent, `InvalidOrder` for non-conforming input (nothing sent), and
      `OrderOutcomeUnknown` when the request may have reached the broker.
    - `modify`/`cancel` only send; the broker's answer (confirmation, refusal, fill) arrives on
      `observations()`. A refusal is a `BrokerNotice` with `CodeMeaning.REQUEST_REFUSED`.
    - `order_status`/`mass_status` ask the broker, never a local cache.
    """

    name: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def connected(self) -> bool: ...

    async def instrument_rules(self, symbol: str) -> InstrumentRules:
        """The broker's tick and size increments for `symbol`."""
        ...

    async def submit(self, intents: Sequence[OrderIntent]) -> list[SubmitAck]:
        """Send one order, or one linked group (entry, then its stop and target) that the broker
        links itself (IBKR parentId + OCA group; Capital.com stop/limit levels on the position)."""
        ...

    async def modify(
        self,
        order: BrokerOrderRef,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None: ...

    async def cancel(self, order: BrokerOrderRef) -> None: ...

    async def order_status(self, client_order_id: str) -> list[OrderStatusReport]:
        """Every order at the broker carrying this client order id (open and completed); [] if none."""
        ...

    async def mass_status(self, since: datetime | None = None, *, joes_clock: bool = False) -> MassStatus:
        """Open and completed orders, executions (and commissions) since `since`, positions, account.

        `since` is on the broker's clock (a checkpoint: an earlier `MassStatus.ts`), or with `joes_clock`
        on Joe's (an order's `created_at`): then the window starts where the broker's clock read that
        instant, never later (`joe.core.reports.since_on_broker_clock`; executions are stamped on the
        broker's clock, which may be behind this host's)."""
        ...

    async def positions(self) -> list[PositionReport]: ...

    async def account(self) -> AccountInfo: ...

    def observations(self) -> AsyncIterator[Observation]:
        """Every status change, fill, commission and notice the broker sends, in arrival order."""
        ...


@dataclass(frozen=True, slots=True)
class OrderLink:
    """What Joe's store knows durably about how one of its orders relates to the broker's records,
    handed back to an adapter after a restart (`SupportsOrderLinks`): the leg, the parent entry's
    client order id (attached stop/target), and the broker ids recorded at acknowledgement."""

    client_order_id: str
    leg: OrderLeg
    parent_client_order_id: str | None = None
    broker_order_id: str | None = None
    parent_broker_order_id: str | None = None
    signal_id: str | None = None  # a stop placed alone for a held position belongs to its signal's entry
    # The order's own instrument, side and size (units), so its fate can be reported when the
    # broker's history no longer shows the deal it was attached to (Capital.com keeps 1 day).
    symbol: str | None = None
    side: Side | None = None
    quantity: Decimal | None = None


@runtime_checkable
class SupportsOrderLinks(Protocol):
    """An adapter whose broker does not carry every order's own id (Capital.com: a stop/target is a
    level on the entry's deal; a close by dealId names no request). The `OrderManager` hands it the
    links from its store before asking about those orders, so attribution survives a restart."""

    def link(self, links: Sequence[OrderLink]) -> None: ...


@runtime_checkable
class SupportsPresendCheck(Protocol):
    """An adapter that can tell with one targeted query whether the broker already holds an order
    with a client order id (IBKR: open + completed orders by orderRef; Capital.com: the confirm
    of the dealReference). The `OrderManager` asks it before a first send and reads the full
    `order_status` only when the answer is yes."""

    async def presend_check(self, client_order_id: str) -> bool:
        """True if the broker holds (or held) an order with this id. Raises `BrokerError` when it
        cannot tell (the caller then asks with `order_status`)."""
        ...
