"""Time helpers: Joe keeps every timestamp timezone-aware in UTC."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def ensure_utc(ts: datetime) -> datetime:
    """Return `ts` as an aware UTC datetime (naive values are taken to be UTC)."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def clock_from(
    start: datetime, *, rate: float = 1.0, monotonic: Callable[[], float] = time.monotonic
) -> Callable[[], datetime]:
    """A clock that reads `start` (aware; naive is taken as UTC) now and then advances `rate` seconds
    per second of `monotonic` time: `joe daemon --clock-start` (a rehearsal of the schedule against a
    simulator) and tests. Raises `ValueError` for a negative rate."""
    if rate < 0:
        raise ValueError(f"a clock never runs backwards (rate {rate})")
    origin, t0 = ensure_utc(start), monotonic()

    def now() -> datetime:
        return origin + timedelta(seconds=(monotonic() - t0) * rate)

    return now
