"""`joe daemon`'s event loop (skeleton): streams prices, watches positions, runs the schedule, beats.

One asyncio process. Start-up order (crash-only: every start is a recovery):
1. `start()` if given (live: the `LiveDesk` reconciles with the broker through the `Reconciler`,
   then opens the `OrderManager`), else `reconcile()` — before any stream or scheduled run; a
   failure propagates and nothing starts;
2. the `PriceStream` (its sources connect and subscribe) feeding the `PositionMonitor`;
3. tasks: monitor timer (grace periods, time exits), scheduled runs (`Schedule`, exchange time; each
   followed by a reconciliation, which adopts what the run placed), periodic reconciliation every
   `reconcile_s`, the `periodic` hooks (live: the margin monitor), heartbeat (`daemon.heartbeat`).
On SIGTERM/SIGINT/SIGHUP (`request_stop`): new entries stop at once (`entries_allowed` is False), scheduled
runs stop, in-flight work gets `settle_s` to finish, `stop()` (live: the desk settles the exits and
modifies in flight and stops the `OrderManager`), the stream closes, a final heartbeat says
"stopped", and `run()` returns — the CLI exits 0. Open positions keep their broker-side stops:
nothing here cancels or flattens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.execution.position_monitor import PositionMonitor
from joe.execution.price_stream import PriceStream
from joe.runtime.schedule import Schedule, ScheduledRun

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "daemon.heartbeat"


class StateStore(Protocol):
    def get_state(self, key: str, default: Any = None) -> Any: ...

    def set_state(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class DaemonTimings:
    """Seconds: heartbeat period, monitor timer period, reconciliation period, bounded settle on stop."""

    heartbeat_s: float = 5.0
    tick_s: float = 1.0
    reconcile_s: float = 300.0
    settle_s: float = 10.0


class Daemon:
    """Wires the long-running tasks; see the module docstring for the order and the stop sequence."""

    def __init__(
        self,
        *,
        audit: AuditSink,
        state: StateStore,
        stream: PriceStream,
        monitor: PositionMonitor,
        mode: str,
        schedule: Schedule | None = None,
        on_run: Callable[[ScheduledRun], Coroutine[Any, Any, None]] | None = None,
        reconcile: Callable[[], Awaitable[None]] | None = None,
        timings: DaemonTimings | None = None,
        watch: Sequence[str] = (),
        clock: Callable[[], datetime] = utcnow,
        safety_gate: Callable[[], bool] | None = None,
        start: Callable[[], Awaitable[None]] | None = None,
        stop: Callable[[], Awaitable[None]] | None = None,
        periodic: Sequence[tuple[str, float, Callable[[], Awaitable[None]]]] = (),
        beat_extra: Callable[[], dict[str, Any]] | None = None,
        schedule_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.audit = audit
        self.state = state
        self.stream = stream
        self.monitor = monitor
        self.mode = mode
        self.schedule = schedule
        self.on_run = on_run
        self.reconcile = reconcile
        self.t = timings or DaemonTimings()
        self.clock = clock
        # The schedule's time (default `clock`); `joe daemon --clock-start` rehearses it elsewhere.
        self.schedule_clock = schedule_clock or clock
        self.watch = list(watch)
        # The safety layer's answer (trading state + kill file), re-read on every heartbeat.
        self.safety_gate = safety_gate
        self.start_hook = start
        self.stop_hook = stop
        self.periodic = list(periodic)
        self.beat_extra = beat_extra  # live: the broker connection and the last reconciliation
        self.status = "starting"
        self.runs_done = 0
        self._stop = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[Any]] = set()

    # -- control ------------------------------------------------------------------------------------

    def request_stop(self, reason: str = "signal") -> None:
        """Stop taking entries now and begin the orderly stop (idempotent; safe from a signal handler)."""
        if self._stopping:
            return
        self._stopping = True
        self.status = "stopping"
        self._stop.set()  # first: a failing audit write below must not leave a daemon that never stops
        try:
            self.audit.record("daemon.stopping", {"reason": reason})
        except Exception as exc:  # a full disk, the audit folder gone: the stop goes on regardless
            log.error("daemon stopping (%s): audit write failed: %s: %s", reason, type(exc).__name__, exc)
        log.info("daemon stopping (%s): no new entries", reason)

    @property
    def stopping(self) -> bool:
        """True from `request_stop` on: no scheduled run starts, a running one is told to stop entries."""
        return self._stopping

    def entries_allowed(self, symbol: str) -> bool:
        """New entries on `symbol`: not while stopping, not while the trading state or the kill file
        forbids them, only on a fresh stream (watched, not stale) and while its market is open."""
        if self._stopping or (self.safety_gate is not None and not self.safety_gate()):
            return False
        return self.stream.entries_allowed(symbol) and self.stream.is_open(symbol, self.stream.clock_ns())

    def _entries_now(self) -> bool:
        """For the heartbeat: may new entries be taken at all (not stopping, the safety gate open)."""
        try:
            return not self._stopping and (self.safety_gate is None or self.safety_gate())
        except Exception:
            return False

    def install_signal_handlers(self) -> None:
        """SIGTERM, SIGINT (Ctrl-C) and SIGHUP (its terminal or ssh session closed; the default action
        would kill the daemon mid-work, heartbeat left "running") each begin the orderly stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)

    # -- the loop -----------------------------------------------------------------------------------

    def missed_runs(self) -> list[ScheduledRun]:
        """Scheduled runs that fell while no daemon ran: after the last heartbeat in the store (the
        previous daemon's, read before this one writes its first) and before now (schedule clock). They
        are not caught up — a run late by hours would trade on a stale decision (entries at the wrong
        session) — but audited ``daemon.runs_missed`` and logged at start; the next scheduled run (or
        `joe run --once` by hand) trades on the day's data."""
        if self.schedule is None:
            return []
        try:
            beat = self.state.get_state(HEARTBEAT_KEY)
            last = _beat_time(beat) if isinstance(beat, dict) else None
        except Exception:
            return []
        now = self.schedule_clock()
        if last is None or last >= now:
            return []
        out: list[ScheduledRun] = []
        t = last
        while len(out) < 50 and (nxt := self.schedule.next_run(t)) is not None and nxt.at <= now:
            out.append(nxt)
            t = nxt.at
        return out

    async def run(self) -> None:
        missed = self.missed_runs()
        if missed:
            self.audit.record("daemon.runs_missed", {
                "runs": [{"name": r.name, "at": r.at.isoformat()} for r in missed],
                "caught_up": False,
            })  # fmt: skip
            log.warning("daemon: %d scheduled run(s) missed while no daemon ran (not caught up): %s",
                        len(missed), ", ".join(f"{r.name}@{r.at.isoformat()}" for r in missed))  # fmt: skip
        self.audit.record("daemon.started", {"pid": os.getpid(), "mode": self.mode})
        self.status = "reconciling"
        if self.start_hook is not None:
            await self.start_hook()  # before anything else: a failure propagates and nothing starts
        elif self.reconcile is not None:
            await self.reconcile()
        started = self.start_hook is not None
        if self.monitor not in self.stream.consumers:
            self.stream.consumers.append(self.monitor)
        await self.stream.start()
        if self.watch:
            await self.stream.watch(self.watch)
        self.status = "running"
        self._beat()
        tasks = [
            asyncio.create_task(self._every(self.t.heartbeat_s, self._beat), name="daemon-heartbeat"),
            asyncio.create_task(self._every(self.t.tick_s, self.monitor.tick), name="daemon-monitor-tick"),
        ]
        if self.schedule is not None and self.on_run is not None:
            tasks.append(asyncio.create_task(self._scheduler(), name="daemon-schedule"))
        if self.reconcile is not None:
            tasks.append(asyncio.create_task(self._reconcile_loop(), name="daemon-reconcile"))
        for name, period, fn in self.periodic:
            tasks.append(asyncio.create_task(self._every_async(name, period, fn), name=f"daemon-{name}"))
        try:
            await self._stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await self._settle()
            if started and self.stop_hook is not None:
                try:
                    await asyncio.wait_for(self.stop_hook(), max(self.t.settle_s, 0.1))
                except Exception as exc:  # bounded: the broker-side stops protect what is open
                    self.audit.record("daemon.settle_failed", {"error": f"{type(exc).__name__}: {exc}"})
            await self.stream.stop()
            self.status = "stopped"
            self._beat()
            self.audit.record("daemon.stopped", {"runs": self.runs_done, "positions": len(self.monitor)})

    async def _settle(self) -> None:
        if not self._inflight:
            return
        _done, pending = await asyncio.wait(self._inflight, timeout=self.t.settle_s)
        if pending:
            self.audit.record("daemon.settle_timeout", {"pending": len(pending)})
            for t in pending:
                t.cancel()

    async def _every(self, period: float, fn: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                fn()
            except Exception:
                log.exception("daemon periodic task %r failed", fn)

    async def _every_async(self, name: str, period: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await fn()
            except Exception as exc:
                log.exception("daemon task %s failed", name)
                error = f"{type(exc).__name__}: {exc}"
                self.audit.record("daemon.task_failed", {"task": name, "error": error})
            await asyncio.sleep(period)

    async def _scheduler(self) -> None:
        assert self.schedule is not None and self.on_run is not None
        while not self._stopping:
            nxt = self.schedule.next_run(self.schedule_clock())
            if nxt is None:
                return
            delay = (nxt.at - self.schedule_clock()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._stopping:
                return
            # What is stale now, before a hand-over pauses the quotes: the run takes no entry there.
            # So is an instrument whose broker's stream is down (failover: quotes from the other broker)
            # or back but not reconciled yet: no entry goes to a broker that is not healthy.
            blocked = self.stream.stale | set(self.stream.no_entry)
            nxt = replace(nxt, no_entries=tuple(sorted(blocked)))
            self.audit.record("daemon.run", {"name": nxt.name, "at": nxt.at.isoformat(),
                                             "no_entries": list(nxt.no_entries)})  # fmt: skip
            task: asyncio.Task[None] = asyncio.create_task(self.on_run(nxt), name=f"run-{nxt.name}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            try:
                await asyncio.shield(task)
                self.runs_done += 1
            except Exception as exc:
                self.audit.record(
                    "daemon.run_failed", {"name": nxt.name, "error": f"{type(exc).__name__}: {exc}"}
                )
            if self.reconcile is not None and not self._stopping:
                await self._reconcile_once()  # adopt what the run placed (its orders are in the store)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self.t.reconcile_s)
            await self._reconcile_once()

    async def _reconcile_once(self) -> None:
        assert self.reconcile is not None
        try:
            await self.reconcile()
        except Exception as exc:
            log.error("reconciliation failed: %s: %s", type(exc).__name__, exc)
            self.audit.record("daemon.reconcile_failed", {"error": f"{type(exc).__name__}: {exc}"})

    def _beat(self) -> None:
        now = self.clock()
        beat = {
            "pid": os.getpid(),
            "ts": now.isoformat(),
            "every_s": self.t.heartbeat_s,  # the stale cut-off follows it (heartbeat_health)
            "status": self.status,
            "mode": self.mode,
            "quotes": self.stream.quotes,
            "watched": len(self.stream.watched),
            "stale": sorted(self.stream.stale),
            "sources": self.stream.source_stats(),  # per broker: quotes, newest quote's age, stale
            # broker failover: where each watched instrument's quotes come from now, and which take
            # no entry and why (`joe status`)
            "price_sources": self.stream.price_sources(),
            "no_entry": dict(self.stream.no_entry),
            "positions": len(self.monitor),
            "runs": self.runs_done,
            "entries": self._entries_now(),
        }
        if self.beat_extra is not None:
            try:
                beat |= self.beat_extra()
            except Exception:
                log.exception("heartbeat extra failed")
        try:
            self.state.set_state(HEARTBEAT_KEY, beat)
        except Exception:
            log.exception("heartbeat write failed")


BEAT_MISSES = 3  # a heartbeat is stale after this many intervals without one (and never under 30 s)


def _beat_time(beat: dict[str, Any]) -> datetime | None:
    """The heartbeat's aware UTC time, or None when its ``ts`` is missing or not an ISO 8601 instant
    with a timezone (a naive time, a number, free text)."""
    raw = beat.get("ts")
    if not isinstance(raw, str):
        return None
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return ts.astimezone(UTC) if ts.tzinfo is not None else None


def alive_only_with_a_holder(health: dict[str, Any], holder: int | None) -> dict[str, Any]:
    """`heartbeat_health`'s answer given the data folder lock's `holder` (`joe.safety.lock.holder_pid`):
    a heartbeat younger than its stale cut-off while no process holds the folder means the daemon died a
    moment ago (SIGKILL, the OOM killer, a power cut) — not running; marked ``gone`` (and stale)."""
    if health.get("running") and holder is None:
        return {**health, "running": False, "stale": True, "gone": True}
    return health


def heartbeat_health(
    state: StateStore, now: datetime | None = None, max_age_s: float | None = None
) -> dict[str, Any]:
    """The daemon's last heartbeat and whether it is stale (for `joe status`).

    Returns {"running": bool, "stale": bool, "age_s": float | None, "heartbeat": dict | None}, plus
    "problem": str when the stored heartbeat cannot be read (then stale, never an exception: the
    caller still shows the trading state). A heartbeat older than the cut-off while its status is not
    "stopped" means the daemon died or hangs. Cut-off: `max_age_s` (default 30 s), but at least
    `BEAT_MISSES` × the interval the daemon wrote in its heartbeat (``every_s``; ``daemon.heartbeat_s``
    or ``--heartbeat``), so a daemon beating every 60 s is not stale between beats.
    """
    try:
        beat = state.get_state(HEARTBEAT_KEY)
    except Exception as exc:
        return {"running": False, "stale": True, "age_s": None, "heartbeat": None,
                "problem": f"heartbeat unreadable: {type(exc).__name__}"}  # fmt: skip
    if beat is None:
        return {"running": False, "stale": False, "age_s": None, "heartbeat": None}
    if not isinstance(beat, dict):
        return {"running": False, "stale": True, "age_s": None, "heartbeat": None,
                "problem": f"heartbeat is a {type(beat).__name__}, not a record"}  # fmt: skip
    now = now or datetime.now(UTC)
    ts = _beat_time(beat)
    if ts is None:
        why = f"heartbeat ts {str(beat.get('ts'))[:40]!r} is not an ISO 8601 UTC instant"
        return {"running": False, "stale": True, "age_s": None, "heartbeat": beat, "problem": why}
    every = beat.get("every_s")
    interval = 0.0
    if isinstance(every, int | float) and not isinstance(every, bool) and every > 0:
        interval = float(every)
    cutoff = max(30.0 if max_age_s is None else max_age_s, BEAT_MISSES * interval)
    age = (now - ts).total_seconds()
    stopped = beat.get("status") == "stopped"
    return {"running": not stopped and age <= cutoff, "stale": not stopped and age > cutoff,
            "age_s": age, "heartbeat": beat}  # fmt: skip
