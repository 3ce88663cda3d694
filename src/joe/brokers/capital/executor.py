"""`CapitalExecutor`: Joe's `Executor` protocol on Capital.com.

* MARKET intents open positions (`POST /positions`) with stop / take-profit / trailing attached;
  LIMIT and STOP intents create working orders. A reduce-only MARKET intent closes a whole matching
  position (`DELETE /positions/{id}`) or, failing that, sends the opposite deal (netting accounts).
* Every write is confirmed via `/confirms/{dealReference}`; a 404 there means "not visible yet".
* No blind retries: a lost answer is reconciled (`reconcile.py`); if the outcome cannot be proven
  `OrderOutcomeUnknown` is raised, which the safety layer treats as fail-closed. The single
  exception is an answer that proves the request was *not* processed (HTTP 401 session error or
  429): then the request is sent again after the re-login / back-off.
* Definitive refusals (validation errors, REJECTED confirms) return `PlaceResult(accepted=False)`.
* Joe's `client_order_id` is mapped to Capital.com ids in memory (Capital.com has no client id
  field); the same id placed twice returns the first result instead of a second order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from joe.audit.redaction import redact
from joe.brokers.base import BrokerError, OrderOutcomeUnknown, PlaceResult
from joe.brokers.capital.accounts import AccountsApi
from joe.brokers.capital.errors import (
    AmbiguousWrite,
    CapitalAuthError,
    CapitalError,
    CapitalTransient,
    InvalidRequest,
    NotFound,
    RateLimited,
    SessionExpired,
    error_code,
)
from joe.brokers.capital.http import CapitalClient
from joe.brokers.capital.mapping import account_info, fill_from_activity, opened_deal_id, position_from_row
from joe.brokers.capital.markets import MarketsApi
from joe.brokers.capital.models import Confirm
from joe.brokers.capital.reconcile import Finding, Outcome, Probe, Reconciler
from joe.brokers.capital.trading import TradingApi, bracket, num, order_body
from joe.core.events import AuditSink, OrderEvent, OrderEventType
from joe.core.models import AccountInfo, Fill, OrderIntent, OrderType, Position, Side


@dataclass
class Tracked:
    """What we know about one of Joe's orders at Capital.com."""

    client_order_id: str
    kind: str  # "position" | "order"
    deal_id: str
    epic: str
    side: Side
    size: Decimal
    result: PlaceResult


