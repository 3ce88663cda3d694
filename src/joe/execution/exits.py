"""Reduce-only exits: pure sizing (capped at the live broker position, never reversing it) and the
placement flow the `OrderManager` runs (replace the protective orders, then send the exit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.brokers.base import BrokerError, EntriesRefused, InvalidOrder
from joe.core.ids import client_order_id
from joe.core.models import ZERO, OrderIntent, OrderLeg, OrderType, Side, TimeInForce
from joe.core.order import Order, OrderState
from joe.core.reports import PositionReport
from joe.execution.increments import round_size_down
from joe.execution.journal import intent_payload

if TYPE_CHECKING:
    from joe.execution.order_manager import OrderManager

_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.SUBMITTING)
_CHILD_LEGS = (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT)


def broker_position(reports: Sequence[PositionReport], symbol: str, client_order_id: str = "") -> Decimal:
    """Signed net position the broker holds in `symbol`. Where the broker reports positions per deal
    (Capital.com hedging) and some carry `client_order_id`, only those deals count: Joe's own
    position, never the trader's."""
    mine = [p for p in reports if p.symbol == symbol]
    if client_order_id and any(p.client_order_id for p in mine):
        mine = [p for p in mine if p.client_order_id == client_order_id]
    return sum((p.quantity for p in mine), ZERO)


@dataclass(frozen=True, slots=True)
class ExitSize:
    """`quantity` to send (0 = nothing to exit), and why it is what it is."""

    quantity: Decimal
    reason: str


def size_exit(
    entry_side: Side, joe_position: Decimal, broker_net: Decimal, requested: Decimal | None = None
) -> ExitSize:
    """The exit size: min(requested, Joe's open position, the broker's position in the entry's
    direction). A broker position that is flat or on the other side gives 0 (an exit would open
    or grow a position the other way)."""
    at_broker = broker_net * entry_side.sign
    if at_broker <= 0:
        return ExitSize(ZERO, f"the broker holds {broker_net} (nothing open in the {entry_side} direction)")
    cap = min(joe_position, at_broker)
    why = f"Joe's position {joe_position}, broker's {at_broker}"
    if requested is not None:
        cap = min(cap, requested)
        why += f", asked {requested}"
    return ExitSize(max(cap, ZERO), why)


async def run_exit(
    om: OrderManager,
    signal_id: str,
    quantity: Decimal | None,
    order_type: OrderType,
    limit_price: Decimal | None,
) -> Order | None:
    """`OrderManager.exit` (its docstring says what it guarantees): the attempt bookkeeping around
    `place_exit`, and what protects the position once the exit is placed or has failed."""
    if om._reconciling:
        raise EntriesRefused(f"{om.broker}: reconciliation running; retry the exit when it ends")
    orders = om.book.signal_orders(signal_id)
    entry = next((o for o in orders if o.intent.leg is OrderLeg.ENTRY), None)
    if entry is None:
        raise InvalidOrder(f"signal {signal_id}: no entry order, nothing to exit")
    attempts = [o for o in orders if o.intent.leg is OrderLeg.EXIT]
    live = [o for o in attempts if not o.state.is_terminal]
    if live:
        return live[-1]
    om._exiting.add(signal_id)
    try:
        placed = await place_exit(om, entry, orders, len(attempts), quantity, order_type, limit_price)
    except Exception:
        om._exiting.discard(signal_id)
        await om._check_protection(signal_id)
        raise
    finally:
        om._exiting.discard(signal_id)
    # The exit may have ended while it was being placed (refused at once: error 201, a close
    # refused on a closed market) after it cancelled the protective legs, and the checks its
    # reports ran were held while it was placed: what protects the position now is reported at
    # once (the safety layer re-places the stop, or reduces, or halts), never left until the
    # next broker report (chaos defect 5).
    if signal_id in om._refit:  # the owner traded while the exit was placed: legs fitted now
        om._refit.discard(signal_id)
        await om._fit_legs(signal_id, om.position_of(signal_id))
    await om._check_protection(signal_id)
    return placed


