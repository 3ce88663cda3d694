"""The `OrderManager`'s last look before it sends an entry (`OrderManager.entry_gate`).

The trading state is checked upstream, before a run sends anything (`joe.safety.guards`); a state that
moves while an entry is being written ahead (its own audit record met a full disk: the trading state
went to REDUCING from inside that write, `joe.safety.audit_disk`) must still stop it. The gate is a
callable returning None (send) or why not; an entry it refuses is stored REJECTED with that reason,
audited (``order.rejected``), and `EntriesRefused` is raised: provably never sent. Exits, reduce-only
orders, protective legs sent on their own and cancels never ask it.

An entry whose own write-ahead audit record (``order.attempt``, ``order.resend``) could not be written
is refused the same way, whatever the gate says (principle 4: nothing is sent that the audit log does
not hold; a full disk with no space reserve left to free, an I/O error, a lost mount). Issue 13, seed 43.
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


async def refused(om: Gated, group: Sequence[Order], *, audited: bool = True) -> str | None:
    """Why `group` may not be sent (stored REJECTED and audited), when it opens a position and
    `om.entry_gate` says no or its write-ahead record was not written (`audited` False); None
    otherwise (send it)."""
    gate = om.entry_gate
    first = group[0]
    if first.intent.leg is not OrderLeg.ENTRY or first.intent.reduce_only:
        return None
    if not audited:
        why: str | None = "its write-ahead audit record could not be written"
    else:
        why = gate() if gate is not None else None
    if why is None:
        return None
    reason = f"not sent: entries refused ({why})"
    for o in group:  # audited, then stored (`ExecutionJournal.move_audited`)
        await om.journal.move_audited(
            om.book, o, OrderState.REJECTED, reason, "order.rejected", {"reason": reason}
        )
    return f"{om.broker}: order {first.client_order_id} {reason}"


async def refuse_if_closed(om: Gated, group: Sequence[Order], *, audited: bool = True) -> None:
    """`refused`, raising `EntriesRefused` when it refuses."""
    why = await refused(om, group, audited=audited)
    if why is not None:
        raise EntriesRefused(why)
