"""`BrokerHealth`: the brokers' own audit records (wire trouble) counted by their circuit breaker, through
`AuditLog.add_listener`; one outage seen by several connections counts once."""

from __future__ import annotations

from pathlib import Path

import pytest

from joe.audit.log import AuditLog, tail
from joe.config.schema import BreakerConfig
from joe.safety.broker_health import BrokerHealth, classify
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState

REQ = "capital.request"


@pytest.mark.parametrize(
    ("event", "payload", "want"),
    [
        (REQ, {"outcome": "error", "status": 500}, BreakerEvent.SERVER_ERROR),
        (REQ, {"outcome": "error", "status": 503}, BreakerEvent.SERVER_ERROR),
        (REQ, {"outcome": "error", "status": 429}, BreakerEvent.RATE_LIMITED),
        (REQ, {"outcome": "garbled", "status": 200}, BreakerEvent.SERVER_ERROR),
        (REQ, {"outcome": "not_sent"}, BreakerEvent.DISCONNECT),
        (REQ, {"outcome": "no_answer"}, BreakerEvent.TIMEOUT),
        (REQ, {"outcome": "error", "status": 400}, None),  # the broker's answer to a bad request
        (REQ, {"outcome": "error", "status": 404}, None),
        (REQ, {"outcome": "ok", "status": 200}, None),
        ("capital.stream.drop", {"shard": 0}, BreakerEvent.DISCONNECT),
        ("ibkr.connection_lost", {}, BreakerEvent.DISCONNECT),
        ("ibkr.connectivity_lost", {"code": 1100}, BreakerEvent.DISCONNECT),
        ("ibkr.connect_failed", {}, BreakerEvent.DISCONNECT),
        ("ibkr.reconnected", {}, None),
        ("order.fill", {}, None),
    ],
)
def test_classify(event: str, payload: dict[str, object], want: BreakerEvent | None) -> None:
    assert classify(event, payload) == want


def test_listener_hears_every_record_once_and_not_its_own(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    heard: list[str] = []

    def listener(rec: object) -> None:
        heard.append(rec.event)  # type: ignore[attr-defined]
        log.record("echo", {})  # written by a listener: not heard again (no feedback loop)

    remove = log.add_listener(listener)
    log.record("a", {})
    log.record("b", {})
    remove()
    log.record("c", {})
    assert heard == ["a", "b"]
    events = [r["event"] for r in tail(tmp_path, 10)]
    assert events == ["a", "echo", "b", "echo", "c"]


def test_a_failing_listener_never_fails_the_write(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    log.add_listener(lambda rec: 1 / 0)  # type: ignore[arg-type,return-value]
    assert log.record("x", {}).seq == 1


def test_disconnects_of_one_outage_count_once_and_other_brokers_are_ignored(ctx: SafetyContext) -> None:
    now = [0.0]
    breaker = CircuitBreaker("ibkr", BreakerConfig(max_disconnects=2), ctx)
    health = BrokerHealth(breaker, monotonic=lambda: now[0])
    remove = ctx.audit.add_listener(health.on_record)  # type: ignore[attr-defined]
    try:
        ctx.audit.record("ibkr.connection_lost", {"port": 1})  # market data connection
        ctx.audit.record("ibkr.connection_lost", {"port": 1})  # order connection, same outage
        ctx.audit.record("capital.stream.drop", {"shard": 0})  # another broker's breaker
        assert len(health.counted) == 1 and not breaker.tripped
        now[0] = 10.0
        ctx.audit.record("ibkr.connect_failed", {"error": "refused"})
    finally:
        remove()
    assert breaker.tripped
    rec = ctx.states.current()
    assert rec.state is TradingState.HALTED and rec.by == "breaker:ibkr"
    assert "2 disconnect event(s)" in rec.reason
