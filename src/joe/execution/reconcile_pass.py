"""One reconciliation pass of the `OrderManager` (DESIGN.md "Order truth": on start, and whenever the
`Reconciler` asks, Joe's copy of every non-terminal order is made equal to the broker's). A mixin of
`OrderManager`, split out by concept; it changes order state only through the `OrderManager`'s own
`_on_status` / `_on_fill` / `send` and `book`.

- `reconcile`: re-audit the fill outbox, rebuild non-terminal orders from the store, apply the
  broker's mass status, settle orders the broker did not list (asked for, never blindly resent),
  check protection. Intents are refused while it runs.
- `mark_lost`: the `Reconciler`'s verdict on an order the broker does not know (terminal, alerted).
- `_fresh`: one step of a pass, re-run once on a re-read copy if the store refused a stale one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from joe.brokers.base import OrderLink, SendFailed, SupportsOrderLinks
from joe.core.order import Order, OrderState
from joe.execution.book import retry_stale
from joe.execution.entry_gate import EntryGate, refused
from joe.execution.events import AlertKind
from joe.execution.fill_intake import EXEC_TIME_SLACK
from joe.execution.reconcile_rules import MassPass
from joe.store.errors import StaleOrderError

if TYPE_CHECKING:
    from joe.brokers.base import ExecutionClient
    from joe.core.reports import CommissionReport, FillReport, MassStatus, OrderStatusReport
    from joe.execution.book import OrderBook
    from joe.execution.journal import ExecutionJournal
    from joe.store import Store

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")
_S = OrderState
NON_TERMINAL = {s for s in OrderState if not s.is_terminal}


class ReconcilePass:
    """The reconciliation pass, for `OrderManager` (which provides the state)."""

    client: ExecutionClient
    store: Store
    broker: str
    mode: str
    book: OrderBook
    journal: ExecutionJournal
    entry_gate: EntryGate | None
    _reconciling: bool
    _sending: set[str]
    _applied: list[str] | None
    _pass_fills: set[str]
    _deferred_estimates: dict[str, OrderStatusReport]

    if TYPE_CHECKING:  # provided by `OrderManager` and its other mixins (later in the MRO)

        async def _on_status(self, r: OrderStatusReport) -> None: ...

        async def _book_unseen_fills(self, o: Order, r: OrderStatusReport) -> None: ...

        async def _on_fill(self, fr: FillReport) -> bool: ...

        async def _on_commission(self, c: CommissionReport) -> None: ...

        async def attribute_outside(self, mass: MassStatus, symbols: set[str] | None = None) -> None: ...

        async def _check_protection(self, signal_id: str) -> None: ...

        async def _after_change(self, o: Order) -> None: ...

        async def lookup(self, o: Order) -> bool | None: ...

        async def resolve_in_doubt(self, order: Order) -> bool: ...

        async def send(self, orders: list[Order]) -> list[Order]: ...

    async def reconcile(self, since: datetime | None = None, *, joes_clock: bool = False) -> MassPass:
        """One reconciliation pass: re-audit the fill outbox, rebuild non-terminal orders from the
        store, apply the broker's mass status (executions since `since`, on the broker's clock or with
        `joes_clock` on Joe's; default: since the oldest non-terminal order was created), resolve (or
        send, if provably never sent) orders the broker did not list, and check protection. Intents are
        refused while it runs.

        Returns what the pass saw and did (`MassPass`): the `Reconciler` builds its report on it."""
        self._reconciling = True
        applied: list[str] = []
        self._applied = applied
        try:
            self.book.flush_audited()
            self.journal.reaudit_outbox(self.store)
            # One copy per order in this process: a cached copy at least as new as the store's is
            # kept (a submit or an exit still holds it across its awaits; replacing it made the two
            # copies save over each other - `StaleOrderError`, chaos seeds 6, 7, 16, 83...); a newer
            # stored one (saved by another process) replaces it.
            mine = [
                self.book.adopt(o)
                for o in self.store.orders(state=NON_TERMINAL, mode=self.mode, broker=self.broker)
            ]
            self._link(mine)
            if since is None:
                oldest = min((o.created_at for o in mine), default=None)
                since = oldest - EXEC_TIME_SLACK if oldest is not None else None
                joes_clock = True  # an order's creation: Joe's clock
            mass = await self.client.mass_status(since, joes_clock=joes_clock)
            # Statuses are applied before executions: an order this pass has executions of is not
            # estimated meanwhile (`FillIntake._book_unseen_fills`); once they are applied, what
            # they still lack of the broker's Filled is (`_deferred_estimates`).
            self._pass_fills = {f.fill.client_order_id for f in mass.fills}
            for r in mass.orders:
                if r.client_order_id:
                    await self._fresh(self._on_status, replace(r, from_reconciliation=True))
            for f in mass.fills:
                await self._fresh(self._on_fill, replace(f, from_reconciliation=True))
            self._pass_fills = set()
            deferred, self._deferred_estimates = self._deferred_estimates, {}
            for cid, report in deferred.items():
                if (o := self.book.get(cid)) is not None:
                    await self._book_unseen_fills(o, report)
            for c in mass.commissions:
                await self._on_commission(c)
            await self.attribute_outside(mass)  # the owner's executions that changed Joe's positions
            listed = {r.client_order_id for r in mass.orders}
            missing: list[Order] = []
            for o in mine:
                cur = self.book.orders[o.client_order_id]
                unlisted = o.client_order_id not in listed and not cur.state.is_terminal
                if unlisted and await self._fresh(self._settle_unlisted, cur.client_order_id) is False:
                    missing.append(self.book.orders[o.client_order_id])
            for sid in {o.intent.signal_id for o in mine}:
                await self._fresh(self._check_protection, sid)
            return MassPass(mass, tuple(applied), tuple(missing))
        finally:
            self._reconciling = False
            self._applied = None
            self._pass_fills = set()

    def _link(self, orders: Sequence[Order]) -> None:
        """Hand the adapter the store's durable links of these orders (legs to their entry, broker
        ids recorded at acknowledgement) when its broker cannot find them by Joe's id alone."""
        if not isinstance(self.client, SupportsOrderLinks):
            return
        links = []
        for o in orders:
            parent = self.book.get(o.parent_client_order_id) if o.parent_client_order_id else None
            links.append(OrderLink(
                o.client_order_id, o.intent.leg, o.parent_client_order_id, o.broker_order_id,
                parent.broker_order_id if parent else None, o.intent.signal_id,
                o.intent.symbol, o.intent.side, o.intent.quantity,
            ))  # fmt: skip
        self.client.link(links)

    async def mark_lost(self, o: Order, reason: str) -> None:
        """The `Reconciler`'s verdict: Joe sent `o`, the broker does not know it after repeated checks.
        LOST is terminal (never resent); alerted and audited. A later broker report moves it on."""
        if await self.journal.move_audited(self.book, o, _S.LOST, reason, "order.lost", {"reason": reason}):
            await self.journal.alert(AlertKind.LOST, f"order {o.client_order_id} lost: {reason}", o)
            await self._after_change(o)

    async def _fresh(self, step: Callable[[_T], Awaitable[_R]], arg: _T) -> _R | None:
        """`retry_stale` (one step of a pass, re-run once on a re-read copy), alerted if it gives up."""

        async def give_up(e: StaleOrderError) -> None:
            log.warning("stale order copy twice in a pass: %s", e)
            await self.journal.alert(AlertKind.UNRESOLVED, f"skipped for this pass: {e}")

        return await retry_stale(step, arg, give_up)

    async def _settle_unlisted(self, coid: str) -> bool:
        """True if the broker has the order (or it was provably never sent and is sent now / is a
        child sent with its parent, or another task of this process is sending it); False if it stays
        missing at the broker (never resent)."""
        order = self.book.orders[coid]
        if coid in self._sending:
            return True  # a submit (the lost-protection reaction's...) is sending it right now
        if not self.book.never_sent(order):
            return await self.resolve_in_doubt(order)
        if await self.lookup(order) is not False:
            return True  # at the broker; or it cannot say: sent at the next pass, never blindly
        if order.parent_client_order_id is None:
            # Written ahead by a process that died before (or while) sending: its connection is gone,
            # so the broker has or will never have it; it has not. Send it now, once, with its children.
            group = [order, *(c for c in self.book.children(order) if self.book.never_sent(c))]
            audited = await self.journal.order_event(
                "order.resend", {"reason": "not at the broker after restart"}, order
            )
            # An entry while trading is not ACTIVE, or whose record was not written: REJECTED.
            if await refused(self, group, audited=audited) is None:
                try:
                    await self.send(group)
                except SendFailed as e:  # refused before any send (REJECTED, audited): nothing at the broker
                    log.warning("not resent after restart: %s", e)
        return True  # a child: sent with its parent
