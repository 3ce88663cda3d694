"""Trading endpoints: positions, working orders and deal confirmations (spec §5).

These are thin, typed calls. The policy (no blind retries, reconciliation of ambiguous outcomes,
mapping to Joe's models) lives in `executor.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from joe.brokers.base import BrokerError
from joe.brokers.capital.errors import AmbiguousWrite, InvalidRequest, NotFound, ProtocolError
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.models import (
    Confirm,
    DealReference,
    PositionRow,
    PositionsResponse,
    WorkingOrderRow,
    WorkingOrdersResponse,
    parse,
)
from joe.core.models import OrderIntent, OrderLeg, OrderType

_NOT_YET = frozenset({"", "error.not-found.dealreference", "error.invalid.dealreference"})


def num(x: Decimal | None) -> float | None:
    """Decimal → JSON number (the API takes numbers, not strings)."""
    return None if x is None else float(x)


def bracket(
    *,
    stop_level: Decimal | None = None,
    profit_level: Decimal | None = None,
    trailing_distance: Decimal | None = None,
    guaranteed: bool = False,
    explicit_nulls: bool = False,
) -> dict[str, Any]:
    """Stop/profit/trailing fields for POST or PUT bodies; one alternative per leg.

    A trailing stop is sent as `trailingStop: true` + `stopDistance` (the level is then dropped:
    the two are alternatives). With `explicit_nulls`, legs that are absent are sent as null — used
    for PUT /positions, which replaces the whole set.
    """
    body: dict[str, Any] = {"guaranteedStop": guaranteed and trailing_distance is None}
    if trailing_distance is not None:
        body["trailingStop"] = True
        body["stopDistance"] = num(trailing_distance)
    else:
        body["trailingStop"] = False
        if stop_level is not None or explicit_nulls:
            body["stopLevel"] = num(stop_level)
    if profit_level is not None or explicit_nulls:
        body["profitLevel"] = num(profit_level)
    return body


def order_body(intent: OrderIntent) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) for an intent: MARKET → POST /positions, LIMIT / STOP → POST /workingorders."""
    body: dict[str, Any] = {
        "epic": intent.symbol,
        "direction": intent.side.value,
        "size": num(intent.quantity),
    }
    body.update(
        bracket(
            stop_level=intent.stop_loss,
            profit_level=intent.take_profit,
            trailing_distance=intent.trailing_distance,
        )
    )
    if intent.order_type is OrderType.MARKET:
        return "/positions", body
    if intent.order_type is OrderType.LIMIT:
        return "/workingorders", {**body, "type": "LIMIT", "level": num(intent.limit_price)}
    if intent.order_type is OrderType.STOP:
        return "/workingorders", {**body, "type": "STOP", "level": num(intent.stop_price)}
    raise BrokerError(f"order type {intent.order_type} is not supported by Capital.com")


def entry_body(entry: OrderIntent, legs: Sequence[OrderIntent]) -> tuple[str, dict[str, Any]]:
    """(path, body) for an entry and its attached legs, named by Joe's id (`dealReference`): the
    stop leg's `stop_price` / the target leg's `limit_price` (else the entry's own levels)."""
    stop = next((i.stop_price for i in legs if i.leg is OrderLeg.STOP_LOSS), None) or entry.stop_loss
    target = next((i.limit_price for i in legs if i.leg is OrderLeg.TAKE_PROFIT), None) or entry.take_profit
    path, body = order_body(entry)
    body.update(bracket(stop_level=stop, profit_level=target, trailing_distance=entry.trailing_distance))
    body["dealReference"] = entry.client_order_id
    return path, body


class TradingApi:
    """Typed access to positions, working orders and confirms."""

    def __init__(self, client: CapitalClient) -> None:
        self.client = client

    async def _ref(self, method: str, path: str, body: dict[str, Any] | None = None) -> str:
        resp = await self.client.request(method, path, json_body=body)
        try:
            return parse(DealReference, resp, f"{method} {path}").dealReference
        except ProtocolError as exc:
            # The write reached the server, which may have acted on it: the outcome is ambiguous.
            raise AmbiguousWrite(str(exc), code="protocol") from None

    async def open_position(self, body: dict[str, Any]) -> str:
        return await self._ref("POST", "/positions", body)

    async def amend_position(self, deal_id: str, body: dict[str, Any]) -> str:
        return await self._ref("PUT", f"/positions/{deal_id}", body)

    async def close_position(self, deal_id: str) -> str:
        return await self._ref("DELETE", f"/positions/{deal_id}")

    async def create_working_order(self, body: dict[str, Any]) -> str:
        return await self._ref("POST", "/workingorders", body)

    async def amend_working_order(self, deal_id: str, body: dict[str, Any]) -> str:
        return await self._ref("PUT", f"/workingorders/{deal_id}", body)

    async def delete_working_order(self, deal_id: str) -> str:
        return await self._ref("DELETE", f"/workingorders/{deal_id}")

    async def positions(self) -> list[PositionRow]:
        return parse(PositionsResponse, await self.client.request("GET", "/positions"), "positions").positions

    async def position(self, deal_id: str) -> PositionRow:
        return parse(PositionRow, await self.client.request("GET", f"/positions/{deal_id}"), "position")

    async def working_orders(self) -> list[WorkingOrderRow]:
        body = await self.client.request("GET", "/workingorders")
        return parse(WorkingOrdersResponse, body, "workingorders").workingOrders

    async def confirm(self, deal_reference: str) -> Confirm:
        return parse(Confirm, await self.client.request("GET", f"/confirms/{deal_reference}"), "confirm")

    async def wait_confirm(
        self, deal_reference: str, *, timeout_s: float = 15.0, interval_s: float = 0.2
    ) -> Confirm | None:
        """Poll the confirm; a 404 right after the POST means "not visible yet", not "rejected".

        Returns None when it never became visible within `timeout_s` (the caller reconciles).
        """
        deadline = time.monotonic() + timeout_s
        delay = interval_s
        while True:
            try:
                return await self.confirm(deal_reference)
            except (NotFound, InvalidRequest) as exc:
                if exc.code.lower() not in _NOT_YET:
                    raise
            if time.monotonic() + delay > deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
