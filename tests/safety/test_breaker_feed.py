"""`BreakerFeed`: every OrderManager outcome reaches the circuit breaker (rejects, fills, timeouts,
unresolved sends), one bracket counted once. End to end at both simulators (their fault plans
rejecting every order) in tests/runtime/test_live_runs.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from joe.config.schema import BreakerConfig
from joe.core.models import Direction, Signal
from joe.core.order import Order
from joe.core.reports import InstrumentRules
from joe.execution.events import AlertKind, ExecutionAlert
from joe.portfolio.intents import bracket_for
from joe.safety.breaker_feed import BreakerFeed, classify
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext
from joe.safety.om_protection import alert_bridge
from joe.safety.trading_state import TradingState

T = datetime(2024, 3, 1, 15, tzinfo=UTC)
RULES = InstrumentRules("AAPL", Decimal("0.01"), Decimal(1), Decimal(1))


def bracket(sid: str) -> list[Order]:
    s = Signal(
        sid, "AAPL", "trend", Direction.LONG, Decimal(100), Decimal(95), Decimal(110), 0.7, "t", T,
        quantity=Decimal(10),
    )  # fmt: skip
    entry, *kids = bracket_for(s, RULES)
    return [Order(entry)] + [Order(k, parent_client_order_id=entry.client_order_id) for k in kids]


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("order.rejected", {"reason": "not sent: rate limited"}, BreakerEvent.REJECT),
        ("order.state", {"to": "REJECTED"}, BreakerEvent.REJECT),
        ("order.state", {"to": "ACCEPTED"}, BreakerEvent.OK),
        ("order.state", {"to": "FILLED"}, BreakerEvent.OK),
        ("order.state", {"to": "CANCELLED"}, None),
        ("order.fill", {}, BreakerEvent.OK),
        ("order.unknown", {"reason": "timed out", "timeout": True}, BreakerEvent.TIMEOUT),
        ("order.unknown", {"reason": "connection reset", "timeout": False}, None),
        ("order.unresolved", {}, BreakerEvent.UNKNOWN),
        ("order.lost", {}, BreakerEvent.UNKNOWN),
        ("order.attempt", {}, None),
    ],
)
def test_each_order_outcome_has_its_breaker_event(
    event: str, payload: dict[str, object], expected: BreakerEvent | None
) -> None:
    assert classify(event, payload) == expected


def test_rejects_in_a_row_trip_the_breaker_and_a_fill_ends_the_run(ctx: SafetyContext) -> None:
    """Before: the breaker heard only unresolved outcomes (alerts), so any number of rejects in a
    row never opened it."""
    breaker = CircuitBreaker("ibkr", BreakerConfig(max_consecutive_rejects=3), ctx)
    feed = BreakerFeed(breaker)
    for sid in ("a", "b"):
        for o in bracket(sid):  # the broker rejects the whole bracket: one outcome
            feed.on_event("order.state", {"to": "REJECTED"}, o)
        feed.on_event("order.rejected", {"reason": "not sent"}, bracket(sid)[0])  # seen twice: once
    assert breaker.consecutive_rejects == 2
    ok = bracket("c")
    feed.on_event("order.fill", {}, ok[0])  # a fill ends the run of rejects
    assert breaker.consecutive_rejects == 0
    for sid in ("d", "e"):
        feed.on_event("order.state", {"to": "REJECTED"}, bracket(sid)[0])
    assert ctx.states.current().state is TradingState.ACTIVE
    feed.on_event("order.rejected", {"reason": "refused"}, bracket("f")[1])  # a child's reject counts too
    assert breaker.tripped and ctx.states.current().state is TradingState.HALTED
    assert "3 consecutive rejects" in ctx.states.current().reason


def test_timeouts_and_unresolved_sends_count_and_the_alert_bridge_shares_the_feed(
    ctx: SafetyContext,
) -> None:
    breaker = CircuitBreaker("capital", BreakerConfig(max_timeouts=2, max_unknown=1), ctx)
    feed = BreakerFeed(breaker)
    on_alert = alert_bridge(ctx, feed)
    a = bracket("a")
    feed.on_event("order.unknown", {"reason": "read timed out", "timeout": True}, a[0])
    feed.on_event("order.unknown", {"reason": "read timed out", "timeout": True}, a[1])  # same bracket
    assert not breaker.tripped
    b = bracket("b")
    feed.on_event("order.attempt", {}, b[0])
    feed.on_event("order.unresolved", {"reason": "not at the broker after asking"}, b[0])
    on_alert(ExecutionAlert(AlertKind.UNRESOLVED, "order_status failed", T, b[0].client_order_id, "b"))
    assert breaker.tripped and "1 unknown" in ctx.states.current().reason
    assert [a.title for a in ctx.alerts.pending].count("UNKNOWN: " + b[0].client_order_id) == 1
