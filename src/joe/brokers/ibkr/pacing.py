"""Request pacing for IBKR's historical-data rules.

(The 50 messages/s socket limit is enforced for every message, orders included, by ib_async's own
throttle, which `IBKRConnection` configures explicitly to 45 messages per second.)

IBKR historical-data limitations (violations come back as error 162):

- at most 50 simultaneous open historical requests;
- no identical request within 15 seconds;
- no 6 or more requests for the same contract, exchange and tick type within 2 seconds;
- for bars of 30 seconds or less, no more than 60 requests in any 10-minute window;
- BID_ASK requests count twice.

`HistoricalPacer` keeps its decisions pure (`delay(request, now)`) so the rules are property-tested
with a fake clock; `acquire`/`release` wrap them for asyncio.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

SMALL_BAR_SECONDS = 30
# Waits are padded by a millisecond so float rounding (and clock jitter) never lands a request exactly
# on a window's edge.
MARGIN = 1e-3
_BAR_SECONDS = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30, "1 min": 60, "2 mins": 120,
    "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900, "20 mins": 1200, "30 mins": 1800,
    "1 hour": 3600, "2 hours": 7200, "3 hours": 10800, "4 hours": 14400, "8 hours": 28800,
    "1 day": 86400, "1 week": 604800, "1 month": 2592000,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class HistRequest:
    """The identity of one historical-data request, as IBKR's pacing rules see it."""

    contract: str  # symbol or conId
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    end: str = ""

    @property
    def weight(self) -> int:
        return 2 if self.what_to_show.upper() == "BID_ASK" else 1

    @property
    def small_bars(self) -> bool:
        return _BAR_SECONDS.get(self.bar_size, 86400) <= SMALL_BAR_SECONDS

    @property
    def series(self) -> tuple[str, str, str]:
        return (self.contract, self.exchange, self.what_to_show.upper())


class HistoricalPacer:
    """Delays historical requests so that none of IBKR's pacing rules is ever broken."""

    def __init__(
        self,
        *,
        max_open: int = 50,
        identical_gap: float = 15.0,
        same_series_max: int = 5,
        same_series_window: float = 2.0,
        small_bar_max: int = 60,
        small_bar_window: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.max_open = max_open
        self.identical_gap = identical_gap
        self.same_series_max = same_series_max
        self.same_series_window = same_series_window
        self.small_bar_max = small_bar_max
        self.small_bar_window = small_bar_window
        self._clock = clock
        self._sleep = sleep
        self._last_identical: dict[HistRequest, float] = {}
        self._series: dict[tuple[str, str, str], deque[float]] = {}
        self._small: deque[float] = deque()
        self._blocked_until = 0.0
        self._open = 0
        self._cond: asyncio.Condition | None = None
        self.waited = 0.0

    def delay(self, req: HistRequest, now: float) -> float:
        """Seconds to wait before `req` may be sent at `now` (0 = now is fine)."""
        waits = [self._blocked_until - now]
        last = self._last_identical.get(req)
        if last is not None:
            waits.append(last + self.identical_gap - now)
        series = self._series.get(req.series)
        if series is not None:
            recent = [t for t in series if now - t < self.same_series_window]
            excess = len(recent) + req.weight - self.same_series_max
            if excess > 0:
                waits.append(recent[excess - 1] + self.same_series_window - now)
        if req.small_bars:
            recent = [t for t in self._small if now - t < self.small_bar_window]
            excess = len(recent) + req.weight - self.small_bar_max
            if excess > 0:
                waits.append(recent[excess - 1] + self.small_bar_window - now)
        d = max(waits)
        return d + MARGIN if d > 0 else 0.0

    def admit(self, req: HistRequest, now: float) -> None:
        """Record that `req` was sent at `now`."""
        self._last_identical[req] = now
        series = self._series.setdefault(req.series, deque())
        series.extend([now] * req.weight)
        while series and now - series[0] >= self.same_series_window:
            series.popleft()
        if req.small_bars:
            self._small.extend([now] * req.weight)
            while self._small and now - self._small[0] >= self.small_bar_window:
                self._small.popleft()

    def penalize(self, seconds: float) -> None:
        """After a pacing violation (error 162) hold every request for `seconds`."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self, req: HistRequest) -> None:
        """Wait until `req` may be sent, then count it as open (pair with `release`)."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self._open < self.max_open)
            self._open += 1
        try:
            while True:
                now = self._clock()
                d = self.delay(req, now)
                if d <= 0:
                    self.admit(req, now)
                    return
                self.waited += d
                await self._sleep(d)
        except BaseException:
            await self.release()
            raise

    async def release(self) -> None:
        cond = self._condition()
        async with cond:
            self._open -= 1
            cond.notify_all()
