"""`IBKRExecutor`: Joe's `Executor` protocol on top of ib_async.

- Every order carries orderRef = client_order_id, so callbacks map back after restarts/reconnects
  (ib_async drops its `Trade` objects on disconnect; Joe keys everything by orderRef / order id).
- Order ids come from ib_async's id sequence (nextValidId/reqIds) raised to above the persisted
  maximum, and each used id is persisted, so ids only increase.
- A what-if (margin impact) runs before every new entry; `what_if_check` lets the risk layer veto.
- Fills are applied exactly once by execId; overfills are ignored and audited. After every
  (re)connect the executions and open/completed orders are re-read and reconciled.
- While disconnected or re-syncing, new entries are refused (fail closed); cancels are queued and
  sent once the re-sync completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ib_async import Contract, ExecutionFilter, OrderState, RequestError, Trade
from ib_async import Fill as IBFill

from joe.brokers.base import (
    BrokerError,
    BrokerUnavailable,
    EntriesRefused,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceResult,
    WhatIfResult,
)
from joe.brokers.ibkr.connection import IBKRConnection
from joe.brokers.ibkr.ledger import OrderLedger
from joe.brokers.ibkr.orderids import OrderIdStore, as_store
from joe.brokers.ibkr.orders import base_order, link_bracket, plan, stock
from joe.brokers.ibkr.tracking import Tracked, decimal
from joe.core.events import AuditSink, OrderEvent, OrderEventType
from joe.core.models import AccountInfo, Fill, OrderIntent, OrderLeg, Position
from joe.core.order import Order
from joe.core.order import OrderState as JoeState

log = logging.getLogger(__name__)

WhatIfCheck = Callable[[OrderIntent, WhatIfResult], None]
UNSET = 1.7976931348623157e308
NO_SECURITY_DEFINITION = 200


def _num(s: str) -> Decimal:
    try:
        v = float(s)
    except (TypeError, ValueError):
        return Decimal(0)
    return Decimal(0) if v >= UNSET else decimal(v)


class IBKRExecutor:
    """Order execution at Interactive Brokers (TWS / IB Gateway) through ib_async."""

    name = "ibkr"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 1,
        account: str = "",
        mode: str = "paper",
        audit: AuditSink | None = None,
        order_ids: OrderIdStore | str | Path | None = None,
        *,
        connection: IBKRConnection | None = None,
        what_if_check: WhatIfCheck | None = None,
        ack_timeout: float = 5.0,
        what_if_timeout: float = 5.0,
        commission_wait: float = 0.5,
        **conn_options: Any,
    ) -> None:
        if audit is None:
            raise ValueError("IBKRExecutor needs an audit sink")
        self.audit = audit
        self.conn = connection or IBKRConnection(host, port, client_id, account, mode, audit, **conn_options)
        self.ib = self.conn.ib
        self.order_ids = as_store(order_ids)
        self.what_if_check = what_if_check
        self.ack_timeout = ack_timeout
        self.what_if_timeout = what_if_timeout
        self.commission_wait = commission_wait
        self.last_what_if: dict[str, WhatIfResult] = {}
        self.ledger = OrderLedger(audit, self._send_cancel, commission_wait)
        self._orders = self.ledger.orders
        self._queued_cancels: list[str] = []
        self._contracts: dict[str, Contract] = {}
        self.conn.add_resync_hook(self._resync)
        self.ib.orderStatusEvent += self._on_status
        self.ib.execDetailsEvent += self._on_exec
        self.ib.commissionReportEvent += self._on_commission

    # -- connection ---------------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        return self.conn.account

    @property
    def entries_allowed(self) -> bool:
        return self.conn.ready

    async def connect(self) -> None:
        await self.conn.connect()

    async def close(self) -> None:
        self.ledger.flush_all()
        await self.conn.close()

    async def _resync(self, reason: str) -> None:
        """Reconcile after a (re)connect or 1101/1102: ids, executions, order states, queued cancels."""
        self.ib.client.updateReqId(self.order_ids.load() + 1)
        if reason != "connect":  # a fresh connect has just fetched these inside ib_async
            await self.ib.reqOpenOrdersAsync()
            await self.ib.reqExecutionsAsync()
        for f in sorted(self.ib.fills(), key=lambda x: x.time):
            self.ledger.on_fill(f, live=False)
        seen = set()
        for trade in self.ib.trades():
            seen.add(trade.order.orderRef)
            self.ledger.on_status(trade)
        self.ledger.reject_missing(seen)
        queued, self._queued_cancels = self._queued_cancels, []
        for coid in queued:
            t = self._orders.get(coid)
            if t is not None and not t.order.state.is_terminal:
                self._send_cancel(t)

    # -- events -------------------------------------------------------------------------------------

    def events(self) -> AsyncIterator[OrderEvent]:
        return self.ledger.stream()

    def _on_status(self, trade: Trade) -> None:
        self.ledger.on_status(trade)

    def _on_exec(self, trade: Trade, fill: IBFill) -> None:
        self.ledger.on_fill(fill, live=True)

    def _on_commission(self, trade: Trade, fill: IBFill, report: Any) -> None:
        self.ledger.on_commission(report.execId, report.commission)

    # -- orders -------------------------------------------------------------------------------------

    async def _contract(self, symbol: str) -> Contract:
        c = self._contracts.get(symbol)
        if c is None:
            c = stock(symbol)
            try:
                await asyncio.wait_for(self.ib.qualifyContractsAsync(c), self.ack_timeout)
            except RequestError as exc:
                if exc.code == NO_SECURITY_DEFINITION:
                    raise OrderRejected(f"IBKR does not know the contract {symbol}") from exc
                raise BrokerError(f"cannot qualify {symbol} at IBKR: {exc}") from exc
            except Exception as exc:
                raise BrokerError(f"cannot qualify {symbol} at IBKR: {exc!r}") from exc
            if not c.conId:
                raise OrderRejected(f"IBKR does not know the contract {symbol}")
            self._contracts[symbol] = c
        return c

    def _next_order_id(self) -> int:
        self.ib.client.updateReqId(self.order_ids.load() + 1)
        oid = self.ib.client.getReqId()
        self.order_ids.save(oid)
        return oid

    async def what_if(self, intent: OrderIntent) -> WhatIfResult:
        """Margin impact of `intent` from IBKR's what-if (nothing is placed)."""
        if not self.conn.ready:
            raise BrokerUnavailable("IBKR not connected")
        contract = await self._contract(intent.symbol)
        probe = base_order(intent, self.conn.account)
        probe.transmit = True
        try:
            st = await asyncio.wait_for(self.ib.whatIfOrderAsync(contract, probe), self.what_if_timeout)
        except Exception as exc:
            raise OrderRejected(f"what-if for {intent.client_order_id} failed: {exc!r}") from exc
        if not isinstance(st, OrderState):
            raise OrderRejected(f"what-if for {intent.client_order_id} returned no margin data")
        res = WhatIfResult(
            init_margin_change=_num(st.initMarginChange), maint_margin_change=_num(st.maintMarginChange),
            equity_with_loan_after=_num(st.equityWithLoanAfter), commission=_num(str(st.commission)),
            warning=st.warningText,
        )  # fmt: skip
        self.last_what_if[intent.client_order_id] = res
        self.audit.record("order.what_if", {"init_margin_change": str(res.init_margin_change),
                          "maint_margin_change": str(res.maint_margin_change), "warning": res.warning},
                          client_order_id=intent.client_order_id)  # fmt: skip
        return res

    async def place(self, intent: OrderIntent) -> PlaceResult:
        existing = self._orders.get(intent.client_order_id)
        if existing is not None:  # the same intent again: never a second order
            return self._result(existing)
        if not self.conn.ready:
            reason = "IBKR disconnected or re-syncing"
            if intent.is_entry:
                self.audit.record("order.entry_refused", {"reason": reason, "symbol": intent.symbol},
                                  client_order_id=intent.client_order_id)  # fmt: skip
                raise EntriesRefused(reason)
            raise BrokerUnavailable(reason)
        contract = await self._contract(intent.symbol)
        if intent.is_entry:
            wi = await self.what_if(intent)
            if self.what_if_check is not None:
                try:
                    self.what_if_check(intent, wi)
                except OrderRejected as exc:
                    self.audit.record("order.reject", {"reason": f"what-if: {exc}"},
                                      client_order_id=intent.client_order_id)  # fmt: skip
                    raise
        group = plan(intent, self.conn.account)
        link_bracket(group, [self._next_order_id() for _ in group])
        tracked = [Tracked(Order(p.intent), contract, p.order, p.order.orderId) for p in group]
        parent = tracked[0]
        for t in tracked[1:]:
            t.parent = parent.coid
            parent.children.append(t.coid)
        for t in tracked:  # write-ahead: record the attempt before anything is sent
            self.ledger.track(t)
            t.order.broker_order_id = str(t.order_id)
            t.order.transition(JoeState.SUBMITTING)
            o = t.ib_order
            self.audit.record(
                "order.attempt",
                {"symbol": intent.symbol, "side": o.action, "quantity": str(o.totalQuantity),
                 "order_type": o.orderType, "lmt_price": o.lmtPrice, "aux_price": o.auxPrice,
                 "transmit": o.transmit, "parent_id": o.parentId, "oca_group": o.ocaGroup,
                 "leg": t.order.intent.leg.value},
                client_order_id=t.coid, broker_order_id=str(t.order_id),
            )  # fmt: skip
        for t in tracked:
            self.ib.placeOrder(contract, t.ib_order)
            self.ledger.emit(t, OrderEventType.SUBMITTED)
        try:
            await asyncio.wait_for(parent.acked.wait(), self.ack_timeout)
        except TimeoutError:
            for t in tracked:
                if t.order.state is JoeState.SUBMITTING:
                    t.order.transition(JoeState.UNKNOWN, reason="no acknowledgement")
                    self.ledger.emit(t, OrderEventType.UNKNOWN, "no acknowledgement")
            self.audit.record("order.unknown", {"reason": "no acknowledgement within timeout"},
                              client_order_id=parent.coid)  # fmt: skip
            raise OrderOutcomeUnknown(f"no acknowledgement for {parent.coid}") from None
        return self._result(parent)

    @staticmethod
    def _result(t: Tracked) -> PlaceResult:
        o = t.order
        return PlaceResult(
            client_order_id=t.coid, broker_order_id=str(t.order_id),
            accepted=o.state not in (JoeState.REJECTED, JoeState.UNKNOWN),
            filled_quantity=o.filled_quantity, avg_price=o.avg_fill_price, reason=o.reject_reason or "",
        )  # fmt: skip

    def _tracked(self, client_order_id: str) -> Tracked:
        t = self._orders.get(client_order_id)
        if t is None:
            raise BrokerError(f"unknown order {client_order_id}")
        return t

    def _child(self, t: Tracked, leg: OrderLeg) -> Tracked | None:
        for coid in t.children:
            c = self._orders.get(coid)
            if c is not None and c.order.intent.leg is leg:
                return c
        return t if t.order.intent.leg is leg else None

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
        t = self._tracked(client_order_id)
        if not self.conn.ready:
            raise BrokerUnavailable("IBKR disconnected or re-syncing")
        changes: list[tuple[Tracked, dict[str, Any]]] = []
        if stop_loss is not None:
            sl = self._child(t, OrderLeg.STOP_LOSS)
            if sl is None:
                raise BrokerError(f"{client_order_id} has no stop-loss order to modify")
            key = "trailStopPrice" if sl.ib_order.orderType == "TRAIL" else "auxPrice"
            changes.append((sl, {key: stop_loss}))
        if take_profit is not None:
            tp = self._child(t, OrderLeg.TAKE_PROFIT)
            if tp is None:
                raise BrokerError(f"{client_order_id} has no take-profit order to modify")
            changes.append((tp, {"lmtPrice": take_profit}))
        own: dict[str, Any] = {}
        if limit_price is not None:
            own["lmtPrice"] = limit_price
        if stop_price is not None:
            own["auxPrice"] = stop_price
        if quantity is not None:
            own["totalQuantity"] = quantity
        if own:
            changes.append((t, own))
        for target, fields in changes:
            if target.order.state.is_terminal:
                raise BrokerError(f"{target.coid} is {target.order.state}; cannot modify")
            for k, v in fields.items():
                setattr(target.ib_order, k, float(v))
            if "totalQuantity" in fields:
                target.order.intent = replace(target.order.intent, quantity=Decimal(fields["totalQuantity"]))
            target.ib_order.transmit = True
            self.audit.record("order.modify", {k: str(v) for k, v in fields.items()},
                              client_order_id=target.coid, broker_order_id=str(target.order_id))  # fmt: skip
            try:
                self.ib.placeOrder(target.contract, target.ib_order)
            except AssertionError as exc:  # ib_async refuses to modify an order it already saw finish
                raise BrokerError(f"{target.coid} is already done at IBKR; cannot modify") from exc
            summary = ", ".join(f"{k}={v}" for k, v in fields.items())
            self.ledger.emit(target, OrderEventType.MODIFIED, summary)

    async def cancel(self, client_order_id: str) -> None:
        if client_order_id not in self._orders:
            self._cancel_foreign(client_order_id)
            return
        t = self._tracked(client_order_id)
        if t.order.state.is_terminal:
            return
        if not self.conn.ready:
            if client_order_id not in self._queued_cancels:
                self._queued_cancels.append(client_order_id)
            self.audit.record("order.cancel_queued", {"reason": "IBKR disconnected or re-syncing"},
                              client_order_id=client_order_id)  # fmt: skip
            return
        self._send_cancel(t)

    def _cancel_foreign(self, client_order_id: str) -> None:
        """Cancel an order placed by an earlier process: it is found at IBKR by its orderRef."""
        if not self.conn.ready:
            raise BrokerUnavailable("IBKR disconnected or re-syncing; unknown order cannot be queued")
        trades = [t for t in self.ib.openTrades() if t.order.orderRef == client_order_id]
        if not trades:
            raise BrokerError(f"unknown order {client_order_id}")
        for trade in trades:
            self.audit.record("order.cancel", {"adopted": True}, client_order_id=client_order_id,
                              broker_order_id=str(trade.order.orderId))  # fmt: skip
            self.ib.client.cancelOrder(trade.order.orderId, "")

    def _send_cancel(self, t: Tracked) -> None:
        if t.order.state in (JoeState.ACCEPTED, JoeState.PARTIALLY_FILLED):
            t.order.transition(JoeState.CANCEL_PENDING, reason="cancel requested")
        self.audit.record("order.cancel", {}, client_order_id=t.coid, broker_order_id=str(t.order_id))
        self.ib.client.cancelOrder(t.order_id, "")

    # -- reads --------------------------------------------------------------------------------------

    def order(self, client_order_id: str) -> Order | None:
        """Joe's view of an order this executor placed (None if unknown)."""
        t = self._orders.get(client_order_id)
        return t.order if t else None

    async def account(self) -> AccountInfo:
        if not self.conn.connected:
            raise BrokerUnavailable("IBKR not connected")
        values = await self.ib.accountSummaryAsync(self.conn.account)
        tags = {v.tag: v for v in values}

        def val(tag: str) -> Decimal:
            v = tags.get(tag)
            return _num(v.value) if v is not None else Decimal(0)

        cur = tags["NetLiquidation"].currency if "NetLiquidation" in tags else "USD"
        # P&L is not a summary tag; it streams with the account values (reqAccountUpdates).
        pnl = {v.tag: _num(v.value) for v in self.ib.accountValues(self.conn.account)
               if v.tag in ("RealizedPnL", "UnrealizedPnL") and v.currency in (cur, "BASE")}  # fmt: skip
        return AccountInfo(
            account_id=self.conn.account, currency=cur or "USD", equity=val("NetLiquidation"),
            cash=val("TotalCashValue"), available_funds=val("AvailableFunds"),
            margin_used=val("MaintMarginReq"), excess_liquidity=val("ExcessLiquidity"),
            buying_power=val("BuyingPower"), realized_pnl=pnl.get("RealizedPnL", Decimal(0)),
            unrealized_pnl=pnl.get("UnrealizedPnL", Decimal(0)), ts=datetime.now(UTC),
            extra={k: v.value for k, v in tags.items()},
        )  # fmt: skip

    async def positions(self) -> list[Position]:
        if not self.conn.connected:
            raise BrokerUnavailable("IBKR not connected")
        out = []
        for p in self.ib.positions(self.conn.account):
            if p.position:
                qty, avg = decimal(p.position), decimal(p.avgCost)
                out.append(Position(p.contract.symbol, qty, avg, broker_position_id=str(p.contract.conId)))
        return out

    async def open_orders(self) -> list[OrderEvent]:
        out = []
        for t in self._orders.values():
            if t.order.state.is_working:
                kind = (OrderEventType.PARTIALLY_FILLED if t.order.filled_quantity
                        else OrderEventType.ACCEPTED)  # fmt: skip
                out.append(OrderEvent(kind, t.coid, datetime.now(UTC), str(t.order_id),
                                      filled_quantity=t.order.filled_quantity, remaining=t.order.remaining))
        known = {t.coid for t in self._orders.values()}
        for trade in self.ib.openTrades():
            ref = trade.order.orderRef
            if ref and ref not in known:  # placed before a restart: still Joe's by orderRef
                st = trade.orderStatus
                oid = str(trade.order.orderId)
                out.append(OrderEvent(OrderEventType.ACCEPTED, ref, datetime.now(UTC), oid,
                                      filled_quantity=decimal(st.filled), remaining=decimal(st.remaining)))
        return out

    async def executions_since(self, since: datetime) -> list[Fill]:
        if self.conn.ready:
            with contextlib.suppress(Exception):
                for f in await self.ib.reqExecutionsAsync(ExecutionFilter()):
                    self.ledger.on_fill(f, live=False)
        cutoff = since if since.tzinfo else since.replace(tzinfo=UTC)
        return sorted((f for f in self.ledger.fills.values() if f.ts >= cutoff), key=lambda f: f.ts)
