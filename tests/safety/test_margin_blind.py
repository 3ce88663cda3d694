"""A blind margin monitor (review r1012 finding 7): failed account reads while positions are open alert
at once and, beyond the bound, move the trading state to REDUCING; a hand-over is not blindness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from joe.brokers.base import BrokerUnavailable
from joe.core.events import NullAudit
from joe.runtime.daemon_live import DeskHolder
from joe.safety.control import SafetyContext
from joe.safety.margin_blind import BlindMargin, blind_bound_s
from joe.safety.trading_state import TradingState


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 12, 1, 15, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


def _watch(ctx: SafetyContext, held: int) -> tuple[BlindMargin, Clock]:
    clock = Clock()
    return BlindMargin(ctx, "ibkr", blind_bound_s(60), positions=lambda: held, clock=clock), clock


def test_blind_with_positions_alerts_at_once_then_reduces_beyond_the_bound(ctx: SafetyContext) -> None:
    watch, clock = _watch(ctx, held=2)
    watch.blind("BrokerUnavailable: not connected")
    assert [a.title for a in ctx.alerts.pending] and ctx.states.current().state is TradingState.ACTIVE
    clock.t += timedelta(seconds=179)
    watch.blind("BrokerUnavailable: not connected")
    assert ctx.states.current().state is TradingState.ACTIVE  # within 3 checks of 60 s
    clock.t += timedelta(seconds=2)
    watch.blind("BrokerUnavailable: not connected")
    assert ctx.states.current().state is TradingState.REDUCING
    watch.seen()
    assert ctx.states.current().state is TradingState.REDUCING  # stays until `joe resume`


def test_blind_without_positions_is_audited_only(ctx: SafetyContext) -> None:
    watch, clock = _watch(ctx, held=0)
    watch.blind("x")
    clock.t += timedelta(hours=1)
    watch.blind("x")
    assert ctx.alerts.pending == [] and ctx.states.current().state is TradingState.ACTIVE


def test_a_good_reading_resets_the_blind_time(ctx: SafetyContext) -> None:
    watch, clock = _watch(ctx, held=1)
    for _ in range(3):
        watch.blind("x")
        clock.t += timedelta(seconds=150)
        watch.seen()
    assert ctx.states.current().state is TradingState.ACTIVE


class _Desk:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.monitor = type("M", (), {"requester": None})()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def check_margin(self) -> None:
        if self.fail:
            raise BrokerUnavailable("not connected")


async def test_desk_holder_margin_check_during_a_hand_over_is_not_blind_but_a_failed_read_is(
    ctx: SafetyContext,
) -> None:
    watch, _clock = _watch(ctx, held=1)
    desk = _Desk(fail=False)

    async def build() -> Any:
        async def close() -> None: ...

        return desk, close

    holder = DeskHolder(build, NullAudit(), margin_watch=watch)
    await holder.start()

    async def run(_s: Any) -> None:
        await holder.check_margin()  # the scheduled run holds the broker: nothing to read, no alert

    await holder.hand_over(run)(type("R", (), {"name": "after_open"})())
    assert ctx.alerts.pending == []
    desk.fail = True
    with pytest.raises(BrokerUnavailable):
        await holder.check_margin()
    assert ctx.alerts.pending, "a failed read with a position open alerts"
