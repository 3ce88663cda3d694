"""Mapping Capital.com rows to Joe's models (Position, AccountInfo, Fill, Instrument, Quote)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from joe.brokers.base import InvalidOrder
from joe.brokers.capital.instruments import rules_from_market
from joe.brokers.capital.markets import parse_utc
from joe.brokers.capital.models import (
    Account,
    Activity,
    Confirm,
    MarketDetails,
    MarketSummary,
    PositionRow,
)
from joe.brokers.capital.rows import row_fill_id
from joe.core.models import UNDATED, AccountInfo, AssetClass, Fill, Instrument, Position, Quote, Side

ASSET_CLASS = {
    "SHARES": AssetClass.EQUITY,
    "CURRENCIES": AssetClass.FX,
    "INDICES": AssetClass.INDEX,
    "CRYPTOCURRENCIES": AssetClass.CRYPTO,
    "COMMODITIES": AssetClass.COMMODITY,
}
_CLOSING_SOURCES = frozenset({"SL", "TP", "CLOSE_OUT"})


def opened_deal_id(confirm: Confirm) -> str | None:
    """The position / working-order id: `affectedDeals[].dealId` with status OPENED (spec §10.2).

    The confirm's top-level `dealId` is the *request* id (it becomes the position's `workingOrderId`);
    using it for /positions/{id} would 404.
    """
    for deal in confirm.affectedDeals:
        if deal.status.upper() == "OPENED":
            return deal.dealId
    return None


def position_from_row(row: PositionRow, symbol: str | None = None) -> Position:
    p, m = row.position, row.market
    sign = 1 if p.direction.upper() == "BUY" else -1
    # A long is valued at the bid (what closing would get), a short at the offer.
    px = m.bid if sign > 0 else m.offer
    return Position(
        symbol=symbol or m.epic,
        quantity=p.size * sign,
        avg_price=p.level,
        market_price=Decimal(str(px)) if px is not None else None,
        stop_loss=None if p.trailingStop else p.stopLevel,
        take_profit=p.profitLevel,
        trailing_distance=p.stopDistance if p.trailingStop else None,
        opened_at=parse_utc(p.createdDateUTC),
        broker_position_id=p.dealId,
    )


def account_info(acc: Account) -> AccountInfo:
    """Capital.com balance → AccountInfo. The recorded answers have `balance` = `deposit` +
    `profitLoss` (124.95 = 125.18 − 0.23): `deposit` is the cash, `balance` the equity, and
    `available` what is left after the margin in use."""
    b = acc.balance
    return AccountInfo(
        account_id=acc.accountId,
        currency=acc.currency,
        equity=b.balance,
        cash=b.deposit,
        available_funds=b.available,
        margin_used=max(b.balance - b.available, Decimal(0)),
        unrealized_pnl=b.profitLoss,
        ts=datetime.now(UTC),
        extra={"account_name": acc.accountName, "account_type": acc.accountType, "status": acc.status},
    )


def fill_from_activity(row: Activity, client_order_id: str, symbol: str | None = None) -> Fill | None:
    """A POSITION activity row with details → Fill (None if it carries no size/level)."""
    d = row.details
    if row.type.upper() != "POSITION":  # working-order and stop/limit-edit rows carry sizes too
        return None
    if d is None or d.size is None or d.level is None or d.direction is None:
        return None
    side = Side(d.direction.upper())
    if row.source.upper() in _CLOSING_SOURCES:
        side = side.opposite  # TP/SL rows carry the position's direction, not the closing trade's
    return Fill(
        fill_id=row_fill_id(row),
        client_order_id=client_order_id,
        symbol=symbol or row.epic,
        side=side,
        quantity=d.size,
        price=d.level,
        ts=parse_utc(row.dateUTC),
        broker_order_id=d.workingOrderId or row.dealId,
    )


def instrument_from_market(m: MarketSummary) -> Instrument:
    return Instrument(
        symbol=m.epic,
        asset_class=ASSET_CLASS.get(m.instrumentType.upper(), AssetClass.CFD),
        name=m.instrumentName,
        exchange="CAPITALCOM",
        tick_size=m.tick if m.tick is not None else Decimal("0.01"),  # the grid orders round to
        broker_ids={"capital": m.epic},
    )


def with_dealing_rules(inst: Instrument, d: MarketDetails, tick: Decimal | None) -> Instrument:
    """`inst` with the market's size grid (`minSizeIncrement` as `lot_size`, `minDealSize` as
    `min_size`) and its price grid (`tick` from the summary's `tickSize`, else as
    `rules_from_market` reads the details), so paper and risk size and price as the broker would
    accept (spec §6.4). A market stating no minDealSize in POINTS is left without broker rules."""
    try:
        rules = rules_from_market(inst.symbol, d.model_dump(mode="json"))
    except InvalidOrder:
        return inst
    return replace(
        inst, tick_size=tick or rules.tick_size, lot_size=rules.size_increment, min_size=rules.min_size
    )


def quote_from_market(m: MarketSummary) -> Quote | None:
    """The market's bid/offer as a `Quote` at the broker's `updateTimeUTC`; without a readable time the
    quote is `UNDATED` (unknown age: stale to the RiskGate), never stamped with our own clock."""
    if m.bid is None or m.offer is None:
        return None
    ts = quote_time(m.updateTimeUTC)
    return Quote(symbol=m.epic, ts=ts, bid=Decimal(str(m.bid)), ask=Decimal(str(m.offer)))


def quote_time(update_utc: str | None) -> datetime:
    """A `…UTC` quote time as aware UTC; `UNDATED` when missing or not a time."""
    if not update_utc:
        return UNDATED
    try:
        return parse_utc(update_utc)
    except (TypeError, ValueError):
        return UNDATED


def snapshot_utc(update_time: str | None, tz_offset_h: object) -> str | None:
    """A market snapshot's `updateTime` (the account's zone) as a `…UTC` text, using the session's
    `timezoneOffset` (hours); None when either is missing or unreadable (the quote is then UNDATED)."""
    if not update_time or isinstance(tz_offset_h, bool) or not isinstance(tz_offset_h, int | float):
        return None
    try:
        local = datetime.fromisoformat(update_time.rstrip("Z"))
    except ValueError:
        return None
    return (local - timedelta(hours=float(tz_offset_h))).isoformat(timespec="milliseconds")
