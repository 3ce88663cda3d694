"""A take-profit larger than the position it closes is cancelled and replaced, never modified down
(DESIGN.md "Order truth": exits are reduce-only; chaos seed 477). A mixin of `OrderManager`, split
out by concept; it changes order state only through the `OrderManager`'s own `cancel` and `submit`.

Why not a modify: a working limit leg larger than the position reverses it when it fills, and a
modify that shrinks it is only a request — the leg can fill in full before it lands (seed 477: an
entry of 3 corrected to 1 by the broker after its legs were active; the target, asked to shrink to
1, sold 3 first, and the refused modify came back as 103). So an over-sized target is cancelled
first; once the broker CONFIRMS the cancel, a target sized to what the signal then holds is placed
(reduce-only, at the old target's limit, in the bracket's OCA group where the broker has them:
`IBKRExecutionClient.submit`). If the target fills before the cancel lands, that fill is the
broker's fact and nothing is placed. The stop is never cancelled for this: it keeps protecting and
is resized (`BracketFollower`), because a position without a stop is the worse risk. A refused cancel
(10148) falls back to the modify down, the only request left. Not where the broker resizes attached
legs with their deal (`legs_follow_position`: Capital.com).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType
from joe.core.order import LIVE_STATES as _WORKING
from joe.core.order import MAY_FILL_STATES as _COVERING
from joe.core.order import Order, OrderState
from joe.core.tasks import cancel_and_wait
from joe.execution.events import AlertKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from joe.brokers.base import ExecutionClient
    from joe.execution.book import OrderBook
    from joe.execution.journal import ExecutionJournal

_S = OrderState
log = logging.getLogger(__name__)


class TargetRefit:
    """Cancel-then-replace of over-sized take-profits, for `OrderManager` (which provides the state)."""

    client: ExecutionClient
    book: OrderBook
    journal: ExecutionJournal
    clock: Callable[[], datetime]
    _exiting: set[str]
    _refits: dict[str, tuple[Decimal, int]]
    _refit_refused: set[str]
    _refit_tasks: dict[str, asyncio.Task[None]]
    _refit_placing: set[str]  # signals whose replacement is being sent (`stop_refits` lets it finish)
    _stopping: bool  # `OrderManager.stop` began: no new replacement task
    refit_wait_s: float = 10.0  # seconds a replacement waits for an exit in flight or a reconciliation
    refit_poll_s: float = 0.05  # seconds between those checks

    if TYPE_CHECKING:  # provided by `OrderManager` / `BracketFollower`

        @property
        def accepting(self) -> bool: ...

        async def cancel(self, coid: str) -> None: ...

        async def modify(self, coid: str, *, quantity: Decimal | None = None) -> None: ...

        async def submit(self, intents: Sequence[OrderIntent]) -> list[Order]: ...

        def position_of(self, signal_id: str) -> Decimal: ...

    def _refit_state(self) -> tuple[dict[str, tuple[Decimal, int]], set[str], dict[str, asyncio.Task[None]]]:
        """(targets cancelled to be replaced -> (the size a modify asks if the cancel is refused, the
        length of the target's history when its refit began), targets whose refit cancel the broker
        refused, the latest replacement task by signal)."""
        return self._refits, self._refit_refused, self._refit_tasks

    def refits_targets(self, o: Order) -> bool:
        """True when shrinking `o` goes through `refit_target` (a working take-profit, at a broker
        where legs are orders of their own)."""
        return (
            o.intent.leg is OrderLeg.TAKE_PROFIT
            and o.state in _WORKING
            and not getattr(self.client, "legs_follow_position", False)
        )

    def refitting(self, o: Order) -> bool:
        """True while `o` is a target Joe cancelled to replace it smaller (its cover is going)."""
        return o.client_order_id in self._refit_state()[0]

    async def refit_target(self, o: Order, size: Decimal, why: str) -> bool:
        """Make the working take-profit `o` cover at most `size` more: cancel it now; its replacement
        is placed once the broker confirms the cancel (`_after_refit`), sized then; `size` is what a
        modify asks if the broker refuses the cancel. False when nothing was asked
        (already being replaced, or a refit cancel of it was refused once: no cancel ping-pong; the
        refusal was alerted)."""
        refits, refused, _ = self._refit_state()
        coid = o.client_order_id
        if coid in refits or coid in refused or not self.refits_targets(o):
            return False
        refits[coid] = (max(size, Decimal(0)), len(o.history))
        payload = {"quantity": str(size), "remaining": str(o.remaining), "reason": why}
        await self.journal.order_event("order.target_refit", payload, o)
        try:
            await self.cancel(coid)
        except Exception:
            refits.pop(coid, None)
            raise
        return True

    async def _after_refit(self, o: Order) -> None:
        """Called on every change of an order: a refit target the broker cancelled gets its
        replacement; one that filled (before the cancel landed) or whose cancel was refused does
        not."""
        refits, refused, tasks = self._refit_state()
        coid = o.client_order_id
        if coid not in refits:
            return
        cap, start = refits[coid]
        asked = any(t.to_state is _S.CANCEL_PENDING for t in o.history[start:])
        if o.state in _WORKING and asked:  # the cancel was refused (10148...): it works on at its size
            refits.pop(coid)
            refused.add(coid)
            await self.journal.alert(
                AlertKind.BROKER_CORRECTION,
                f"take-profit {coid} ({o.intent.symbol}) is larger than the position and the broker refused "
                f"its cancel: asked to shrink to {cap} instead (a modify, the only way left)",
                o,
            )
            if cap > 0 and o.remaining > cap:
                try:
                    await self.modify(coid, quantity=o.filled_quantity + cap)
                except Exception as exc:  # alerted; the trim and protection checks look again
                    await self.journal.alert(AlertKind.BROKER_CORRECTION, f"shrinking {coid}: {exc}", o)
            return
        if not o.state.is_terminal:
            return  # the cancel is not sent yet (a report met the refit half-way), or not answered
        refits.pop(coid)
        if o.state is not _S.CANCELLED:
            await self.journal.order_event(
                "order.target_refit_ended",
                {"state": o.state.value, "reason": "not cancelled: no replacement"},
                o,
            )
            return
        if self._stopping:  # no task may outlive `OrderManager.stop`: the stop still protects
            await self.journal.order_event(
                "order.target_refit_ended",
                {"state": o.state.value, "reason": "the order manager is stopping: no replacement"},
                o,
            )
            return
        sid = o.intent.signal_id
        before = tasks.get(sid)  # one replacement at a time per signal: sized after the one before
        tasks[sid] = asyncio.create_task(self._replace_target(o, before), name=f"refit-{coid}")

    async def _replace_target(self, old: Order, before: asyncio.Task[None] | None) -> None:
        """Place the replacement of the cancelled target `old`: what the signal holds less what its
        other targets cover, at most the old target's rest; reduce-only, same limit. Sized when it is
        placed, not when the refit began: the position may have moved meanwhile (an entry put back to
        work by a correction fills on; an exit was done). Runs
        as its own task (the consumer that confirmed the cancel must not wait on it), after `before`;
        waits (at most `refit_wait_s`) for an exit in flight (it fits the legs itself) or a
        reconciliation."""
        if before is not None and not before.done():
            await asyncio.wait({before})
        sid = old.intent.signal_id
        loop = asyncio.get_running_loop()
        end = loop.time() + self.refit_wait_s
        try:
            while not self.accepting or sid in self._exiting or self._exit_working(sid):
                if loop.time() >= end:
                    why = "an exit or a reconciliation still runs"
                    await self._refit_skipped(old, why)
                    return
                await asyncio.sleep(self.refit_poll_s)
            orders = self.book.signal_orders(sid)
            others = sum(
                (t.remaining for t in orders
                 if t.intent.leg is OrderLeg.TAKE_PROFIT and t.state in _COVERING
                 and t.client_order_id != old.client_order_id),
                Decimal(0),
            )  # fmt: skip
            size = min(old.remaining, self.position_of(sid) - others)
            if size <= 0:
                await self._refit_skipped(old, "nothing left for a target to close")
                return
            n = sum(1 for t in orders if t.intent.leg is OrderLeg.TAKE_PROFIT)
            intent = OrderIntent(
                client_order_id(sid, f"{OrderLeg.TAKE_PROFIT.value}-refit", n),
                sid,
                OrderLeg.TAKE_PROFIT,
                old.intent.symbol,
                old.intent.side,
                size,
                OrderType.LIMIT,
                limit_price=old.intent.limit_price,
                time_in_force=old.intent.time_in_force,
                reduce_only=True,
            )
            await self.journal.order_event(
                "order.target_replaced", {"by": intent.client_order_id, "quantity": str(size)}, old
            )
            self._refit_placing.add(sid)
            try:
                await self.submit([intent])
            finally:
                self._refit_placing.discard(sid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stop still protects: a missing target is alerted, not fatal
            log.error("replacing take-profit %s failed: %r", old.client_order_id, exc)
            await self.journal.alert(
                AlertKind.UNRESOLVED,
                f"take-profit {old.client_order_id} cancelled, its replacement failed: {exc}",
            )

    def _exit_working(self, sid: str) -> bool:
        return any(
            o.intent.leg is OrderLeg.EXIT and not o.state.is_terminal for o in self.book.signal_orders(sid)
        )

    async def _refit_skipped(self, old: Order, why: str) -> None:
        await self.journal.order_event(
            "order.target_refit_ended", {"state": old.state.value, "reason": why}, old
        )

    @property
    def refits_pending(self) -> bool:
        """A replacement take-profit is still waiting to be placed or being placed."""
        return any(not t.done() for t in self._refit_tasks.values())

    async def stop_refits(self, grace_s: float = 5.0) -> None:
        """Stop the replacements (the `OrderManager` stops). One already sending its order gets up to
        `grace_s` seconds to have it answered: cancelled mid-send, the order could rest (and fill) at the
        broker with nothing of it recorded until the next start's reconciliation (chaos seed 701). One
        still waiting for an exit or a reconciliation is cancelled at once (the stop still protects)."""
        placing = [t for sid, t in self._refit_tasks.items() if sid in self._refit_placing and not t.done()]
        if placing:
            await asyncio.wait(placing, timeout=grace_s)
        # Awaited to their end: the manager's store is closed after it stops.
        if stuck := await cancel_and_wait(self._refit_tasks.values(), 1.0):
            log.error("%d target refit(s) still running after stop: %s", len(stuck), stuck)
