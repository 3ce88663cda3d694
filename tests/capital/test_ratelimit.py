"""The client-side limiter, driven by a fake clock: spacing, window, login and demo hourly cap."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.brokers.capital.errors import RateLimited
from joe.brokers.capital.ratelimit import Limits, RateLimiter
from market_clock import sim_clock


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, d: float) -> None:
        self.t += d
        await asyncio.sleep(0)


def _limiter(**kw: object) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(Limits(), clock=clock, sleep=clock.sleep, **kw), clock  # type: ignore[arg-type]


async def test_order_spacing_with_margin() -> None:
    lim, clock = _limiter(margin=0.1)
    stamps = []
    for _ in range(200):
        await lim.acquire(order=True)
        stamps.append(clock.t)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.1 * 1.1 - 1e-9
    # ...and no slower than the limits require (general window would allow 10/1.1 s)
    assert stamps[-1] - stamps[0] <= 199 * 0.11 + 1e-6


async def test_general_window_never_exceeds_ten_per_second() -> None:
    lim, clock = _limiter(margin=0.0)
    stamps = []
    for _ in range(55):
        await lim.acquire()
        stamps.append(clock.t)
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps[i:] if u - t < 1.0) <= 10


async def test_login_spacing() -> None:
    lim, clock = _limiter(margin=0.0)
    stamps = []
    for _ in range(5):
        await lim.acquire(login=True)
        stamps.append(clock.t)
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(stamps))


async def test_demo_hourly_cap_raises_instead_of_sleeping_an_hour() -> None:
    clock = FakeClock()
    lim = RateLimiter(Limits(demo_orders_per_hour=3), clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await lim.acquire(order=True)
    with pytest.raises(RateLimited):
        await lim.acquire(order=True)
    await lim.acquire()  # reads are unaffected
    live = RateLimiter(Limits(demo_orders_per_hour=3), demo=False, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await live.acquire(order=True)


async def test_concurrent_callers_are_serialised() -> None:
    lim, clock = _limiter(margin=0.0)
    stamps: list[float] = []

    async def one() -> None:
        await lim.acquire(order=True)
        stamps.append(clock.t)

    await asyncio.gather(*(one() for _ in range(30)))
    stamps.sort()
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(stamps))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["read", "order", "login"]), min_size=1, max_size=60),
    st.floats(min_value=1, max_value=50),
)
def test_property_mixed_traffic_respects_scaled_limits(kinds: list[str], k: float) -> None:
    async def run() -> None:
        clock = FakeClock()
        limits = Limits().scaled(k)
        lim = RateLimiter(limits, margin=0.0, clock=clock, sleep=clock.sleep)
        sent: list[tuple[str, float]] = []
        for kind in kinds:
            await lim.acquire(order=kind == "order", login=kind == "login")
            sent.append((kind, clock.t))
        eps = 2e-6  # the limiter treats waits under 1 µs as done
        for kind, gap in (("order", limits.order_spacing_s), ("login", limits.login_spacing_s)):
            ts = [t for k2, t in sent if k2 == kind]
            assert all(b - a >= gap - eps for a, b in itertools.pairwise(ts))
        all_ts = [t for _, t in sent]
        for i, t in enumerate(all_ts):
            assert sum(1 for u in all_ts[i:] if u - t < limits.window_s - eps) <= limits.requests_per_window

    asyncio.run(run())


async def test_a_request_still_in_flight_never_leaves_the_window() -> None:
    """Ten requests sent and not yet answered hold the window however long they take: the server may
    count them only when they finally arrive, so the eleventh waits for an answer plus a full window."""
    lim, clock = _limiter(margin=0.0)
    answered = asyncio.Event()
    entered = 0

    async def held() -> None:
        nonlocal entered
        async with lim.slot():
            entered += 1
            await answered.wait()

    holders = [asyncio.create_task(held()) for _ in range(10)]
    while entered < 10:
        await asyncio.sleep(0)
    eleventh = asyncio.create_task(lim.acquire())
    for _ in range(50):  # the fake clock runs on by a window per turn while nothing is answered
        await asyncio.sleep(0)
    assert not eleventh.done()
    assert clock.t > 1000.0 + 5 * lim.general.window  # far past the window measured from the sends
    answered_at = clock.t
    answered.set()
    await asyncio.gather(*holders)
    await eleventh
    assert clock.t >= answered_at + lim.general.window - 1e-6


async def test_two_clients_of_one_login_share_the_limit() -> None:
    """A run opens Capital.com twice (market data, then the portfolio's executor): the broker counts
    requests per user, so both clients draw on one budget. With one limiter each, the second client's
    first reads arrived within the first's second and were refused (429s that tripped the breaker)."""
    from joe.brokers.capital import open_capital
    from joe.core.events import NullAudit
    from joe.simulators.capital import CapitalSimulator
    from joe.simulators.capital.gate import SimLimits

    scale = 4.0
    sim = CapitalSimulator(seed=3, limits=SimLimits().scaled(scale), clock=sim_clock())
    await sim.start()
    opened = []
    try:
        for _ in range(2):
            client, _md, _xc = await open_capital(
                sim.login.api_key, sim.login.identifier, sim.login.password, demo=True, mode="paper",
                audit=NullAudit(), api_url=sim.url, limits=Limits().scaled(scale),
            )  # fmt: skip
            opened.append(client)
        a, b = opened
        assert a.limiter is b.limiter
        for _ in range(12):  # 48 reads, alternating clients, as fast as the limits allow
            await asyncio.gather(*(c.request("GET", "/accounts") for c in (a, b, a, b)))
        statuses = [r.status for r in sim.requests]
        assert statuses.count(429) == 0 and statuses.count(200) >= 50  # 2 logins + 48 reads + ...
    finally:
        for c in opened:
            await c.close()
        await sim.stop()