class CapitalExecutor:
    """Executor protocol implementation for Capital.com (see module docstring for the policy)."""

    name = "capital"

    def __init__(
        self,
        client: CapitalClient,
        *,
        audit: AuditSink,
        confirm_timeout_s: float = 15.0,
        confirm_interval_s: float = 0.2,
        reconcile_window_s: float = 10.0,
        reconcile_interval_s: float = 0.5,
        match_slack_s: float = 5.0,
    ) -> None:
        self.client = client
        self.audit = audit
        self.trading = TradingApi(client)
        self.accounts = AccountsApi(client)
        self.markets = MarketsApi(client)  # the service's clock (`GET /time`), for reconciliation
        self.reconciler = Reconciler(
            self.trading,
            self.accounts,
            window_s=reconcile_window_s,
            interval_s=reconcile_interval_s,
            slack_s=match_slack_s,
        )
        self.confirm_timeout_s = confirm_timeout_s
        self.confirm_interval_s = confirm_interval_s
        self.tracked: dict[str, Tracked] = {}
        # Deal ids seen at the broker -> when first seen (monotonic). Reconciliation never attributes
        # a deal seen *before* the ambiguous request was sent; ones first seen later may be ours.
        self._known_ids: dict[str, float] = {}
        self._events: asyncio.Queue[OrderEvent] = asyncio.Queue()

    # ------------------------------------------------------------------ lifecycle / reads
    async def connect(self) -> None:
        if not self.client.session.active:
            await self.client.open()
        await self.positions()  # seeds the set of pre-existing deal ids (never attributed to new orders)

    async def close(self) -> None:
        await self.client.close()

    async def account(self) -> AccountInfo:
        return account_info(await self.accounts.current_account())

    async def positions(self) -> list[Position]:
        """One `Position` per Capital.com deal row (a netting account can hold several per epic)."""
        rows = await self.trading.positions()
        now = time.monotonic()
        for r in rows:
            self._known_ids.setdefault(r.position.dealId, now)
        return [position_from_row(r) for r in rows]

    async def open_orders(self) -> list[OrderEvent]:
        rows = await self.trading.working_orders()
        by_deal = {t.deal_id: t.client_order_id for t in self.tracked.values()}
        now = datetime.now(UTC)
        return [
            OrderEvent(
                OrderEventType.ACCEPTED,
                by_deal.get(r.workingOrderData.dealId, f"capital:{r.workingOrderData.dealId}"),
                now,
                broker_order_id=r.workingOrderData.dealId,
                remaining=r.workingOrderData.orderSize,
                raw=r.workingOrderData.model_dump(mode="json"),
            )
            for r in rows
        ]

    async def events(self) -> AsyncIterator[OrderEvent]:
        while True:
            yield await self._events.get()

    async def executions_since(self, since: datetime) -> list[Fill]:
        rows = await self.accounts.activity(since, detailed=True, fiql="type==POSITION")
        by_deal = {t.deal_id: t.client_order_id for t in self.tracked.values()}
        fills = []
        for row in rows:
            if row.status.upper() not in ("ACCEPTED", "EXECUTED"):
                continue
            f = fill_from_activity(row, by_deal.get(row.dealId, f"capital:{row.dealId}"))
            if f is not None:
                fills.append(f)
        return fills

    # ------------------------------------------------------------------ place

    def _emit(self, etype: OrderEventType, cid: str, **kw: Any) -> None:
        self._events.put_nowait(OrderEvent(etype, cid, datetime.now(UTC), **kw))

    def _record(self, event: str, intent_or_id: OrderIntent | str, **payload: Any) -> None:
        cid = intent_or_id if isinstance(intent_or_id, str) else intent_or_id.client_order_id
        self.audit.record(event, redact(payload), client_order_id=cid)

    async def place(self, intent: OrderIntent) -> PlaceResult:
        """Place `intent`; returns filled / working / rejected, raises `OrderOutcomeUnknown` otherwise."""
        if intent.client_order_id in self.tracked:
            return self.tracked[intent.client_order_id].result
        if intent.reduce_only and intent.order_type is OrderType.MARKET:
            closed = await self._close_matching(intent)
            if closed is not None:
                return closed
        path, body = order_body(intent)
        self._record("capital.order.submit", intent, path=path, body=body, leg=str(intent.leg))
        sent_at, sent_mono = datetime.now(UTC), time.monotonic()
        ref: str | None = None
        for attempt in range(2):
            try:
                ref = await (
                    self.trading.open_position(body)
                    if path == "/positions"
                    else self.trading.create_working_order(body)
                )
                break
            except SessionExpired as exc:
                if exc.relogged and attempt == 0:
                    continue  # a 401 proves the request was not processed; safe to send once more
                return self._rejected(intent, f"session: {exc.code}")
            except (RateLimited, InvalidRequest, NotFound, CapitalAuthError) as exc:
                return self._rejected(intent, error_code(exc))
            except AmbiguousWrite as exc:
                self._record("capital.order.ambiguous", intent, error=type(exc).__name__, code=exc.code)
                break
            except CapitalTransient as exc:
                # Only a request that never left gets here (connect failure): no order exists.
                self._record("capital.order.not_sent", intent, error=type(exc).__name__)
                raise
        confirm = None
        if ref is not None:
            try:
                confirm = await self.trading.wait_confirm(
                    ref, timeout_s=self.confirm_timeout_s, interval_s=self.confirm_interval_s
                )
            except CapitalError as exc:
                self._record(
                    "capital.order.confirm_failed", intent, deal_reference=ref, error=type(exc).__name__
                )
        if confirm is not None:
            return self._from_confirm(intent, path, confirm)
        # The broker dates its deals on its own clock: the send instant on it (the earliest the offset
        # allows, read afresh: this path is rare), or a host clock ahead of the broker's by more than the
        # match slack would make our own deal look older than the request (and the outcome UNKNOWN).
        offset = await self.markets.clock_offset(refresh=True)
        probe = Probe(
            intent.symbol, intent.side.value, intent.quantity, sent_at + offset,
            working=path != "/positions", clock_offset=offset,
        )  # fmt: skip
        claimed = {d for d, seen in self._known_ids.items() if seen < sent_mono}
        claimed |= {t.deal_id for t in self.tracked.values()}
        finding = await self.reconciler.find(probe, claimed)
        return self._from_finding(intent, path, finding, ref)

    def _rejected(self, intent: OrderIntent, reason: str) -> PlaceResult:
        result = PlaceResult(intent.client_order_id, None, accepted=False, reason=reason)
        self._record("capital.order.rejected", intent, reason=reason)
        self._emit(OrderEventType.REJECTED, intent.client_order_id, reason=reason)
        return result

    def _track(self, intent: OrderIntent, kind: str, deal_id: str, result: PlaceResult) -> PlaceResult:
        self.tracked[intent.client_order_id] = Tracked(
            intent.client_order_id, kind, deal_id, intent.symbol, intent.side, intent.quantity, result
        )
        self._known_ids.setdefault(deal_id, time.monotonic())
        return result

    def _from_confirm(self, intent: OrderIntent, path: str, c: Confirm) -> PlaceResult:
        self._record(
            "capital.order.confirm",
            intent,
            deal_reference=c.dealReference,
            deal_status=c.dealStatus,
            status=c.status,
            reason=c.rejectReason or c.reason,
            level=str(c.level),
            affected=[d.model_dump() for d in c.affectedDeals],
        )
        if c.dealStatus.upper() != "ACCEPTED":
            return self._rejected(intent, c.rejectReason or c.reason or "REJECTED")
        deal_id = opened_deal_id(c)
        if path == "/workingorders":
            result = PlaceResult(intent.client_order_id, deal_id, accepted=True, reason="working")
            self._emit(
                OrderEventType.ACCEPTED,
                intent.client_order_id,
                broker_order_id=deal_id,
                remaining=intent.quantity,
            )
            return self._track(intent, "order", deal_id or c.dealId, result)
        return self._filled(intent, c.dealId, deal_id, c.level, c.size or intent.quantity)

    def _filled(
        self,
        intent: OrderIntent,
        order_id: str,
        position_id: str | None,
        level: Decimal | None,
        size: Decimal,
    ) -> PlaceResult:
        result = PlaceResult(
            intent.client_order_id,
            order_id,
            accepted=True,
            filled_quantity=size,
            avg_price=level,
            broker_position_id=position_id,
        )
        fill = None
        if level is not None:
            fill = Fill(
                f"capital:{position_id or order_id}",
                intent.client_order_id,
                intent.symbol,
                intent.side,
                size,
                level,
                datetime.now(UTC),
                broker_order_id=order_id,
            )
        self._emit(
            OrderEventType.FILLED,
            intent.client_order_id,
            broker_order_id=order_id,
            fill=fill,
            filled_quantity=size,
            remaining=Decimal(0),
        )
        return self._track(intent, "position", position_id or order_id, result)

    def _from_finding(self, intent: OrderIntent, path: str, f: Finding, ref: str | None) -> PlaceResult:
        self._record(
            "capital.order.reconciled",
            intent,
            outcome=str(f.outcome),
            deal_id=f.deal_id,
            reason=f.reason,
            deal_reference=ref,
        )
        if f.outcome is Outcome.FILLED and f.deal_id:
            return self._filled(intent, f.deal_id, f.deal_id, f.level, intent.quantity)
        if f.outcome is Outcome.WORKING and f.deal_id:
            result = PlaceResult(intent.client_order_id, f.deal_id, accepted=True, reason="working")
            self._emit(OrderEventType.ACCEPTED, intent.client_order_id, broker_order_id=f.deal_id)
            return self._track(intent, "order", f.deal_id, result)
        if f.outcome is Outcome.REJECTED:
            return self._rejected(intent, f.reason)
        self._emit(OrderEventType.UNKNOWN, intent.client_order_id, reason=f.reason)
        raise OrderOutcomeUnknown(f"capital: outcome of {intent.client_order_id} unknown ({f.reason})")

    async def _close_matching(self, intent: OrderIntent) -> PlaceResult | None:
        """Reduce-only market exit: close one whole position of the opposite direction and equal size."""
        want = intent.side.opposite.value
        for row in await self.trading.positions():
            p = row.position
            if row.market.epic == intent.symbol and p.direction == want and p.size == intent.quantity:
                self._record("capital.order.submit", intent, path=f"/positions/{p.dealId}", method="DELETE")
                confirm = await self._close_deal(intent.client_order_id, p.dealId)
                result = PlaceResult(
                    intent.client_order_id,
                    p.dealId,
                    accepted=True,
                    filled_quantity=intent.quantity,
                    avg_price=confirm.level if confirm is not None else None,
                    broker_position_id=p.dealId,
                )
                self._emit(
                    OrderEventType.FILLED,
                    intent.client_order_id,
                    broker_order_id=p.dealId,
                    filled_quantity=intent.quantity,
                    remaining=Decimal(0),
                )
                self.tracked[intent.client_order_id] = Tracked(
                    intent.client_order_id,
                    "closed",
                    p.dealId,
                    intent.symbol,
                    intent.side,
                    intent.quantity,
                    result,
                )
                return result
        if (await self.accounts.preferences()).hedgingMode:
            # An opposite deal would open a hedge instead of reducing: refuse rather than guess.
            return self._rejected(intent, "reduce-only: no position of exactly this size (hedging account)")
        return None

    def restore(
        self, client_order_id: str, *, kind: str, deal_id: str, symbol: str, side: Side, quantity: Decimal
    ) -> None:
        """Re-attach a persisted order after a restart (the mapping is otherwise in memory only).

        `kind` is "position" (deal id = position id) or "order" (deal id = working-order id).
        """
        result = PlaceResult(
            client_order_id,
            deal_id,
            accepted=True,
            broker_position_id=deal_id if kind == "position" else None,
        )
        self.tracked[client_order_id] = Tracked(
            client_order_id, kind, deal_id, symbol, side, quantity, result
        )
        self._known_ids.setdefault(deal_id, 0.0)

    # ------------------------------------------------------------------ amend / cancel / close
    def _get(self, client_order_id: str) -> Tracked:
        t = self.tracked.get(client_order_id)
        if t is None:
            raise BrokerError(f"capital: unknown client_order_id {client_order_id}")
        return t

    async def modify(
        self,
        client_order_id: str,
        *,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> None:
        """Amend stops/targets (positions) or the level (working orders).

        PUT /positions replaces the whole stop/profit/trailing set, so the current values are read
        first and everything not being changed is sent again.
        """
        t = self._get(client_order_id)
        if quantity is not None and quantity != t.size:
            raise BrokerError("capital: the size of a deal cannot be amended")
        if t.kind == "position":
            cur = (await self.trading.position(t.deal_id)).position
            trailing = cur.stopDistance if cur.trailingStop and stop_loss is None else None
            body = bracket(
                stop_level=stop_loss if stop_loss is not None else cur.stopLevel,
                profit_level=take_profit if take_profit is not None else cur.profitLevel,
                trailing_distance=trailing,
                explicit_nulls=True,
            )

            def write() -> Awaitable[str]:
                return self.trading.amend_position(t.deal_id, body)
        elif t.kind == "order":
            body = {}
            if limit_price is not None or stop_price is not None:
                body["level"] = num(limit_price if limit_price is not None else stop_price)
            if stop_loss is not None:
                body["stopLevel"] = num(stop_loss)
            if take_profit is not None:
                body["profitLevel"] = num(take_profit)

            def write() -> Awaitable[str]:
                return self.trading.amend_working_order(t.deal_id, body)
        else:
            raise BrokerError(f"capital: {client_order_id} is {t.kind}; nothing to modify")
        self._record("capital.order.modify", client_order_id, deal_id=t.deal_id, body=body)
        await self._write_and_confirm(client_order_id, write)
        self._emit(OrderEventType.MODIFIED, client_order_id, broker_order_id=t.deal_id)

    async def cancel(self, client_order_id: str) -> None:
        """Delete a working order (a filled position is closed with `close_position`)."""
        t = self._get(client_order_id)
        if t.kind != "order":
            raise BrokerError(f"capital: {client_order_id} is a {t.kind}, not a working order")
        self._record("capital.order.cancel", client_order_id, deal_id=t.deal_id)
        try:
            await self._write_and_confirm(
                client_order_id, lambda: self.trading.delete_working_order(t.deal_id)
            )
        except NotFound:
            pass  # already gone (filled or cancelled): the desired end state
        t.kind = "cancelled"
        self._emit(OrderEventType.CANCELLED, client_order_id, broker_order_id=t.deal_id)

    async def close_position(self, client_order_id: str) -> None:
        """Close the whole position opened by `client_order_id`."""
        t = self._get(client_order_id)
        await self._close_deal(client_order_id, t.deal_id)
        t.kind = "closed"

    async def _close_deal(self, client_order_id: str, deal_id: str) -> Confirm | None:
        """Close one deal; an ambiguous answer is resolved by checking whether the deal still exists."""
        self._record("capital.position.close", client_order_id, deal_id=deal_id)
        try:
            return await self._write_and_confirm(
                client_order_id, lambda: self.trading.close_position(deal_id)
            )
        except OrderOutcomeUnknown:
            ids = {r.position.dealId for r in await self.trading.positions()}
            if deal_id in ids:
                raise
        except NotFound:
            pass  # already closed (by a stop, a target or another client): the wanted end state
        return None

    async def _write_and_confirm(
        self, client_order_id: str, write: Callable[[], Awaitable[str]]
    ) -> Confirm | None:
        """Send an amend/cancel/close once; re-send only after a 401 proved it was not processed."""
        try:
            try:
                ref = await write()
            except SessionExpired as exc:
                if not exc.relogged:
                    raise
                ref = await write()
        except AmbiguousWrite as exc:
            self._record("capital.order.ambiguous", client_order_id, error=type(exc).__name__)
            raise OrderOutcomeUnknown(f"capital: amend/cancel/close of {client_order_id} ambiguous") from None
        confirm = await self.trading.wait_confirm(
            ref, timeout_s=self.confirm_timeout_s, interval_s=self.confirm_interval_s
        )
        if confirm is not None:
            self._record(
                "capital.order.confirm",
                client_order_id,
                deal_reference=ref,
                deal_status=confirm.dealStatus,
                status=confirm.status,
            )
            if confirm.dealStatus.upper() != "ACCEPTED":
                raise BrokerError(f"capital: rejected ({confirm.rejectReason or confirm.reason})")
        return confirm
