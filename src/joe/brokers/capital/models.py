"""Pydantic models of Capital.com response bodies, written from the wire spec (§3–§7).

Shared by the client (every REST answer is validated before use, so garbage becomes a typed
`ProtocolError` instead of a KeyError deep inside Joe) and by the contract tests, which check the
simulator's answers against the same models. Fields the spec marks optional or "present when set"
are optional here; unknown extra fields are allowed because the real service adds fields over time.
Trading models use `Decimal`; market-data models use float (they feed float frames).

Timestamps: fields named `…UTC` / `…Utc` and the confirm's `date` are UTC (the recorded confirm's
`date` equals its HTTP `Date` header); the unsuffixed twins (`createdDate`, `updateTime`…) are in
the account's time zone (`timezoneOffset`). `utc_datetime` parses the UTC ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from joe.brokers.capital.errors import ProtocolError


class _M(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, what: str = "") -> M:
    """Validate `data` as `model`; a mismatch raises `ProtocolError` naming only field paths."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})[:5]
        raise ProtocolError(
            f"{what or model.__name__}: unexpected shape ({', '.join(fields)})", code="protocol"
        ) from None


def utc_datetime(text: str) -> datetime:
    """A response timestamp (`YYYY-MM-DDTHH:MM:SS[.sss]`, no zone suffix) that is UTC → aware datetime.

    Raises `ValueError` for any other shape.
    """
    return datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=UTC)


# ------------------------------------------------------------------ errors / session / accounts
class ErrorBody(_M):
    errorCode: str


class Balance(_M):
    balance: Decimal
    deposit: Decimal
    profitLoss: Decimal
    available: Decimal


class LoginAccount(_M):
    accountId: str
    accountName: str
    preferred: bool
    accountType: str


class LoginResponse(_M):
    accountType: str
    accountInfo: Balance
    currencyIsoCode: str
    currentAccountId: str
    streamingHost: str
    accounts: list[LoginAccount]
    clientId: str
    timezoneOffset: int
    hasActiveDemoAccounts: bool
    hasActiveLiveAccounts: bool
    trailingStopsEnabled: bool
    currencySymbol: str | None = None


class SessionDetails(_M):
    clientId: str
    accountId: str
    timezoneOffset: int
    locale: str
    currency: str
    streamEndpoint: str


class SwitchResponse(_M):
    trailingStopsEnabled: bool
    dealingEnabled: bool
    hasActiveDemoAccounts: bool
    hasActiveLiveAccounts: bool


class StatusResponse(_M):
    status: str


class ServerTime(_M):
    serverTime: int


class EncryptionKey(_M):
    encryptionKey: str
    timeStamp: int


class Account(_M):
    accountId: str
    accountName: str
    status: str
    accountType: str
    preferred: bool
    balance: Balance
    currency: str


class AccountsResponse(_M):
    accounts: list[Account]


class Leverage(_M):
    current: int
    available: list[int]


class Preferences(_M):
    hedgingMode: bool
    leverages: dict[str, Leverage] = Field(default_factory=dict)


class ActivityDetails(_M):
    dealReference: str | None = None
    marketName: str | None = None
    currency: str | None = None
    size: Decimal | None = None
    direction: str | None = None
    level: Decimal | None = None
    guaranteedStop: bool | None = None
    workingOrderId: str | None = None


class Activity(_M):
    date: str
    dateUTC: str
    epic: str
    dealId: str
    source: str
    type: str
    status: str
    details: ActivityDetails | None = None
    # Not on the wire: the n-th row of its key in the answer (`joe.brokers.capital.rows`).
    _occurrence: int = PrivateAttr(default=1)

    @property
    def occurrence(self) -> int:
        """1 for the first row of its (dealId, dateUTC, source, type) in the broker's listing, n for
        the n-th (set by `rows.number_rows` when the answer is read)."""
        return self._occurrence

    def numbered(self, occurrence: int) -> Activity:
        """This row as the `occurrence`-th of its key (returns itself)."""
        self._occurrence = occurrence
        return self


class ActivityResponse(_M):
    activities: list[Activity]


class Transaction(_M):
    date: str
    dateUtc: str
    transactionType: str
    note: str
    reference: str
    size: str
    currency: str
    instrumentName: str | None = None


class TransactionsResponse(_M):
    transactions: list[Transaction]


# ------------------------------------------------------------------ trading
class DealReference(_M):
    dealReference: str


class AffectedDeal(_M):
    dealId: str
    status: str


class Confirm(_M):
    date: str
    status: str | None = None
    reason: str | None = None
    dealStatus: str
    epic: str
    dealReference: str
    dealId: str
    affectedDeals: list[AffectedDeal] = Field(default_factory=list)
    level: Decimal | None = None
    size: Decimal | None = None
    direction: str | None = None
    guaranteedStop: bool = False
    trailingStop: bool = False
    rejectReason: str | None = None
    stopLevel: Decimal | None = None
    profitLevel: Decimal | None = None
    profit: Decimal | None = None

    @property
    def date_utc(self) -> datetime:
        """`date` is UTC on the wire (recorded confirm vs its HTTP `Date` header), not local time."""
        return utc_datetime(self.date)


