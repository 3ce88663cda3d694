"""Outside changes: an execution that is not one of Joe's orders but changes a position Joe opened
(the account owner closing part of it on the platform or from another API client, a broker
close-out). DESIGN.md "Order truth": the broker's word is the truth and a fill is a fact — but a fact
of *whose* order. Such an execution is never booked as a fill of Joe's orders (an exit would read
"2 filled of 1"); it is recorded, once, as an *outside change* of the signal's position, audited
(`order.outside_change`) and alerted (`AlertKind.OWNER_TRADE`), and Joe's position for the signal
(`OrderManager.position_of`, the protection check, the Reconciler's per-instrument sum) includes it.

Persisted as `reconcile_items` of kind `outside_change`: `ref` the broker's execution id (the fill
id: one execution is classified once, across restarts), `symbol`, `quantity` signed as a trade
(a SELL that closes part of a long is negative), `detail` with the signal, its entry, price and time.

Attribution (which signal an outside execution changed):
- exact where the broker says it: a report naming the entry whose deal it changed
  (`FillReport.changes`: Capital.com, a close row of a deal Joe's entry opened);
- otherwise (IBKR: one net position per instrument) by *shortfall*, on a consistent broker snapshot
  after Joe's own fills of it are applied: only the part of an opposite execution that takes the
  broker's position below what Joe holds is Joe's; the rest is the owner's own (external). Oldest
  signal first, as a netting broker closes oldest first.
Only reductions are outside changes (capped at the signal's position, never reversing it); an
execution that adds is the owner's own position (external, never Joe's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.brokers.base import BrokerError, InvalidOrder
from joe.core.models import ZERO, Fill, OrderLeg
from joe.core.order import Order, OrderState
from joe.execution.estimated_fills import is_estimate
from joe.execution.events import AlertKind
from joe.execution.fill_intake import EXEC_TIME_SLACK

if TYPE_CHECKING:
    from joe.brokers.base import ExecutionClient
    from joe.core.reports import FillReport, MassStatus, PositionReport
    from joe.execution.book import OrderBook
    from joe.execution.journal import ExecutionJournal
    from joe.store import Store

KIND = "outside_change"
_SECOND = timedelta(seconds=1)
_CHILD_LEGS = (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT)
_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class OutsideChange:
    """One outside execution's effect on one signal. `quantity`: signed as a trade (units)."""

    fill_id: str
    signal_id: str
    entry_client_order_id: str
    symbol: str
    quantity: Decimal
    price: Decimal
    ts: datetime
    reason: str


