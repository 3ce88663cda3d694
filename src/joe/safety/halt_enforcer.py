"""`HaltEnforcer`: HALTED (and REDUCING) means no working entry order stays at the broker.

DESIGN.md "Trading state and the kill switch": HALTED = no new orders, working *entry* orders
cancelled, protective stops (and targets) stay. REDUCING is "exits only", so a resting entry that
could still fill is cancelled there too (it would be a new position, the kind REDUCING forbids).
The cancels go through each broker's `OrderManager` (the only writer of order state):
`cancel_working_entries` asks it to cancel every working order
whose leg is ENTRY and that is not reduce-only; the broker's confirmation moves the order to
CANCELLED as for any cancel. Stops, targets and exits are never touched.

How a move to HALTED (or REDUCING) reaches it, whatever moved the state:

* in this process (breaker, margin monitor, reconciler, lost protection, `control.kill`): the
  enforcer is a trading-state listener (`install`) and schedules a pass on the running loop at once;
* from another process (``joe kill --halt``, ``touch data/KILL``): `run` polls the kill file and the
  persisted state every `poll_s` seconds (a stat and a SQLite read).

A flatten asked of this process — a kill file whose level is ``flatten``, or ``joe kill --flatten``
run while this process held the data folder (it leaves `BROKER_FLATTEN_KEY` in the store) — is
carried out by the same pass, through the same `OrderManager`s (`joe.safety.broker_flatten`'s
`OrderManagerVenue`): the process that owns the orders is the one that closes them. The request is
cleared once every broker is flat; until then each poll tries again (bounded attempts per pass).

An entry still SUBMITTING or UNKNOWN cannot be cancelled yet (the broker may not know it); it is
reported as ``pending`` and the next pass cancels it once the broker has answered. Every pass is
audited (``safety.entries_cancelled``) with what was cancelled, what is pending and what failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from joe.core.models import OrderLeg
from joe.core.order import Order, OrderState
from joe.safety.control import SafetyContext, check_kill_file
from joe.safety.flatten import FlattenReport
from joe.safety.flatten_route import BROKER_FLATTEN_KEY, request_is_current
from joe.safety.trading_state import StateRecord, add_state_listener

log = logging.getLogger(__name__)


# Enforcers installed in this process (a daemon's): `installed_with_managers` tells the dashboard
# served by that daemon that a flatten left in the store is carried out right here.
_installed: set[HaltEnforcer] = set()
_CANCELLABLE = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)
_NOT_YET = (OrderState.NEW, OrderState.SUBMITTING, OrderState.UNKNOWN)


class EntryOwner(Protocol):
    """What the enforcer needs of an `OrderManager`."""

    broker: str
    mode: str
    store: Any

    async def cancel(self, coid: str) -> None: ...

    def order(self, coid: str) -> Order | None: ...


def is_entry(o: Order) -> bool:
    """An order that opens or adds to a position (never a stop, target, exit or reduce-only order)."""
    return o.intent.leg is OrderLeg.ENTRY and not o.intent.reduce_only


@dataclass
class CancelReport:
    """One pass at one broker: order ids cancel-requested, not yet cancellable, failed (id: error)."""

    broker: str
    cancelled: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "cancelled": self.cancelled,
            "pending": self.pending,
            "failed": self.failed,
        }


async def cancel_working_entries(om: EntryOwner) -> CancelReport:
    """Ask `om` to cancel every working entry order of its broker and mode (see the module docstring)."""
    report = CancelReport(om.broker)
    stored = om.store.orders(state=set(_CANCELLABLE) | set(_NOT_YET), mode=om.mode, broker=om.broker)
    for o in stored:
        current = om.order(o.client_order_id) or o  # the manager's cached copy is the newest
        if not is_entry(current):
            continue
        if current.state in _NOT_YET:
            report.pending.append(current.client_order_id)
            continue
        if current.state not in _CANCELLABLE:
            continue
        try:
            await om.cancel(current.client_order_id)
        except Exception as e:  # reported and retried by the next pass; never raised
            report.failed[current.client_order_id] = f"{type(e).__name__}: {e}"
        else:
            report.cancelled.append(current.client_order_id)
    return report


class HaltEnforcer:
    """Cancels working entry orders whenever trading is HALTED (see the module docstring)."""

    def __init__(self, ctx: SafetyContext, managers: Sequence[EntryOwner], *, poll_s: float = 5.0) -> None:
        self.ctx = ctx
        self.managers = list(managers)
        self.poll_s = poll_s
        self.reports: list[CancelReport] = []
        self.flattened: list[FlattenReport] = []
        self._kill_file_flat: str | None = None
        self._remove: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()

    def install(self) -> None:
        """Listen to trading-state changes in this process (call from the running loop)."""
        self._loop = asyncio.get_running_loop()
        if self._remove is None:
            self._remove = add_state_listener(self._on_change)
        _installed.add(self)

    def uninstall(self) -> None:
        _installed.discard(self)
        if self._remove is not None:
            self._remove()
            self._remove = None

    def _on_change(self, before: StateRecord, after: StateRecord) -> None:
        if after.state.allows_entries() or self._loop is None or self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            task = self._loop.create_task(self.enforce(), name="halt-enforcer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:  # a guard running in another thread: hand the pass to the loop
            asyncio.run_coroutine_threadsafe(self.enforce(), self._loop)

    async def enforce(self) -> list[CancelReport]:
        """One pass: when HALTED or REDUCING (the kill file honoured first), cancel every working entry
        order; then carry out a flatten asked of this process."""
        check_kill_file(self.ctx)
        rec = self.ctx.states.current()
        if rec.state.allows_entries():
            return []
        async with self._lock:  # one pass at a time: two passes would ask twice for the same cancel
            out: list[CancelReport] = []
            for om in self.managers:
                r = await cancel_working_entries(om)
                if r.cancelled or r.pending or r.failed:
                    self.ctx.audit.record(
                        "safety.entries_cancelled", {**r.to_dict(), "by": rec.by, "reason": rec.reason}
                    )
                out.append(r)
            self.reports.extend(out)
            await self._flatten_if_asked()
            return out

    async def _flatten_if_asked(self) -> None:
        from joe.safety.kill_switch import KillLevel, read_kill_file

        if not self.managers:  # nothing to flatten with here: the request stays for a process that can
            return
        kf = read_kill_file(self.ctx.data_dir)
        asked = self.ctx.store.get_state(BROKER_FLATTEN_KEY)
        if isinstance(asked, dict) and not request_is_current(asked, self.ctx.states.current()):
            # A request from an earlier HALT (resumed since): never flatten on an ordinary HALT.
            self.ctx.store.delete_state(BROKER_FLATTEN_KEY)
            self.ctx.audit.record(
                "safety.flatten_request_cleared",
                {"key": BROKER_FLATTEN_KEY, "request": asked, "by": "halt-enforcer", "why": "stale"},
            )
            asked = None
        if not isinstance(asked, dict) and (kf is None or kf.level is not KillLevel.FLATTEN):
            return
        if kf is not None and kf.level is KillLevel.FLATTEN and self._kill_file_flat == kf.reason:
            return  # this kill file's flatten is done; a new one (another reason) flattens again
        from joe.safety.broker_flatten import OrderManagerVenue
        from joe.safety.control import flatten

        reason = str(asked.get("reason")) if isinstance(asked, dict) else (kf.reason if kf else "")
        by = str(asked.get("by")) if isinstance(asked, dict) else "kill-file"
        venues = [OrderManagerVenue(om) for om in self.managers]  # type: ignore[arg-type]
        reports = await flatten(self.ctx, venues, reason=reason, by=by, halt=False, pause_s=0.5)
        self.flattened.extend(reports)
        if all(r.flat for r in reports):
            if isinstance(asked, dict):
                self.ctx.store.delete_state(BROKER_FLATTEN_KEY)
            if kf is not None and kf.level is KillLevel.FLATTEN:
                self._kill_file_flat = kf.reason

    async def run(self) -> None:
        """Poll until cancelled (for moves made by another process); never raises on a failed pass."""
        while True:
            try:
                await self.enforce()
            except Exception:
                log.exception("halt enforcement pass failed; retrying next poll")
            await asyncio.sleep(self.poll_s)

    async def drain(self) -> None:
        """Wait for the passes scheduled by state changes (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def installed_with_managers() -> bool:
    """True when a `HaltEnforcer` with order managers is installed in this process."""
    return any(e.managers for e in _installed)
