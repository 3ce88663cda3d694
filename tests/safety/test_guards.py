"""CircuitBreaker, MarginMonitor, protections and the lost-protection reaction: each moves the persisted
trading state (surviving a restart), is audited and alerted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from joe.audit.log import tail
from joe.brokers.base import BrokerUnavailable, OrderOutcomeUnknown, OrderRejected
from joe.config.schema import BreakerConfig, MarginConfig, ProtectionsConfig
from joe.core.models import AccountInfo
from joe.safety.circuit_breaker import BREAKERS_KEY, BreakerEvent, CircuitBreaker, event_for
from joe.safety.control import SafetyContext, resume
from joe.safety.lost_protection import LostProtectionHandler, Outcome, UnprotectedPosition
from joe.safety.margin_monitor import MARGIN_KEY, MarginLevel, MarginMonitor, MarginReading
from joe.safety.protections import (
    ClosedTrade,
    Cooldown,
    LowProfitSymbols,
    MaxDrawdownLock,
    StoplossGuard,
    active_locks,
    default_protections,
)
from joe.safety.trading_state import TradingState

from .conftest import restart

D = Decimal
T0 = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)


def _events(ctx: SafetyContext, event: str) -> list[dict[str, object]]:
    return [r["payload"] for r in tail(ctx.data_dir / "audit", 500) if r["event"] == event]


# ----------------------------------------------------------------------------------- circuit breaker
class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(
    ("event", "limit_key", "n"),
    [
        (BreakerEvent.REJECT, "max_consecutive_rejects", 3),
        (BreakerEvent.TIMEOUT, "max_timeouts", 2),
        (BreakerEvent.UNKNOWN, "max_unknown", 1),
        (BreakerEvent.DISCONNECT, "max_disconnects", 2),
        (BreakerEvent.SERVER_ERROR, "max_server_errors", 4),
    ],
)
def test_breaker_trips_to_halted_and_the_state_survives_restart(
    ctx: SafetyContext, event: BreakerEvent, limit_key: str, n: int
) -> None:
    clock = Clock()
    br = CircuitBreaker("ibkr", BreakerConfig(**{limit_key: n}), ctx, clock)
    for _ in range(n - 1):
        assert br.record(event, "x") is False
        clock.now += timedelta(seconds=1)
    assert br.record(event, "last one") is True
    again = restart(ctx)
    st = again.states.current()
    assert st.state is TradingState.HALTED and st.by == "breaker:ibkr"
    assert f"(limit {n})" in st.reason
    stored = again.store.get_state(BREAKERS_KEY)["ibkr"]
    assert stored["state"] == "tripped" and stored["event"] == event.value
    assert _events(again, "safety.breaker_tripped")[-1]["broker"] == "ibkr"
    assert any(a.title.startswith("Circuit breaker tripped") for a in ctx.alerts.pending)


def test_breaker_window_and_reset_on_success(ctx: SafetyContext) -> None:
    clock = Clock()
    br = CircuitBreaker(
        "capital", BreakerConfig(max_timeouts=2, window_s=60, max_consecutive_rejects=2), ctx, clock
    )
    br.record(BreakerEvent.TIMEOUT)
    clock.now += timedelta(seconds=61)  # the first one left the window
    assert br.record(BreakerEvent.TIMEOUT) is False
    br.record(BreakerEvent.REJECT)
    br.record(BreakerEvent.OK)  # a success ends the run of rejects
    assert br.record(BreakerEvent.REJECT) is False
    assert ctx.states.current().state is TradingState.ACTIVE


def test_breaker_maps_broker_errors_and_resume_rearms(ctx: SafetyContext) -> None:
    assert event_for(OrderOutcomeUnknown("x")) is BreakerEvent.UNKNOWN
    assert event_for(OrderRejected("x")) is BreakerEvent.REJECT
    assert event_for(BrokerUnavailable("x")) is BreakerEvent.DISCONNECT
    assert event_for(TimeoutError()) is BreakerEvent.TIMEOUT
    assert event_for(ValueError()) is None
    br = CircuitBreaker("ibkr", BreakerConfig(), ctx)
    assert br.observe(OrderOutcomeUnknown("send timed out")) and br.tripped
    resume(ctx, reason="broker confirmed state", by="cli:alice")
    assert not br.tripped and ctx.states.current().state is TradingState.ACTIVE


# ------------------------------------------------------------------------------------ margin monitor
def _acct(equity: str, excess: str | None, **extra: str) -> AccountInfo:
    return AccountInfo(
        "DU1",
        "USD",
        D(equity),
        D(equity),
        D(excess or 0),
        excess_liquidity=None if excess is None else D(excess),
        extra=extra,
    )


@pytest.mark.parametrize(
    ("excess", "level", "state"),
    [
        ("50000", MarginLevel.OK, TradingState.ACTIVE),
        ("20000", MarginLevel.WARN, TradingState.ACTIVE),
        ("10000", MarginLevel.REDUCE, TradingState.REDUCING),
        ("5000", MarginLevel.HALT, TradingState.HALTED),
    ],
)
def test_margin_thresholds_move_the_state(
    ctx: SafetyContext, excess: str, level: MarginLevel, state: TradingState
) -> None:
    mon = MarginMonitor(MarginConfig(), ctx)
    assert mon.check(MarginReading.from_account("ibkr", _acct("100000", excess))) is level
    again = restart(ctx)
    assert again.states.current().state is state
    assert again.store.get_state(MARGIN_KEY)["level"] == level.value
    assert _events(again, "safety.margin")[-1]["level"] == level.value
    if level is not MarginLevel.OK:
        assert any(a.title.startswith(f"Margin {level.value}") for a in ctx.alerts.pending)


def test_margin_reads_ibkr_cushion_and_maint_margin(ctx: SafetyContext) -> None:
    r = MarginReading.from_account("ibkr", _acct("100000", "90000", Cushion="0.07", MaintMarginReq="12000"))
    assert r.cushion == D("0.07") and r.maint_margin == D(12000)
    assert MarginMonitor(MarginConfig(), ctx).check(r) is MarginLevel.HALT


# --------------------------------------------------------------------------------------- protections
def _trade(
    symbol: str, hours_ago: float, pnl: str, reason: str = "stop loss", notional: str = "10000"
) -> ClosedTrade:
    return ClosedTrade(symbol, T0 - timedelta(hours=hours_ago), D(pnl), D(notional), reason)


def test_stoploss_guard_locks_everything() -> None:
    trades = [_trade("A", 5, "-100"), _trade("B", 3, "-100"), _trade("C", 1, "-100")]
    (lock,) = StoplossGuard(3, 24, 12).locks(trades, T0)
    assert lock.scope == "*" and lock.until == T0 - timedelta(hours=1) + timedelta(hours=12)
    assert StoplossGuard(3, 24, 12).locks(trades[:2], T0) == []


def test_cooldown_after_a_stop_per_symbol() -> None:
    trades = [_trade("A", 2, "-100"), _trade("B", 2, "+100", reason="take profit")]
    locks = Cooldown(24).locks(trades, T0)
    assert [lk.scope for lk in locks] == ["A"]
    assert Cooldown(24).locks(trades, T0 + timedelta(hours=23)) == []


def test_max_drawdown_lock_on_realised_losses() -> None:
    trades = [_trade("A", 10, "500", "take profit"), _trade("B", 5, "-6000"), _trade("C", 1, "-5000")]
    (lock,) = MaxDrawdownLock(D(10), 168, 48, D(100_000)).locks(trades, T0)
    assert lock.scope == "*" and "11.00%" in lock.reason


def test_low_profit_symbol_lock() -> None:
    trades = [
        _trade("A", 30, "-10", "exit"),
        _trade("A", 20, "-10", "exit"),
        _trade("A", 10, "5", "exit"),
        _trade("B", 5, "-50"),
    ]
    (lock,) = LowProfitSymbols(3, 720, D(0), 168).locks(trades, T0)
    assert lock.scope == "A" and "-0.05%" in lock.reason


def test_defaults_and_active_locks() -> None:
    ps = default_protections(ProtectionsConfig(), D(100_000))
    assert [p.name for p in ps] == ["stoploss_guard", "cooldown", "max_drawdown_lock", "low_profit"]
    assert active_locks(ps, [_trade("A", 1, "-100")], T0)[0].scope == "A"


# ------------------------------------------------------------------------------- lost protection
class Port:
    def __init__(self, replace_after: int | None, exit_ok: bool = True) -> None:
        self.replace_after = replace_after
        self.exit_ok = exit_ok
        self.replace_calls = 0
        self.exits = 0

    async def replace_stop(self, p: UnprotectedPosition) -> bool:
        self.replace_calls += 1
        if self.replace_after is None:
            raise TimeoutError("broker did not answer")
        return self.replace_calls >= self.replace_after

    async def exit_reduce_only(self, p: UnprotectedPosition) -> bool:
        self.exits += 1
        return self.exit_ok


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def mono(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.t += s


POS = UnprotectedPosition("AAPL", D(100), D(95), "stop cancelled by the broker", "pos-1")


async def test_stop_replaced_within_the_deadline(ctx: SafetyContext) -> None:
    ft, port = FakeTime(), Port(replace_after=3)
    h = LostProtectionHandler(ctx, port, deadline_s=10, retry_s=1, sleep=ft.sleep, monotonic=ft.mono)
    assert await h.on_unprotected(POS) is Outcome.RESTORED
    assert port.replace_calls == 3 and port.exits == 0
    assert _events(ctx, "safety.protection_restored")[-1]["attempts"] == 3
    assert _events(ctx, "safety.protection_lost")[-1]["why"] == "stop cancelled by the broker"
    assert any("restored" in a.title for a in ctx.alerts.pending)


async def test_deadline_passed_exits_reduce_only(ctx: SafetyContext) -> None:
    ft, port = FakeTime(), Port(replace_after=None)
    h = LostProtectionHandler(ctx, port, deadline_s=5, retry_s=1, sleep=ft.sleep, monotonic=ft.mono)
    assert await h.on_unprotected(POS) is Outcome.EXITED
    assert port.exits == 1 and 4 <= port.replace_calls <= 6 and ft.t <= 5
    assert _events(ctx, "safety.protection_exit")
    assert ctx.states.current().state is TradingState.ACTIVE


async def test_exit_failing_halts_trading(ctx: SafetyContext) -> None:
    ft, port = FakeTime(), Port(replace_after=None, exit_ok=False)
    h = LostProtectionHandler(ctx, port, deadline_s=2, retry_s=1, sleep=ft.sleep, monotonic=ft.mono)
    assert await h.on_unprotected(POS) is Outcome.HALTED
    st = restart(ctx).states.current()
    assert st.state is TradingState.HALTED and st.by == "protection:AAPL"
