"""`AlertPump`: the daemon delivers the safety layer's queued alerts as they come (before: a daemon
queued them forever — only `joe run --once` flushed its queue when it ended)."""

from __future__ import annotations

from decimal import Decimal

from joe.config.schema import MarginConfig
from joe.core.models import AccountInfo
from joe.reporting.alerts.formatting import Alert
from joe.safety.alert_pump import AlertPump
from joe.safety.control import SafetyContext
from joe.safety.margin_monitor import MarginMonitor, MarginReading


class Manager:
    enabled = True

    def __init__(self) -> None:
        self.sent: list[Alert] = []
        self.closed = False

    async def send(self, alert: Alert) -> None:
        self.sent.append(alert)

    async def aclose(self) -> None:
        self.closed = True


async def test_the_pump_delivers_what_guards_queue_and_empties_the_queue(ctx: SafetyContext) -> None:
    manager = Manager()
    built: list[int] = []
    pump = AlertPump(ctx, lambda: built.append(1) or manager)
    await pump()
    assert built == []  # nothing queued: no channel opened
    low = AccountInfo("U1", "USD", equity=Decimal(100000), cash=Decimal(0), available_funds=Decimal(2000))
    MarginMonitor(MarginConfig(), ctx).check(MarginReading.from_account("ibkr", low))
    await pump()
    titles = [a.title for a in manager.sent]
    assert "Margin halt: ibkr" in titles and "Trading state: HALTED" in titles
    assert ctx.alerts.pending == []
    ctx.alerts.breaker_tripped("ibkr", "3 disconnects")
    await pump.close()  # the daemon stopping: what is left goes out, the channels close
    assert manager.sent[-1].title == "Circuit breaker tripped: ibkr" and manager.closed
    assert built == [1] and pump.sent == len(manager.sent)
