"""`CircuitBreaker`: per broker, trouble within a window halts new entries.

Counted per broker: consecutive rejects (a fill or an accepted order resets the run), and within
``safety.breaker.window_s``: timeouts, UNKNOWN order outcomes, disconnects, 5xx answers, 429 answers.
Order outcomes arrive from the `OrderManager` (`joe.safety.breaker_feed`), wire trouble from the
brokers' audit records (`joe.safety.broker_health`). The first
limit reached trips the breaker: the trading state goes to HALTED (``by breaker:<broker>``, the
count and the limit in the reason), the breaker's state is kept in the store (``kv_state`` key
``safety.breakers``, shown by ``joe status``), audited (``safety.breaker_tripped``) and alerted.
Only ``joe resume`` (a human) re-arms it. Broker exceptions map to events with `event_for`.

The counts themselves live in the store too (``kv_state`` key ``safety.breaker_counts``: per broker,
the run of consecutive rejects and the UTC times of each kind of event still inside the window),
read and written on every event. A breaker is rebuilt whenever the daemon rebuilds its desk (after a
lost connection) and whenever a process restarts; a storm that spans a rebuild, a reconnect or a
restart still adds up to one count and trips. ``joe resume`` clears them with the trip.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from joe.brokers.base import BrokerUnavailable, OrderOutcomeUnknown, OrderRejected
from joe.config.schema import BreakerConfig
from joe.core.clock import utcnow
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState

BREAKERS_KEY = "safety.breakers"
COUNTS_KEY = "safety.breaker_counts"


class BreakerEvent(StrEnum):
    OK = "ok"  # an accepted order or a fill: ends a run of rejects
    REJECT = "reject"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"
    DISCONNECT = "disconnect"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"  # HTTP 429: the broker throttles this account


def event_for(exc: BaseException) -> BreakerEvent | None:
    """The breaker event a broker exception counts as (None: not the broker's trouble)."""
    if isinstance(exc, OrderOutcomeUnknown):
        return BreakerEvent.UNKNOWN
    if isinstance(exc, OrderRejected):
        return BreakerEvent.REJECT
    if isinstance(exc, TimeoutError):
        return BreakerEvent.TIMEOUT
    if isinstance(exc, BrokerUnavailable | ConnectionError):
        return BreakerEvent.DISCONNECT
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if status == 429:
        return BreakerEvent.RATE_LIMITED
    if isinstance(status, int) and 500 <= status < 600:
        return BreakerEvent.SERVER_ERROR
    return None


class CircuitBreaker:
    """One broker's breaker (see the module docstring)."""

    def __init__(
        self,
        broker: str,
        config: BreakerConfig,
        ctx: SafetyContext,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.broker = broker
        self.config = config
        self.ctx = ctx
        self._clock = clock

    @property
    def tripped(self) -> bool:
        return bool(
            (self.ctx.store.get_state(BREAKERS_KEY) or {}).get(self.broker, {}).get("state") == "tripped"
        )

    # -- the persisted counts ----------------------------------------------------------------------
    def _counts(self) -> dict[str, Any]:
        """This broker's counts as stored: ``{"consecutive_rejects": n, "seen": {event: [iso, ...]}}``."""
        got = (self.ctx.store.get_state(COUNTS_KEY) or {}).get(self.broker)
        return got if isinstance(got, dict) else {"consecutive_rejects": 0, "seen": {}}

    def _save(self, counts: dict[str, Any]) -> None:
        all_ = dict(self.ctx.store.get_state(COUNTS_KEY) or {})
        all_[self.broker] = counts
        self.ctx.store.set_state(COUNTS_KEY, all_)

    @property
    def consecutive_rejects(self) -> int:
        """Rejects in a row so far (persisted: survives a rebuilt desk and a restart)."""
        return int(self._counts().get("consecutive_rejects", 0))

    def now(self) -> datetime:
        """The breaker's clock (UTC)."""
        return self._clock()

    def last_seen(self, event: BreakerEvent) -> datetime | None:
        """When `event` was last counted (within the window), from the store; None if not."""
        times = self._counts().get("seen", {}).get(event.value) or []
        return datetime.fromisoformat(times[-1]) if times else None

    def record(self, event: BreakerEvent, detail: str = "") -> bool:
        """Count one event; returns True when this event tripped the breaker."""
        now = self._clock()
        if event is BreakerEvent.OK and not self.consecutive_rejects:
            return False  # a fill with no run of rejects to end: nothing to write
        with self.ctx.store.atomic():
            counts = self._counts()
            if event is BreakerEvent.OK:
                self._save({**counts, "consecutive_rejects": 0})
                return False
            rejects = int(counts.get("consecutive_rejects", 0)) + (event is BreakerEvent.REJECT)
            window = timedelta(seconds=self.config.window_s)
            seen = dict(counts.get("seen", {}))
            kept = [t for t in seen.get(event.value, []) if now - datetime.fromisoformat(t) <= window]
            seen[event.value] = [*kept, now.isoformat()]
            self._save({"consecutive_rejects": rejects, "seen": seen})
        why = self._limit_reached(event, len(seen[event.value]), rejects)
        if why is None or self.tripped:
            return False
        self._trip(why, event, detail)
        return True

    def observe(self, exc: BaseException) -> bool:
        """Count a broker exception (see `event_for`); True when it tripped the breaker."""
        event = event_for(exc)
        return False if event is None else self.record(event, f"{type(exc).__name__}: {exc}")

    def _limit_reached(self, event: BreakerEvent, count: int, rejects: int) -> str | None:
        c = self.config
        w = f"within {c.window_s:g}s"
        if event is BreakerEvent.REJECT and rejects >= c.max_consecutive_rejects:
            return f"{rejects} consecutive rejects (limit {c.max_consecutive_rejects})"
        limits: dict[BreakerEvent, int] = {
            BreakerEvent.TIMEOUT: c.max_timeouts,
            BreakerEvent.UNKNOWN: c.max_unknown,
            BreakerEvent.DISCONNECT: c.max_disconnects,
            BreakerEvent.SERVER_ERROR: c.max_server_errors,
            BreakerEvent.RATE_LIMITED: c.max_rate_limited,
        }
        limit = limits.get(event)
        if limit is not None and count >= limit:
            return f"{count} {event.value} event(s) {w} (limit {limit})"
        return None

    def _trip(self, why: str, event: BreakerEvent, detail: str) -> None:
        at = self._clock().isoformat()
        entry: dict[str, Any] = {
            "state": "tripped",
            "reason": why,
            "event": event.value,
            "detail": detail,
            "at": at,
        }
        with self.ctx.store.atomic():
            all_ = dict(self.ctx.store.get_state(BREAKERS_KEY) or {})
            all_[self.broker] = entry
            self.ctx.store.set_state(BREAKERS_KEY, all_)
            self.ctx.audit.record("safety.breaker_tripped", {"broker": self.broker, **entry})
        self.ctx.states.escalate(TradingState.HALTED, by=f"breaker:{self.broker}", reason=why)
        self.ctx.alerts.breaker_tripped(self.broker, f"{why}; last: {detail}")


def reset_breakers(ctx: SafetyContext, by: str) -> list[str]:
    """Re-arm every tripped breaker and clear its counts (called by `control.resume`: a human looked
    at the storm); returns the brokers re-armed."""
    all_ = dict(ctx.store.get_state(BREAKERS_KEY) or {})
    tripped = [b for b, v in all_.items() if v.get("state") == "tripped"]
    if tripped:
        counts = dict(ctx.store.get_state(COUNTS_KEY) or {})
        for b in tripped:
            all_[b] = {**all_[b], "state": "armed", "reset_by": by}
            counts.pop(b, None)
        with ctx.store.atomic():
            ctx.store.set_state(BREAKERS_KEY, all_)
            ctx.store.set_state(COUNTS_KEY, counts)
            ctx.audit.record("safety.breakers_reset", {"brokers": tripped, "by": by})
    return tripped
