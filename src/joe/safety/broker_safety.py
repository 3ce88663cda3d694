"""`BrokerSafety`: the safety layer around one broker's `OrderManager`, wired in one place.

The live run (`joe run --once`, live) and the daemon's live desk both build their `OrderManager`
through `BrokerSafety.order_manager`, so every live process gets the same guards:

* the broker's `CircuitBreaker`, fed by every order outcome (`BreakerFeed`: rejects, fills,
  timeouts, unresolved sends) and by the broker's wire trouble (`BrokerHealth`: 5xx and 429
  answers, lost connections, refused reconnects — read from the broker clients' own audit
  records through `AuditLog.add_listener`);
* execution alerts for every fill, reject and UNKNOWN outcome (`AlertingAudit` as the
  `OrderManager`'s audit sink) and for every trading-state change made in this process;
* the lost-protection reaction (`protection_reaction`: re-place the stop within
  ``safety.protection_deadline_s``, else exit reduce-only, else HALT);
* a full audit disk moves the state to REDUCING (`joe.safety.audit_disk`), and the `OrderManager`
  asks the trading state right before it sends an entry (`entry_gate`);
* the `HaltEnforcer`: a move to HALTED or REDUCING, by any guard here or by another process
  (``joe kill``, ``data/KILL``; polled when `poll` is set), cancels the working entry orders
  through the `OrderManager`; stops and targets stay at the broker. `joe run --once` also calls
  `start_polling` once reconciled (a pending flatten first, then a poll) and `final_pass` at its end.

`settle()` waits for the lost-protection reactions still running (before the `OrderManager` stops);
`close()` removes the listeners and stops the enforcer's poll (call it when the connection ends).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from joe.safety.alert_audit import AlertingAudit
from joe.safety.audit_disk import entry_gate, guard_audit_disk
from joe.safety.breaker_feed import BreakerFeed
from joe.safety.broker_health import BrokerHealth
from joe.safety.circuit_breaker import CircuitBreaker
from joe.safety.control import SafetyContext, alert_on_state_changes
from joe.safety.halt_enforcer import HaltEnforcer
from joe.safety.om_protection import alert_bridge, protection_reaction

if TYPE_CHECKING:
    from joe.config.schema import SafetyConfig
    from joe.execution.order_manager import OrderManager

# How often a live process polls for moves made by another process (``joe kill``, ``data/KILL``):
# seconds, the daemon's and `joe run --once`'s (a stat and a store read per pass).
HALT_POLL_S = 5.0


class BrokerSafety:
    """See the module docstring. `broker`: ``ibkr`` or ``capital`` (the breaker's name and the prefix
    of the broker's audit records)."""

    def __init__(self, ctx: SafetyContext, broker: str, config: SafetyConfig) -> None:
        self.ctx = ctx
        self.broker = broker
        self.config = config
        self.breaker = CircuitBreaker(broker, config.breaker, ctx, clock=ctx.clock)
        self.feed = BreakerFeed(self.breaker)
        self.health = BrokerHealth(self.breaker)
        self.audit = AlertingAudit(ctx.audit, ctx.alerts)
        self.enforcer: HaltEnforcer | None = None
        self.reaction: Callable[[Any], Any] | None = None
        # Every state change alerted; a full audit disk moves to REDUCING (`joe.safety.audit_disk`).
        self._removers: list[Callable[[], None]] = [alert_on_state_changes(ctx), guard_audit_disk(ctx)]
        add = getattr(ctx.audit, "add_listener", None)
        if add is not None:  # as `broker_health.watch_broker_health`, over this breaker
            self._removers.append(add(self.health.on_record))
        self._poll: asyncio.Task[None] | None = None

    def order_manager(self, client: Any, store: Any, *, mode: str, **kwargs: Any) -> OrderManager:
        """An `OrderManager` over `client` with every guard attached (`kwargs`: its other options)."""
        from joe.execution.order_manager import OrderManager

        om = OrderManager(
            client, store, self.audit, mode=mode,
            on_alert=alert_bridge(self.ctx, self.feed), on_event=self.feed.on_event, **kwargs,
        )  # fmt: skip
        self.reaction = protection_reaction(om, self.ctx, deadline_s=self.config.protection_deadline_s)
        om.journal.on_unprotected = self.reaction
        om.entry_gate = entry_gate(self.ctx)  # the last look before an entry is sent
        return om

    async def settle(self) -> None:
        """Wait for the lost-protection reactions still running (each bounded by its deadline and its
        exit); call before stopping the `OrderManager` they act through."""
        settle = getattr(self.reaction, "settle", None)
        if settle is not None:
            await settle()

    def enforce(self, om: OrderManager, *, poll_s: float | None = None) -> HaltEnforcer:
        """Install the `HaltEnforcer` over `om` (call from the running loop); with `poll_s` it also
        polls for moves made by another process."""
        self.enforcer = HaltEnforcer(self.ctx, [om], poll_s=poll_s or 5.0)
        self.enforcer.install()
        if poll_s is not None:
            enforcer = self.enforcer

            async def poll() -> None:
                await asyncio.sleep(poll_s)  # the first pass once the OrderManager has started
                await enforcer.run()

            self._poll = asyncio.get_running_loop().create_task(poll(), name="halt-enforcer")
        return self.enforcer

    async def start_polling(self, poll_s: float = HALT_POLL_S) -> None:
        """For `joe run --once` once its `OrderManager` has started (reconciled): one enforcement pass
        now — a flatten asked before this run began (``safety.broker_flatten_pending`` left for a Joe
        that has since ended, a ``KILL`` file at ``flatten``) is carried out before anything else —
        then a pass every `poll_s` seconds while the run lasts, so ``joe kill`` / ``data/KILL`` from
        another process reach this run (review r1119, finding 1). Call `final_pass` before the end."""
        enforcer = self.enforcer
        if enforcer is None:
            raise RuntimeError("start_polling needs enforce(om) first")
        await enforcer.enforce()

        async def poll() -> None:
            await asyncio.sleep(poll_s)
            await enforcer.run()

        self._poll = asyncio.get_running_loop().create_task(poll(), name="halt-enforcer")

    async def final_pass(self) -> None:
        """One last enforcement pass before the run lets go of the broker: a kill or flatten asked
        since the last poll is carried out by this run, not left for a process that has ended."""
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
            self._poll = None
        if self.enforcer is not None:
            await self.enforcer.enforce()

    async def close(self) -> None:
        for remove in self._removers:
            remove()
        self._removers = []
        if self.enforcer is not None:
            self.enforcer.uninstall()
            with contextlib.suppress(Exception):
                await self.enforcer.drain()
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
            self._poll = None
