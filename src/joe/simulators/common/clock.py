"""An injectable clock for the simulators, so prices and timestamps are a function of (seed, time).

`SimClock()` follows the wall clock (demos); `SimClock(start, rate=0)` is frozen until a test calls
`advance()`; any `rate` scales elapsed wall time. A simulator reads time only through its clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any


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

    def move_to(self, when: datetime) -> datetime:
        """Move the clock forward to `when` (aware) and return it (a running clock goes on from
        there); ValueError if that is before now."""
        now = self()
        if when < now:
            raise ValueError(
                f"the simulator's clock never goes back: it is {now.isoformat()}, asked {when.isoformat()}"
            )
        self._advanced += when - now
        return when

    @classmethod
    def frozen(cls, start: datetime | None = None) -> SimClock:
        """A clock that stands still at `start` (default: a fixed instant) until advanced."""
        return cls(start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC), rate=0.0)


def clock_move(body: Mapping[str, Any], now: datetime) -> datetime:
    """The instant a control request `POST /_sim/clock` asks for, from the clock's `now`.

    `body` is `{"to": "<ISO 8601 instant with an offset>"}` or `{"advance_s": <seconds >= 0>}`
    (exactly one). Raises ValueError with a message naming the field for anything else, and for an
    instant before `now`: a simulator's clock never goes back (orders, fills and bars stay ordered).
    """
    if not isinstance(body, Mapping) or ("to" in body) == ("advance_s" in body):
        raise ValueError('give exactly one of "to" (an ISO 8601 UTC instant) or "advance_s" (seconds)')
    if "to" in body:
        try:
            when = datetime.fromisoformat(str(body["to"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f'"to" must be an ISO 8601 instant, not {body["to"]!r}') from None
        if when.tzinfo is None:
            raise ValueError(f'"to" needs a UTC offset (e.g. {body["to"]}Z), not a naive time')
        when = when.astimezone(UTC)
    else:
        try:
            seconds = float(body["advance_s"])
        except (TypeError, ValueError):
            raise ValueError(f'"advance_s" must be a number of seconds, not {body["advance_s"]!r}') from None
        if not (seconds >= 0 and math.isfinite(seconds)):  # also refuses NaN and infinity
            raise ValueError(f'"advance_s" must be >= 0 (the clock never goes back), not {seconds}')
        try:
            when = now + timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f'"advance_s" {seconds} is beyond any date') from None
    if when < now:
        raise ValueError(
            f"the simulator's clock never goes back: it is {now.isoformat()}, asked {when.isoformat()}"
        )
    return when
