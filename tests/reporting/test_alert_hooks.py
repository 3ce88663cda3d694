"""Execution-alert hooks: fire-and-forget, never raise, reach the channels."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from decimal import Decimal

from joe.core.events import NullAudit
from joe.core.models import Fill, Side
from joe.reporting.alerts import Alert, AlertLevel, AlertManager, ExecutionAlerts, NullAlerts
from joe.reporting.alerts.channel import DeliveryResult


class Recorder:
    """A channel that records alerts; `gate` lets a test hold deliveries back."""

    name = "recorder"
    min_level = AlertLevel.INFO

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, alert: Alert) -> DeliveryResult:
        await self.gate.wait()
        self.alerts.append(alert)
        return DeliveryResult(self.name, True, 1, 1, 200)

    async def aclose(self) -> None:
        pass


FILL = Fill(
    "F-9",
    "joe-sig-1-entry",
    "AAPL",
    Side.BUY,
    Decimal(10),
    Decimal("212.49"),
    datetime(2024, 6, 14, 20, 0, tzinfo=UTC),
    Decimal(1),
)


async def test_every_hook_emits_the_right_level() -> None:
    rec = Recorder()
    hooks = ExecutionAlerts(AlertManager([rec], NullAudit()))
    hooks.on_fill(FILL)
    hooks.on_rejection("joe-sig-2-entry", "insufficient margin")
    hooks.on_kill_switch(True, "daily loss limit")
    hooks.on_margin_warning("critical", "excess liquidity 2%")
    hooks.on_margin_warning("bogus", "unknown level")
    hooks.on_disconnect("ibkr", "socket closed")
    hooks.on_mode_fallback("TRADING_MODE=live but no credentials")
    await hooks.drain(timeout_s=5)
    got = {(a.level, a.title) for a in rec.alerts}
    assert got == {
        (AlertLevel.TRADE, "Fill: BUY 10 AAPL @ 212.49"),
        (AlertLevel.WARNING, "Order rejected: joe-sig-2-entry"),
        (AlertLevel.CRITICAL, "KILL SWITCH ACTIVATED — trading halted"),
        (AlertLevel.CRITICAL, "Margin warning"),
        (AlertLevel.WARNING, "Margin warning"),
        (AlertLevel.WARNING, "Broker disconnected: ibkr"),
        (AlertLevel.WARNING, "Trading mode fell back to PAPER"),
    }


async def test_hooks_return_before_delivery() -> None:
    rec = Recorder()
    rec.gate.clear()  # delivery blocks until released
    hooks = ExecutionAlerts(AlertManager([rec], NullAudit()))
    hooks.on_fill(FILL)  # returns although the channel is stuck
    hooks.on_fill(FILL)  # same fill id: de-duplicated
    await asyncio.sleep(0)
    assert rec.alerts == []
    rec.gate.set()
    await hooks.drain(timeout_s=5)
    assert len(rec.alerts) == 1


async def test_hooks_from_another_thread_use_the_owning_loop() -> None:
    rec = Recorder()
    hooks = ExecutionAlerts(AlertManager([rec], NullAudit()))
    t = threading.Thread(target=hooks.on_disconnect, args=("capital", "ws closed"))
    t.start()
    t.join()
    for _ in range(100):
        if rec.alerts:
            break
        await asyncio.sleep(0.01)
    assert [a.title for a in rec.alerts] == ["Broker disconnected: capital"]


def test_without_a_loop_alerts_are_dropped_not_raised() -> None:
    rec = Recorder()
    hooks = ExecutionAlerts(AlertManager([rec], NullAudit()))
    hooks.on_kill_switch(False, "manual resume")  # no running loop anywhere: logged and dropped
    assert rec.alerts == [] and not hooks._tasks


async def test_null_alerts_do_nothing() -> None:
    hooks = NullAlerts()
    hooks.on_fill(FILL)
    hooks.on_kill_switch(True, "x")
    await hooks.drain()
    assert hooks._tasks == set()
