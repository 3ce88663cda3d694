"""/metrics parses with prometheus-client's own parser, and what it reports moves with the store:
the trading state and halted gauges with a kill, the audit write latency with every record, the
order/fill/reject/UNKNOWN counters and latency histograms with the OrderManager's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

from joe.core.ids import client_order_id
from joe.core.models import Fill, OrderIntent, OrderLeg, Side
from joe.core.order import Order, OrderState
from joe.metrics import AuditLatency, health, metrics_registry
from joe.runtime.bootstrap import Runtime
from joe.runtime.daemon import HEARTBEAT_KEY
from joe.safety.control import SafetyContext, kill
from joe.safety.kill_switch import KillLevel


def scrape(registry: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()  # type: ignore[arg-type]
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float | None:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))))


T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def _order(rt: Runtime, sig: str, qty: str, path: list[tuple[OrderState, float]]) -> Order:
    intent = OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, "AAPL", Side.BUY, Decimal(qty))
    order = Order(intent)
    fills = []
    for state, dt in path:
        t = T0 + timedelta(seconds=dt)
        if state is OrderState.FILLED:
            fills.append(
                Fill(f"x-{sig}", intent.client_order_id, "AAPL", Side.BUY, Decimal(qty), Decimal(100), t)
            )
            order.apply_fill(fills[-1])
        else:
            order.transition(state, "test", ts=t)
    rt.store.save_order(order, broker="ibkr", mode="live")
    for f in fills:
        rt.store.record_fill(f, broker="ibkr", mode="live")
    return order


def test_exposition_parses_and_moves_with_the_store(rt: Runtime) -> None:
    latency = AuditLatency()
    latency.instrument(rt.audit)
    reg = metrics_registry(rt.store, latency)
    before = scrape(reg)
    assert value(before, "joe_trading_state", state="active") == 1.0
    assert value(before, "joe_trading_halted") == 0.0
    assert value(before, "joe_fills_total", mode="live", broker="ibkr") is None

    ctx = SafetyContext.from_runtime(rt)
    kill(ctx, KillLevel.HALT, reason="metrics test", by="test")
    _order(
        rt, "s1", "10", [(OrderState.SUBMITTING, 0), (OrderState.ACCEPTED, 0.04), (OrderState.FILLED, 0.3)]
    )
    _order(rt, "s2", "5", [(OrderState.SUBMITTING, 0), (OrderState.REJECTED, 0.02)])
    _order(rt, "s3", "5", [(OrderState.SUBMITTING, 0), (OrderState.UNKNOWN, 5)])
    rt.store.set_state(
        HEARTBEAT_KEY,
        {
            "ts": datetime.now(UTC).isoformat(),
            "status": "running",
            "quotes": 1234,
            "stale": ["AAPL"],
            "pid": 1,
        },
    )

    after = scrape(reg)
    assert value(after, "joe_trading_state", state="halted") == 1.0
    assert value(after, "joe_trading_halted") == 1.0
    assert value(after, "joe_fills_total", mode="live", broker="ibkr") == 1.0
    assert value(after, "joe_order_rejects_total", mode="live", broker="ibkr") == 1.0
    assert value(after, "joe_order_unknown_total", mode="live", broker="ibkr") == 1.0
    assert value(after, "joe_orders", mode="live", broker="ibkr", state="filled") == 1.0
    assert value(after, "joe_order_latency_seconds_count", broker="ibkr", stage="ack") == 1.0
    assert value(after, "joe_order_latency_seconds_bucket", broker="ibkr", stage="ack", le="0.05") == 1.0
    assert value(after, "joe_order_latency_seconds_bucket", broker="ibkr", stage="fill", le="0.25") == 0.0
    assert value(after, "joe_order_latency_seconds_bucket", broker="ibkr", stage="fill", le="0.5") == 1.0
    assert value(after, "joe_quotes_total", broker="none") == 1234.0
    assert value(after, "joe_quote_stale_instruments", broker="none") == 1.0
    assert value(after, "joe_daemon_up") == 1.0
    assert value(after, "joe_reconciliation_unexplained") is None  # no live daemon has reconciled
    rt.store.set_state(
        HEARTBEAT_KEY,
        {
            "ts": datetime.now(UTC).isoformat(),
            "status": "running",
            "pid": 1,
            "broker_connected": True,
            "reconciled": {"explained": False},
        },
    )
    live = scrape(reg)
    assert value(live, "joe_reconciliation_unexplained") == 1.0
    assert value(live, "joe_quotes_total", broker="none") is None  # this heartbeat counts no quotes
    assert value(live, "joe_daemon_broker_connected") == 1.0
    # The kill's audit records were timed.
    assert (value(after, "joe_audit_write_seconds_count") or 0) >= 2


def test_quote_rate_age_and_staleness_per_broker_from_the_heartbeat(rt: Runtime) -> None:
    """The daemon's heartbeat carries its PriceStream's `source_stats`; the quote age on /metrics is
    the age at the heartbeat plus the heartbeat's own age (clock injected)."""
    beat_at = T0
    sources = {
        "ibkr": {"quotes": 120, "quote_age_s": 0.5, "watched": 3, "stale": 0},
        "capital": {"quotes": 7, "quote_age_s": 42.0, "watched": 2, "stale": 1},
        "idle": {"quotes": 0, "quote_age_s": None, "watched": 0, "stale": 0},
    }
    beat = {"ts": beat_at.isoformat(), "status": "running", "pid": 1, "quotes": 127, "stale": ["GOLD"]}
    rt.store.set_state(HEARTBEAT_KEY, {**beat, "sources": sources})
    reg = metrics_registry(rt.store, clock=lambda: beat_at + timedelta(seconds=2))
    got = scrape(reg)
    assert value(got, "joe_quotes_total", broker="ibkr") == 120.0
    assert value(got, "joe_quotes_total", broker="capital") == 7.0
    assert value(got, "joe_quotes_total", broker="none") is None
    assert value(got, "joe_quote_age_seconds", broker="ibkr") == 2.5
    assert value(got, "joe_quote_age_seconds", broker="capital") == 44.0
    assert value(got, "joe_quote_age_seconds", broker="idle") is None  # no quote yet: no age
    assert value(got, "joe_quote_stale_instruments", broker="capital") == 1.0
    assert value(got, "joe_quote_stale_instruments", broker="ibkr") == 0.0


def test_health_goes_down_with_a_stale_heartbeat(rt: Runtime) -> None:
    assert health(rt.store)[0] == 200
    old = datetime.now(UTC) - timedelta(minutes=5)
    rt.store.set_state(HEARTBEAT_KEY, {"ts": old.isoformat(), "status": "running", "pid": 1})
    code, body = health(rt.store)
    assert code == 503 and body["daemon"] == "stale"
    rt.store.set_state(HEARTBEAT_KEY, {"ts": old.isoformat(), "status": "stopped", "pid": 1})
    assert health(rt.store)[0] == 200
