"""The simulated broker state: working orders, bracket/OCA groups, executions, positions, account.

The book is pure state + rules; it returns `BookEvent`s and the server turns them into wire messages
for the owning session. Prices come from the shared `PriceBook`, triggering from the shared
`FillModel` (limits, stops, stop-limits and trailing stops that ratchet with the simulated price).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from joe.simulators.common import FillModel, PriceBook, SimOrder, SimOrderType
from joe.simulators.ibkr.codec import SimContract
from joe.simulators.ibkr.codec_orders import WhatIfState, WireExec, WireOrder
from joe.simulators.ibkr.requests import PlacedOrder

ZERO = Decimal(0)
MARGIN_RATE = Decimal("0.25")
COMMISSION_PER_SHARE = Decimal("0.005")
MIN_COMMISSION = Decimal("1.00")
DEFAULT_TICK = Decimal("0.01")

_TYPES = {
    "MKT": SimOrderType.MARKET,
    "LMT": SimOrderType.LIMIT,
    "STP": SimOrderType.STOP,
    "STP LMT": SimOrderType.STOP_LIMIT,
    "TRAIL": SimOrderType.TRAIL,
}

# IB order statuses used on the wire.
PRE_SUBMITTED = "PreSubmitted"
SUBMITTED = "Submitted"
FILLED = "Filled"
CANCELLED = "Cancelled"


def con_id_for(symbol: str) -> int:
    """A stable positive conId per symbol."""
    return 100_000 + int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:3], "big")


@dataclass
class BookOrder:
    """One order at the simulated broker."""

    placed: PlacedOrder
    client_id: int
    perm_id: int
    sim: SimOrder
    status: str = "PendingSubmit"
    held: bool = False  # transmit=0 and not yet released by a transmitting sibling
    active: bool = False  # children stay inactive until their parent fills
    avg_price: Decimal = ZERO
    last_price: Decimal = ZERO

    @property
    def order_id(self) -> int:
        return self.placed.order_id

    @property
    def done(self) -> bool:
        return self.status in (FILLED, CANCELLED)

    def wire(self, account: str) -> WireOrder:
        p = self.placed
        aux = p.aux_price
        return WireOrder(
            order_id=p.order_id, client_id=self.client_id, perm_id=self.perm_id, action=p.action,
            quantity=p.quantity, order_type=p.order_type, lmt_price=p.lmt_price, aux_price=aux, tif=p.tif,
            oca_group=p.oca_group, oca_type=p.oca_type, account=p.account or account, order_ref=p.order_ref,
            parent_id=p.parent_id,
            trail_stop_price=self.sim.stop_price if p.order_type == "TRAIL" else p.trail_stop_price,
            trailing_percent=p.trailing_percent, transmit=p.transmit, filled=self.sim.filled,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Execution:
    """A recorded execution, kept for reqExecutions after reconnects."""

    contract: SimContract
    wire: WireExec
    commission: Decimal

    @property
    def at(self) -> datetime:
        """When it executed (UTC), read from the wire time `YYYYMMDD HH:MM:SS UTC`."""
        return datetime.strptime(self.wire.time, "%Y%m%d %H:%M:%S UTC").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BookEvent:
    """Something a session must be told: an order status change or a fill."""

    kind: str  # "status" | "fill"
    order: BookOrder
    execution: Execution | None = None


@dataclass
class PositionState:
    qty: Decimal = ZERO
    avg_cost: Decimal = ZERO


@dataclass
class Book:
    """All broker-side state of the simulator."""

    prices: PriceBook
    account: str = "DU1234567"
    cash: Decimal = Decimal(1_000_000)
    fill_model: FillModel = field(default_factory=FillModel)
    orders: dict[tuple[int, int], BookOrder] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)
    positions: dict[str, PositionState] = field(default_factory=dict)
    max_order_id: int = 0
    realized: Decimal = ZERO
    min_ticks: dict[str, Decimal] = field(default_factory=dict)  # per symbol; default DEFAULT_TICK
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # the simulator's clock
    _perm_seq: int = 9_000_000
    _exec_seq: int = 0

    def contract(self, symbol: str) -> SimContract:
        tick = self.min_tick(symbol)
        return SimContract(con_id_for(symbol), symbol, long_name=f"{symbol} Inc", min_tick=tick)

    def min_tick(self, symbol: str) -> Decimal:
        return self.min_ticks.get(symbol, DEFAULT_TICK)

    def off_tick(self, p: PlacedOrder) -> str | None:
        """The first price field of `p` that is not a multiple of its contract's minTick (TWS error 110)."""
        tick = self.min_tick(p.contract.symbol)
        prices = {"lmtPrice": p.lmt_price, "trailStopPrice": p.trail_stop_price}
        if p.order_type in ("STP", "STP LMT"):
            prices["auxPrice"] = p.aux_price
        for name, value in prices.items():
            if value is not None and value != 0 and (value / tick) != (value / tick).to_integral_value():
                return name
        return None

    # -- account ------------------------------------------------------------------------------------

    def gross_value(self) -> Decimal:
        return sum((abs(p.qty) * self.prices.quote(s).mid for s, p in self.positions.items()), ZERO)

    def net_liquidation(self) -> Decimal:
        return self.cash + sum((p.qty * self.prices.quote(s).mid for s, p in self.positions.items()), ZERO)

    def account_values(self) -> dict[str, Decimal]:
        nlv = self.net_liquidation()
        margin = self.gross_value() * MARGIN_RATE
        avail = nlv - margin
        return {
            "NetLiquidation": nlv, "TotalCashValue": self.cash, "EquityWithLoanValue": nlv,
            "GrossPositionValue": self.gross_value(), "InitMarginReq": margin, "MaintMarginReq": margin,
            "AvailableFunds": avail, "ExcessLiquidity": avail, "BuyingPower": avail * 4,
            "Cushion": (avail / nlv) if nlv else ZERO, "RealizedPnL": self.realized,
            "UnrealizedPnL": self.unrealized(),
        }  # fmt: skip

    def unrealized(self) -> Decimal:
        return sum(((self.prices.quote(s).mid - p.avg_cost) * p.qty for s, p in self.positions.items()), ZERO)

    def what_if(self, p: PlacedOrder) -> WhatIfState:
        vals = self.account_values()
        px = p.lmt_price or self.prices.quote(p.contract.symbol).mid
        change = (p.quantity * px * MARGIN_RATE).quantize(Decimal("0.01"))
        return WhatIfState(
            init_before=vals["InitMarginReq"], maint_before=vals["MaintMarginReq"],
            ewl_before=vals["EquityWithLoanValue"], init_change=change, maint_change=change,
            ewl_change=-self.commission(p.quantity), commission=self.commission(p.quantity),
        )  # fmt: skip

    @staticmethod
    def commission(qty: Decimal) -> Decimal:
        return max(MIN_COMMISSION, (qty * COMMISSION_PER_SHARE).quantize(Decimal("0.01")))

    # -- orders -------------------------------------------------------------------------------------

    def _sim_order(self, p: PlacedOrder) -> SimOrder:
        t = _TYPES.get(p.order_type)
        if t is None:
            raise ValueError(f"unsupported order type {p.order_type!r}")
        trail_amount = p.aux_price if t is SimOrderType.TRAIL and p.trailing_percent is None else None
        stop = p.aux_price if t in (SimOrderType.STOP, SimOrderType.STOP_LIMIT) else p.trail_stop_price
        return SimOrder(
            order_id=str(p.order_id), symbol=p.contract.symbol, side=p.action, quantity=p.quantity,
            order_type=t, limit_price=p.lmt_price, stop_price=stop, trail_amount=trail_amount,
            trail_percent=p.trailing_percent, parent_id=str(p.parent_id) if p.parent_id else None,
            oca_group=p.oca_group or None,
        )  # fmt: skip

    def place_preview(self, client_id: int, p: PlacedOrder) -> WireOrder:
        """The echo of a whatIf order: nothing is stored, only the id counter moves."""
        self.max_order_id = max(self.max_order_id, p.order_id)
        sim = self._sim_order(p)
        return BookOrder(p, client_id, 0, sim).wire(self.account)

    def get(self, client_id: int, order_id: int) -> BookOrder | None:
        return self.orders.get((client_id, order_id))

    def place(self, client_id: int, p: PlacedOrder) -> list[BookEvent]:
        """Accept a new order (or hold it until transmit); returns status events for released orders."""
        self.max_order_id = max(self.max_order_id, p.order_id)
        self._perm_seq += 1
        bo = BookOrder(p, client_id, self._perm_seq, self._sim_order(p))
        self.orders[(client_id, p.order_id)] = bo
        if not p.transmit:
            bo.held = True
            return []
        released = [bo]
        root = p.parent_id or p.order_id
        for other in self.orders.values():
            same_group = root in (other.order_id, other.placed.parent_id)
            if other.client_id == client_id and other.held and same_group:
                other.held = False
                released.append(other)
        events: list[BookEvent] = []
        for o in sorted(released, key=lambda x: x.order_id):
            parent = self.get(client_id, o.placed.parent_id) if o.placed.parent_id else None
            o.active = parent is None or parent.status == FILLED
            o.status = SUBMITTED if o.active else PRE_SUBMITTED
            events.append(BookEvent("status", o))
        return events

    def modify(self, bo: BookOrder, p: PlacedOrder) -> list[BookEvent]:
        """Apply a modification (same order id placed again)."""
        bo.placed = p
        new = self._sim_order(p)
        new.filled, new.triggered = bo.sim.filled, bo.sim.triggered
        if new.order_type is SimOrderType.TRAIL and p.trail_stop_price is None:
            new.stop_price = bo.sim.stop_price
        bo.sim = new
        return [BookEvent("status", bo)]

    def cancel(self, bo: BookOrder) -> list[BookEvent]:
        """Cancel an order and (like TWS) its untriggered children."""
        if bo.done:
            return []
        bo.status = CANCELLED
        events = [BookEvent("status", bo)]
        for child in list(self.orders.values()):
            if child.client_id == bo.client_id and child.placed.parent_id == bo.order_id and not child.done:
                if bo.sim.filled > 0:
                    # A partly filled parent keeps its protection, sized to what was filled (as TWS does).
                    child.placed = replace(child.placed, quantity=bo.sim.filled)
                    child.sim.quantity = bo.sim.filled
                    child.active, child.status = True, SUBMITTED
                    events.append(BookEvent("status", child))
                else:
                    events += self.cancel(child)
        return events

    def working(self, client_id: int | None = None) -> list[BookOrder]:
        return [
            o for o in self.orders.values()
            if not o.done and not o.held and (client_id is None or o.client_id == client_id)
        ]  # fmt: skip

    # -- matching -----------------------------------------------------------------------------------

    def match(self, symbol: str | None = None) -> list[BookEvent]:
        """Run every active order (optionally of one symbol) against the current quote."""
        events: list[BookEvent] = []
        progress = True
        while progress:  # a parent fill activates children, which may then fill at once
            progress = False
            for bo in sorted(self.working(), key=lambda o: o.order_id):
                if not bo.active or bo.done or (symbol is not None and bo.sim.symbol != symbol):
                    continue
                q = self.prices.quote(bo.sim.symbol)
                res = self.fill_model.check(bo.sim, q.bid, q.ask)
                while res is not None and not bo.done:
                    events += self.execute(bo, res.quantity, res.price)
                    progress = True
                    res = self.fill_model.check(bo.sim, q.bid, q.ask) if not bo.done else None
        return events

    def execute(self, bo: BookOrder, qty: Decimal, price: Decimal) -> list[BookEvent]:
        """Record one execution of `qty` at `price` and apply its consequences."""
        qty = min(qty, bo.sim.remaining)
        if qty <= 0:
            return []
        prev = bo.sim.filled
        bo.sim.filled = prev + qty
        bo.avg_price = (bo.avg_price * prev + price * qty) / bo.sim.filled
        bo.last_price = price
        self._exec_seq += 1
        c = self.contract(bo.sim.symbol)
        commission = self.commission(qty)
        ex = WireExec(
            exec_id=f"0000{c.con_id:x}.{bo.perm_id:08x}.{self._exec_seq:02d}.01", order_id=bo.order_id,
            client_id=bo.client_id, perm_id=bo.perm_id,
            time=self.now().strftime("%Y%m%d %H:%M:%S UTC"), account=bo.placed.account or self.account,
            side="BOT" if bo.sim.is_buy else "SLD", shares=qty, price=price, cum_qty=bo.sim.filled,
            avg_price=bo.avg_price.quantize(Decimal("0.0001")), order_ref=bo.placed.order_ref,
        )  # fmt: skip
        execution = Execution(c, ex, commission)
        self.executions.append(execution)
        self._apply_position(bo.sim.symbol, qty if bo.sim.is_buy else -qty, price, commission)
        if bo.sim.remaining <= 0:
            bo.status = FILLED
        events = [BookEvent("fill", bo, execution)]
        events += self._after_fill(bo, qty)
        return events

    def correct(self, bo: BookOrder, original: Execution, qty: Decimal, price: Decimal) -> list[BookEvent]:
        """Correct an execution (IB "execution correction"): a new execution with the same execId up to
        its last dot and the next suffix (`….01.01` → `….01.02`) REPLACES the original: the order's
        filled quantity, the position and the cash move by the difference. Both stay in `executions`
        (reqExecutions returns both, as TWS does); the order works again if it is no longer complete."""
        old = original.wire
        qty = max(ZERO, min(qty, bo.sim.quantity - (bo.sim.filled - old.shares)))
        prev_filled = bo.sim.filled
        bo.sim.filled = prev_filled - old.shares + qty
        value = bo.avg_price * prev_filled - old.price * old.shares + price * qty
        bo.avg_price = value / bo.sim.filled if bo.sim.filled else ZERO
        bo.last_price = price
        if bo.sim.remaining > 0 and bo.status == FILLED:
            bo.status = SUBMITTED
        elif bo.sim.remaining <= 0:
            bo.status = FILLED
        head, _, tail = old.exec_id.rpartition(".")
        sign = 1 if bo.sim.is_buy else -1
        commission = self.commission(qty) - original.commission
        self._apply_position(bo.sim.symbol, -sign * old.shares, old.price, ZERO)
        self._apply_position(bo.sim.symbol, sign * qty, price, commission)
        ex = replace(
            old, exec_id=f"{head}.{int(tail) + 1:02d}", shares=qty, price=price, cum_qty=bo.sim.filled,
            avg_price=bo.avg_price.quantize(Decimal("0.0001")),
        )  # fmt: skip
        execution = Execution(original.contract, ex, self.commission(qty))
        self.executions.append(execution)
        return [BookEvent("fill", bo, execution)]

    def _after_fill(self, bo: BookOrder, qty: Decimal) -> list[BookEvent]:
        events: list[BookEvent] = []
        if bo.status == FILLED:
            for child in self.orders.values():
                is_child = child.client_id == bo.client_id and child.placed.parent_id == bo.order_id
                if is_child and not child.done and not child.held and not child.active:
                    child.active = True
                    child.status = SUBMITTED
                    events.append(BookEvent("status", child))
        group = bo.placed.oca_group
        if not group:
            return events
        for other in list(self.orders.values()):
            if other is bo or other.placed.oca_group != group or other.done:
                continue
            if bo.status == FILLED or bo.placed.oca_type == 1:
                events += self.cancel(other)
            elif bo.placed.oca_type in (2, 3):
                # Proportional reduction: the sibling protects only what is still open.
                new_qty = max(other.sim.filled, other.sim.quantity - qty)
                other.sim.quantity = new_qty
                other.placed = replace(other.placed, quantity=new_qty)
                events += self.cancel(other) if other.sim.remaining <= 0 else [BookEvent("status", other)]
        return events

    def _apply_position(self, symbol: str, signed_qty: Decimal, price: Decimal, commission: Decimal) -> None:
        pos = self.positions.setdefault(symbol, PositionState())
        new_qty = pos.qty + signed_qty
        if pos.qty != 0 and (pos.qty > 0) != (signed_qty > 0):
            closed = min(abs(signed_qty), abs(pos.qty))
            self.realized += (price - pos.avg_cost) * closed * (1 if pos.qty > 0 else -1)
        if pos.qty == 0 or (pos.qty > 0) == (signed_qty > 0):
            pos.avg_cost = (pos.avg_cost * pos.qty + price * signed_qty) / new_qty if new_qty else ZERO
        elif new_qty != 0 and (new_qty > 0) != (pos.qty > 0):
            pos.avg_cost = price  # flipped through zero
        pos.qty = new_qty
        if new_qty == 0:
            pos.avg_cost = ZERO
        self.cash -= signed_qty * price + commission
