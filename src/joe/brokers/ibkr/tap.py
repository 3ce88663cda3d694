"""`WireTap`: IBKR observations taken from the raw TWS messages, before ib_async interprets them.

ib_async 2.1 cannot be trusted for order state: its `Wrapper.error` marks a trade Cancelled for every
code outside a short warning set (10349, 10148, 201 on a live stop...), and it silently drops a
commission report that arrives before its execution. So the tap wraps the decoder's wrapper calls
(`openOrder`, `completedOrder`, `orderStatus`, `execDetails`, `commissionReport`, `error`,
`position`) on the `IB` instance, turns each raw message into a report (`joe.core.reports`), and
then lets ib_async run as usual. It keeps only the broker's latest copy of each order (`OrderView`,
to give an orderStatus its symbol and prices) and which request was last sent for an order id (to
classify a code); it never decides an order's state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ib_async import IB

from joe.brokers.ibkr.codes import classify
from joe.brokers.ibkr.translate import (
    BROKER,
    OrderView,
    commission_report,
    decimal,
    fill_report,
    joe_symbol,
    status_report,
)
from joe.core.clock import utcnow
from joe.core.models import OrderLeg
from joe.core.reports import BrokerNotice, CommissionReport, Observation, PositionReport

log = logging.getLogger(__name__)

Key = tuple[int, int]
LIVE = -1  # reqId of an unsolicited (live) execDetails / a session-level error


@dataclass(frozen=True, slots=True)
class SentOrder:
    """What Joe last sent for one order id: the request kind and the order's leg."""

    request: str  # "place" | "modify" | "cancel"
    client_order_id: str
    leg: OrderLeg | None = None


