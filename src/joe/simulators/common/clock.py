"""An injectable clock for the simulators, so prices and timestamps are a function of (seed, time).

`SimClock()` follows the wall clock (demos); `SimClock(start, rate=0)` is frozen until a test calls
`advance()`; any `rate` scales elapsed wall time. A simulator reads time only through its clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """`clock()` → aware UTC datetime: `start` + (wall seconds since creation × `rate`) + advances."""

    def __init__(self, start: datetime | None = None, *, rate: float = 1.0) -> None:
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self.rate = rate
        self._t0 = time.monotonic()
        self._advanced = timedelta(0)

    def __call__(self) -> datetime:
        elapsed = (time.monotonic() - self._t0) * self.rate if self.rate else 0.0
        return self.start + timedelta(seconds=elapsed) + self._advanced

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (a frozen clock moves only this way)."""
        if seconds < 0:
            raise ValueError(f"a clock never goes back (advance({seconds}))")
        self._advanced += timedelta(seconds=seconds)
        return self()

    @classmethod
    def frozen(cls, start: datetime | None = None) -> SimClock:
        """A clock that stands still at `start` (default: a fixed instant) until advanced."""
        return cls(start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC), rate=0.0)
