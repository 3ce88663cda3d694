"""`OrderBook`: the `OrderManager`'s copies of its orders, one per client order id, and every
read and write of them against the store (optimistic concurrency: a save carries the version)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from joe.brokers.base import BrokerOrderRef, InvalidOrder
from joe.core.clock import utcnow
from joe.core.order import IllegalTransition, Order, OrderState
from joe.store import Store
from joe.store.errors import StaleOrderError

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")


async def retry_stale(
    step: Callable[[_T], Awaitable[_R]], arg: _T, give_up: Callable[[StaleOrderError], Awaitable[None]]
) -> _R | None:
    """Run one step of a pass (apply a report, settle an order, check a signal); a copy another
    writer saved over (`StaleOrderError`: another process or `OrderManager` on this store) has been
    replaced in the cache by the stored one (`OrderBook.save`), so the step is run once more. Stale
    again: `give_up` (alert) and None — the pass goes on, the next one retries; the order stays as
    the store and the broker have it (its protective stop is not touched)."""
    for attempt in (1, 2):
        try:
            return await step(arg)
        except StaleOrderError as e:
            if attempt == 2:
                await give_up(e)
    return None


class OrderBook:
    """Cached `Order` copies backed by the store."""

    def __init__(self, store: Store, broker: str, mode: str) -> None:
        self.store = store
        self.broker = broker
        self.mode = mode
        self.orders: dict[str, Order] = {}
        # Fill ids the audit log now holds, marked in the store with the next save (one commit fewer
        # per fill). Lost in a crash, they are audited again on restart (`reaudit_outbox`): the outbox
        # is at-least-once, never at-most-once.
        self.audited: list[str] = []

    def get(self, coid: str) -> Order | None:
        """Joe's current copy of an order (cached, else loaded from the store), or None."""
        o = self.orders.get(coid)
        if o is None:
            o = self.store.load_order(coid)
            if o is not None:
                self.orders[coid] = o
        return o

    def adopt(self, stored: Order) -> Order:
        """The one copy to work on, given a copy just read from the store: the cached one when it is
        at least as new (a task of this process may hold it across an await: replacing it would
        leave two copies that save over each other), else the stored one, now cached."""
        cached = self.orders.get(stored.client_order_id)
        if cached is not None and cached.version >= stored.version:
            return cached
        self.orders[stored.client_order_id] = stored
        return stored

    def require(self, coid: str) -> Order:
        o = self.get(coid)
        if o is None:
            raise InvalidOrder(f"order {coid} is unknown to Joe")
        return o

    def by_broker_id(self, boid: str | None) -> Order | None:
        return next((o for o in self.orders.values() if boid and o.broker_order_id == boid), None)

    def children(self, parent: Order) -> list[Order]:
        """A bracket parent's linked orders (stop, target), as the cached copies."""
        return [
            self.orders.setdefault(c.client_order_id, c)
            for c in self.store.child_orders(parent.client_order_id)
        ]

    def signal_orders(self, signal_id: str) -> list[Order]:
        """Every order of one signal (all legs and attempts), as the cached copies. The store is
        asked which orders the signal has (another process may have added one); only the copies not
        cached yet are loaded (a cached copy is Joe's current one: the store's is never preferred)."""
        return self.signals_orders([signal_id])[signal_id]

    def signals_orders(self, signal_ids: list[str]) -> dict[str, list[Order]]:
        """`signal_orders` of many signals with one read of their order ids (and one of the copies
        not cached yet): signal id -> its orders, oldest first."""
        ids = self.store.order_ids_for_signals(signal_ids)
        missing = [c for coids in ids.values() for c in coids if c not in self.orders]
        if missing:
            for o in self.store.load_orders(missing):
                self.orders.setdefault(o.client_order_id, o)
        return {sid: [self.orders[c] for c in coids if c in self.orders] for sid, coids in ids.items()}

    def ref(self, o: Order) -> BrokerOrderRef:
        parent = self.get(o.parent_client_order_id) if o.parent_client_order_id else None
        return BrokerOrderRef(o.intent, o.broker_order_id, parent.broker_order_id if parent else None)

    def save(self, o: Order, pending_audit: set[str] | None = None, *, durable: bool = True) -> None:
        """Persist `o` (raises `StaleOrderError` if another copy saved since), with the audited
        marks collected since the last save, in one transaction.

        `durable=False` (no fsync wait; survives a process crash, not a power loss) is for what Joe
        learned from the broker — a status, a fill, a commission — which the startup reconciliation
        reads from the broker again. Joe's own decisions (the write-ahead before a send, a cancel
        request, a send's failure) stay durable."""
        try:
            self._save(o, pending_audit, durable=durable)
        except StaleOrderError:
            # Another writer saved since (another process, or another `OrderManager` on this store):
            # the stored copy replaces the cached one, so the caller's retry works on the truth.
            fresh = self.store.load_order(o.client_order_id)
            if fresh is not None and self.orders.get(o.client_order_id, o) is o:
                self.orders[o.client_order_id] = fresh
            raise

    def _save(self, o: Order, pending_audit: set[str] | None, *, durable: bool) -> None:
        if not durable:
            with self.store.atomic(durable=False):
                self._save(o, pending_audit, durable=True)
            return
        if not self.audited:
            self.store.save_order(o, broker=self.broker, mode=self.mode, pending_audit=pending_audit or ())
            return
        done, self.audited = self.audited, []
        try:
            with self.store.atomic():
                self.store.mark_fills_audited(done)
                self.store.save_order(
                    o, broker=self.broker, mode=self.mode, pending_audit=pending_audit or ()
                )
        except Exception:
            self.audited = done + self.audited
            raise

    def flush_audited(self) -> None:
        """Mark the collected audited fills now (on stop and before a reconciliation pass)."""
        done, self.audited = self.audited, []
        self.store.mark_fills_audited(done)

    def never_sent(self, o: Order) -> bool:
        """NEW only: the intent is committed and SUBMITTING (the durable mark written right before
        the broker call) is not, so no send can have started. A SUBMITTING order, from this process
        or a dead one, may be at the broker (its request may still be in flight): it is asked for,
        never resent."""
        return o.state is OrderState.NEW

    def move(self, o: Order, to: OrderState, reason: str) -> None:
        """Transition and save; an edge the order no longer has (a report moved it meanwhile) is skipped."""
        try:
            o.transition(to, reason, ts=utcnow())
        except IllegalTransition:
            log.warning("order %s: %s -> %s skipped (%s)", o.client_order_id, o.state, to, reason)
            return
        self.save(o)