class OutsideLedger:
    """The recorded outside changes of one account (broker, mode), cached by signal."""

    def __init__(self, store: Store, broker: str, mode: str) -> None:
        self.store = store
        self.broker = broker
        self.mode = mode
        self._by_fill: dict[str, tuple[str, str, Decimal]] | None = None  # fill id -> (signal, symbol, qty)

    def _load(self) -> dict[str, tuple[str, str, Decimal]]:
        if self._by_fill is None:
            self._by_fill = {
                i.ref: (str((i.detail or {}).get("signal_id", "")), i.symbol, i.quantity)
                for i in self.store.reconcile_items(self.broker, self.mode, KIND)
            }
        return self._by_fill

    def has(self, fill_id: str) -> bool:
        return fill_id in self._load()

    def of_fill(self, fill_id: str) -> Decimal:
        """Signed quantity of this execution booked as an outside change (0 if none)."""
        hit = self._load().get(fill_id)
        return hit[2] if hit else ZERO

    def of_signal(self, signal_id: str) -> Decimal:
        """Signed (trade) sum of the outside changes of one signal."""
        return sum((q for s, _, q in self._load().values() if s == signal_id), ZERO)

    def by_symbol(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for _, sym, q in self._load().values():
            out[sym] = out.get(sym, ZERO) + q
        return out

    def record(self, c: OutsideChange) -> bool:
        """Persist `c` (durable); False if this execution was already classified."""
        if self.has(c.fill_id):
            return False
        self.store.put_reconcile_item(
            self.broker, self.mode, KIND, c.fill_id, symbol=c.symbol, quantity=c.quantity,
            detail={"signal_id": c.signal_id, "entry": c.entry_client_order_id, "price": str(c.price),
                    "ts": c.ts.isoformat(), "reason": c.reason},
        )  # fmt: skip
        self._load()[c.fill_id] = (c.signal_id, c.symbol, c.quantity)
        return True


def outside_by_signal(store: Store, broker: str, mode: str) -> dict[str, Decimal]:
    """Signed outside change per signal at one account (for read-only views)."""
    out: dict[str, Decimal] = {}
    for i in store.reconcile_items(broker, mode, KIND):
        sid = str((i.detail or {}).get("signal_id", ""))
        out[sid] = out.get(sid, ZERO) + i.quantity
    return out


def shortfall_allocation(
    fill_qty: Decimal, broker_net: Decimal, signals: Sequence[tuple[str, int, Decimal]]
) -> list[tuple[str, Decimal]]:
    """How much of an outside execution of `fill_qty` units (reducing positions of direction `d`)
    was Joe's: `signals` are (signal id, direction sign, Joe's open units), oldest first, all of the
    direction the execution reduces; `broker_net` the broker's signed position after it. Joe's part is
    what takes the broker below Joe's total (never more than the execution, never more than a signal
    holds), allocated oldest first. Pure."""
    if not signals or fill_qty <= 0:
        return []
    d = signals[0][1]
    total = sum((p for _, _, p in signals), ZERO)
    short = min(fill_qty, total - max(broker_net * d, ZERO))
    out: list[tuple[str, Decimal]] = []
    for sid, _, pos in signals:
        if short <= 0:
            break
        take = min(pos, short)
        if take > 0:
            out.append((sid, take))
            short -= take
    return out


class OutsideChanges:
    """Outside changes, for `OrderManager` (a mixin, split out by concept; it changes order state
    only through the `OrderManager`'s `cancel` / `modify` of the protective legs)."""

    client: ExecutionClient
    store: Store
    broker: str
    mode: str
    book: OrderBook
    journal: ExecutionJournal
    clock: Callable[[], datetime]
    outside: OutsideLedger
    _exiting: set[str]
    _refit: set[str]  # signals whose legs an outside change met while their exit was being placed
    _position_seen: dict[str, Decimal]  # symbol -> the last live position update acted on
    _outside_lock: asyncio.Lock  # one live attribution at a time

    if TYPE_CHECKING:  # provided by `OrderManager` / `BracketFollower`

        def position_of(self, signal_id: str) -> Decimal: ...

        def positions_of(self, signal_ids: list[str]) -> dict[str, Decimal]: ...

        async def cancel(self, coid: str) -> None: ...

        async def modify(self, coid: str, *, quantity: Decimal | None = None) -> None: ...

        async def _check_protection(self, signal_id: str) -> None: ...

        async def _on_fill(self, fr: FillReport) -> bool: ...

    def _classified(self, f: Fill) -> bool:
        """Already Joe's fill, or already an outside change: never classified again."""
        return self.outside.has(f.fill_id) or self.store.fill_owner(f.fill_id) is not None

    def _classified_outside(self, fill_id: str) -> bool:
        return self.outside.has(fill_id)

    def _outside_on(self, symbol: str) -> Decimal:
        return self.outside.by_symbol().get(symbol, ZERO)

    async def on_outside(self, fr: FillReport) -> bool:
        """An execution the broker says changed the position of Joe's entry `fr.changes` (not one of
        Joe's orders): booked as an outside change of that signal. True if it is (or already was)."""
        f = fr.fill
        if self.outside.has(f.fill_id):
            return True
        entry = self.book.get(fr.changes) if fr.changes else None
        if entry is None or self.store.fill_owner(f.fill_id) is not None:
            return False
        d = entry.intent.side.sign
        if f.side.sign == d:
            return False  # adds to the deal: not a reduction of Joe's position (the owner's own)
        take = min(f.quantity, self.position_of(entry.intent.signal_id))
        if take <= 0:
            return False
        await self._book_outside(entry, f, take, "the broker reports it on the deal this entry opened")
        return True

    async def on_position(self, p: PositionReport) -> None:
        """A live position update (IBKR's `position` stream; the owner's execDetails in TWS reach
        only the client that placed them). When the broker's position in `p.symbol` is below what
        Joe's open signals hold in that direction, the executions are read (one `mass_status`), Joe's
        own fills in them applied first (an update may precede its execDetails), and the rest
        attributed by shortfall (`attribute_outside`): an owner's sale in TWS is booked as an outside
        change and the protective legs are shrunk at once, not at the next reconciliation or exit.
        Not where the adapter names the position each close changed (`names_changed_positions`:
        Capital.com, whose order watcher reports the owner's closes as fills with `changes`). An
        update equal to the last one acted on is skipped (a `mass_status` re-reads the positions
        itself). A failed read is alerted; the next update or reconciliation tries again."""
        if getattr(self.client, "names_changed_positions", False):
            return
        if self._position_seen.get(p.symbol) == p.quantity:
            return
        self._position_seen[p.symbol] = p.quantity
        opened = self._open_signals({p.symbol}).get(p.symbol, [])
        now = self.positions_of([e.intent.signal_id for e in opened])
        held: dict[int, Decimal] = {}
        for e in opened:
            d = e.intent.side.sign
            held[d] = held.get(d, ZERO) + now[e.intent.signal_id]
        if not any(p.quantity * d < joe for d, joe in held.items()):
            return  # Joe's signals are all there (what else moved is the owner's own)
        async with self._outside_lock:
            try:
                since = min(e.created_at for e in opened) - EXEC_TIME_SLACK
                mass = await self.client.mass_status(since, joes_clock=True)
            except BrokerError as e:
                self._position_seen.pop(p.symbol, None)
                await self.journal.alert(
                    AlertKind.UNRESOLVED, f"{p.symbol}: the broker's position fell to {p.quantity}, "
                    f"below Joe's; executions unreadable ({e}); the next reconciliation looks again",
                )  # fmt: skip
                return
            for fr in mass.fills:
                if fr.fill.symbol == p.symbol and self.book.get(fr.fill.client_order_id) is not None:
                    await self._on_fill(replace(fr, from_reconciliation=True))
            await self.attribute_outside(mass, {p.symbol})

    async def attribute_outside(self, mass: MassStatus, symbols: set[str] | None = None) -> None:
        """Shortfall attribution (module docstring) of the executions in `mass` that are not Joe's,
        against `mass.positions`. Call after Joe's own fills of `mass` are applied. Not for an adapter
        that names the position each execution changed (`names_changed_positions`: Capital.com): its
        attribution is exact, and a net sum over its deals would read the owner's own hedge as a
        change of Joe's."""
        if getattr(self.client, "names_changed_positions", False):
            return
        loose = [
            fr for fr in mass.fills
            if not fr.changes and (symbols is None or fr.fill.symbol in symbols)
            and self.book.get(fr.fill.client_order_id) is None and not self._classified(fr.fill)
            and self.store.reconcile_item(self.broker, self.mode, "external_fill", fr.fill.fill_id) is None
        ]  # fmt: skip
        if not loose:
            return
        held: dict[str, Decimal] = {}
        for p in mass.positions:
            held[p.symbol] = held.get(p.symbol, ZERO) + p.quantity
        open_by_symbol = self._open_signals({fr.fill.symbol for fr in loose})
        skew = mass.ts - self.clock()  # the broker's clock less Joe's, as of this read (latency: earlier)
        for fr in sorted(loose, key=lambda x: x.fill.ts):
            f = fr.fill
            entries = [e for e in open_by_symbol.get(f.symbol, []) if e.intent.side.sign != f.side.sign]
            # Only an execution after the entry's can change its position. Both are compared as the broker
            # stamped them (the entry's creation is on Joe's clock, which may be off the broker's by far
            # more than a second); brokers stamp in whole seconds: one in the entry's own second may
            # precede it.
            entries = [e for e in entries if _opened_at(e, skew) - _SECOND <= f.ts]
            by_sid = {e.intent.signal_id: e for e in entries}
            signals = [(sid, e.intent.side.sign, self.position_of(sid)) for sid, e in by_sid.items()]
            why = "the broker's position fell below Joe's by an execution Joe did not place"
            for sid, take in shortfall_allocation(f.quantity, held.get(f.symbol, ZERO), signals):
                await self._book_outside(by_sid[sid], f, take, why)

    def _open_signals(self, symbols: set[str]) -> dict[str, list[Order]]:
        """Joe's filled entries with an open position, per symbol, oldest first (the entries read
        with one query, their signals' positions with one more: this runs on every position update)."""
        stored = self.store.orders(
            mode=self.mode, broker=self.broker, symbols=symbols, legs={OrderLeg.ENTRY.value}
        )
        filled = [o for o in stored if o.intent.leg is OrderLeg.ENTRY and o.filled_quantity > 0]
        held = self.positions_of(list(dict.fromkeys(o.intent.signal_id for o in filled)))
        out: dict[str, list[Order]] = {}
        for o in filled:
            if held[o.intent.signal_id] > 0:
                out.setdefault(o.intent.symbol, []).append(self.book.get(o.client_order_id) or o)
        return out

    async def _book_outside(self, entry: Order, f: Fill, take: Decimal, why: str) -> None:
        sid = entry.intent.signal_id
        change = OutsideChange(
            f.fill_id, sid, entry.client_order_id, f.symbol, take * f.side.sign, f.price, f.ts, why
        )
        if not self.outside.record(change):
            return
        left = self.position_of(sid)
        payload = {
            "fill_id": f.fill_id, "symbol": f.symbol, "side": f.side.value, "quantity": str(take),
            "execution_quantity": str(f.quantity), "price": str(f.price), "ts": f.ts.isoformat(),
            "broker_order_id": f.broker_order_id, "position": str(left), "reason": why,
        }  # fmt: skip
        await self.journal.order_event("order.outside_change", payload, entry)
        await self.journal.alert(
            AlertKind.OWNER_TRADE,
            f"{f.side.value} {take} {f.symbol} @ {f.price} not placed by Joe changed signal {sid}'s "
            f"position (now {left}); booked as an outside change, not as a fill of Joe's orders",
            entry,
        )
        try:
            await self._fit_legs(sid, left)
        except (BrokerError, InvalidOrder) as e:  # the protection check below reports what stays
            await self.journal.alert(AlertKind.UNRESOLVED, f"resizing {sid}'s orders to {left}: {e}", entry)
        await self._check_protection(sid)

    async def _fit_legs(self, signal_id: str, left: Decimal) -> None:
        """Orders larger than what stays open would reverse the position when they fill: a working
        exit is shrunk to `left`, the protective legs to what the exit leaves (cancelled at 0).
        Requests only (the broker's reports move Joe's copies); never while an exit of the signal is
        being placed (it sizes them itself from the broker's position), nor where the broker resizes
        attached legs with their deal (`legs_follow_position` on the adapter: Capital.com)."""
        if getattr(self.client, "legs_follow_position", False):
            return  # the broker resizes attached legs with the deal
        if signal_id in self._exiting:
            self._refit.add(signal_id)  # fitted again once the exit is placed (`OrderManager.exit`)
            return  # the exit sizes them itself from the broker's position
        orders = [o for o in self.book.signal_orders(signal_id) if o.state in _WORKING]
        exits = [o for o in orders if o.intent.leg is OrderLeg.EXIT]
        exiting = ZERO
        for x in exits:
            keep = min(x.remaining, max(left - exiting, ZERO))
            exiting += keep
            if keep <= 0:
                await self.cancel(x.client_order_id)
            elif keep < x.remaining:
                await self.modify(x.client_order_id, quantity=x.filled_quantity + keep)
        # An entry still working (a resting limit partly filled) adds its rest to the position when
        # it fills: its children keep covering that rest, or the rest would fill unprotected.
        resting = sum((o.remaining for o in orders if o.intent.leg is OrderLeg.ENTRY), ZERO)
        cap = max(left - exiting, ZERO) + resting
        for g in orders:
            if g.intent.leg not in _CHILD_LEGS or g.remaining <= cap:
                continue
            if cap <= 0:
                await self.cancel(g.client_order_id)
            else:
                await self.modify(g.client_order_id, quantity=g.filled_quantity + cap)


def _opened_at(entry: Order, skew: timedelta) -> datetime:
    """When `entry` opened its position, on the broker's clock: its first execution as the broker
    stamped it. Where part of it is known only by an estimate (IBKR answers `reqExecutions` for the
    current day only: after a restart the next day an entry's fill is estimated, stamped with a report's
    time, not the execution's), its creation moved onto the broker's clock (`skew`: the broker's clock
    less Joe's) is the bound - no execution of it can be older."""
    stamped = [f.ts for f in entry.fills.values() if not is_estimate(f.fill_id)]
    if stamped and len(stamped) == len(entry.fills):
        return min(stamped)
    return min([*stamped, entry.created_at + skew])
