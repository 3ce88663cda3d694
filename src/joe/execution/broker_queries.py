"""How the `OrderManager` asks the broker (DESIGN.md "Order truth": the broker's word is the truth).
A mixin of `OrderManager`, split out by concept; it changes order state only through the
`OrderManager`'s own `_on_status` / `_on_fill` and `book`.

- `lookup` / `ask`: one order by Joe's id; "could not be asked" (a `BrokerError`) is never "absent".
- `resolve_in_doubt`: an order whose send may have happened (SUBMITTING / UNKNOWN) that the broker
  did not list is asked for over `in_doubt_window` seconds (a request in flight when its process died
  can be processed late), then left UNKNOWN and alerted — never resent.
- `_check_in_doubt`: new entries on an instrument with an UNKNOWN order are refused (fail closed).
- `settle_signal`: one targeted pass that makes Joe's copies of a signal's orders equal the broker's
  (and books the owner's executions that changed its position as outside changes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from joe.brokers.base import BrokerError, EntriesRefused
from joe.core.models import OrderIntent, OrderLeg
from joe.core.order import Order, OrderState
from joe.execution.events import AlertKind
from joe.execution.fill_intake import EXEC_TIME_SLACK

if TYPE_CHECKING:
    from joe.brokers.base import ExecutionClient
    from joe.core.reports import FillReport, MassStatus, OrderStatusReport
    from joe.execution.book import OrderBook
    from joe.execution.journal import ExecutionJournal
    from joe.store import Store

_S = OrderState


class BrokerQueries:
    """Asking the broker, for `OrderManager` (which provides the state)."""

    client: ExecutionClient
    store: Store
    broker: str
    mode: str
    book: OrderBook
    journal: ExecutionJournal
    in_doubt_window: float
    in_doubt_interval: float
    _sending: set[str]

    if TYPE_CHECKING:  # provided by `OrderManager` / `FillIntake`

        async def _on_status(self, r: OrderStatusReport) -> None: ...

        async def _on_fill(self, fr: FillReport) -> bool: ...

        async def attribute_outside(self, mass: MassStatus, symbols: set[str] | None = None) -> None: ...

    async def ask(self, o: Order) -> bool:
        """Ask the broker about `o` and apply what it says; True if the broker has the order (False
        also when it could not be asked: use `lookup` where "absent" would lead to a send)."""
        return bool(await self.lookup(o))

    async def lookup(self, o: Order) -> bool | None:
        """Ask the broker about `o` and apply what it says: True if it has the order, False if it
        answered without it, None if it could not be asked (a `BrokerError`: never "absent")."""
        try:
            reports = await self.client.order_status(o.client_order_id)
        except BrokerError as e:
            await self.journal.alert(AlertKind.UNRESOLVED, f"order_status failed: {e}", o)
            return None
        found = [r for r in reports if r.status.value != "NOT_FOUND"]
        for r in found:
            await self._on_status(replace(r, from_reconciliation=True))
        return bool(found)

    async def resolve_in_doubt(self, order: Order) -> bool:
        """An order whose send may have happened (SUBMITTING / UNKNOWN, or acknowledged) that the
        broker did not list: ask by id, again and again over `in_doubt_window` seconds (a request
        still in flight when its process died may be processed late). True once the broker has it.
        Else it becomes UNKNOWN (entries on its instrument are refused while it is), is alerted and
        stays for the `Reconciler` to ask again (LOST after repeated misses) — never resent."""
        if order.client_order_id in self._sending:
            return True  # this process's send is in progress: it settles the order
        loop = asyncio.get_running_loop()
        in_flight = order.state in (_S.SUBMITTING, _S.UNKNOWN) and order.broker_order_id is None
        deadline = loop.time() + (self.in_doubt_window if in_flight else 0.0)
        found = await self.lookup(order)
        while not found and not order.state.is_terminal and loop.time() < deadline:
            await asyncio.sleep(min(self.in_doubt_interval, max(deadline - loop.time(), 0)))
            found = await self.lookup(order)
        if found or order.state.is_terminal:
            return True
        if order.state is _S.SUBMITTING:
            why = {"reason": "not at the broker after restart"}
            await self.journal.move_audited(
                self.book, order, _S.UNKNOWN, "send may have happened; the broker does not list it",
                "order.unknown", why,
            )  # fmt: skip
        asked = "could not be asked" if found is None else "has no such order"
        await self.journal.alert(
            AlertKind.UNRESOLVED,
            f"order is {order.state} in Joe's store and the broker {asked}"
            + (f" after {self.in_doubt_window:g}s; never resent, new entries on "
               f"{order.intent.symbol} refused until it is settled" if in_flight else ""),
            order,
        )  # fmt: skip
        return False

    def _check_in_doubt(self, intents: Sequence[OrderIntent]) -> None:
        """Refuse a new entry on an instrument where an order's outcome is UNKNOWN: it may be at the
        broker, and a second entry could double the position (fail closed; exits stay allowed)."""
        first = intents[0]
        if first.reduce_only or first.leg is OrderLeg.EXIT:
            return
        mine = {i.client_order_id for i in intents}
        doubt = [
            o.client_order_id
            for o in self.store.orders(state={_S.UNKNOWN}, mode=self.mode, broker=self.broker)
            if o.intent.symbol == first.symbol and o.client_order_id not in mine
        ]
        if doubt:
            raise EntriesRefused(
                f"{self.broker}: new entries on {first.symbol} refused: the outcome of {', '.join(doubt)} "
                "is unknown (it may be at the broker); reconciliation keeps asking until it is settled"
            )

    async def settle_signal(self, signal_id: str, since: datetime) -> None:
        """Make Joe's copies of one signal's orders equal the broker's now: apply the broker's
        status and executions (since `since`, on Joe's clock: an entry's creation) of those orders,
        then ask for each one still open that the broker did not list. A broker that cannot be read
        is alerted, not guessed."""
        mine = {o.client_order_id for o in self.book.signal_orders(signal_id)}
        try:
            mass = await self.client.mass_status(since - EXEC_TIME_SLACK, joes_clock=True)
        except BrokerError as e:
            await self.journal.alert(AlertKind.UNRESOLVED, f"signal {signal_id}: broker unreadable: {e}")
            return
        listed = set()
        for r in mass.orders:
            if r.client_order_id in mine:
                listed.add(r.client_order_id)
                await self._on_status(replace(r, from_reconciliation=True))
        for f in mass.fills:
            if f.fill.client_order_id in mine or f.changes in mine:
                await self._on_fill(replace(f, from_reconciliation=True))
        symbol = next((o.intent.symbol for o in self.book.signal_orders(signal_id)), None)
        if symbol is not None:  # the owner's executions that changed this instrument's positions
            await self.attribute_outside(mass, {symbol})
        for o in self.book.signal_orders(signal_id):
            if not o.state.is_terminal and o.client_order_id not in listed:
                await self.ask(o)
