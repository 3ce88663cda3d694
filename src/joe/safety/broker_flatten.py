"""``joe kill --flatten`` in live and shadow mode: flatten at the broker the mode resolved to.

`flatten_at_broker(rt, ctx, reason=..., by=...)` opens the broker connection of ``JOE_BROKER``
(IBKR through `IBKRExecutionClient`, Capital.com through `CapitalExecutionClient`, with the same
settings a run uses), starts an `OrderManager` on it (which reconciles Joe's stored orders with the
broker first), and runs `joe.safety.control.flatten` over an `OrderManagerVenue`:

* live: every position is closed with a reduce-only market order *through the OrderManager*
  (written ahead, audited, idempotent), working entry orders are cancelled first, then every other
  working order; attempts repeat within ``safety.flatten_attempts``; the report lists what is left;
* shadow: nothing is transmitted (shadow never sends orders). The broker is read and the report
  says what a live flatten would have closed and cancelled (``transmitted: false``).

A second flatten of the same data folder while one runs in this process (a double click on the
dashboard) is refused and leaves nothing behind (`joe.safety.flatten_route`). Another Joe holding
the data folder (a daemon with its own `OrderManager`s) is not raced: two
managers on one account would fight over the same orders (the daemon would re-place the stops the
flatten cancels). The request is left in the store (``safety.broker_flatten_pending``) for that
process's `HaltEnforcer`, which flattens through its own managers on its next poll, and `Refused`
says so (nothing was sent from here). HALTED is set either way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from joe.brokers.base import ExecutionClient
from joe.core.models import OrderIntent, OrderLeg, Position, Side
from joe.safety import flatten_route
from joe.safety.control import SafetyContext, flatten, kill
from joe.safety.flatten import FlattenReport
from joe.safety.kill_switch import KillLevel
from joe.safety.venues import ClientVenue

if TYPE_CHECKING:
    from joe.execution.order_manager import OrderManager
    from joe.runtime.bootstrap import Runtime

Closer = Callable[[], Awaitable[None]]


class Refused(RuntimeError):
    """The broker flatten was not attempted (nothing sent); the message says why and what to do."""


class OrderManagerVenue(ClientVenue):
    """`FlattenVenue` whose orders go through an `OrderManager`; reads ask the broker every time.

    A close of a symbol first exits each of Joe's own open positions in it with `OrderManager.exit`
    (reduce-only, capped at the broker's position, replacing that signal's protective orders, so
    Joe's books see the position closed); only what no signal of Joe's explains (a position opened
    outside Joe) is closed by a standalone reduce-only EXIT through `OrderManager.submit` (written
    ahead and audited like any order), on a later attempt from a fresh broker snapshot so the two
    can never add up to more than the position. Cancels of orders the manager owns go through
    `OrderManager.cancel`; a working order Joe did not place is cancelled at the broker directly,
    since flatten means all.
    """

    def __init__(self, om: OrderManager) -> None:
        super().__init__(om.client)
        self.om = om

    def _open_signals(self, symbol: str, closing: Side) -> list[str]:
        sids: dict[str, None] = {}
        for o in self.om.store.orders(mode=self.om.mode, broker=self.om.broker):
            i = o.intent
            if i.symbol == symbol and i.leg is OrderLeg.ENTRY and i.side is closing.opposite:
                sids[i.signal_id] = None
        return [sid for sid in sids if self.om.position_of(sid) > 0]

    async def place(self, intent: OrderIntent) -> Any:
        exits = []
        for sid in self._open_signals(intent.symbol, intent.side):
            o = await self.om.exit(sid)
            if o is not None:
                exits.append({"client_order_id": o.client_order_id, "state": o.state.value})
        if exits:
            return {"signal_exits": exits}
        orders = await self.om.submit([intent])
        return {"client_order_id": orders[0].client_order_id, "state": orders[0].state.value}

    async def cancel(self, client_order_id: str) -> None:
        if self.om.order(client_order_id) is not None:
            await self.om.cancel(client_order_id)
        else:
            await super().cancel(client_order_id)


async def open_execution(rt: Runtime) -> tuple[ExecutionClient, Closer]:
    """Connect the `ExecutionClient` of the configured broker (``JOE_BROKER``: ibkr or capital)."""
    broker = rt.settings.broker
    if broker == "ibkr":
        from joe.runtime.broker_ibkr import create_ibkr_from_settings

        _md, client = create_ibkr_from_settings(rt)
        await client.connect()
        return client, client.close
    if broker == "capital":
        from joe.brokers.capital.client import CapitalExecutionClient
        from joe.runtime.broker_capital import open_capital_from_settings

        http, _cmd, _ex = await open_capital_from_settings(rt)
        return CapitalExecutionClient(http, audit=rt.audit), http.close
    raise Refused(f"JOE_BROKER={broker}: {rt.mode} mode needs a broker (ibkr or capital) to flatten at")


async def _connect_within_limits(
    rt: Runtime,
    connect: Callable[[Runtime], Awaitable[tuple[ExecutionClient, Closer]]],
    attempts: int,
    pause_s: float,
) -> tuple[ExecutionClient, Closer]:
    """Connect, retrying up to `attempts` times (a broker mid-restart); the last error is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return await connect(rt)
        except Refused:
            raise
        except Exception as e:
            rt.audit.record(
                "safety.flatten_connect_failed", {"attempt": attempt, "error": f"{type(e).__name__}: {e}"}
            )
            if attempt == attempts:
                raise
            await asyncio.sleep(pause_s)
    raise AssertionError("unreachable")


async def _shadow_report(client: ExecutionClient, ctx: SafetyContext, reason: str) -> FlattenReport:
    venue = ClientVenue(client)
    report = FlattenReport(venue.name)
    positions: list[Position] = await venue.positions()
    orders = await venue.open_orders()
    report.left_positions = [{"symbol": p.symbol, "quantity": str(p.quantity)} for p in positions]
    report.left_orders = [o.client_order_id for o in orders]
    ctx.audit.record(
        "safety.flatten_shadow",
        {"venue": venue.name, "reason": reason, "transmitted": False, **report.to_dict()},
    )
    return report


async def flatten_at_broker(
    rt: Runtime,
    ctx: SafetyContext,
    *,
    reason: str,
    by: str,
    pause_s: float = 1.0,
    connect: Callable[[Runtime], Awaitable[tuple[ExecutionClient, Closer]]] = open_execution,
) -> dict[str, Any]:
    """HALT, then flatten at the broker (live) or report what would be flattened (shadow).

    Returns ``{"mode", "broker", "transmitted", "flat", "report"}``; raises `Refused` (another Joe
    holds the data folder, or no broker configured) with the state already HALTED.
    """
    from joe.safety.lock import AlreadyRunning, InstanceLock, account_lock

    if rt.mode not in ("live", "shadow"):
        raise Refused(f"{rt.mode} mode: nothing to flatten at a broker")
    kill(ctx, KillLevel.FLATTEN, reason=reason, by=by)  # HALTED first, whatever happens next

    if flatten_route.running_here(rt.data_dir):
        raise Refused(
            "a flatten of this data folder is already running in this process (a second click?): trading "
            "is HALTED; its answer says what was closed. Nothing more was asked; see `joe status`"
        )
    lock = InstanceLock.for_data_dir(rt.data_dir)
    try:
        lock.acquire()
    except AlreadyRunning as e:
        if e.pid == os.getpid() and not flatten_route.flattens_here():
            raise Refused(
                f"this process holds {rt.data_dir} but runs no order managers: trading is HALTED, nothing "
                "was sent. Stop it and run `joe kill --flatten`"
            ) from None
        flatten_route.leave_for_holder(ctx, reason=reason, by=by, pid=e.pid, asked_mode=rt.mode)
        raise Refused(
            f"another Joe is running on {rt.data_dir} (pid {e.pid}): trading is HALTED and the flatten is "
            "left for it (its order managers close everything on their next poll; `joe status` shows "
            "'broker flatten pending' until it is done). If it does not trade at a broker, stop it "
            "(SIGTERM) and run `joe kill --flatten` again"
        ) from None
    account = account_lock(rt)
    try:
        if account is not None:
            account.acquire()
    except AlreadyRunning as e:  # a Joe on ANOTHER data folder trades this account: never race it
        lock.release()
        raise Refused(
            f"{e}: trading is HALTED on {rt.data_dir} only and nothing was sent. That Joe keeps its own "
            "state: run `joe kill --flatten` with its data folder (JOE_DATA_DIR), or stop it first"
        ) from None
    with flatten_route.running(rt.data_dir, ctx, reason=reason, by=by):
        try:
            return await _flatten_holding_lock(rt, ctx, reason, by, pause_s, connect)
        finally:
            if account is not None:
                account.release()
            lock.release()


async def carry_out_pending(rt: Runtime, ctx: SafetyContext) -> dict[str, Any] | None:
    """For a live process that holds the data folder and is about to let go of it (the end of a live
    ``joe run --once``): a broker flatten still pending for this HALT (``joe kill --flatten`` asked
    after the run's last enforcement pass) is carried out now, over a fresh connection and
    `OrderManager`, instead of being left for a process that has ended (review r1119, finding 1).
    Returns the flatten result as `flatten_at_broker`, or None when nothing was pending."""
    asked = ctx.store.get_state(flatten_route.BROKER_FLATTEN_KEY)
    if rt.mode != "live" or not isinstance(asked, dict):
        return None
    if not flatten_route.request_is_current(asked, ctx.states.current()):
        return None  # an earlier HALT's request: the next enforcement pass drops it
    reason, by = str(asked.get("reason") or ""), str(asked.get("by") or "kill")
    with flatten_route.running(rt.data_dir, ctx, reason=reason, by=by):
        return await _flatten_holding_lock(rt, ctx, reason, by, 1.0, open_execution)


async def _flatten_holding_lock(
    rt: Runtime,
    ctx: SafetyContext,
    reason: str,
    by: str,
    pause_s: float,
    connect: Callable[[Runtime], Awaitable[tuple[ExecutionClient, Closer]]],
) -> dict[str, Any]:
    from joe.safety.alert_audit import AlertingAudit

    client, close = await _connect_within_limits(rt, connect, rt.config.safety.flatten_attempts, pause_s)
    try:
        if rt.mode == "shadow":
            report = await _shadow_report(client, ctx, reason)
            return {"mode": rt.mode, "broker": client.name, "transmitted": False, "flat": report.flat,
                    "report": report.to_dict()}  # fmt: skip
        from joe.execution.order_manager import OrderManager

        om = OrderManager(client, rt.store, AlertingAudit(rt.audit, ctx.alerts), mode=rt.mode)
        await om.start()
        try:
            (report,) = await flatten(
                ctx,
                [OrderManagerVenue(om)],
                reason=reason,
                by=by,
                attempts=rt.config.safety.flatten_attempts,
                pause_s=pause_s,
                halt=False,  # done above
            )
        finally:
            await om.stop()
        if report.flat and ctx.store.get_state(flatten_route.BROKER_FLATTEN_KEY) is not None:
            # Flat at the broker: a request left earlier (for this very flatten) is done too.
            flatten_route.clear_requests_broker(ctx, by=by, why="flat after a flatten from this process")
        return {"mode": rt.mode, "broker": client.name, "transmitted": True, "flat": report.flat,
                "report": report.to_dict()}  # fmt: skip
    finally:
        await close()


__all__ = ["OrderManagerVenue", "Refused", "carry_out_pending", "flatten_at_broker", "open_execution"]