class MarketSummary(_M):
    epic: str
    instrumentName: str
    instrumentType: str
    marketStatus: str
    bid: float | None = None
    offer: float | None = None
    high: float | None = None
    low: float | None = None
    netChange: float | None = None
    percentageChange: float | None = None
    lotSize: float | None = None
    expiry: str | None = None
    updateTime: str | None = None
    updateTimeUTC: str | None = None
    delayTime: int | None = None
    streamingPricesAvailable: bool | None = None
    scalingFactor: int | None = None
    symbol: str | None = None
    marketModes: list[str] | None = None
    # Sent by the current API (open-api.capital.com), absent from the 2022 Postman recordings:
    # the price grid (`tickSize`, e.g. 0.001) and the pip's decimal position (e.g. 2 → 0.01).
    pipPosition: int | None = None
    tickSize: float | None = None

    @property
    def tick(self) -> Decimal | None:
        """The price increment as an exact Decimal (None when the answer did not carry it)."""
        return None if self.tickSize is None else Decimal(repr(self.tickSize))


class PositionData(_M):
    contractSize: Decimal
    createdDate: str
    createdDateUTC: str
    dealId: str
    dealReference: str
    size: Decimal
    leverage: Decimal
    upl: Decimal
    direction: str
    level: Decimal
    currency: str
    guaranteedStop: bool
    workingOrderId: str | None = None
    stopLevel: Decimal | None = None
    profitLevel: Decimal | None = None
    stopDistance: Decimal | None = None
    trailingStop: bool | None = None


class PositionRow(_M):
    position: PositionData
    market: MarketSummary


class PositionsResponse(_M):
    positions: list[PositionRow]


class WorkingOrderData(_M):
    dealId: str
    direction: str
    epic: str
    orderSize: Decimal
    orderLevel: Decimal
    timeInForce: str
    createdDate: str
    createdDateUTC: str
    guaranteedStop: bool
    orderType: str
    currencyCode: str
    goodTillDate: str | None = None
    goodTillDateUTC: str | None = None
    stopDistance: Decimal | None = None
    profitDistance: Decimal | None = None
    trailingStop: bool | None = None
    leverage: Decimal | None = None  # in current answers; not in the 2022 recording


class WorkingOrderRow(_M):
    workingOrderData: WorkingOrderData
    marketData: MarketSummary


class WorkingOrdersResponse(_M):
    workingOrders: list[WorkingOrderRow]


# ------------------------------------------------------------------ markets
class NavNode(_M):
    id: str
    name: str


class NavigationResponse(_M):
    nodes: list[NavNode] = Field(default_factory=list)
    markets: list[MarketSummary] = Field(default_factory=list)


class MarketsResponse(_M):
    markets: list[MarketSummary]


class Rule(_M):
    unit: str
    value: float


class DealingRules(_M):
    """Current rule names (spec §6.4); the 2022 recordings use the older names, read as aliases."""

    minStepDistance: Rule
    minDealSize: Rule
    maxDealSize: Rule | None = None  # absent from the 2022 recordings
    minSizeIncrement: Rule | None = None
    minGuaranteedStopDistance: Rule | None = Field(
        None, validation_alias=AliasChoices("minGuaranteedStopDistance", "minControlledRiskStopDistance")
    )
    minStopOrProfitDistance: Rule | None = Field(
        None, validation_alias=AliasChoices("minStopOrProfitDistance", "minNormalStopOrLimitDistance")
    )
    maxStopOrProfitDistance: Rule | None = Field(
        None, validation_alias=AliasChoices("maxStopOrProfitDistance", "maxStopOrLimitDistance")
    )
    marketOrderPreference: str | None = None
    trailingStopsPreference: str | None = None


class InstrumentInfo(_M):
    epic: str
    name: str
    type: str
    currency: str
    symbol: str | None = None
    expiry: str | None = None
    lotSize: float | None = None
    guaranteedStopAllowed: bool | None = Field(
        None, validation_alias=AliasChoices("guaranteedStopAllowed", "controlledRiskAllowed")
    )
    streamingPricesAvailable: bool | None = None
    marginFactor: float | None = None
    marginFactorUnit: str | None = None
    openingHours: dict[str, Any] | None = None


class Snapshot(_M):
    marketStatus: str
    bid: float | None = None
    offer: float | None = None
    high: float | None = None
    low: float | None = None
    netChange: float | None = None
    percentageChange: float | None = None
    updateTime: str | None = None
    delayTime: int | None = None
    decimalPlacesFactor: int | None = None
    scalingFactor: int | None = None
    marketModes: list[str] | None = None

    @property
    def tick(self) -> Decimal | None:
        """The price increment 10^-decimalPlacesFactor (None when the answer did not carry it)."""
        f = self.decimalPlacesFactor
        return None if f is None else Decimal(1).scaleb(-f)


class MarketDetails(_M):
    instrument: InstrumentInfo
    dealingRules: DealingRules
    snapshot: Snapshot


class MarketDetailsList(_M):
    marketDetails: list[MarketDetails]


class BidAsk(_M):
    bid: float
    ask: float | None = None


class PriceBar(_M):
    snapshotTime: str
    snapshotTimeUTC: str
    openPrice: BidAsk
    closePrice: BidAsk
    highPrice: BidAsk
    lowPrice: BidAsk
    lastTradedVolume: float = 0.0


class PricesResponse(_M):
    prices: list[PriceBar]
    instrumentType: str | None = None


class SentimentItem(_M):
    marketId: str
    longPositionPercentage: float
    shortPositionPercentage: float


class SentimentsResponse(_M):
    clientSentiments: list[SentimentItem]


class Watchlist(_M):
    id: str
    name: str
    editable: bool
    deleteable: bool
    defaultSystemWatchlist: bool


class WatchlistsResponse(_M):
    watchlists: list[Watchlist]


class CreateWatchlistResponse(_M):
    watchlistId: str
    status: str
