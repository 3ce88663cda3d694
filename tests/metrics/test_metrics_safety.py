"""Review r16, defect 8: /metrics says what Joe does about its safety state.

A stored trading state that cannot be read is HALTED for Joe (`TradingStateStore.current`), so the
exporter must say halted too (an alert on ``joe_trading_halted`` must fire exactly then); and the breaker,
margin and equity gauges move when a breaker trips, a margin reading is taken, an equity point is booked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from joe.config.schema import BreakerConfig, MarginConfig
from joe.core.models import AccountInfo
from joe.metrics import metrics_registry
from joe.runtime.bootstrap import Runtime
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext
from joe.safety.margin_monitor import MarginMonitor, MarginReading
from joe.safety.trading_state import STATE_KEY, TradingStateStore

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(rt: Runtime) -> Samples:
    text = generate_latest(metrics_registry(rt.store)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.mark.parametrize("raw", ["garbage", ["halted"], {"by": "x"}, {"state": "paused"}])
def test_an_unreadable_state_is_exported_as_halted(rt: Runtime, raw: object) -> None:
    rt.store.set_state(STATE_KEY, raw)
    m = scrape(rt)  # before any Joe process re-read (and repaired) the state
    assert rt.store.get_state(STATE_KEY) == raw  # the scrape wrote nothing
    assert m[("joe_trading_halted", ())] == 1.0
    assert m[("joe_trading_state", (("state", "halted"),))] == 1.0
    assert m[("joe_trading_state", (("state", "active"),))] == 0.0
    assert TradingStateStore(rt.store, rt.audit).current().state.value == "halted"  # what Joe does


def test_a_readable_state_is_exported_as_it_is(rt: Runtime) -> None:
    assert scrape(rt)[("joe_trading_halted", ())] == 0.0  # never changed: active
    rt.store.set_state(STATE_KEY, {"state": "reducing", "by": "cli", "reason": "r", "since": "x"})
    m = scrape(rt)
    assert m[("joe_trading_halted", ())] == 1.0 and m[("joe_trading_state", (("state", "reducing"),))] == 1.0


def test_breaker_margin_and_equity_gauges_move(rt: Runtime) -> None:
    before = scrape(rt)
    assert ("joe_breaker_tripped", (("broker", "ibkr"),)) not in before
    ctx = SafetyContext.from_runtime(rt)
    CircuitBreaker("ibkr", BreakerConfig(max_unknown=1), ctx).record(BreakerEvent.UNKNOWN, "x")
    acct = AccountInfo("DU1", "USD", equity=Decimal(100000), cash=Decimal(0), available_funds=Decimal(20000))
    MarginMonitor(MarginConfig(), ctx).check(MarginReading.from_account("ibkr", acct))
    rt.store.record_equity(datetime(2026, 11, 30, 21, tzinfo=UTC), "live", Decimal("98500"), Decimal("1"))
    m = scrape(rt)
    assert m[("joe_breaker_tripped", (("broker", "ibkr"),))] == 1.0
    assert m[("joe_margin_cushion", (("broker", "ibkr"),))] == pytest.approx(0.2)
    assert m[("joe_equity", (("mode", "live"),))] == 98500.0
