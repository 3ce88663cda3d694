"""How the `OrderManager` takes fills and commissions (DESIGN.md "A fill is a fact"). A mixin of
`OrderManager`, split out by concept; it changes order state only through the `Order`'s own
`apply_fill` / `set_commission` and the `OrderManager`'s `book` and `ask`.

- validated (`joe.core.order.validate_fill`), unique by execution identity, a higher revision
  replaces (quantity 0 = busted: the order's filled size goes down with the broker's; audited as
  `order.fill_corrected` and alerted); commissions before or after end up on the fill (stored as
  pending until it comes);
- stored with an audit outbox flag (re-audited if the audit write failed);
- an execution recorded as an outside change (`joe.execution.outside`) is never also Joe's fill;
- a fill on an order Joe had as terminal moves it on and is alerted (`LATE_FILL`);
- an overfill is stored too (the order's size follows what filled) and alerted; if the broker's
  position does not show it the bracket children are frozen at their size (`_frozen`);
- an order the broker (asked) says is Filled beyond the executions it still returns gets an
  estimated fill for the rest (`joe.execution.estimated_fills`: bounded execution history), which a
  later real execution of the order replaces.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.brokers.base import BrokerError
from joe.core.ids import is_client_order_id
from joe.core.models import Fill
from joe.core.order import InvalidFill, Order, OrderState, OverfillError, validate_fill
from joe.core.reports import CommissionReport, FillReport, OrderStatusReport, VenueOrderStatus
from joe.execution.estimated_fills import estimate_id, estimated_fill, shrunk_estimate
from joe.execution.events import AlertKind
from joe.execution.journal import fill_payload

if TYPE_CHECKING:
    from collections.abc import Callable

    from joe.brokers.base import ExecutionClient
    from joe.execution.book import OrderBook
    from joe.execution.journal import ExecutionJournal
    from joe.store import Store

# Executions are read from a little before an order's creation: brokers stamp them in whole seconds
# (IBKR execution time), so a fill in the order's first second would otherwise fall before it.
EXEC_TIME_SLACK = timedelta(seconds=60)
_S = OrderState


class FillIntake:
    """Fills and commissions, for `OrderManager` (which provides the state)."""

    client: ExecutionClient
    store: Store
    broker: str
    mode: str
    book: OrderBook
    journal: ExecutionJournal
    clock: Callable[[], datetime]
    _applied: list[str] | None
    _frozen: set[str]
    _estimating_off: set[str]  # orders whose execution is being applied (no estimate meanwhile)
    _pass_fills: set[str]  # orders with executions in the running reconciliation pass (applied next)
    _deferred_estimates: dict[str, OrderStatusReport]  # their Filled reports, re-checked after them

    if TYPE_CHECKING:  # provided by `OrderManager` / `BracketFollower` (later in the MRO)

        async def ask(self, o: Order) -> bool: ...

        async def _after_change(self, o: Order) -> None: ...

        async def on_outside(self, fr: FillReport) -> bool: ...

        def _classified_outside(self, fill_id: str) -> bool: ...

        def _outside_on(self, symbol: str) -> Decimal: ...

    async def _on_fill(self, fr: FillReport) -> bool:
        """Apply one fill; True if it was new (or a higher revision) and is now stored."""
        fill = fr.fill
        if fr.changes and await self.on_outside(fr):
            return False  # not Joe's order: an outside change of the signal's position
        if self._classified_outside(fill.fill_id):
            # Booked once as an outside change (the owner's execution): never also a fill of Joe's
            # (a later report may name one of Joe's orders for it, e.g. an exit of the same deal).
            self.journal.record(
                "order.fill_elsewhere", fill_payload(fill, fr) | {"booked_on": "outside_change"},
                client_order_id=fill.client_order_id or None,
            )  # fmt: skip
            return False
        o = self.book.get(fill.client_order_id)
        if (
            o is None
            and not is_client_order_id(fill.client_order_id)
            and (self.book.by_broker_id(fill.broker_order_id) is None)
        ):
            # Not Joe's id and not Joe's broker order: someone else's trade on the account (the
            # owner on the platform). The Reconciler adopts it as external and alerts once; it is
            # not an unknown order of Joe's (which trips the circuit breaker).
            self.journal.record("order.fill_external", fill_payload(fill, fr))
            return False
        if o is None:
            self.journal.record(
                "order.fill_unmatched", fill_payload(fill, fr), client_order_id=fill.client_order_id
            )
            await self.journal.alert(
                AlertKind.UNKNOWN_ORDER, f"fill {fill.fill_id} for an order Joe does not know"
            )
            return False
        owner = None if fill.fill_id in o.fills else self.store.fill_owner(fill.fill_id)
        if owner is not None and owner != o.client_order_id:
            # One execution, one fill: the broker's report names another of Joe's orders for an
            # execution Joe already booked (an attribution that can differ between the live path and
            # a later query, e.g. two exits of one Capital deal). Counting it twice would invent a
            # position; it stays where it was booked, audited.
            self.journal.record(
                "order.fill_elsewhere", fill_payload(fill, fr) | {"booked_on": owner},
                client_order_id=o.client_order_id,
            )  # fmt: skip
            return False
        pending = self.store.pending_commission(fill.fill_id)
        if pending is not None and not fill.commission:
            fill = replace(fill, commission=pending.commission, commission_currency=pending.currency)
        was = o.state
        before = o.fills.get(fill.fill_id)
        overfilled = False
        shrunk = self._replace_estimate(o, fill, fr)
        try:
            changed = self._apply_fill(o, fill, fr)
        except InvalidFill as e:
            await self.journal.order_event(
                "order.fill_invalid", fill_payload(fill, fr) | {"error": str(e)}, o
            )
            await self.journal.alert(AlertKind.INVALID_FILL, str(e), o)
            return False
        except OverfillError:
            # The broker may have resized the order (a modify or bracket resize). Its answer must not
            # book an estimate for the very execution being applied here (`_book_unseen_fills`).
            self._estimating_off.add(o.client_order_id)
            try:
                await self.ask(o)
            finally:
                self._estimating_off.discard(o.client_order_id)
            try:
                changed = self._apply_fill(o, fill, fr)
            except OverfillError as e:
                # A fill is a fact: stored, and the order's size follows what the broker filled.
                changed = overfilled = self._apply_fill(o, fill, fr, overfill=True)
                await self.journal.order_event(
                    "order.fill_overfill", fill_payload(fill, fr) | {"error": str(e)}, o
                )
                await self.journal.alert(AlertKind.OVERFILL, f"{e}; stored, the order now {o.quantity}", o)
        if not changed:
            return False
        with self.store.atomic(durable=False):  # a fact at the broker: read again on restart
            self.book.save(o, pending_audit={fill.fill_id})
            if pending is not None:
                self.store.drop_pending_commission(fill.fill_id)
        if self._applied is not None:
            self._applied.append(fill.fill_id)
        if await self.journal.order_event("order.fill", fill_payload(fill, fr), o):
            self.book.audited.append(fill.fill_id)  # marked in the store with the next save
        if shrunk is not None:
            await self.journal.order_event(
                "order.fill_estimate_replaced",
                {"estimate": shrunk.fill_id, "by": fill.fill_id, "estimate_left": str(shrunk.quantity)}, o,
            )  # fmt: skip
        if before is not None:  # a correction replaced (or busted, quantity 0) an execution
            corrected = {
                "fill_id": fill.fill_id, "revision": fr.revision,
                "from_quantity": str(before.quantity), "to_quantity": str(fill.quantity),
                "from_price": str(before.price), "to_price": str(fill.price),
                "filled": str(o.filled_quantity),
            }  # fmt: skip
            await self.journal.order_event("order.fill_corrected", corrected, o)
            what = "busted" if fill.quantity == 0 else f"corrected to {fill.quantity} @ {fill.price}"
            await self.journal.alert(
                AlertKind.BROKER_CORRECTION,
                f"execution {fill.fill_id} ({before.quantity} @ {before.price}) {what}; the order has "
                f"filled {o.filled_quantity}",
                o,
            )
        if overfilled:
            await self._check_overfill(o)  # before anything can resize the children to it
        elif was.is_terminal and before is None and shrunk is None:  # (an estimate replaced: no news)
            await self.journal.alert(
                AlertKind.LATE_FILL, f"fill {fill.fill_id} on an order Joe had as {was}", o
            )
            await self.ask(o)
        await self._after_change(o)
        return True

    async def _check_overfill(self, o: Order) -> None:
        """After an overfill Joe's position follows its fills; if the broker's position does not
        show it, the children are not grown to it (a stop larger than the broker's position could
        reverse it) and the mismatch is alerted (the Reconciler halts new entries on it)."""
        sym = o.intent.symbol
        try:
            held = sum((p.quantity for p in await self.client.positions() if p.symbol == sym), Decimal(0))
        except BrokerError as e:
            self._frozen.add(o.intent.signal_id)
            await self.journal.alert(AlertKind.UNRESOLVED, f"overfill: positions unreadable: {e}", o)
            return
        external = sum(
            (i.quantity for i in self.store.reconcile_items(self.broker, self.mode, "external_position")
             if i.symbol == sym), Decimal(0),
        )  # fmt: skip
        mine = self.store.net_filled(self.broker, self.mode).get(sym, Decimal(0))
        mine += self._outside_on(sym)
        if held != mine + external:
            self._frozen.add(o.intent.signal_id)
            await self.journal.alert(
                AlertKind.MISMATCH,
                f"overfill on {sym}: the broker holds {held}, Joe's fills say {mine} (+{external} external); "
                "bracket children not resized",
                o,
            )

    def _replace_estimate(self, o: Order, fill: Fill, fr: FillReport) -> Fill | None:
        """A real execution of an order with an estimated fill (`estimated_fills`): the estimate
        shrinks by it first (unsaved; saved with the execution), so nothing is counted twice. Returns
        the shrunk estimate, or None. An execution that cannot be the order's changes nothing."""
        try:
            validate_fill(o, fill, correction=fr.revision > 0)
        except InvalidFill:
            return None  # refused by `_apply_fill` next
        shrunk = shrunk_estimate(o, fill)
        if shrunk is None:
            return None
        est, revision = shrunk
        o.apply_fill(est, revision, from_reconciliation=True)
        return est

    async def _book_unseen_fills(self, o: Order, r: OrderStatusReport) -> None:
        """The broker, asked, says `o` is Filled, and the executions it returns (just fetched) show
        less: they are older than its execution history reaches (IBKR: the current day). The rest is
        booked as an estimated fill (`joe.execution.estimated_fills`), audited as
        `order.fill_estimated` with its price source; with no price evidence it is alerted instead."""
        if r.status is not VenueOrderStatus.FILLED or not r.from_reconciliation:
            return
        said = r.filled_quantity if r.filled_quantity > 0 else r.quantity
        if o.filled_quantity >= said or said > o.quantity or o.state is _S.NEW:
            return  # nothing missing; or an overfill (the executions settle it, `_check_overfill`)
        if o.client_order_id in self._pass_fills:  # the pass holds executions of it, applied next
            self._deferred_estimates[o.client_order_id] = r  # then what they still lack is estimated
            return
        if o.client_order_id in self._estimating_off:
            return  # asked while one of its executions is being applied: that one is the news
        made = estimated_fill(o, replace(r, filled_quantity=said))
        if made is None:
            await self.journal.alert(
                AlertKind.UNRESOLVED,
                f"the broker says {said} filled, its executions show {o.filled_quantity} and it gives no "
                "price (a market order): not booked; check the broker's statement",
                o,
            )  # fmt: skip
            return
        fr, source = made
        await self.journal.order_event(
            "order.fill_estimated",
            {"fill_id": estimate_id(o.client_order_id), "quantity": str(fr.fill.quantity),
             "price": str(fr.fill.price), "price_source": source, "broker_filled": str(said),
             "reason": "the broker's execution history no longer reaches this order's executions"},
            o,
        )  # fmt: skip
        await self._on_fill(fr)

    def _apply_fill(self, o: Order, fill: Fill, fr: FillReport, *, overfill: bool = False) -> bool:
        if o.state is _S.NEW:  # sent by a process that died before recording SUBMITTING
            o.transition(_S.SUBMITTING, "fill seen", ts=self.clock(), from_reconciliation=True)
        return o.apply_fill(fill, fr.revision, from_reconciliation=fr.from_reconciliation, overfill=overfill)

    async def _on_commission(self, c: CommissionReport) -> None:
        coid = self.store.fill_owner(c.fill_id) or next(
            (k for k, o in self.book.orders.items() if c.fill_id in o.fills), None
        )
        o = self.book.get(coid) if coid else None
        if o is None or c.fill_id not in o.fills:
            self.store.add_pending_commission(
                c.fill_id, c.commission, broker=self.broker, currency=c.currency, ts=c.ts
            )
            return
        if o.set_commission(c.fill_id, c.commission, c.currency):
            self.book.save(o, durable=False)
            await self.journal.order_event(
                "order.commission",
                {"fill_id": c.fill_id, "commission": str(c.commission), "currency": c.currency},
                o,
            )

    async def _fetch_fills(self, o: Order) -> bool:
        """Apply the broker's executions (and commissions) of `o`; False when they could not be read
        (alerted): then nothing may be inferred from their absence (no estimated fill)."""
        try:
            mass = await self.client.mass_status(o.created_at - EXEC_TIME_SLACK, joes_clock=True)
        except BrokerError as e:
            await self.journal.alert(AlertKind.UNRESOLVED, f"could not fetch executions: {e}", o)
            return False
        for f in mass.fills:
            if f.fill.client_order_id == o.client_order_id:
                await self._on_fill(replace(f, from_reconciliation=True))
        for c in mass.commissions:
            if c.fill_id in o.fills:
                await self._on_commission(c)
        return True
