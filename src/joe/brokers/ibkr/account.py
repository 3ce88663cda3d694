"""Account and positions as IBKR reports them (reqAccountSummary, account values, reqPositions)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from joe.brokers.ibkr.translate import BROKER, decimal, joe_symbol, price
from joe.core.models import AccountInfo
from joe.core.reports import PositionReport


def num(s: Any) -> Decimal:
    """A wire number as Decimal; unset, empty or unparsable values are 0."""
    try:
        p = price(s)
    except (TypeError, ValueError):
        return Decimal(0)
    return p if p is not None else Decimal(0)


def read_account(summary: Iterable[Any], values: Iterable[Any], account: str, ts: datetime) -> AccountInfo:
    """`AccountInfo` from account-summary tags (NetLiquidation, TotalCashValue, ...) plus the streamed
    account values that carry realised/unrealised P&L (they are not summary tags)."""
    tags = {v.tag: v for v in summary}

    def val(tag: str) -> Decimal:
        v = tags.get(tag)
        return num(v.value) if v is not None else Decimal(0)

    cur = tags["NetLiquidation"].currency if "NetLiquidation" in tags else "USD"
    pnl = {v.tag: num(v.value) for v in values
           if v.tag in ("RealizedPnL", "UnrealizedPnL") and v.currency in (cur, "BASE")}  # fmt: skip
    return AccountInfo(
        account_id=account, currency=cur or "USD", equity=val("NetLiquidation"),
        cash=val("TotalCashValue"), available_funds=val("AvailableFunds"),
        margin_used=val("MaintMarginReq"), excess_liquidity=val("ExcessLiquidity"),
        buying_power=val("BuyingPower"), realized_pnl=pnl.get("RealizedPnL", Decimal(0)),
        unrealized_pnl=pnl.get("UnrealizedPnL", Decimal(0)), ts=ts,
        extra={k: v.value for k, v in tags.items()},
    )  # fmt: skip


def read_positions(raw: Iterable[Any], account: str, ts: datetime) -> list[PositionReport]:
    """Non-zero ib_async `Position`s of `account` (all accounts when empty) as `PositionReport`s; a
    contract other than the stock Joe trades keeps its own symbol key (`translate.joe_symbol`)."""
    out = []
    for p in raw:
        if account and p.account != account:
            continue
        if p.position:
            out.append(
                PositionReport(
                    broker=BROKER, symbol=joe_symbol(p.contract), quantity=decimal(p.position),
                    avg_price=decimal(p.avgCost), ts=ts, broker_position_id=str(p.contract.conId),
                )
            )  # fmt: skip
    return out
