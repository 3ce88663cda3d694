"""The `PositionMonitor`'s requests carried out by the `OrderManager` (position id = signal id).

- `request_exit` → `OrderManager.exit(signal_id)`: reduce-only, capped at Joe's and the broker's
  position, protective orders replaced first; the monitor asks once per position and the manager
  returns an exit already working instead of sending a second.
- `request_stop_modify` → `OrderManager.modify(<the working stop>, stop_price=...)`, the level put on
  the instrument's tick grid away from the price (never tighter than asked; a level that no longer
  tightens once on the grid is refused); the monitor's
  level moves only when the manager's copy of the stop shows the new price (the broker confirmed);
  no confirmation within `confirm_timeout_s`, a refusal or no working stop → `refuse_stop_modify`.
- `resting_stop` (the monitor's `ProtectionView`): the manager's working stops for the signal.
- `refresh()` closes or resizes watched positions from the manager's fills (call it periodically).
Both requests return at once (the monitor calls them from the quote path); the work runs in tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

from joe.core.events import AuditSink
from joe.core.models import OrderLeg, Side
from joe.core.order import Order, OrderState
from joe.execution.increments import round_price
from joe.execution.order_manager import OrderManager
from joe.execution.position_monitor import PositionMonitor
from joe.execution.protection import ExitRequest, RestingStop, StopModify
from joe.execution.protective_cover import protection

log = logging.getLogger(__name__)

_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


class OrderManagerBridge:
    """`ExitRequester` + `ProtectionView` over one `OrderManager`; set `monitor` before quotes flow."""

    def __init__(
        self,
        om: OrderManager,
        audit: AuditSink,
        *,
        monitor: PositionMonitor | None = None,
        confirm_timeout_s: float = 10.0,
        poll_s: float = 0.02,
    ) -> None:
        self.om = om
        self.audit = audit
        self.monitor = monitor
        self.confirm_timeout_s = confirm_timeout_s
        self.poll_s = poll_s
        self.tasks: set[asyncio.Task[None]] = set()

    # -- ExitRequester ------------------------------------------------------------------------------

    def request_exit(self, request: ExitRequest) -> None:
        self._spawn(self._exit(request), f"exit-{request.position_id}")

    def request_stop_modify(self, request: StopModify) -> None:
        self._spawn(self._modify(request), f"trail-{request.position_id}")

    async def _exit(self, req: ExitRequest) -> None:
        try:
            order = await self.om.exit(req.position_id)
        except Exception as exc:  # fail closed: audited and alerted by the caller's audit trail
            log.error("backup exit of %s failed: %r", req.position_id, exc)
            self.audit.record("monitor.exit_failed", {"reason": req.reason.value, "error": repr(exc)},
                              position_id=req.position_id)  # fmt: skip
            return
        self.audit.record(
            "monitor.exit_sent",
            {"reason": req.reason.value, "client_order_id": order.client_order_id if order else None},
            position_id=req.position_id,
        )

    async def _modify(self, req: StopModify) -> None:
        pid = req.position_id
        stop = self.working_stop(pid)
        if stop is None:
            self._refuse(req, "no working stop at the broker")
            return
        try:
            level = await self._on_grid(stop, req.new_stop)
            if level is None:
                self._refuse(req, f"{req.new_stop} on the tick grid does not tighten the stop")
                return
            await self.om.modify(stop.client_order_id, stop_price=level)
        except Exception as exc:
            self._refuse(req, repr(exc))
            return
        deadline = time.monotonic() + self.confirm_timeout_s
        while time.monotonic() < deadline:
            o = self.om.order(stop.client_order_id)
            if o is None or o.state.is_terminal:
                self._refuse(req, "the stop order ended before the modify was confirmed")
                return
            if o.intent.stop_price == level:
                if self.monitor is not None and pid in self.monitor:
                    self.monitor.confirm_stop(pid, level)
                self.audit.record("monitor.stop_moved", {"new_stop": str(level)}, position_id=pid)
                return
            await asyncio.sleep(self.poll_s)
        self._refuse(req, f"not confirmed by the broker within {self.confirm_timeout_s}s")

    async def _on_grid(self, stop: Order, level: Decimal) -> Decimal | None:
        """`level` on the instrument's tick grid, rounded away from the price (a long's stop down, a
        short's up: never tighter than the monitor asked); None when that no longer tightens the
        working stop (the trail waits for more room)."""
        rules = await self.om.client.instrument_rules(stop.intent.symbol)
        sells = stop.intent.side is Side.SELL  # a long position's stop
        snapped = round_price(level, rules, "down" if sells else "up")
        current = stop.intent.stop_price
        if current is not None and (snapped <= current if sells else snapped >= current):
            return None
        return snapped

    def _refuse(self, req: StopModify, why: str) -> None:
        self.audit.record("monitor.stop_modify_refused", {"new_stop": str(req.new_stop), "why": why},
                          position_id=req.position_id)  # fmt: skip
        if self.monitor is not None and req.position_id in self.monitor:
            self.monitor.refuse_stop_modify(req.position_id)

    # -- ProtectionView -----------------------------------------------------------------------------

    def working_stop(self, signal_id: str) -> Order | None:
        stops = [o for o in self.om.book.signal_orders(signal_id)
                 if o.intent.leg is OrderLeg.STOP_LOSS and o.state in _WORKING]  # fmt: skip
        return stops[-1] if stops else None

    def resting_stop(self, position_id: str) -> RestingStop | None:
        p = protection(self.om.book.signal_orders(position_id))
        stop = self.working_stop(position_id)
        if p is None or stop is None or stop.intent.stop_price is None:
            return None
        return RestingStop(p.protected, stop.intent.stop_price)

    # -- fills → monitor ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Close (flat) or resize watched positions from the manager's record of fills."""
        mon = self.monitor
        if mon is None:
            return
        for pid in list(mon.position_ids()):
            qty = self.om.position_of(pid)
            if qty <= 0:
                mon.close(pid)
            elif qty != mon.quantity_of(pid):
                mon.resize(pid, qty)

    async def close(self) -> None:
        """Wait briefly for requests in flight, then cancel what is left."""
        if self.tasks:
            _done, pending = await asyncio.wait(self.tasks, timeout=self.confirm_timeout_s)
            for t in pending:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
