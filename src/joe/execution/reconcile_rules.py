"""Pure reconciliation rules: one broker observation + Joe's copy of the order → the plan it implies.

No I/O and no mutation: the `OrderManager` applies the returned `Plan` (and asks the broker when
the plan says so). The rules follow DESIGN.md "Order truth" and `../shared/specs/ibkr-message-codes.md`:

- the broker's status report is the truth about the order's *status and values* (quantity after a
  broker-side resize, prices after a confirmed modify); Joe's fills are the truth about what filled,
  so a report saying FILLED while Joe lacks the fills asks for the executions instead of inventing them;
- an informational notice never ends an order; a refused cancel never means cancelled; a refused
  modify never changes Joe's copy; a "rejected" code only kills a never-acknowledged order;
  anything ambiguous (or unknown) → ask the broker;
- every transition made from a report marked `from_reconciliation` is marked so too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from joe.core.order import Order, OrderState, is_legal
from joe.core.reports import BrokerNotice, CodeMeaning, MassStatus, OrderStatusReport, VenueOrderStatus

_S = OrderState
_V = VenueOrderStatus
_LIVE = (_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.CANCEL_PENDING)
_UNACKED = (_S.NEW, _S.SUBMITTING, _S.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one observation implies for one order.

    `to_state` (with `correction` when it takes a broker-truth edge), broker values to adopt
    (`quantity`, `limit_price`, `stop_price`; None = unchanged), `broker_order_id` to record,
    `ask_broker` (query `order_status` before concluding anything), `fetch_fills` (the broker has
    filled more than Joe's fills show), and alert texts.
    """

    to_state: OrderState | None = None
    reason: str = ""
    correction: bool = False
    from_reconciliation: bool = False
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    broker_order_id: str | None = None
    ask_broker: bool = False
    fetch_fills: bool = False
    alerts: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changes_anything(self) -> bool:
        return any(
            v is not None
            for v in (self.to_state, self.quantity, self.limit_price, self.stop_price, self.broker_order_id)
        )


@dataclass(frozen=True, slots=True)
class MassPass:
    """What one `OrderManager.reconcile` pass saw and did: the broker's `mass` status, the fill ids it
    applied (new facts, each once), and Joe's sent orders the broker still does not know (`missing`,
    after asking for each one by id)."""

    mass: MassStatus
    applied_fills: tuple[str, ...]
    missing: tuple[Order, ...]


def _move(
    order: Order, to: OrderState, reason: str, recon: bool
) -> tuple[OrderState | None, bool, tuple[str, ...]]:
    """(target, correction, alerts) for moving `order` to `to`, or no move if it is already there
    or the edge is impossible even as a correction (then an alert says so)."""
    if order.state is to:
        return None, False, ()
    if is_legal(order.state, to):
        return to, False, ()
    if is_legal(order.state, to, correction=True):
        return (
            to,
            True,
            (f"broker says {to} for an order Joe had as {order.state} ({reason}); following the broker",),
        )
    return None, False, (f"broker says {to} for an order Joe has as {order.state}; no such edge ({reason})",)