async def place_exit(
    om: OrderManager,
    entry: Order,
    orders: list[Order],
    attempt: int,
    quantity: Decimal | None,
    order_type: OrderType,
    limit_price: Decimal | None,
) -> Order | None:
    sid, symbol, side = entry.intent.signal_id, entry.intent.symbol, entry.intent.side
    rules = await om.client.instrument_rules(symbol)
    if quantity is None:
        # Closing the signal: an entry still working (a resting limit partly filled) would add to the
        # position after the exit, with its protective legs gone. Cancelled — confirmed by the broker
        # — before the exit is sized, so the exit closes everything that filled.
        working = [o for o in orders if o.intent.leg is OrderLeg.ENTRY and o.state in _WORKING[:2]]
        for o in working:
            await om.cancel(o.client_order_id)
        if working:
            await await_terminal(om, [o.client_order_id for o in working])
    joe_pos = om.position_of(sid)
    net = broker_position(await om.client.positions(), symbol, entry.client_order_id)
    size = size_exit(side, joe_pos, net, quantity)
    if size.quantity <= 0:
        om.journal.record("order.exit_skipped", {"reason": size.reason}, signal_id=sid)
        # Nothing to sell, but a protective leg larger than what the broker holds would open a
        # position the other way when it fills (the owner sold in TWS before the reconciliation saw
        # it): fitted to the broker's position, cancelled at 0 (review r9c, finding 1).
        await _fit_to_broker(om, side, joe_pos, net, orders)
        if joe_pos > 0:  # closed without Joe (its stop or target, the owner): Joe's copies follow
            await om.settle_signal(sid, entry.created_at)
        return None
    # What stays open after the exit, from the BROKER's position (asked above, never inferred from
    # Joe's fills: the owner may have traded the instrument elsewhere): no protective leg may be
    # larger, or its fill would reverse the position.
    remaining = guard_size(side, joe_pos, net, size.quantity)
    # Where the broker resizes attached legs with their deal (`legs_follow_position`: Capital.com) they
    # are never removed before the exit: a close takes them with the deal, and if the exit fails the
    # position keeps its stop (chaos seeds 62, 98, 170, 191: the stop removed, then the close refused,
    # left the deal naked while trading stayed ACTIVE).
    follow = getattr(om.client, "legs_follow_position", False)
    guards = [] if follow else [o for o in orders if o.intent.leg in _CHILD_LEGS and o.state in _WORKING]
    await fit_guards(om, guards, remaining)
    # The position may have moved while the guards were changed (a stop or target filled, the owner
    # traded): size again from the broker, and shrink the guards again if it went down meanwhile.
    net = broker_position(await om.client.positions(), symbol, entry.client_order_id)
    size = size_exit(side, om.position_of(sid), net, quantity)
    qty = round_size_down(size.quantity, rules)
    if qty <= 0:
        om.journal.record("order.exit_skipped", {"reason": size.reason}, signal_id=sid)
        current = [om.book.orders[g.client_order_id] for g in guards]
        await _fit_to_broker(om, side, om.position_of(sid), net, current)
        return None
    after = guard_size(side, om.position_of(sid), net, qty)
    if after < remaining:
        await fit_guards(om, [g for g in guards if g.state in _WORKING], after)
    coid = client_order_id(sid, OrderLeg.EXIT.value, attempt)
    intent = OrderIntent(
        coid,
        sid,
        OrderLeg.EXIT,
        symbol,
        side.opposite,
        qty,
        order_type,
        limit_price=limit_price,
        time_in_force=TimeInForce.GTC,
        reduce_only=True,
    )
    await om.check_rules(intent)
    o = Order(intent, attempt=attempt, created_at=om.clock())
    o.transition(OrderState.SUBMITTING, f"write-ahead exit ({size.reason})", ts=om.clock())
    om.book.save(o)
    om.book.orders[coid] = o
    await om.journal.order_event("order.attempt", intent_payload(intent) | {"reason": size.reason}, o)
    await om.send([o])
    # Joe's copies must equal the broker's at the end of the exit (guards cancelled or resized by
    # the broker, a part closed elsewhere): one targeted pass over this signal's orders.
    await om.settle_signal(sid, entry.created_at)
    return o


async def _fit_to_broker(
    om: OrderManager, side: Side, joe_position: Decimal, broker_net: Decimal, orders: Sequence[Order]
) -> None:
    """Shrink (cancel at 0) the working protective legs to what the broker holds for the signal
    plus the rest of an entry still working. Not where the broker resizes attached legs with their
    deal (`legs_follow_position`: Capital.com)."""
    if getattr(om.client, "legs_follow_position", False):
        return
    resting = sum(
        (o.remaining for o in orders if o.intent.leg is OrderLeg.ENTRY and o.state in _WORKING[:2]), ZERO
    )
    keep = guard_size(side, joe_position, broker_net, ZERO) + resting
    guards = [o for o in legs_over(orders, keep) if o.state in _WORKING[:2]]
    if guards:
        await fit_guards(om, guards, keep)


def guard_size(entry_side: Side, joe_position: Decimal, broker_net: Decimal, exit_qty: Decimal) -> Decimal:
    """The size protective legs may keep once an exit of `exit_qty` is done: what Joe holds for the
    signal and the broker holds in the entry's direction (the smaller), less the exit; never < 0."""
    held = min(joe_position, max(broker_net * entry_side.sign, ZERO))
    return max(held - exit_qty, ZERO)


