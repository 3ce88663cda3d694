"""How the `OrderManager` keeps a bracket whole: children follow their parent's size, and an open
position whose working stops do not cover it is reported as `UnprotectedPosition` (DESIGN.md
"Protection is an invariant"). A mixin of `OrderManager`, split out by concept; it changes order state
only through the `OrderManager`'s own `ask` and the client's `modify`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from joe.core.models import OrderLeg
from joe.core.order import LIVE_STATES as _WORKING
from joe.core.order import MAY_FILL_STATES as _COVERING
from joe.core.order import Order, OrderState
from joe.execution.events import AlertKind, ProtectionRestored, UnprotectedPosition
from joe.execution.exits import fit_guards, legs_over
from joe.execution.protective_cover import protection

if TYPE_CHECKING:
    from collections.abc import Callable

    from joe.brokers.base import ExecutionClient
    from joe.execution.book import OrderBook
    from joe.execution.journal import ExecutionJournal
    from joe.execution.order_manager import OrderManager
    from joe.execution.outside import OutsideLedger

log = logging.getLogger(__name__)
# Seconds a trim of oversized protective legs waits for a resize of them to their parent in flight.
TRIM_WAIT_S = 30.0


class BracketFollower:
    """Bracket children and the protection invariant, for `OrderManager` (which provides the state)."""

    client: ExecutionClient
    book: OrderBook
    journal: ExecutionJournal
    clock: Callable[[], datetime]
    _exiting: set[str]
    _following: set[str]
    _last_protection: dict[str, tuple[Decimal, Decimal]]
    _resize_asked: dict[str, Decimal]
    _over_asked: dict[str, tuple[Decimal, Decimal]]
    _over_asking: set[str]  # signals whose stops `_check_protection` is asking about now
    _frozen: set[str]
    _trims: dict[str, asyncio.Task[None]]
    _stopping: bool  # `OrderManager.stop` began: no new trim task
    _inactive_asked: set[str]  # legs cancelled once for being Inactive at the broker
    trim_grace_s: float = 0.2  # seconds
    outside: OutsideLedger

    if TYPE_CHECKING:  # provided by `OrderManager`

        async def cancel(self, coid: str) -> None: ...

        async def modify(self, coid: str, *, quantity: Decimal | None = None) -> None: ...

        def refits_targets(self, o: Order) -> bool: ...

        async def refit_target(self, o: Order, size: Decimal, why: str) -> bool: ...

        async def _after_refit(self, o: Order) -> None: ...

    async def ask(self, o: Order) -> bool:
        raise NotImplementedError  # `OrderManager.ask`: settle an order by asking the broker

    async def _inactive_leg(self, o: Order) -> None:
        """A protective leg the broker reports Inactive (IBKR: received, then rejected or held by the
        system — a stop refused for a short-sale restriction, error 201 with the order still listed)
        no longer protects anything, yet Joe had it working and counted it as cover: a price through
        the stop sold nothing, with no alert (review r9, finding 5). Once its entry can fill no more
        (a bracket's legs wait on their parent), it is alerted and cancelled — cancels are always
        allowed — so its end is the broker's word, and the position's lost protection is reported
        and reacted to like any stop the broker cancelled. The same for an exit: a market exit stands in
        for the legs it replaced while it works (`protective_cover.replaces_protection`), so an inactive
        one would hide the naked position for ever."""
        if o.intent.leg not in (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT, OrderLeg.EXIT):
            return  # an inactive entry opens nothing; its legs wait on it
        if o.state not in _WORKING:
            return
        parent = self.book.get(o.parent_client_order_id) if o.parent_client_order_id else None
        if parent is not None and not parent.state.is_terminal:
            return
        if o.client_order_id in self._inactive_asked:
            return  # asked once (a refused cancel brings the order back here): no cancel ping-pong
        self._inactive_asked.add(o.client_order_id)
        await self.journal.alert(
            AlertKind.BROKER_CORRECTION,
            f"{o.intent.leg.value} {o.client_order_id} ({o.intent.symbol}) is Inactive at the broker: it no "
            "longer works; cancelled, and the position's protection is checked again",
            o,
        )
        try:
            await self.cancel(o.client_order_id)
        except Exception as exc:  # alerted; the protection check still reports the position
            why = f"cancel of inactive {o.client_order_id}: {exc}"
            await self.journal.alert(AlertKind.UNRESOLVED, why, o)

    async def _after_change(self, o: Order) -> None:
        if o.intent.leg is OrderLeg.TAKE_PROFIT:
            await self._after_refit(o)
        if o.intent.leg is OrderLeg.ENTRY and o.parent_client_order_id is None:
            await self._follow_parent(o)
        await self._check_protection(o.intent.signal_id)

    async def _follow_parent(self, parent: Order) -> None:
        """Keep working children at the parent's size: its filled size once it can fill no more or
        once the broker has activated them, else its (possibly modified) quantity (the broker holds
        the legs of a working parent inactive, ready to cover its rest). Active legs never exceed
        the filled size: an execution correction that cuts a filled entry 5 -> 1 puts the parent
        back to work with its legs active at 5, which would sell 4 short when they fill (chaos seed
        101); they grow again with its later fills. Asks the broker first (it may have resized them)."""
        sid = parent.intent.signal_id
        active = parent.state.is_terminal or _was_filled(parent)
        target = parent.filled_quantity if active else parent.quantity
        exits = [o for o in self.book.signal_orders(sid) if o.intent.leg is OrderLeg.EXIT]
        if sid in self._exiting or any(not o.state.is_terminal for o in exits):
            return  # the exit sizes the children (from the broker's position)
        target -= sum((o.filled_quantity for o in exits), Decimal(0))
        outside = self.outside.of_signal(sid) * parent.intent.side.sign  # < 0: closed elsewhere
        target += outside
        if sid in self._frozen:
            return
        if target <= 0:
            legs_active = any(c.state in _WORKING for c in self.book.children(parent))
            if active and parent.state in _WORKING and not exits and outside == 0 and legs_active:
                # A correction took every filled share away while the legs are active: there is no
                # filled size to follow (IBKR refuses a quantity of 0) and a stop on a flat position
                # would sell short. Cancel the entry's rest; the broker cancels its legs with it.
                await self.journal.alert(
                    AlertKind.UNRESOLVED,
                    f"{sid}: a correction left the entry unfilled with its legs active: entry cancelled",
                )
                await self.cancel(parent.client_order_id)
            return  # nothing filled and done: the broker cancels the children with their parent
        self._following.add(sid)
        try:
            # After an exit or an outside change the children were fitted to the broker's position
            # (the owner traded elsewhere): from then on they only shrink.
            await self._resize_children(parent, target, grow=not exits and outside == 0, active=active)
        finally:
            self._following.discard(sid)

    async def _resize_children(
        self, parent: Order, target: Decimal, *, grow: bool = True, active: bool = True
    ) -> None:
        """Children to `target` (their total size). An `active` take-profit (its parent filled once:
        the broker works it) that must shrink is cancelled and replaced (`TargetRefit`: a modify down
        can land after it filled in full, chaos seed 477), first; stops are modified (they keep
        protecting while the modify is in flight), as are the inactive legs of a working parent
        (they cannot fill before it does). Each is asked about first (the broker may have resized
        it already) but a target over a working parent's corrected fill. A target that replaced one
        of them follows too, less what the targets before it filled."""
        for c, size in self._legs_of(parent, target):
            if c.state not in _WORKING or c.quantity == size or (not grow and c.quantity < size):
                self._resize_asked.pop(c.client_order_id, None)
                continue
            if self._resize_asked.get(c.client_order_id) == size or size <= 0:
                continue
            # The broker may have resized it: TWS does when it cancels a partly filled parent. Not
            # asked first for a target over its parent's corrected fill (the parent works on): no one
            # resizes that one, and the round trip is time in which it can fill in full.
            oversized = active and c.quantity > size and self.refits_targets(c)
            if not (oversized and not parent.state.is_terminal):
                await self.ask(c)
                c = self.book.orders[c.client_order_id]
            if active and c.quantity > size and self.refits_targets(c):
                why = f"larger than its parent's {target}"
                await self.refit_target(c, size - c.filled_quantity, why)
                continue
            if c.state in _WORKING and c.quantity != size:
                self._resize_asked[c.client_order_id] = size
                await self.journal.order_event(
                    "order.resize_requested", {"quantity": str(size), "parent": parent.client_order_id}, c
                )
                await self.client.modify(self.book.ref(c), quantity=size)

    def _legs_of(self, parent: Order, target: Decimal) -> list[tuple[Order, Decimal]]:
        """The legs following `parent` at `target` and the total size each should have, targets
        first: its children, and the targets Joe placed alone to replace one (`TargetRefit`), each
        at `target` less what the signal's other targets filled."""
        legs = [(c, target) for c in self.book.children(parent)]
        targets = [
            o
            for o in self.book.signal_orders(parent.intent.signal_id)
            if o.intent.leg is OrderLeg.TAKE_PROFIT
        ]
        for r in targets:
            if r.parent_client_order_id is None and r.state in _WORKING:
                filled = sum((t.filled_quantity for t in targets if t is not r), Decimal(0))
                legs.append((r, target - filled))
        return sorted(legs, key=lambda leg: leg[0].intent.leg is not OrderLeg.TAKE_PROFIT)

    def _schedule_trim(self, signal_id: str) -> None:
        if self._stopping:  # the manager is stopping: the next start's reconciliation looks again
            return
        running = self._trims.get(signal_id)
        if running is None or running.done():
            task = asyncio.create_task(self._trim_guards(signal_id), name=f"trim-{signal_id}")
            self._trims[signal_id] = task

    async def _trim_guards(self, signal_id: str) -> None:
        """No working protective leg of a done entry may stay larger than the signal's position: a
        stop or target left working once the position closed elsewhere opens one the other way when
        it fills (a replacement stop outside the bracket's OCA group after the target filled, or the
        target after a replacement stop filled — chaos seed 20). Runs as its own task, after
        `trim_grace_s` (the broker's own OCA cancel usually reports first) and after asking the
        broker; then shrinks them, cancels them at 0. Not where the broker resizes attached legs
        with their deal (`legs_follow_position`: Capital.com). A failure is alerted; the protection
        check reports what stays. On a closed position (nothing left to protect) the legs are
        cancelled at once, without the grace or the asking: each moment they rest is a moment in
        which a gap fills them and opens a position the other way (chaos seed 841 under load: the
        grace and the asking outlasted the next day's gap)."""
        closed = self.position_of(signal_id) <= 0
        if not closed:
            await asyncio.sleep(self.trim_grace_s)
        # A resize of the legs to their parent in flight ends first (it may shrink them itself); the
        # trim is not dropped for it: nothing else would come back to a leg left working on a closed
        # position (chaos seed 841, under load: a replacement stop outlived the target that closed
        # the position while the legs were being followed, then sold 1 short).
        waited = 0.0
        while signal_id in self._following and waited < TRIM_WAIT_S:
            await asyncio.sleep(0.05)
            waited += 0.05
        if signal_id in self._exiting:
            return  # the exit fits the legs to the broker's position

        def oversized() -> list[Order]:
            # The legs of a kind TOGETHER larger than the position (two stops of 1 on 1: seed 841).
            return legs_over(self.book.signal_orders(signal_id), max(self.position_of(signal_id), Decimal(0)))

        try:
            if not closed or self.position_of(signal_id) > 0:
                for g in oversized():
                    await self.ask(g)
            guards = oversized()
            if not guards or signal_id in self._exiting:
                return
            keep = max(self.position_of(signal_id), Decimal(0))
            await self.journal.order_event(
                "order.guard_trimmed",
                {"position": str(keep), "legs": [g.client_order_id for g in guards]},
                guards[0],
            )
            # Each kind's legs together to `keep`: shrunk (a target cancelled and replaced: a modify
            # down may land too late), cancelled at 0; the broker confirms the cancels.
            await fit_guards(cast("OrderManager", self), guards, keep)
        except Exception as exc:  # alerted; the protection check reports what stays
            log.error("trimming %s's protective legs failed: %r", signal_id, exc)
            await self.journal.alert(AlertKind.UNRESOLVED, f"trimming {signal_id}'s protective legs: {exc}")

    def leg_overreach(self, legs: list[Order]) -> str | None:
        """Why standalone protective legs (a replacement stop; not a bracket's, sent with its entry)
        must not be sent, or None. A stop or target fills against the position it protects: sent
        for a signal that holds nothing, while an exit of it is in flight, or larger than what the
        signal holds less what its working legs of the same kind already cover, its fill opens or
        grows a position the other way (chaos seed 220: a lost-protection replacement stop, still
        being checked when the reaction's exit closed the position, was sent after it and sold 2
        short; seed 129: two replacement stops and the bracket's own all filled). A leg Joe is
        resizing counts at the size asked (seed 220 again: a replacement for the 1 unit a partly
        filled entry's stop lacked, sent while that stop's resize to the whole entry was in flight,
        sold 1 short when both filled)."""
        if not legs or any(o.intent.leg not in (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT) for o in legs):
            return None
        sid = legs[0].intent.signal_id
        orders = self.book.signal_orders(sid)
        if sid in self._exiting or any(
            o.intent.leg is OrderLeg.EXIT and not o.state.is_terminal for o in orders
        ):
            return f"an exit of {sid} is in flight: it replaces the protective orders"
        held = self.position_of(sid)
        if held <= 0:
            return f"{sid} holds nothing to protect (position {held})"
        mine = {o.client_order_id for o in legs}
        for leg in {o.intent.leg for o in legs}:
            covered = sum(
                (self._will_cover(o) for o in orders
                 if o.intent.leg is leg and o.client_order_id not in mine and o.state in _COVERING),
                Decimal(0),
            )  # fmt: skip
            asked = sum((o.remaining for o in legs if o.intent.leg is leg), Decimal(0))
            if covered + asked > held:
                return f"{leg.value} legs would cover {covered + asked} of a position of {held}"
        return None

    def _will_cover(self, o: Order) -> Decimal:
        """What a working leg covers once Joe's resize of it in flight lands (its rest until then)."""
        asked = self._resize_asked.get(o.client_order_id)
        return o.remaining if asked is None else max(o.remaining, asked - o.filled_quantity)

    def stop_cover(self, signal_id: str) -> tuple[Decimal, Decimal, Decimal]:
        """(units the signal holds, units its working stops cover now, units they cover once Joe's
        resizes in flight land) — what a lost-protection reaction sizes a replacement stop from."""
        stops = [
            o for o in self.book.signal_orders(signal_id)
            if o.intent.leg is OrderLeg.STOP_LOSS and o.state in _COVERING
        ]  # fmt: skip
        now = sum((o.remaining for o in stops), Decimal(0))
        return self.position_of(signal_id), now, sum((self._will_cover(o) for o in stops), Decimal(0))

    def position_of(self, signal_id: str) -> Decimal:
        """Units the signal holds open in its entry's direction: Joe's fills of its orders plus its
        outside changes (`joe.execution.outside`); 0 without a filled entry."""
        return self.positions_of([signal_id])[signal_id]

    def positions_of(self, signal_ids: list[str]) -> dict[str, Decimal]:
        """`position_of` of many signals, their orders read at once."""
        out: dict[str, Decimal] = {}
        for sid, orders in self.book.signals_orders(signal_ids).items():
            p = protection(orders, self.outside.of_signal(sid))
            out[sid] = p.position if p is not None else Decimal(0)
        return out

    async def _check_protection(self, signal_id: str) -> None:
        """Protection is a state per signal: raised (`UnprotectedPosition`) when the working stops do
        not cover the position, cleared (`ProtectionRestored`) when they do again or it is closed."""
        p = protection(self.book.signal_orders(signal_id), self.outside.of_signal(signal_id))
        over = p is not None and p.protected > p.position and (p.unprotected or p.entry_done)
        if over and p is not None and signal_id not in self._exiting:
            # Over-cover right after a fill of a sibling (an OCA partial target fill): the broker
            # reduces the stop itself and its report may trail the fill. Ask before concluding.
            key = (p.position, p.protected)
            # Once per state, and not from inside its own asking: each answer comes back here, and a
            # nested pass that cleared the key would ask again, without end (two stops: chaos seed 93).
            if self._over_asked.get(signal_id) != key and signal_id not in self._over_asking:
                self._over_asked[signal_id] = key
                self._over_asking.add(signal_id)
                try:
                    for coid in p.stop_ids:
                        await self.ask(self.book.orders[coid])
                finally:
                    self._over_asking.discard(signal_id)
                p = protection(self.book.signal_orders(signal_id), self.outside.of_signal(signal_id))
        # Over-cover while Joe's own resize of the stops is in flight is expected, not a breach (a
        # follow of the parent in flight does not stop the trim: `_trim_guards` waits for it).
        in_flight = p is not None and any(c in self._resize_asked for c in p.stop_ids)
        if (
            p is not None
            and p.entry_done
            and signal_id not in self._exiting
            and not in_flight
            and not getattr(self.client, "legs_follow_position", False)
            # the legs of a kind together, not each alone (two stops of 1 on 1: chaos seed 841)
            and legs_over(self.book.signal_orders(signal_id), max(p.position, Decimal(0)))
        ):
            self._schedule_trim(signal_id)
        resizing = (
            p is not None
            and p.protected > p.position
            and (signal_id in self._following or any(c in self._resize_asked for c in p.stop_ids))
        )
        if p is None or signal_id in self._exiting or not p.unprotected or resizing:
            self._last_protection.pop(signal_id, None)
            self._over_asked.pop(signal_id, None)
            raised = self.journal.unprotected_now.get(signal_id)
            if raised is not None and signal_id not in self._exiting and not resizing:
                position = p.position if p is not None else Decimal(0)
                why = "position closed" if position <= 0 else "working stops cover the position again"
                await self.journal.report_restored(ProtectionRestored(
                    signal_id, raised.symbol, position, p.protected if p is not None else Decimal(0),
                    why, self.clock(),
                ))  # fmt: skip
            return
        key = (p.position, p.protected)
        if self._last_protection.get(signal_id) == key:
            return
        self._last_protection[signal_id] = key
        why = (
            "no working protective stop" if p.protected == 0 else f"stops cover {p.protected} of {p.position}"
        )
        event = UnprotectedPosition(
            signal_id, p.symbol, p.position, p.protected, why, self.clock(), p.stop_ids
        )
        await self.journal.report_unprotected(event)


def _was_filled(parent: Order) -> bool:
    """The parent was complete once (a broker correction reopened it): the broker activated its
    children then (IBKR activates a bracket's legs when the parent fills) and they stay active."""
    return any(t.to_state is OrderState.FILLED for t in parent.history)
