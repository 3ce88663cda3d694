"""One ib_async connection to TWS / IB Gateway, shared by the execution client and the market data.

It checks the port against the trading mode before opening a socket, reconnects with exponential
backoff after a socket loss, and tracks readiness: *ready* means connected **and** re-synced
(every registered resync hook has run since the last connect or 1101/1102). While not ready the
executor refuses new entries (fail closed). IBKR notices 1100 (connectivity lost) drop readiness;
1101/1102 (restored) trigger a re-sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB

from joe.brokers.base import BrokerError, BrokerUnavailable
from joe.brokers.ibkr.ports import PortModeMismatch, check_port, normalise_mode
from joe.config.endpoints import is_ibkr_simulator_notice
from joe.core.events import AuditSink

log = logging.getLogger(__name__)

# A resync hook gets the reason: "connect" (fresh socket; ib_async has just re-fetched open orders,
# completed orders and executions), "data_lost" (1101) or "data_kept" (1102).
ResyncHook = Callable[[str], Awaitable[None]]

CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_KEPT = 1102


class IBKRConnection:
    """Owns the `ib_async.IB` instance; connect/close are reference counted between users."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        account: str,
        mode: str,
        audit: AuditSink,
        *,
        connect_timeout: float = 4.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_messages_per_second: int = 45,
        ib: IB | None = None,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.account = account
        self.mode = normalise_mode(mode)
        self.configured_mode = mode
        self.audit = audit
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.ib = ib or IB()
        self.ib.RaiseRequestErrors = True
        # IBKR closes connections that exceed 50 messages/s; ib_async queues anything above this rate.
        self.ib.client.MaxRequests = max_messages_per_second
        self.ib.client.RequestsInterval = 1
        self._users = 0
        self._closing = False
        self._ready = asyncio.Event()
        self._hooks: list[ResyncHook] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.errorEvent += self._on_error
        # True once the far end announced itself as Joe's simulator (`joe.config.endpoints`)
        self.simulator = False

    # -- state --------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected and re-synced: the only state in which new entries are allowed."""
        return self._ready.is_set() and self.ib.isConnected()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    async def wait_ready(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return self.ready

    def add_resync_hook(self, hook: ResyncHook) -> None:
        """Register a coroutine run after every (re)connect and 1101/1102, before readiness."""
        self._hooks.append(hook)

    # -- connect / close ----------------------------------------------------------------------------

    def check(self) -> None:
        """The port/mode gate; a refusal is audited before it is raised."""
        try:
            check_port(self.port, self.configured_mode)
        except PortModeMismatch as exc:
            self.audit.record(
                "ibkr.port_refused",
                {"port": self.port, "mode": self.mode, "configured_mode": str(self.configured_mode),
                 "reason": str(exc)},
            )  # fmt: skip
            raise

    async def connect(self) -> None:
        """Check the port, connect (first user) and run the start-up re-sync."""
        self.check()
        self._users += 1
        if self.ib.isConnected() or self._reconnect_task is not None:
            if not self._ready.is_set():
                await self._ready.wait()
            return
        self._closing = False
        try:
            await self._connect_once()
        except BaseException:
            self._users -= 1
            raise

    async def _connect_once(self) -> None:
        try:
            await self.ib.connectAsync(
                self.host, self.port, clientId=self.client_id, timeout=self.connect_timeout,
                account=self.account,
            )  # fmt: skip
        except (OSError, TimeoutError, ConnectionError) as exc:
            failure = {"host": self.host, "port": self.port, "error": repr(exc)}
            self.audit.record("ibkr.connect_failed", failure)
            raise BrokerUnavailable(f"cannot connect to IBKR at {self.host}:{self.port}: {exc!r}") from exc
        accounts = self.ib.managedAccounts()
        if self.account and self.account not in accounts:
            self._closing = True
            self.ib.disconnect()
            self.audit.record("ibkr.account_mismatch", {"configured": self.account, "managed": accounts})
            raise BrokerError(f"IBKR account {self.account!r} is not managed by this login ({accounts})")
        if not self.account and accounts:
            self.account = accounts[0]
        self.audit.record(
            "ibkr.connected",
            {"host": self.host, "port": self.port, "client_id": self.client_id, "account": self.account,
             "mode": self.mode, "server_version": self.ib.client.serverVersion(),
             "simulator": self.simulator},
        )  # fmt: skip
        try:
            await self._resync("connect")
        except BrokerError:
            raise
        except Exception as exc:  # a resync that fails half-way must not leave us "ready"
            self._ready.clear()
            raise BrokerUnavailable(f"IBKR re-sync failed: {exc!r}") from exc

    async def _resync(self, reason: str) -> None:
        self._ready.clear()
        for hook in self._hooks:
            await hook(reason)
        if self.ib.isConnected():
            self._ready.set()
            self.audit.record("ibkr.resynced", {"reason": reason})

    async def close(self) -> None:
        """Release one user; the last one disconnects and stops reconnecting."""
        self._users = max(0, self._users - 1)
        if self._users > 0:
            return
        self._closing = True
        self._ready.clear()
        for task in (self._reconnect_task, self._resync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._reconnect_task = self._resync_task = None
        if self.ib.isConnected():
            self.ib.disconnect()
            self.audit.record("ibkr.disconnected", {"reason": "close"})

    # -- failures -----------------------------------------------------------------------------------

    def _on_disconnected(self) -> None:
        self._ready.clear()
        if self._closing:
            return
        self.audit.record("ibkr.connection_lost", {"host": self.host, "port": self.port})
        if self._reconnect_task is None:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = self.backoff_initial
        try:
            while not self._closing:
                await asyncio.sleep(delay)
                if self._closing:
                    return
                self.reconnects += 1
                try:
                    await self._connect_once()
                    self.audit.record("ibkr.reconnected", {"attempts": self.reconnects})
                    return
                except BrokerError as exc:
                    log.warning("IBKR reconnect failed (%s); next try in %.1fs", exc, delay)
                    if self.ib.isConnected():
                        self.ib.disconnect()
                delay = min(delay * 2, self.backoff_max)
        finally:
            self._reconnect_task = None

    def _on_error(self, req_id: int, code: int, msg: str, contract: Any) -> None:
        if is_ibkr_simulator_notice(req_id, code, msg):
            self.simulator = True
        if code == CONNECTIVITY_LOST:
            self._ready.clear()
            self.audit.record("ibkr.connectivity_lost", {"code": code, "message": msg})
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            self.audit.record("ibkr.connectivity_restored", {"code": code, "message": msg})
            if self._resync_task is None or self._resync_task.done():
                reason = "data_lost" if code == RESTORED_DATA_LOST else "data_kept"
                self._resync_task = asyncio.get_running_loop().create_task(self._resync_safely(reason))

    async def _resync_safely(self, reason: str) -> None:
        try:
            await self._resync(reason)
        except Exception as exc:
            # Stay not-ready (fail closed); the disconnect handler or the next notice retries.
            log.warning("IBKR re-sync after %s failed: %r", reason, exc)
            self.audit.record("ibkr.resync_failed", {"reason": reason, "error": repr(exc)})
