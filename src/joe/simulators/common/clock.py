"""An injectable clock for the simulators, so prices and timestamps are a function of (seed, time).

`SimClock()` follows the wall clock (demos); `SimClock(start, rate=0)` is frozen until a test calls
`advance()`; any `rate` scales elapsed wall time. A simulator reads time only through its clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web


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


async def move_clock_response(
    request: web.Request, now: Callable[[], datetime], move: Callable[[datetime], datetime]
) -> web.Response:
    """The `POST /_sim/clock` handler both simulators share: `{"to": "<ISO instant>"}` |
    `{"advance_s": seconds}` (`clock_move`) moves the clock with `move` (the simulator's own, which
    also moves what hangs on its clock: bars, the tape); 400 `{"error": ...}` for a move back or a
    body that says neither; else 200 `{"now": <the new instant>}`."""
    from aiohttp import web

    try:
        body = await request.json()
        moved = move(clock_move(body, now()))
    except ValueError as exc:  # a JSON error is a ValueError too
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"now": moved.isoformat()})
