"""Property tests: whatever the request stream, the pacer never breaks an IBKR pacing rule."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.brokers.ibkr.pacing import MARGIN, HistoricalPacer, HistRequest

requests = st.builds(
    HistRequest,
    contract=st.sampled_from(["AAPL", "MSFT", "NVDA"]),
    exchange=st.just("SMART"),
    what_to_show=st.sampled_from(["TRADES", "BID_ASK", "MIDPOINT"]),
    bar_size=st.sampled_from(["5 secs", "30 secs", "1 min", "1 day"]),
    duration=st.sampled_from(["1 D", "2 D"]),
)
arrivals = st.lists(st.tuples(requests, st.floats(0, 3, allow_nan=False)), min_size=1, max_size=120)


def admitted_times(
    stream: list[tuple[HistRequest, float]], pacer: HistoricalPacer
) -> list[tuple[HistRequest, float]]:
    """Serve requests in order; each is sent at max(arrival, previous send) + the pacer's delay."""
    now, out = 0.0, []
    for req, gap in stream:
        now += gap
        now += pacer.delay(req, now)
        assert pacer.delay(req, now) == 0
        pacer.admit(req, now)
        out.append((req, now))
    return out


@settings(max_examples=150, deadline=None)
@given(arrivals)
def test_pacer_never_violates_the_rules(stream: list[tuple[HistRequest, float]]) -> None:
    sent = admitted_times(stream, HistoricalPacer())
    for i, (req, t) in enumerate(sent):
        earlier = sent[:i]
        # no identical request within 15 s
        assert all(t - s >= 15.0 for r, s in earlier if r == req)
        # at most 5 (weighted) requests per contract/exchange/tick type in any 2 s window
        same = sum(r.weight for r, s in earlier if r.series == req.series and t - s < 2.0) + req.weight
        assert same <= 5 or req.weight > 5
        # at most 60 (weighted) small-bar requests in any 10 minutes
        if req.small_bars:
            small = sum(r.weight for r, s in earlier if r.small_bars and t - s < 600.0) + req.weight
            assert small <= 60


@settings(max_examples=50, deadline=None)
@given(arrivals)
def test_pacer_waits_no_longer_than_needed(stream: list[tuple[HistRequest, float]]) -> None:
    pacer = HistoricalPacer()
    now = 0.0
    for req, gap in stream:
        now += gap
        d = pacer.delay(req, now)
        if d > 0:  # just before the computed time it would still be too early
            assert pacer.delay(req, now + d - MARGIN - 1e-6) > 0
        now += d
        pacer.admit(req, now)


def test_bid_ask_counts_twice() -> None:
    pacer = HistoricalPacer()
    r = HistRequest("AAPL", "SMART", "BID_ASK", "1 day", "1 D")
    for i in range(2):
        pacer.admit(HistRequest("AAPL", "SMART", "BID_ASK", "1 day", f"{i + 2} D"), 0.0)
    assert pacer.delay(r, 0.0) > 0  # 2 + 2 + 2 > 5
    assert HistRequest("AAPL", "SMART", "TRADES", "1 day", "1 D").weight == 1


def test_penalize_blocks_everything() -> None:
    clock = [100.0]
    pacer = HistoricalPacer(clock=lambda: clock[0])
    pacer.penalize(10)
    assert pacer.delay(HistRequest("X", "SMART", "TRADES", "1 day", "1 D"), 100.0) == pytest.approx(
        10, abs=0.01
    )


async def test_async_acquire_uses_clock_and_limits_concurrency() -> None:
    clock = [0.0]

    async def sleep(d: float) -> None:
        clock[0] += d
        await asyncio.sleep(0)

    pacer = HistoricalPacer(max_open=2, clock=lambda: clock[0], sleep=sleep)
    reqs = [HistRequest(s, "SMART", "TRADES", "1 day", "1 D") for s in ("A", "B", "C")]
    await pacer.acquire(reqs[0])
    await pacer.acquire(reqs[1])
    third = asyncio.ensure_future(pacer.acquire(reqs[2]))
    await asyncio.sleep(0.01)
    assert not third.done()  # 50-open rule (here 2)
    await pacer.release()
    await asyncio.wait_for(third, 1)
    await pacer.release()
    await pacer.release()
    await asyncio.wait_for(pacer.acquire(reqs[0]), 1)  # identical to the first: waits 15 s of (fake) time
    assert clock[0] == pytest.approx(15.0, abs=0.01) and pacer.waited == pytest.approx(15.0, abs=0.01)
