"""The `OrderManager`'s last look before it sends an entry (`OrderManager.entry_gate`).

The trading state is checked upstream, before a run sends anything (`joe.safety.guards`); a state that
moves while an entry is being written ahead (its own audit record met a full disk: the trading state
went to REDUCING from inside that write, `joe.safety.audit_disk`) must still stop it. The gate is a
callable returning None (send) or why not; an entry it refuses is stored REJECTED with that reason,
audited (``order.rejected``), and `EntriesRefused` is raised: provably never sent. Exits, reduce-only
orders, protective legs sent on their own and cancels never ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from joe.brokers.base import EntriesRefused
from joe.core.models import OrderLeg
from joe.core.order import Order, OrderState

if TYPE_CHECKING:
    from joe.execution.book import OrderBook
    from joe.execution.journal import ExecutionJournal

EntryGate = Callable[[], "str | None"]


class Gated(Protocol):
    """What the gate needs of an `OrderManager` (and of its `ReconcilePass` part)."""

    broker: str
    book: OrderBook
    journal: ExecutionJournal
    entry_gate: EntryGate | None


async def refused(om: Gated, group: Sequence[Order]) -> str | None:
    """Why `group` may not be sent (stored REJECTED and audited), when it opens a position and
    `om.entry_gate` says no; None otherwise (send it)."""
    gate = om.entry_gate
    first = group[0]
    if gate is None or first.intent.leg is not OrderLeg.ENTRY or first.intent.reduce_only:
        return None
    why = gate()
    if why is None:
        return None
    reason = f"not sent: entries refused ({why})"
    for o in group:
        om.book.move(o, OrderState.REJECTED, reason)
        await om.journal.order_event("order.rejected", {"reason": reason}, o)
    return f"{om.broker}: order {first.client_order_id} {reason}"


async def refuse_if_closed(om: Gated, group: Sequence[Order]) -> None:
    """`refused`, raising `EntriesRefused` when it refuses."""
    why = await refused(om, group)
    if why is not None:
        raise EntriesRefused(why)
