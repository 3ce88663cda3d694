"""A fake `ExecutionClient` with a tiny venue behind it, for unit tests of the `OrderManager`.

The venue keeps the truth (orders, executions, commissions, net positions) and reports it the way
the adapters do: observations on a queue (the test decides when, in what order, how often they are
delivered) and answers to `order_status` / `mass_status` / `positions` from its own state. Brackets
behave as at IBKR: children rest until the parent fills, a child's fill cancels its sibling (OCA),
and cancelling the parent cancels unfilled children. End-to-end tests against the real simulators
live elsewhere; this is for the rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from joe.brokers.base import BrokerOrderRef, OrderOutcomeUnknown, SubmitAck
from joe.core.models import ZERO, AccountInfo, Fill, OrderIntent, OrderLeg
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
    VenueOrderStatus,
)

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
V = VenueOrderStatus


@dataclass
class VOrder:
    intent: OrderIntent
    broker_order_id: str
    parent: str | None
    quantity: Decimal
    status: VenueOrderStatus = V.WORKING
    filled: Decimal = ZERO
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None


@dataclass
class FakeVenue:
    name: str = "fake"
    rules: InstrumentRules = field(
        default_factory=lambda: InstrumentRules("AAPL", Decimal("0.01"), Decimal(1), Decimal(1))
    )
    orders: dict[str, VOrder] = field(default_factory=dict)
    executions: dict[str, tuple[FillReport, Decimal]] = field(
        default_factory=dict
    )  # id -> (latest, commission)
    net: dict[str, Decimal] = field(default_factory=dict)
    outbox: list[Observation] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    fail_before_send: Exception | None = None
    unknown_after_send: bool = False
    refuse_modify: bool = False
    refuse_cancel: bool = False
    resize_children: bool = True
    status_unavailable: bool = False
    answer_delay_s: float = 0.0  # seconds between the venue taking an order and its answer (a slow ack)
    _n: int = 0
    _q: asyncio.Queue[Observation] = field(default_factory=asyncio.Queue)

    connected: bool = True

    # ---------------------------------------------------------------- protocol
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def instrument_rules(self, symbol: str) -> InstrumentRules:
        return self.rules

    async def submit(self, intents: Sequence[OrderIntent]) -> list[SubmitAck]:
        if self.fail_before_send is not None:
            e, self.fail_before_send = self.fail_before_send, None
            raise e
        parent: str | None = None
        acks = []
        for i in intents:
            self._n += 1
            boid = f"B{self._n}"
            p = parent if i.leg in (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT) else None
            self.orders[i.client_order_id] = VOrder(
                i, boid, p, i.quantity, limit_price=i.limit_price, stop_price=i.stop_price
            )
            self.sent.append(i.client_order_id)
            if parent is None:
                parent = i.client_order_id
            acks.append(SubmitAck(i.client_order_id, boid))
        if self.answer_delay_s:  # the venue has the orders; what it says of them comes later
            await asyncio.sleep(self.answer_delay_s)
        for a in acks:
            self._status(a.client_order_id)
        if self.unknown_after_send:
            self.unknown_after_send = False
            raise OrderOutcomeUnknown("timeout after send")
        return acks

    async def modify(
        self,
        order: BrokerOrderRef,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        v = self.orders[order.intent.client_order_id]
        if self.refuse_modify or v.status is not V.WORKING:
            self.outbox.append(
                self._notice(v, "110", "modify refused", CodeMeaning.REQUEST_REFUSED, "modify")
            )
            return
        if quantity is not None:
            v.quantity = quantity
        if limit_price is not None:
            v.limit_price = limit_price
        if stop_price is not None:
            v.stop_price = stop_price
        self._status(v.intent.client_order_id)
        if quantity is not None and self.resize_children:
            for c in self._children(v.intent.client_order_id):
                if c.status is V.WORKING and c.quantity != quantity:
                    c.quantity = quantity
                    self._status(c.intent.client_order_id)

    async def cancel(self, order: BrokerOrderRef) -> None:
        v = self.orders[order.intent.client_order_id]
        if self.refuse_cancel or v.status is not V.WORKING:
            msg = f"order cannot be cancelled, state: {v.status}"
            self.outbox.append(self._notice(v, "10148", msg, CodeMeaning.REQUEST_REFUSED, "cancel"))
            return
        self.venue_cancel(v.intent.client_order_id)

    async def order_status(self, client_order_id: str) -> list[OrderStatusReport]:
        if self.status_unavailable:
            from joe.brokers.base import BrokerUnavailable

            raise BrokerUnavailable("status endpoint down")
        v = self.orders.get(client_order_id)
        return [self._report(v)] if v else []

    async def mass_status(self, since: datetime | None = None, *, joes_clock: bool = False) -> MassStatus:
        return MassStatus(
            self.name,
            T0,
            orders=[self._report(v) for v in self.orders.values()],
            fills=[f for f, _ in self.executions.values()],
            commissions=[CommissionReport(self.name, k, c) for k, (_, c) in self.executions.items() if c],
            positions=await self.positions(),
        )

    async def positions(self) -> list[PositionReport]:
        return [PositionReport(self.name, s, q, Decimal(100), T0) for s, q in self.net.items() if q != 0]

    async def account(self) -> AccountInfo:
        return AccountInfo("F1", "USD", Decimal(10**6), Decimal(10**6), Decimal(10**6))

    async def observations(self) -> AsyncIterator[Observation]:
        while True:
            yield await self._q.get()

    # ---------------------------------------------------------------- venue-side actions
    def execute(
        self, coid: str, qty: Decimal, price: Decimal = Decimal(100), commission: Decimal = Decimal("1.00")
    ) -> str | None:
        """Fill up to `qty` of a working order; returns the execution id (None if nothing filled)."""
        v = self.orders[coid]
        if v.status is not V.WORKING or (v.parent and self.orders[v.parent].status is not V.FILLED):
            return None
        qty = min(qty, v.quantity - v.filled)
        if qty <= 0:
            return None
        self._n += 1
        exec_id = f"000{self._n}.01"
        v.filled += qty
        self.net[v.intent.symbol] = self.net.get(v.intent.symbol, ZERO) + qty * v.intent.side.sign
        fill = Fill(
            exec_id, coid, v.intent.symbol, v.intent.side, qty, price, T0 + timedelta(seconds=self._n)
        )
        fr = FillReport(self.name, fill, 1, f"{exec_id}.01")
        self.executions[exec_id] = (fr, commission)
        self.outbox.append(fr)
        self.outbox.append(CommissionReport(self.name, exec_id, commission))
        if v.filled == v.quantity:
            v.status = V.FILLED
            if v.parent:  # OCA: the sibling is cancelled
                for sib in self._children(v.parent):
                    if sib is not v and sib.status is V.WORKING:
                        self.venue_cancel(sib.intent.client_order_id)
        self._status(coid)
        return exec_id

    def correct(self, exec_id: str, new_qty: Decimal) -> None:
        """An execution correction: the same id, a higher revision, a smaller quantity."""
        fr, commission = self.executions[exec_id]
        old = fr.fill.quantity
        new_qty = min(new_qty, old)
        if new_qty <= 0 or new_qty == old:
            return
        v = self.orders[fr.fill.client_order_id]
        v.filled -= old - new_qty
        self.net[v.intent.symbol] -= (old - new_qty) * v.intent.side.sign
        if v.status is V.FILLED:
            v.status = V.WORKING
        fill = Fill(
            exec_id, fr.fill.client_order_id, fr.fill.symbol, fr.fill.side, new_qty, fr.fill.price, fr.fill.ts
        )
        nfr = FillReport(self.name, fill, fr.revision + 1, f"{exec_id}.{fr.revision + 1:02d}")
        self.executions[exec_id] = (nfr, commission)
        self.outbox.append(nfr)
        self._status(fr.fill.client_order_id)

    def venue_cancel(self, coid: str) -> None:
        v = self.orders[coid]
        if v.status is not V.WORKING:
            return
        v.status = V.CANCELLED
        self._status(coid)
        kids = self._children(coid)
        if v.filled == 0:
            for c in kids:
                self.venue_cancel(c.intent.client_order_id)
        elif self.resize_children:
            for c in kids:
                if c.status is V.WORKING and c.quantity != v.filled:
                    c.quantity = v.filled
                    self._status(c.intent.client_order_id)

    def notice(self, coid: str, code: str, meaning: CodeMeaning, msg: str = "") -> None:
        self.outbox.append(self._notice(self.orders[coid], code, msg or code, meaning, ""))

    # ---------------------------------------------------------------- helpers
    def _children(self, coid: str) -> list[VOrder]:
        return [v for v in self.orders.values() if v.parent == coid]

    def _report(self, v: VOrder) -> OrderStatusReport:
        i = v.intent
        return OrderStatusReport(
            self.name,
            i.client_order_id,
            v.broker_order_id,
            i.symbol,
            i.side,
            v.quantity,
            v.status,
            T0,
            filled_quantity=v.filled,
            order_type=i.order_type,
            limit_price=v.limit_price,
            stop_price=v.stop_price,
            leg=i.leg,
            raw_status=v.status.value,
        )

    def _status(self, coid: str) -> None:
        self.outbox.append(self._report(self.orders[coid]))

    def _notice(self, v: VOrder, code: str, msg: str, meaning: CodeMeaning, request: str) -> BrokerNotice:
        return BrokerNotice(
            self.name, code, msg, meaning, T0, v.intent.client_order_id, v.broker_order_id, request
        )

    async def deliver(self, om: object) -> None:
        """Hand every queued observation to `om.process`, in order (the stream as it arrives)."""
        while self.outbox:
            await om.process(self.outbox.pop(0))  # type: ignore[attr-defined]
