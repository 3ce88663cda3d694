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
from typing import TYPE_CHECKING

from joe.brokers.base import EntriesRefused
from joe.core.models import OrderLeg
from joe.core.order import Order, OrderState

if TYPE_CHECKING:
    from joe.execution.order_manager import OrderManager

EntryGate = Callable[[], "str | None"]


async def refuse_if_closed(om: OrderManager, group: Sequence[Order]) -> None:
    """Raise `EntriesRefused` (the group stored REJECTED and audited) when `group` opens a position
    and `om.entry_gate` says no; return otherwise."""
    gate = om.entry_gate
    first = group[0]
    if gate is None or first.intent.leg is not OrderLeg.ENTRY or first.intent.reduce_only:
        return
    why = gate()
    if why is None:
        return
    reason = f"not sent: entries refused ({why})"
    for o in group:
        om.book.move(o, OrderState.REJECTED, reason)
        await om.journal.order_event("order.rejected", {"reason": reason}, o)
    raise EntriesRefused(f"{om.broker}: order {first.client_order_id} {reason}")