async def fit_guards(om: OrderManager, guards: Sequence[Order], remaining: Decimal) -> None:
    """Fit the working protective legs to `remaining` open: the legs of each kind (stops, targets)
    TOGETHER cover at most `remaining` — a bracket's own leg first, then the standalone ones
    (replacement stops, refitted targets) — each shrunk to its share, cancelled at a share of 0
    (confirmed by the broker before returning). Never grows a leg. Two stops of 1 on a position of
    2 are each within an exit's `remaining` of 1, but together they sell 2 when a gap fills them:
    one is cancelled (chaos seed 841 under load: a partial exit left a replacement stop and a second
    one beside it, and the gap sold 1 short). A leg still being sent (SUBMITTING: a lost-protection
    replacement stop racing the exit) is waited for until the broker has it, then fitted too: left
    out, it would outlive the position the exit closes (chaos seed 220)."""
    sending = [g.client_order_id for g in guards if g.state is OrderState.SUBMITTING]
    if sending:
        await _await_sent(om, sending)
    guards = [om.book.orders[g.client_order_id] for g in guards]
    left = {OrderLeg.STOP_LOSS: max(remaining, ZERO), OrderLeg.TAKE_PROFIT: max(remaining, ZERO)}
    refit: list[str] = []
    cancelled: list[str] = []
    order = sorted(
        guards, key=lambda g: (g.intent.leg is not OrderLeg.TAKE_PROFIT, g.parent_client_order_id is None)
    )
    for g in order:
        if g.state.is_terminal:
            continue
        share = min(g.remaining, left.get(g.intent.leg, ZERO))
        left[g.intent.leg] = left.get(g.intent.leg, ZERO) - share
        if share <= 0:
            await om.cancel(g.client_order_id)
            cancelled.append(g.client_order_id)
        elif g.remaining > share and om.refits_targets(g):
            # A target is cancelled (confirmed below, before the exit is sent) and replaced at the
            # size that stays once the exit is done: a modify down could land after it filled in
            # full, and with the exit that would reverse the position (chaos seed 477's kind).
            if await om.refit_target(g, share, f"an exit leaves {share}"):
                refit.append(g.client_order_id)
        elif g.remaining > share:
            await om.modify(g.client_order_id, quantity=g.filled_quantity + share)
    if cancelled:
        await await_terminal(om, cancelled)
    if refit:  # cancelled, or refused and shrunk by a modify instead (`TargetRefit`)
        await _await_orders(
            om, refit, lambda o: o.state is not OrderState.CANCEL_PENDING, "have a cancel not yet answered"
        )


def legs_over(orders: Sequence[Order], keep: Decimal) -> list[Order]:
    """The working protective legs of the kinds (stops, targets) whose legs together cover more than
    `keep` units: what `fit_guards` must fit to `keep`."""
    working = [o for o in orders if o.intent.leg in _CHILD_LEGS and o.state in _WORKING]
    over = {
        leg for leg in _CHILD_LEGS
        if sum((o.remaining for o in working if o.intent.leg is leg), ZERO) > keep
    }  # fmt: skip
    return [o for o in working if o.intent.leg in over]


async def _await_sent(om: OrderManager, coids: list[str]) -> None:
    """Wait until none of `coids` is SUBMITTING (see `_await_orders`)."""
    await _await_orders(
        om, coids, lambda o: o.state is not OrderState.SUBMITTING,
        "are being sent and the broker has not acknowledged them",
    )  # fmt: skip


async def await_terminal(om: OrderManager, coids: list[str]) -> None:
    """Wait until every one of `coids` is terminal (see `_await_orders`)."""
    await _await_orders(
        om, coids, lambda o: o.state.is_terminal, "are still working at the broker"
    )  # fmt: skip


async def _await_orders(
    om: OrderManager, coids: list[str], settled: Callable[[Order], bool], held: str
) -> None:
    """Wait (at most `om.confirm_timeout`, then ask the broker about each one left) until every order of
    `coids` is `settled`; raises `BrokerError` naming those still not (`held` says how) — the exit is then
    not sent, so it cannot reverse the position."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + om.confirm_timeout
    while True:
        pending = [c for c in coids if not settled(om.book.orders[c])]
        if not pending:
            return
        left = deadline - loop.time()
        if left <= 0:
            for c in pending:
                await om.ask(om.book.orders[c])
            still = [c for c in pending if not settled(om.book.orders[c])]
            if still:
                raise BrokerError(
                    f"exit held: protective orders {still} {held}; the exit is not sent so it cannot "
                    "reverse the position — retry it"
                )
            return
        om.changed.clear()
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that races the
        # event (gh-86296), and a stopping OrderManager must not keep an exit running.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(left, 0.25)):
                await om.changed.wait()
