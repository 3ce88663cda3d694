"""Typed domain values. Money, prices and sizes on the execution side are `Decimal`.

Analysis works in float frames (fast, vectorised); everything that crosses into portfolio,
execution or a broker is converted to these types first.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

ZERO = Decimal(0)


class AssetClass(StrEnum):
    """Broad instrument families; drives sizing rounding, sessions and risk defaults."""

    EQUITY = "equity"
    ETF = "etf"
    INDEX = "index"
    FX = "fx"
    CRYPTO = "crypto"
    COMMODITY = "commodity"
    CFD = "cfd"
    FUTURE = "future"


class Side(StrEnum):
    """Order side. Position direction uses LONG/SHORT via `Signal.direction`."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class Direction(StrEnum):
    """Direction of a signal or position."""

    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def entry_side(self) -> Side:
        return Side.BUY if self is Direction.LONG else Side.SELL

    @property
    def sign(self) -> int:
        return 1 if self is Direction.LONG else -1


class OrderType(StrEnum):
    """Order types Joe can express; each broker maps what it supports."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"


class OrderLeg(StrEnum):
    """Which part of an intent an order is; part of the deterministic client order id."""

    ENTRY = "entry"
    STOP_LOSS = "stop"
    TAKE_PROFIT = "target"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument. `symbol` is Joe's key; brokers keep their own ids in `broker_ids`."""

    symbol: str
    asset_class: AssetClass = AssetClass.EQUITY
    name: str = ""
    currency: str = "USD"
    exchange: str = ""
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal(1)
    synthetic: bool = False
    broker_ids: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    # Set only when a broker states the instrument's dealing rules (Capital.com `minDealSize`):
    # then `lot_size` is its size step and `tick_size` its price grid, and Joe sizes and prices on them.
    min_size: Decimal | None = None

    @property
    def broker_rules(self) -> bool:
        """True when the broker stated this instrument's size and price grids (see `min_size`)."""
        return self.min_size is not None


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar, timestamped at its open (UTC)."""

    symbol: str
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    timeframe: str = "1d"


# The time of a quote whose source gave none (or garbage): its age is unknown, so it is stale
# (review r1119 finding 6). Anything at or before it is "no time" to the stale-quote rule.
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book at a moment (UTC); `ts` is `UNDATED` when the source gave no trustworthy time."""

    symbol: str
    ts: datetime
    bid: Decimal
    ask: Decimal
    last: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's call: direction, entry, protective stop, target and why.

    `signal_id` is deterministic (strategy, symbol, bar date, direction) so the same call on the
    same data is recognised as the same signal on every run.
    """

    signal_id: str
    symbol: str
    strategy: str
    direction: Direction
    entry: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    confidence: float
    reason: str
    as_of: datetime
    trailing_distance: Decimal | None = None
    score: float | None = None
    quantity: Decimal | None = None
    risk_grade: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.direction is Direction.LONG:
            ok = self.stop_loss < self.entry < self.take_profit
        else:
            ok = self.take_profit < self.entry < self.stop_loss
        if not ok:
            raise ValueError(
                f"signal {self.signal_id}: inconsistent geometry for {self.direction}: "
                f"stop={self.stop_loss} entry={self.entry} target={self.take_profit}"
            )

    # Pickling (a backtest's analysis worker sends every day's signals to the book's process): the
    # field values in order, set back through the slots. The dataclass's own pair walks `fields()` for
    # every object, most of the cost of unpickling ~18,000 signals.
    def __getstate__(self) -> tuple[Any, ...]:
        return _signal_state(self)  # type: ignore[no-any-return]

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for put, value in zip(_SIGNAL_SET, state, strict=True):
            put(self, value)


_signal_state = operator.attrgetter(*Signal.__dataclass_fields__)
_SIGNAL_SET = tuple(getattr(Signal, f).__set__ for f in Signal.__dataclass_fields__)


def _finite(value: object) -> bool:
    """True for an int or a finite `Decimal` / float (not NaN, not ±Infinity)."""
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the portfolio wants the execution layer to do; becomes one `Order` per leg."""

    client_order_id: str
    signal_id: str
    leg: OrderLeg
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_distance: Decimal | None = None
    trailing_percent: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False

    def __post_init__(self) -> None:
        # NaN must not reach a comparison (Decimal raises a bare InvalidOperation), nor Infinity a size.
        if not _finite(self.quantity) or self.quantity <= 0:
            raise ValueError(
                f"intent {self.client_order_id}: quantity must be a finite number > 0, got {self.quantity!r}"
            )
        for name in ("limit_price", "stop_price", "trailing_distance", "trailing_percent", "stop_loss",
                     "take_profit"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not _finite(value):
                raise ValueError(
                    f"intent {self.client_order_id}: {name} must be a finite number, got {value!r}"
                )
        if self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and self.limit_price is None:
            raise ValueError(f"intent {self.client_order_id}: {self.order_type} needs limit_price")
        if self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and self.stop_price is None:
            raise ValueError(f"intent {self.client_order_id}: {self.order_type} needs stop_price")

    @property
    def is_entry(self) -> bool:
        return self.leg is OrderLeg.ENTRY and not self.reduce_only


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. `fill_id` is the broker's execution id (unique); fills are idempotent by it.
    `commission` is in `commission_currency` ("" = not stated: the instrument's quote currency); a
    broker may charge in another currency than the instrument's (IBKR commissionReport.currency)."""

    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    ts: datetime
    commission: Decimal = ZERO
    broker_order_id: str | None = None
    commission_currency: str = ""


@dataclass(frozen=True, slots=True)
class Position:
    """A net position in one instrument. `quantity` is signed: > 0 long, < 0 short."""

    symbol: str
    quantity: Decimal
    avg_price: Decimal
    market_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_distance: Decimal | None = None
    opened_at: datetime | None = None
    broker_position_id: str | None = None
    signal_id: str | None = None

    @property
    def direction(self) -> Direction:
        return Direction.LONG if self.quantity > 0 else Direction.SHORT

    @property
    def market_value(self) -> Decimal:
        px = self.market_price if self.market_price is not None else self.avg_price
        return self.quantity * px

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.market_price is None:
            return ZERO
        return (self.market_price - self.avg_price) * self.quantity


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Account snapshot mapped from any broker (IBKR account summary, Capital.com accounts)."""

    account_id: str
    currency: str
    equity: Decimal
    cash: Decimal
    available_funds: Decimal
    margin_used: Decimal = ZERO
    excess_liquidity: Decimal | None = None
    buying_power: Decimal | None = None
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    ts: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
