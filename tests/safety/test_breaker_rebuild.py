"""A storm that spans a rebuilt desk or a restart still trips the breaker (#11 review, point 3).

Before: the breaker's counts lived in the `CircuitBreaker` object. The daemon builds a new one with
every desk (`daemon_live.build_desk`: after each scheduled run's hand-over, after a lost connection)
and every process start, so a broker failing a little before and a little after each rebuild never
reached a limit. Now the counts are kept in the store (``safety.breaker_counts``) and read on every
event; ``joe resume`` clears them with the trip.

The end-to-end tests build the desk twice on one data folder as the daemon does (a new
`BrokerSafety` and a new connection each time) at a simulator with a fault plan.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import BrokerError
from joe.config.schema import BreakerConfig, SafetyConfig
from joe.core.models import Side
from joe.core.order import OrderState
from joe.safety.broker_health import BrokerHealth
from joe.safety.circuit_breaker import BREAKERS_KEY, COUNTS_KEY, BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext, resume
from joe.safety.trading_state import TradingState
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.ibkr import IBKRSimulator
from market_clock import sim_clock

from .conftest import restart
from .simdesk import Desk, bracket, live_desk, until

D = Decimal


async def _rejected_entries(desk: Desk, n: int, tag: str, ibkr_symbol: str = "MSFT") -> None:
    """`n` brackets refused by the broker (its fault plan rejects every new order)."""
    if desk.kind == "ibkr":
        desk.sim.faults.arm("reject_next", -1)
        sym, qty = ibkr_symbol, "5"
    else:
        desk.sim.faults.arm("http_5xx", -1, status=400, code="error.invalid.size.minvalue",
                            path="/positions", method="POST")  # fmt: skip
        sym, qty = "EURUSD", "1000"
    mid = desk.mid(sym)
    for i in range(n):
        legs = bracket(f"{tag}-{i}", sym, Side.BUY, qty, (mid * D("0.95")).quantize(D("0.0001")),
                       (mid * D("1.05")).quantize(D("0.0001")))  # fmt: skip
        await desk.om.submit(legs)
        entry = legs[0].client_order_id
        await until(lambda e=entry: desk.state(e) is OrderState.REJECTED, "the reject")  # type: ignore[misc]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ["ibkr", "capital"])
async def test_rejects_before_and_after_a_rebuilt_desk_add_up(kind: str, ctx: SafetyContext) -> None:
    # max_unknown out of the way: the reconnected IBKR desk cannot find the rejected entries'
    # children any more (TWS forgot them) and counts them UNKNOWN, which is not what is tested here.
    config = SafetyConfig(breaker=BreakerConfig(max_consecutive_rejects=3, max_unknown=100))
    sim = await _simulator(kind)
    try:
        async with live_desk(kind, ctx, config, sim=sim) as desk:  # the daemon's desk
            await _rejected_entries(desk, 2, "before")
            assert not desk.safety.breaker.tripped
            assert ctx.states.current().state is TradingState.ACTIVE
        # The desk is torn down (a hand-over, a lost connection) and built again: a new BrokerSafety,
        # a new breaker object, a new connection to the same broker.
        await _after_rebuild(kind, ctx, config, sim)
    finally:
        await sim.stop()


async def _simulator(kind: str) -> Any:
    if kind == "ibkr":
        sim = IBKRSimulator(server_version=178, seed=7, clock=sim_clock())
        await sim.start()
        sim.set_price("AAPL", 100)
        sim.set_price("MSFT", 200)
        return sim
    sim = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02, clock=sim_clock())
    await sim.start()
    return sim


async def _after_rebuild(kind: str, ctx: SafetyContext, config: SafetyConfig, sim: Any) -> None:
    async with live_desk(kind, ctx, config, sim=sim) as desk:
        assert desk.safety.breaker.consecutive_rejects == 2  # carried, not zero
        # (another IBKR instrument: entries on the first wait for those UNKNOWN children)
        await _rejected_entries(desk, 1, "after", ibkr_symbol="AAPL")
        await until(lambda: desk.safety.breaker.tripped, "the breaker to trip")
        assert "3 consecutive rejects" in ctx.store.get_state(BREAKERS_KEY)[kind]["reason"]
        rec = ctx.states.current()
        assert rec.state is TradingState.HALTED and rec.by == f"breaker:{kind}"


@pytest.mark.timeout(120)
async def test_server_errors_across_a_rebuild_and_a_restart_trip_once_the_limit_is_reached(
    ctx: SafetyContext,
) -> None:
    """Capital.com answering 503 to the account read (the daemon's margin poll) on each desk."""
    config = SafetyConfig(breaker=BreakerConfig(max_server_errors=5))
    for reads in (2, 2):
        async with live_desk("capital", ctx, config) as desk:
            desk.sim.faults.arm("http_5xx", reads, status=503, path="/accounts", method="GET")
            for _ in range(reads):  # each read answered 503 (the client may retry: then it succeeds)
                with contextlib.suppress(BrokerError):
                    await desk.client.account()
            assert not desk.sim.faults.active("http_5xx")  # both 503s were answered
            assert not desk.safety.breaker.tripped
    ctx = restart(ctx)  # the daemon process restarted by its watchdog
    seen = ctx.store.get_state(COUNTS_KEY)["capital"]["seen"]["server_error"]
    assert len(seen) == 4, seen  # every 503 answer counted once, across the rebuild
    async with live_desk("capital", ctx, config) as desk:
        desk.sim.faults.arm("http_5xx", -1, status=503, path="/accounts", method="GET")
        for _ in range(5):
            if desk.safety.breaker.tripped:
                break
            with contextlib.suppress(BrokerError):
                await desk.client.account()
        assert desk.safety.breaker.tripped
        assert "5 server_error event(s)" in ctx.store.get_state(BREAKERS_KEY)["capital"]["reason"]


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_counts_outside_the_window_expire_and_resume_clears_them(ctx: SafetyContext) -> None:
    clock = _Clock()
    cfg = BreakerConfig(window_s=60, max_timeouts=3)
    CircuitBreaker("ibkr", cfg, ctx, clock).record(BreakerEvent.TIMEOUT, "t1")
    clock.now += timedelta(seconds=61)  # the first one leaves the window
    CircuitBreaker("ibkr", cfg, ctx, clock).record(BreakerEvent.TIMEOUT, "t2")
    assert not CircuitBreaker("ibkr", cfg, ctx, clock).record(BreakerEvent.TIMEOUT, "t3")
    assert ctx.states.current().state is TradingState.ACTIVE
    # A fourth in the window, from yet another breaker object (a rebuilt desk): the limit of 3.
    assert CircuitBreaker("ibkr", cfg, ctx, clock).record(BreakerEvent.TIMEOUT, "t4")
    assert ctx.states.current().state is TradingState.HALTED
    # Other brokers' counts are their own.
    assert CircuitBreaker("capital", cfg, ctx, clock).consecutive_rejects == 0
    assert "capital" not in (ctx.store.get_state(COUNTS_KEY) or {})
    # A human resumes: the trip and its counts are cleared; one more timeout does not re-trip.
    resume(ctx, by="test", reason="gateway restarted, checked")
    assert "ibkr" not in (ctx.store.get_state(COUNTS_KEY) or {})
    assert not CircuitBreaker("ibkr", cfg, ctx, clock).record(BreakerEvent.TIMEOUT, "t5")
    assert ctx.states.current().state is TradingState.ACTIVE


def test_one_outage_seen_by_the_old_desk_and_the_rebuilt_one_counts_once(ctx: SafetyContext) -> None:
    """The drop that makes the daemon rebuild its desk is heard by the old desk's feed
    (``connection_lost``) and again by the new one's (``connect_failed`` while it reconnects)."""
    clock = _Clock()
    cfg = BreakerConfig(max_disconnects=2)

    class Rec:
        def __init__(self, event: str) -> None:
            self.event, self.payload = event, {}

    old = BrokerHealth(CircuitBreaker("ibkr", cfg, ctx, clock))
    old.on_record(Rec("ibkr.connection_lost"))
    clock.now += timedelta(seconds=1)
    new = BrokerHealth(CircuitBreaker("ibkr", cfg, ctx, clock))  # the rebuilt desk's feed
    new.on_record(Rec("ibkr.connect_failed"))
    assert new.counted == [] and ctx.states.current().state is TradingState.ACTIVE
    clock.now += timedelta(seconds=30)  # a second outage later: counted, the limit of 2 reached
    newer = BrokerHealth(CircuitBreaker("ibkr", cfg, ctx, clock))
    newer.on_record(Rec("ibkr.connection_lost"))
    assert ctx.states.current().state is TradingState.HALTED