def plan_status(order: Order, report: OrderStatusReport) -> Plan:
    """The plan implied by one `OrderStatusReport` for `order`."""
    recon = report.from_reconciliation
    why = f"broker status {report.raw_status or report.status}" + (
        f": {report.reason}" if report.reason else ""
    )
    quantity = report.quantity if report.quantity > 0 and report.quantity != order.quantity else None
    if quantity is not None and quantity < order.filled_quantity:
        quantity = None  # never below what Joe has filled; the fills settle it
    limit = (
        report.limit_price
        if report.limit_price is not None and report.limit_price != order.intent.limit_price
        else None
    )
    stop = (
        report.stop_price
        if report.stop_price is not None and report.stop_price != order.intent.stop_price
        else None
    )
    boid = (
        report.broker_order_id
        if report.broker_order_id and report.broker_order_id != order.broker_order_id
        else None
    )
    fetch = report.filled_quantity > order.filled_quantity
    target: OrderState | None = None
    correction = False
    alerts: tuple[str, ...] = ()
    st = report.status
    if st is _V.PENDING_SUBMIT or st is _V.INACTIVE:
        # Still on its way (or held): nothing decided. An unacknowledged order stays as it is.
        pass
    elif st is _V.WORKING:
        if order.state in _UNACKED or order.state.is_terminal:
            want = _S.PARTIALLY_FILLED if order.filled_quantity > 0 else _S.ACCEPTED
            if order.state is _S.NEW:
                want = _S.SUBMITTING  # sent by a process that died before recording it; ACCEPTED next
            if not (order.state is _S.FILLED and order.filled_quantity >= (quantity or order.quantity)):
                target, correction, alerts = _move(order, want, why, recon)
        elif order.state is _S.CANCEL_PENDING and recon:
            # Asked, the broker says plainly working (not pending cancel): the cancel did not take.
            back = _S.PARTIALLY_FILLED if order.filled_quantity > 0 else _S.ACCEPTED
            target, correction, alerts = _move(order, back, why, recon)
        # else: a cancel in flight; a live WORKING report can precede the confirmation
    elif st is _V.PENDING_CANCEL:
        if order.state in (_S.ACCEPTED, _S.PARTIALLY_FILLED):
            target, correction, alerts = _move(order, _S.CANCEL_PENDING, why, recon)
    elif st is _V.FILLED:
        if order.filled_quantity < (quantity or order.quantity):
            fetch = True  # the fills will move it; a status alone never invents a fill
        elif order.state is not _S.FILLED:
            target, correction, alerts = _move(order, _S.FILLED, why, recon)
    elif st in (_V.CANCELLED, _V.EXPIRED):
        to = _S.CANCELLED if st is _V.CANCELLED else _S.EXPIRED
        if order.state is _S.NEW:
            target, correction, alerts = _S.SUBMITTING, False, ()  # then the next report ends it
        elif order.state is not _S.FILLED:
            target, correction, alerts = _move(order, to, why, recon)
        quantity = None  # a dead order's remaining size does not matter
    elif st is _V.REJECTED:
        if order.state in _UNACKED and order.state is not _S.NEW:
            target, correction, alerts = _move(order, _S.REJECTED, why, recon)
        elif order.state in _LIVE:
            # A venue "rejected" for an order it had accepted: it is dead (e.g. Capital deal rejected later).
            target, correction, alerts = _move(
                order, _S.REJECTED if order.filled_quantity == 0 else _S.CANCELLED, why, recon
            )
        quantity = None
    elif st is _V.NOT_FOUND:
        return Plan(reason=why)  # the caller decides (send for NEW, keep polling for UNKNOWN)
    return Plan(
        to_state=target,
        reason=why,
        correction=correction,
        from_reconciliation=recon or correction,
        quantity=quantity,
        limit_price=limit,
        stop_price=stop,
        broker_order_id=boid,
        fetch_fills=fetch,
        alerts=alerts,
    )


def plan_notice(order: Order, notice: BrokerNotice) -> Plan:
    """The plan implied by one `BrokerNotice` for `order`: never a final state from a code alone,
    except `REJECTED` for an order the broker never acknowledged."""
    why = f"broker {notice.code}: {notice.message}"
    m = notice.meaning
    if m is CodeMeaning.NOTICE:
        return Plan(reason=why)
    if m is CodeMeaning.REJECTED:
        if order.state in (_S.SUBMITTING, _S.UNKNOWN) and not _was_acknowledged(order):
            return Plan(to_state=_S.REJECTED, reason=why)
        return Plan(reason=why, ask_broker=True)  # against a working order: only a change failed, maybe
    if m is CodeMeaning.REQUEST_REFUSED:
        if order.state is _S.CANCEL_PENDING:
            back = _S.PARTIALLY_FILLED if order.filled_quantity > 0 else _S.ACCEPTED
            return Plan(to_state=back, reason=f"cancel refused: {why}", ask_broker=True)
        return Plan(reason=f"request refused: {why}", ask_broker=True)  # a refused modify changes nothing
    if m is CodeMeaning.AMBIGUOUS:
        return Plan(reason=why, ask_broker=True)
    return Plan(reason=why)  # connectivity, market data, pacing: not about this order's state


def _was_acknowledged(order: Order) -> bool:
    return any(t.to_state in _LIVE for t in order.history)
