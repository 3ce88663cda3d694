"""Execution alerts (issue 11 point 9): fills, rejects, UNKNOWN outcomes, state changes, the kill switch,
breaker trips, margin warnings and lost protection each reach the `AlertManager` once, with a
severity. The sink is a recording channel behind the real `AlertManager` (its dedup window applies)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from joe.config.schema import BreakerConfig, MarginConfig
from joe.core.events import NullAudit
from joe.core.models import AccountInfo
from joe.reporting.alerts import AlertManager
from joe.reporting.alerts.channel import DeliveryResult
from joe.reporting.alerts.formatting import Alert, AlertLevel
from joe.safety.alert_audit import AlertingAudit
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext, kill
from joe.safety.kill_switch import KillLevel
from joe.safety.lost_protection import LostProtectionHandler, UnprotectedPosition
from joe.safety.margin_monitor import MarginMonitor, MarginReading
from joe.safety.trading_state import TradingState

D = Decimal


class RecordingChannel:
    name = "recording"
    min_level = AlertLevel.INFO

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> DeliveryResult:
        self.sent.append(alert)
        return DeliveryResult(self.name, True, attempts=1, parts=1)

    async def aclose(self) -> None:
        return None


async def _deliver(ctx: SafetyContext, act: Callable[[], object], twice: bool = True) -> list[Alert]:
    channel = RecordingChannel()
    manager = AlertManager([channel], NullAudit(), dedup_window_s=300)
    res = act()
    if hasattr(res, "__await__"):
        await res  # type: ignore[misc]
    await ctx.alerts.flush(manager)
    if twice:  # the same fact again (a second report, the next poll): no second alert
        res = act()
        if hasattr(res, "__await__"):
            await res  # type: ignore[misc]
        await ctx.alerts.flush(manager)
    return channel.sent


def _acct(available: str) -> AccountInfo:
    return AccountInfo("U1", "USD", equity=D(100000), cash=D(0), available_funds=D(available))


async def test_fill_alert_once_per_fill(ctx: SafetyContext) -> None:
    audit = AlertingAudit(ctx.audit, ctx.alerts)
    fill = {
        "fill_id": "E1",
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": "10",
        "price": "100",
        "broker": "ibkr",
    }
    sent = await _deliver(ctx, lambda: audit.record("order.fill", fill, client_order_id="c1"))
    assert [(a.level, a.title) for a in sent] == [(AlertLevel.TRADE, "FILL: AAPL")]
    assert "BUY 10 AAPL @ 100" in sent[0].body


async def test_reject_alert_once_whether_seen_as_exception_or_status(ctx: SafetyContext) -> None:
    audit = AlertingAudit(ctx.audit, ctx.alerts)

    def both() -> None:
        audit.record("order.rejected", {"reason": "not sent: margin", "broker": "ibkr"}, client_order_id="c2")
        audit.record(
            "order.state", {"from": "ACCEPTED", "to": "rejected", "reason": "201"}, client_order_id="c2"
        )

    sent = await _deliver(ctx, both)
    assert [(a.level, a.title) for a in sent] == [(AlertLevel.WARNING, "REJECT: c2")]


async def test_unknown_outcome_alert_is_critical(ctx: SafetyContext) -> None:
    audit = AlertingAudit(ctx.audit, ctx.alerts)
    sent = await _deliver(
        ctx, lambda: audit.record("order.unknown", {"reason": "timeout"}, client_order_id="c3")
    )
    assert [(a.level, a.title) for a in sent] == [(AlertLevel.CRITICAL, "UNKNOWN: c3")]


async def test_no_alert_for_ordinary_records(ctx: SafetyContext) -> None:
    audit = AlertingAudit(ctx.audit, ctx.alerts)
    audit.record("order.attempt", {"symbol": "AAPL"}, client_order_id="c4")
    audit.record("order.state", {"from": "SUBMITTING", "to": "ACCEPTED"}, client_order_id="c4")
    assert ctx.alerts.pending == []


async def test_state_change_alert(ctx: SafetyContext) -> None:
    sent = await _deliver(
        ctx, lambda: ctx.states.escalate(TradingState.REDUCING, by="margin:ibkr", reason="cushion 0.12")
    )
    assert [(a.level, a.title) for a in sent] == [(AlertLevel.WARNING, "Trading state: REDUCING")]


async def test_kill_switch_alert(ctx: SafetyContext) -> None:
    sent = await _deliver(ctx, lambda: kill(ctx, KillLevel.HALT, reason="news", by="cli:me"))
    titles = [(a.level, a.title) for a in sent]
    assert (AlertLevel.CRITICAL, "Kill switch: HALT") in titles
    assert (AlertLevel.CRITICAL, "Trading state: HALTED") in titles
    assert len(titles) == 2  # the second identical kill is one of the same, not two more


async def test_breaker_trip_alert(ctx: SafetyContext) -> None:
    b = CircuitBreaker("ibkr", BreakerConfig(max_disconnects=2), ctx)
    sent = await _deliver(ctx, lambda: [b.record(BreakerEvent.DISCONNECT, "socket closed") for _ in range(3)])
    assert (AlertLevel.CRITICAL, "Circuit breaker tripped: ibkr") in [(a.level, a.title) for a in sent]
    assert sum(a.title.startswith("Circuit breaker") for a in sent) == 1


@pytest.mark.parametrize(
    ("available", "level", "title"),
    [("20000", AlertLevel.WARNING, "Margin warn: ibkr"), ("2000", AlertLevel.CRITICAL, "Margin halt: ibkr")],
)
async def test_margin_alert(ctx: SafetyContext, available: str, level: AlertLevel, title: str) -> None:
    mon = MarginMonitor(MarginConfig(), ctx)
    sent = await _deliver(ctx, lambda: mon.check(MarginReading.from_account("ibkr", _acct(available))))
    assert (level, title) in [(a.level, a.title) for a in sent]
    assert sum(a.title.startswith("Margin") for a in sent) == 1  # polled twice, alerted once


class _Port:
    async def replace_stop(self, p: UnprotectedPosition) -> bool:
        return True

    async def exit_reduce_only(self, p: UnprotectedPosition) -> bool:
        return True


async def test_lost_protection_alert(ctx: SafetyContext) -> None:
    handler = LostProtectionHandler(ctx, _Port(), deadline_s=1)
    p = UnprotectedPosition("AAPL", D(10), D(95), "stop cancelled by the broker", position_ref="s1")
    sent = await _deliver(ctx, lambda: handler.on_unprotected(p))
    titles = [(a.level, a.title) for a in sent]
    assert titles == [
        (AlertLevel.CRITICAL, "Lost stop on AAPL: lost"),
        (AlertLevel.CRITICAL, "Lost stop on AAPL: restored"),
    ]