class WireTap:
    """Observation stream of one `IB` connection (install once per `IB`)."""

    def __init__(
        self, ib: IB, clock: Callable[[], Any] = utcnow, account: Callable[[], str] = lambda: ""
    ) -> None:
        self.ib = ib
        self.clock = clock
        self.account = account  # the account whose positions are reported ("" = every account)
        # Every `stream()` gets every observation from the moment it starts; what arrives while no one
        # listens (e.g. executions re-read on connect) is kept for the first listener.
        self._listeners: list[asyncio.Queue[Observation]] = []
        self._backlog: list[Observation] = []
        # Keyed by (clientId, orderId): order ids are per client at TWS.
        self.views: dict[Key, OrderView] = {}
        self.by_perm: dict[int, Key] = {}  # permId → key (completedOrder carries no order id)
        self.sent: dict[int, SentOrder] = {}  # this client's order ids
        self.commissions: dict[str, CommissionReport] = {}  # by raw execId: a report may precede its fill
        self._last: dict[Key, tuple[Any, ...]] = {}
        self._install()

    # -- what the client tells the tap ----------------------------------------------------------------

    def note(self, order_id: int, request: str, client_order_id: str, leg: OrderLeg | None = None) -> None:
        """Remember the request just sent for `order_id` (classifies the codes that answer it)."""
        prev = self.sent.get(order_id)
        if leg is None and prev is not None:
            leg = prev.leg
        self.sent[order_id] = SentOrder(request, client_order_id, leg)

    def register(self, contract: Any, order: Any) -> None:
        """Seed the view of an order Joe is about to send (status PendingSubmit until TWS answers)."""
        key = (int(order.clientId), int(order.orderId))
        if key not in self.views:
            self.views[key] = OrderView.from_order(contract, order, "PendingSubmit", Decimal(0))

    @property
    def client_id(self) -> int:
        return int(self.ib.client.clientId)

    def own(self, order_id: int) -> OrderView | None:
        """The broker's copy of this client's order `order_id`, if seen."""
        return self.views.get((self.client_id, order_id))

    def leg(self, view: OrderView) -> OrderLeg | None:
        s = self.sent.get(view.order_id) if view.client_id == self.client_id else None
        return s.leg if s else None

    # -- stream ---------------------------------------------------------------------------------------

    def stream(self) -> AsyncIterator[Observation]:
        """Every observation from now on, in arrival order (plus the backlog, for the first listener)."""
        queue: asyncio.Queue[Observation] = asyncio.Queue()
        for obs in self._backlog:
            queue.put_nowait(obs)
        self._backlog.clear()
        self._listeners.append(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[Observation]) -> AsyncIterator[Observation]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.remove(queue)

    def emit(self, obs: Observation) -> None:
        if not self._listeners:
            self._backlog.append(obs)
            return
        for queue in self._listeners:
            queue.put_nowait(obs)

    def _emit_view(self, view: OrderView) -> None:
        seen = (
            view.status,
            view.quantity,
            view.filled,
            view.limit_price,
            view.stop_price,
            view.avg_fill_price,
        )
        key = (view.client_id, view.order_id)
        if self._last.get(key) == seen:
            return  # openOrder + orderStatus often say the same thing twice
        self._last[key] = seen
        self.emit(status_report(view, leg=self.leg(view), ts=self.clock()))

    # -- the taps -------------------------------------------------------------------------------------

    def _install(self) -> None:
        w = self.ib.wrapper
        for name in (
            "openOrder",
            "completedOrder",
            "orderStatus",
            "execDetails",
            "commissionReport",
            "error",
            "position",
        ):
            original = getattr(w, name)
            mine = getattr(self, f"_on_{name}")
            setattr(w, name, self._chain(mine, original))

    @staticmethod
    def _chain(mine: Callable[..., None], original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kw: Any) -> Any:
            try:
                mine(*args, **kw)
            except Exception:  # a bug here must never stop ib_async's own handling
                log.exception("IBKR wire tap failed on %s", getattr(mine, "__name__", mine))
            return original(*args, **kw)

        return call

    def _on_openOrder(self, order_id: int, contract: Any, order: Any, state: Any) -> None:
        if order.whatIf:
            return
        prev = self.views.get((int(order.clientId), order_id))
        view = OrderView.from_order(contract, order, state.status, prev.filled if prev else Decimal(0))
        if prev is not None:
            view = view.keep_fill(prev)
        self._store(view)
        self._emit_view(view)

    def _on_completedOrder(self, contract: Any, order: Any, state: Any) -> None:
        key = self.by_perm.get(int(order.permId))
        if key is None:
            return  # never seen in this session: order_status()/mass_status() read it from the request
        prev = self.views[key]
        view = OrderView.from_order(contract, order, state.status).as_known(prev)
        self._store(view)
        self._emit_view(view)

    def _on_orderStatus(
        self, order_id: int, status: str, filled: float, remaining: float, avg: float, perm_id: int,
        parent_id: int, last_fill: float, client_id: int, why_held: str, mkt_cap: float = 0.0,
    ) -> None:  # fmt: skip
        prev = self.views.get((client_id, order_id))
        if prev is None:
            return  # an order this session never saw an openOrder for; order_status() will ask
        view = prev.with_status(status, filled, remaining, avg, perm_id)
        self._store(view)
        self._emit_view(view)

    def _on_execDetails(self, req_id: int, contract: Any, execution: Any) -> None:
        if req_id != LIVE:
            return  # an answer to reqExecutions: mass_status/order_status read it from the request
        self.emit(fill_report(contract, execution))

    def _on_commissionReport(self, report: Any) -> None:
        rep = commission_report(report, self.clock())
        self.commissions[report.execId] = rep
        self.emit(rep)

    def _on_position(self, account: str, contract: Any, pos: float, avg_cost: float) -> None:
        """A position update (the reqPositions subscription ib_async opens on connect): reported with
        the symbol's signed quantity, so the OrderManager sees a change it did not make (the owner
        selling in TWS) at once, not at the next reconciliation."""
        mine = self.account()
        if mine and account != mine:
            return
        self.emit(PositionReport(
            broker=BROKER, symbol=joe_symbol(contract), quantity=decimal(pos), avg_price=decimal(avg_cost),
            ts=self.clock(), broker_position_id=str(contract.conId),
        ))  # fmt: skip

    def _on_error(self, req_id: int, code: int, message: str, advanced: str = "") -> None:
        sent = self.sent.get(req_id)
        view = self.own(req_id)
        if req_id != LIVE and sent is None and view is None:
            return  # a market data / contract request's error: its requester handles it
        request = sent.request if sent else ""
        acknowledged = view.acknowledged if view else False
        meaning = classify(code, message, request=request, acknowledged=acknowledged)
        coid = (sent.client_order_id if sent else "") or (view.order_ref if view else "")
        self.emit(
            BrokerNotice(
                broker=BROKER, code=str(code), message=message, meaning=meaning, ts=self.clock(),
                client_order_id=coid or None, broker_order_id=str(req_id) if req_id != LIVE else None,
                request=request,
            )
        )  # fmt: skip

    def _store(self, view: OrderView) -> None:
        key = (view.client_id, view.order_id)
        self.views[key] = view
        if view.perm_id:
            self.by_perm[view.perm_id] = key


__all__ = ["LIVE", "SentOrder", "WireTap"]
