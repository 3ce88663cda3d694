"""Client-side rate limiting that keeps Joe inside Capital.com's documented limits (spec §8).

* all requests: 10 per second per user (sliding window);
* opening positions / creating orders: one per 0.1 s;
* `POST /session`: one per second per API key;
* demo only: 1000 position/order creations per hour (waiting an hour is pointless, so this one
  raises `RateLimited` instead of sleeping).

Every limit is kept with a safety margin (`margin`, default 15 %) because the server measures
arrival times, and network jitter can squeeze two requests sent exactly 0.1 s apart. The clock and
sleep are injectable, and `Limits.scaled(k)` shrinks every time window k-fold, so tests can drive a
200-order burst against a simulator running the same scaled limits in about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from joe.brokers.capital.errors import RateLimited

Clock = Callable[[], float]
# Waits shorter than this are treated as done: float rounding can otherwise leave a residue of
# 1e-17 s that a clock cannot advance past (the margins above are many orders of magnitude larger).
_EPSILON_S = 1e-6
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """The documented limits; `scaled(k)` divides every window by k (for fast tests and simulators)."""

    requests_per_window: int = 10
    window_s: float = 1.0
    order_spacing_s: float = 0.1
    login_spacing_s: float = 1.0
    demo_orders_per_hour: int = 1000
    hour_s: float = 3600.0

    def scaled(self, k: float) -> Limits:
        return replace(
            self,
            window_s=self.window_s / k,
            order_spacing_s=self.order_spacing_s / k,
            login_spacing_s=self.login_spacing_s / k,
            hour_s=self.hour_s / k,
        )


@dataclass(slots=True)
class Stamp:
    """One request in a `SlidingWindow`: when it counts, and whether it is still on the wire."""

    t: float
    in_flight: bool = False


class SlidingWindow:
    """At most `count` events in any `window` seconds. Not locked: `RateLimiter` serialises callers.

    The server counts a request at some moment between our send and its answer, so each `Stamp`
    can be moved later once the request completes, and a request still in flight counts as if sent
    *now*: it cannot leave the window until it has been answered. Otherwise a request held up on the
    way (a slow network, a stalled event loop) could expire on our side before the server has even
    counted it, and the next ones would arrive bunched behind it.
    """

    def __init__(self, count: int, window: float) -> None:
        self.count, self.window = count, window
        self._cells: deque[Stamp] = deque()

    def wait_time(self, now: float) -> float:
        """Seconds until a slot frees at time `now` (0 when one is free)."""
        # A cell within the limiter's epsilon of expiry counts as expired: `acquire` proceeds on such
        # a tiny wait, and the cell must then leave the window, or the next caller would proceed too.
        horizon = self.window - _EPSILON_S
        if any(not c.in_flight and now - c.t >= horizon for c in self._cells):
            self._cells = deque(c for c in self._cells if c.in_flight or now - c.t < horizon)
        if len(self._cells) < self.count:
            return 0.0
        # In-flight requests free nothing before they are answered; sleeping `window` is a lower
        # bound on the wait, after which the caller looks again.
        return self.window - (now - min(now if c.in_flight else c.t for c in self._cells))

    def stamp(self, now: float, *, in_flight: bool = False) -> Stamp:
        cell = Stamp(now, in_flight)
        self._cells.append(cell)
        return cell


class Spacing:
    """Consecutive events at least `interval` seconds apart."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = float("-inf")

    def wait_time(self, now: float) -> float:
        return max(0.0, self._last + self.interval - now)

    def stamp(self, now: float) -> None:
        self._last = max(self._last, now)


async def _asyncio_sleep(delay: float) -> None:
    await asyncio.sleep(delay)


class RateLimiter:
    """All of Capital.com's limits for one login; `acquire(kind)` before sending a request."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        demo: bool = True,
        margin: float = 0.15,
        clock: Clock = time.monotonic,
        sleep: Sleep = _asyncio_sleep,
    ) -> None:
        self.limits = limits or Limits()
        self.demo = demo
        m = 1.0 + margin
        lim = self.limits
        # Margins: a longer window for the counter, a wider gap for the spacings.
        self.general = SlidingWindow(lim.requests_per_window, lim.window_s * m)
        self.orders = Spacing(lim.order_spacing_s * m)
        self.login = Spacing(lim.login_spacing_s * m)
        self.hourly = SlidingWindow(lim.demo_orders_per_hour, lim.hour_s)
        self.waited_s = 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = asyncio.Lock()
        self._order_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def slot(self, *, order: bool = False, login: bool = False) -> AsyncIterator[None]:
        """Hold a permit for one request: wait for the limits, send inside, re-stamp on completion.

        Order-opening requests are also sent one at a time and spaced from the *completion* of the
        previous one, so network jitter can never bunch two of them closer than the spacing.
        """
        if order:
            await self._order_lock.acquire()
        try:
            cell = await self._acquire(order, login, in_flight=True)
            try:
                yield
            finally:
                now = self._clock()
                cell.t, cell.in_flight = max(cell.t, now), False
                if order:
                    self.orders.stamp(now)
                if login:
                    self.login.stamp(now)
        finally:
            if order:
                self._order_lock.release()

    async def acquire(self, *, order: bool = False, login: bool = False) -> Stamp:
        """Wait until a request of this kind may be sent. Raises `RateLimited` for the demo hourly cap.

        One lock serialises all callers; every applicable limit is checked together and stamped at
        the same instant, right before the caller sends, so no limit is stamped earlier than the send.
        The request counts as sent and answered at that instant; `slot()` tracks the answer instead.
        """
        return await self._acquire(order, login, in_flight=False)

    async def _acquire(self, order: bool, login: bool, *, in_flight: bool) -> Stamp:
        async with self._lock:
            t0 = self._clock()
            if order and self.demo and self.hourly.wait_time(t0) > 0:
                raise RateLimited(
                    "demo limit of order creations per hour reached (client-side)",
                    code="error.too-many.requests",
                )
            gates: list[SlidingWindow | Spacing] = [self.general]
            if order:
                gates.append(self.orders)
            if login:
                gates.append(self.login)
            while True:
                now = self._clock()
                delay = max(g.wait_time(now) for g in gates)
                if delay <= _EPSILON_S:
                    break
                await self._sleep(delay)
            cell = self.general.stamp(now, in_flight=in_flight)
            for g in gates[1:]:
                g.stamp(now)
            if order and self.demo:
                self.hourly.stamp(now)
            self.waited_s += now - t0
            return cell


# One RateLimiter per login per event loop: Capital.com counts requests per user, not per
# connection, so a run's market-data client and its execution client must share one budget (two
# budgets of 10/s each sent 14 requests in one second and the second client's first reads got 429s).
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[object, ...], RateLimiter]] = (
    weakref.WeakKeyDictionary()
)


def shared_limiter(
    api_url: str, api_key: str, identifier: str, *, limits: Limits | None, demo: bool
) -> RateLimiter:
    """The `RateLimiter` every client of this login on the running event loop uses (created on
    first use). The key and identifier are kept only as a digest. Call from inside the loop."""
    loop = asyncio.get_running_loop()
    login = hashlib.sha256(f"{api_url}\0{api_key}\0{identifier}".encode()).hexdigest()
    per_loop = _SHARED.setdefault(loop, {})
    key = (login, demo, limits or Limits())
    limiter = per_loop.get(key)
    if limiter is None:
        limiter = per_loop[key] = RateLimiter(limits, demo=demo)
    return limiter
