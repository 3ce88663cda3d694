"""`IBKRExecutionClient`: the thin IBKR adapter the `OrderManager` drives (`ExecutionClient` protocol).

It translates requests into TWS messages through ib_async and reports what TWS says; it decides no
order state. Observations come from the raw wire (`WireTap`), never from ib_async's `Trade.orderStatus`
(ib_async 2.1 marks a trade Cancelled after codes such as 10349, 10148 or 201 on a live order).

- `submit([entry, stop, target])`: the first intent is the parent, the rest its children (parentId,
  one OCA group `oca-<parent client_order_id>` with ocaType 2, transmit only on the last leg, so TWS
  releases the group at once); `orderRef` = client_order_id on every leg. Sizes and prices are checked
  against the contract's `minTick` / `sizeIncrement` first (`InvalidOrder`, nothing sent).
- Order ids come from ib_async's id sequence raised above the highest id in the `OrderIdStore`
  (persisted before the send), so ids only increase across restarts and processes sharing the file.
- `order_status(coid)` asks TWS: reqAllOpenOrders + reqCompletedOrders + reqExecutions filtered by
  orderRef. `mass_status` bundles open and completed orders, executions, commissions, positions and
  the account for one reconciliation pass.
- After every (re)connect and 1101/1102 the executions are re-read and reported again
  (`from_reconciliation=True`) with a `BrokerNotice` "resynced", so missed fills reach the caller.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from ib_async import Contract, ExecutionFilter, Order, OrderState, RequestError, Trade

from joe.brokers.base import (
    BrokerError,
    BrokerOrderRef,
    BrokerUnavailable,
    InvalidOrder,
    OrderOutcomeUnknown,
    OrderRejected,
    SendFailed,
    SubmitAck,
    WhatIfResult,
)
from joe.brokers.ibkr.account import num as _num
from joe.brokers.ibkr.account import read_account, read_positions
from joe.brokers.ibkr.connection import IBKRConnection
from joe.brokers.ibkr.order_lane import OrderLane
from joe.brokers.ibkr.orderids import OrderIdStore, as_store
from joe.brokers.ibkr.orders import OCA_REDUCE_WITH_BLOCK, base_order, lone_leg_oca, oca_group, stock
from joe.brokers.ibkr.rules import check_intent, check_price, check_size, rules_from_details
from joe.brokers.ibkr.tap import WireTap
from joe.brokers.ibkr.translate import BROKER, OrderView, fill_report, status_report
from joe.core.clock import ensure_utc, utcnow
from joe.core.events import AuditSink
from joe.core.models import AccountInfo, OrderIntent
from joe.core.reports import (
    BrokerNotice,
    CodeMeaning,
    CommissionReport,
    FillReport,
    InstrumentRules,
    MassStatus,
    Observation,
    OrderStatusReport,
    PositionReport,
    since_on_broker_clock,
)

NO_SECURITY_DEFINITION = 200


class IBKRExecutionClient:
    """`ExecutionClient` for Interactive Brokers (TWS / IB Gateway) over ib_async."""

    name = BROKER

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
        request_timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        **conn_options: Any,
    ) -> None:
        if audit is None:
            raise ValueError("IBKRExecutionClient needs an audit sink")
        self.audit = audit
        self.conn = connection or IBKRConnection(host, port, client_id, account, mode, audit, **conn_options)
        self.ib = self.conn.ib
        self.order_ids = as_store(order_ids)
        self.request_timeout = request_timeout
        self.clock = clock
        self.tap = WireTap(self.ib, clock, lambda: self.conn.account)
        self.lane = OrderLane(self.ib.client)  # order messages ahead of queued reads (`order_lane`)
        self._rules: dict[str, InstrumentRules] = {}
        self._contracts: dict[str, Contract] = {}
        self._lock = asyncio.Lock()  # one multi-message request (order_status / mass_status) at a time
        self.conn.add_resync_hook(self._resync)

    # -- connection -----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.conn.connected

    @property
    def ready(self) -> bool:
        """Connected and re-synced since the last (re)connect."""
        return self.conn.ready

    async def connect(self) -> None:
        await self.conn.connect()

    async def close(self) -> None:
        await self.conn.close()

    async def _resync(self, reason: str) -> None:
        self.ib.client.updateReqId(self.order_ids.load() + 1)
        for fill in await self._executions():
            self.tap.emit(fill)
        self.tap.emit(
            BrokerNotice(
                broker=BROKER, code="resynced", message=f"IBKR re-synced after {reason}; executions re-read",
                meaning=CodeMeaning.CONNECTIVITY, ts=self.clock(),
            )
        )  # fmt: skip

    def observations(self) -> AsyncIterator[Observation]:
        """Every observation from the moment of the call; several independent listeners may iterate.
        What arrived while nobody listened is delivered to the first listener."""
        return self.tap.stream()

    # -- instruments ----------------------------------------------------------------------------------

    async def instrument_rules(self, symbol: str) -> InstrumentRules:
        """minTick / minSize / sizeIncrement from reqContractDetails (cached per symbol).

        Raises `InvalidOrder` for a symbol TWS does not know (error 200), `BrokerUnavailable` when
        not connected."""
        rules = self._rules.get(symbol)
        if rules is not None:
            return rules
        if not self.conn.connected:
            raise BrokerUnavailable("IBKR not connected")
        try:
            async with asyncio.timeout(self.request_timeout):
                details = await self.ib.reqContractDetailsAsync(stock(symbol))
        except RequestError as exc:
            if exc.code == NO_SECURITY_DEFINITION:
                raise InvalidOrder(f"IBKR does not know the contract {symbol!r} (error 200)") from exc
            raise BrokerError(f"contract details for {symbol} failed: {exc}") from exc
        except (TimeoutError, ConnectionError) as exc:
            raise BrokerUnavailable(f"contract details for {symbol}: {exc!r}") from exc
        if not details:
            raise InvalidOrder(f"IBKR does not know the contract {symbol!r}")
        rules = rules_from_details(symbol, details[0])
        if details[0].contract is not None:
            self._contracts[symbol] = details[0].contract
        self._rules[symbol] = rules
        return rules

    async def _contract(self, symbol: str) -> Contract:
        await self.instrument_rules(symbol)
        return self._contracts.get(symbol) or stock(symbol)

    async def what_if(self, intent: OrderIntent) -> WhatIfResult:
        """Margin impact of `intent` from IBKR's what-if (nothing is placed), for the risk layer.

        Raises `BrokerUnavailable` when not connected, `OrderRejected` when TWS gives no margin data."""
        if not self.conn.connected:
            raise BrokerUnavailable("IBKR not connected")
        contract = await self._contract(intent.symbol)
        probe = base_order(intent, self.conn.account)
        try:
            async with asyncio.timeout(self.request_timeout):
                st = await self.ib.whatIfOrderAsync(contract, probe)
        except Exception as exc:
            raise OrderRejected(f"what-if for {intent.client_order_id} failed: {exc!r}") from exc
        if not isinstance(st, OrderState):
            raise OrderRejected(f"what-if for {intent.client_order_id} returned no margin data")
        res = WhatIfResult(
            init_margin_change=_num(st.initMarginChange), maint_margin_change=_num(st.maintMarginChange),
            equity_with_loan_after=_num(st.equityWithLoanAfter), commission=_num(st.commission),
            warning=st.warningText,
        )  # fmt: skip
        self.audit.record(
            "ibkr.what_if",
            {"init_margin_change": str(res.init_margin_change),
             "maint_margin_change": str(res.maint_margin_change), "warning": res.warning},
            client_order_id=intent.client_order_id,
        )  # fmt: skip
        return res

    # -- orders ---------------------------------------------------------------------------------------

    def _next_order_id(self) -> int:
        self.ib.client.updateReqId(self.order_ids.load() + 1)
        oid = self.ib.client.getReqId()
        self.order_ids.save(oid)  # persisted before the id is used
        return oid

    async def submit(self, intents: Sequence[OrderIntent]) -> list[SubmitAck]:
        """Send one order or one bracket group (parent first); return the ids used. Decides nothing.

        Raises `InvalidOrder` (non-conforming input, nothing sent), `SendFailed` (not connected,
        nothing sent) or `OrderOutcomeUnknown` (the connection failed part-way through the group)."""
        if not intents:
            raise InvalidOrder("submit needs at least one intent")
        parent = intents[0]
        if len(intents) == 1 and (parent.stop_loss is not None or parent.take_profit is not None):
            raise InvalidOrder(
                f"order {parent.client_order_id}: stop_loss/take_profit on a lone entry would be dropped; "
                "pass the stop and target as child intents after the entry"
            )
        if len({i.symbol for i in intents}) != 1:
            raise InvalidOrder(f"bracket {parent.client_order_id}: every leg must trade the same symbol")
        if not self.conn.connected:
            raise SendFailed("IBKR not connected; nothing was sent")
        try:
            rules = await self.instrument_rules(parent.symbol)
            contract = await self._contract(parent.symbol)
        except BrokerUnavailable as exc:
            raise SendFailed(f"IBKR unavailable before sending: {exc}") from exc
        for it in intents:
            check_intent(rules, it)
        orders = [base_order(it, self.conn.account) for it in intents]
        ids = [self._next_order_id() for _ in orders]
        oca = oca_group(parent.client_order_id)
        for i, (o, oid) in enumerate(zip(orders, ids, strict=True)):
            o.orderId, o.clientId = oid, self.tap.client_id
            o.transmit = i == len(orders) - 1
            if i > 0:
                o.parentId, o.ocaGroup, o.ocaType = ids[0], oca, OCA_REDUCE_WITH_BLOCK
        lone = lone_leg_oca(parent) if len(orders) == 1 else None
        if lone is not None:  # a replacement target: one-cancels-the-other with its bracket's stop
            orders[0].ocaGroup, orders[0].ocaType = lone, OCA_REDUCE_WITH_BLOCK
        acks: list[SubmitAck] = []
        for n, (it, o) in enumerate(zip(intents, orders, strict=True)):
            self.audit.record(
                "ibkr.place",
                {"symbol": it.symbol, "side": o.action, "quantity": str(it.quantity),
                 "order_type": o.orderType, "limit_price": _s(it.limit_price),
                 "stop_price": _s(it.stop_price), "parent_id": o.parentId, "oca_group": o.ocaGroup,
                 "transmit": o.transmit, "leg": it.leg.value},
                client_order_id=it.client_order_id, broker_order_id=str(o.orderId),
            )  # fmt: skip
            self.tap.register(contract, o)
            self.tap.note(o.orderId, "place", it.client_order_id, it.leg)
            try:
                self.lane.send(partial(self.ib.placeOrder, contract, o))
            except ConnectionError as exc:
                if n == 0:
                    raise SendFailed(f"IBKR connection lost before {it.client_order_id} was sent") from exc
                raise OrderOutcomeUnknown(
                    f"IBKR connection lost while sending bracket {parent.client_order_id} (leg {n + 1})"
                ) from exc
            acks.append(SubmitAck(it.client_order_id, str(o.orderId)))
        return acks

    async def _broker_order(self, ref: BrokerOrderRef) -> tuple[Contract, Order]:
        """The broker's copy of an open order to modify: ib_async's trade, else reqAllOpenOrders."""
        if ref.broker_order_id is None:
            raise BrokerError(f"order {ref.intent.client_order_id} has no IBKR order id; cannot modify")
        oid = int(ref.broker_order_id)
        key = (self.tap.client_id, oid)
        trade = self.ib.wrapper.trades.get(key)
        if trade is None:
            await self._open_trades()
            trade = self.ib.wrapper.trades.get(key)
        if trade is None:
            raise BrokerError(f"order {ref.intent.client_order_id} (id {oid}) is not open at IBKR")
        return trade.contract, copy.copy(trade.order)

    async def modify(
        self,
        order: BrokerOrderRef,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Send a revision of a working order. TWS's answer arrives on `observations()`: an openOrder
        with the new values, or a notice (110 → REQUEST_REFUSED; the order keeps its old values)."""
        coid = order.intent.client_order_id
        if not self.conn.connected:
            raise SendFailed("IBKR not connected; modify not sent")
        rules = await self.instrument_rules(order.intent.symbol)
        if quantity is not None:
            check_size(rules, quantity, coid)
        check_price(rules, "limit_price", limit_price, coid)
        check_price(rules, "stop_price", stop_price, coid)
        contract, o = await self._broker_order(order)
        changes: dict[str, str] = {}
        if quantity is not None:
            o.totalQuantity, changes["quantity"] = float(quantity), str(quantity)
        if limit_price is not None:
            o.lmtPrice, changes["limit_price"] = float(limit_price), str(limit_price)
        if stop_price is not None:
            if o.orderType == "TRAIL":
                o.trailStopPrice = float(stop_price)
            else:
                o.auxPrice = float(stop_price)
            changes["stop_price"] = str(stop_price)
        o.transmit = True
        self.audit.record("ibkr.modify", changes, client_order_id=coid, broker_order_id=str(o.orderId))
        self.tap.note(o.orderId, "modify", coid)
        # Straight to the socket: ib_async's placeOrder asserts on a trade it wrongly marked done.
        self.lane.send(partial(self.ib.client.placeOrder, o.orderId, contract, o))

    async def cancel(self, order: BrokerOrderRef) -> None:
        """Send a cancel. Only TWS's answer (orderStatus Cancelled, or 10148/10147...) says what happened."""
        coid = order.intent.client_order_id
        # Not connected, or the lookup below failing: provably nothing sent (`SendFailed`), so the
        # OrderManager puts the order back to working and a later cancel tries again.
        if not self.conn.connected:
            raise SendFailed("IBKR not connected; cancel not sent")
        ids = [int(order.broker_order_id)] if order.broker_order_id else []
        if not ids:  # placed by an earlier process and never acknowledged to Joe: find it by orderRef
            live = ("WORKING", "PENDING_SUBMIT", "PENDING_CANCEL", "INACTIVE")
            try:
                reports = await self.order_status(coid)
            except BrokerUnavailable as exc:
                raise SendFailed(f"IBKR unavailable before the cancel was sent: {exc}") from exc
            ids = [int(r.broker_order_id) for r in reports if r.broker_order_id and r.status.name in live]
        for oid in ids:
            self.audit.record("ibkr.cancel", {}, client_order_id=coid, broker_order_id=str(oid))
            self.tap.note(oid, "cancel", coid)
            self.lane.send(partial(self.ib.client.cancelOrder, oid, ""))

    # -- asking the broker ----------------------------------------------------------------------------

    async def _ask(self, request: Callable[[], Awaitable[Any]], what: str) -> Any:
        """Run one read (`request` makes it: ib_async writes the request to the socket as it is
        made, so a socket that dropped raises there) → its answer; raises `BrokerUnavailable` when
        not connected, on a timeout or on a dropped connection."""
        if not self.conn.connected:
            raise BrokerUnavailable(f"IBKR not connected; cannot read {what}")
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (gh-86296),
            # which would leave a cancelled caller (an OrderManager stopping) running on.
            async with asyncio.timeout(self.request_timeout):
                return await request()
        except (TimeoutError, ConnectionError) as exc:
            raise BrokerUnavailable(f"IBKR {what} failed: {exc!r}") from exc

    async def _open_trades(self) -> list[Trade]:
        trades: list[Trade] = await self._ask(self.ib.reqAllOpenOrdersAsync, "open orders")
        return trades

    async def _open_reports(self, ts: datetime) -> list[OrderStatusReport]:
        out = []
        for t in await self._open_trades():
            # The tap saw this answer's raw openOrder/orderStatus; ib_async's trade status may be stale.
            view = self.tap.views.get((t.order.clientId, t.order.orderId))
            if view is None:
                view = OrderView.from_order(t.contract, t.order, "Submitted")
            out.append(status_report(view, leg=self.tap.leg(view), ts=ts, from_reconciliation=True))
        return out

    async def _completed_reports(self, ts: datetime) -> list[OrderStatusReport]:
        trades: list[Trade] = await self._ask(
            lambda: self.ib.reqCompletedOrdersAsync(False), "completed orders"
        )
        out = []
        for t in trades:
            # completedOrder carries no order id: take it from an earlier sighting of the permId.
            view = OrderView.from_order(t.contract, t.order, t.orderStatus.status)
            key = self.tap.by_perm.get(view.perm_id)
            if key is not None:
                view = view.as_known(self.tap.views[key])
            out.append(status_report(view, leg=self.tap.leg(view), ts=ts, from_reconciliation=True))
        return out

    async def _executions(self) -> list[FillReport]:
        fills = await self._ask(lambda: self.ib.reqExecutionsAsync(ExecutionFilter()), "executions")
        out = []
        for f in fills:
            rep = self.tap.commissions.get(f.execution.execId)
            out.append(fill_report(f.contract, f.execution, commission=rep.commission if rep else None,
                                   commission_currency=rep.currency if rep else "",
                                   from_reconciliation=True))  # fmt: skip
        return out

    async def presend_check(self, client_order_id: str) -> bool:
        """Whether any order at IBKR (open, then completed) has orderRef `client_order_id`: two
        requests, no executions (`SupportsPresendCheck`, the OrderManager's check before a send)."""
        async with self._lock:
            ts = self.clock()
            if any(r.client_order_id == client_order_id for r in await self._open_reports(ts)):
                return True
            return any(r.client_order_id == client_order_id for r in await self._completed_reports(ts))

    async def order_status(self, client_order_id: str) -> list[OrderStatusReport]:
        """Every order at IBKR whose orderRef is `client_order_id` (open and completed), asked now.

        Its executions are re-read too: they raise a report's filled quantity when the order copy
        lags, and are re-reported on `observations()` so no fill is missed."""
        async with self._lock:
            ts = self.clock()
            reports = [r for r in await self._open_reports(ts) if r.client_order_id == client_order_id]
            seen = {r.raw.get("perm_id") for r in reports}
            for r in await self._completed_reports(ts):
                if r.client_order_id == client_order_id and r.raw.get("perm_id") not in seen:
                    reports.append(r)
            fills = [f for f in await self._executions() if f.fill.client_order_id == client_order_id]
        latest: dict[str, FillReport] = {}
        for f in fills:
            self.tap.emit(f)
            if f.fill.fill_id not in latest or f.revision > latest[f.fill.fill_id].revision:
                latest[f.fill.fill_id] = f
        out = []
        for r in reports:
            mine = [f.fill.quantity for f in latest.values() if f.fill.broker_order_id == r.broker_order_id]
            done = sum(mine, Decimal(0))
            if done > r.filled_quantity and r.broker_order_id is not None:
                r = replace(r, filled_quantity=done)
            out.append(r)
        return out

    async def mass_status(self, since: datetime | None = None, *, joes_clock: bool = False) -> MassStatus:
        """Open + completed orders, executions since `since` (with commissions), positions, account;
        `ts` is TWS's time (`reqCurrentTime`); `since` is on it too, or with `joes_clock` on Joe's (an
        order's creation): then the cutoff is early enough on TWS's (`since_on_broker_clock`)."""
        async with self._lock:
            # The broker's clock: executions carry TWS's times, so `since` (a checkpoint of an earlier
            # read's `ts`) must be on it too; Joe's clock ahead by more than the overlap hid them.
            ts = ensure_utc(await self._ask(self.ib.reqCurrentTimeAsync, "current time"))
            orders = await self._open_reports(ts)
            open_perms = {r.raw.get("perm_id") for r in orders}
            orders += [r for r in await self._completed_reports(ts) if r.raw.get("perm_id") not in open_perms]
            fills = await self._executions()
        if since is not None:
            # Inclusive, in whole seconds: TWS stamps executions in whole seconds, so one in the
            # cutoff's own second (stamped before a cutoff with a fraction) is still "since" it.
            # `since` on Joe's clock (an order's creation) is moved onto TWS's (`since_on_broker_clock`).
            start = since_on_broker_clock(since, ts, self.clock()) if joes_clock else since
            cutoff = ensure_utc(start).replace(microsecond=0)
            fills = [f for f in fills if f.fill.ts >= cutoff]
        commissions: list[CommissionReport] = []
        for f in fills:
            rep = self.tap.commissions.get(f.raw_exec_id)
            if rep is not None:
                commissions.append(rep)
        return MassStatus(
            broker=BROKER, ts=ts, orders=orders, fills=fills, commissions=commissions,
            positions=await self.positions(), account=await self.account(),
        )  # fmt: skip

    async def positions(self) -> list[PositionReport]:
        """Net positions at IBKR now (reqPositions), non-zero only."""
        raw = await self._ask(self.ib.reqPositionsAsync, "positions")
        return read_positions(raw, self.conn.account, self.clock())

    async def account(self) -> AccountInfo:
        values = await self._ask(lambda: self.ib.accountSummaryAsync(self.conn.account), "account summary")
        return read_account(values, self.ib.accountValues(self.conn.account), self.conn.account, self.clock())


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)
