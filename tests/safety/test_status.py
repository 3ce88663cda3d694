"""``joe status [--json]`` shows what decides whether Joe may trade: protection locks (in the book's own
time), positions at a broker with their broker-side stops and whether they cover them, working
orders, breaker, margin, today's PnL vs the daily loss limit, audit chain, daemon heartbeat."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from joe.cli.main import app
from joe.config.schema import BreakerConfig, MarginConfig
from joe.core.ids import client_order_id
from joe.core.models import AccountInfo, Fill, OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import Order, OrderState
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext
from joe.safety.margin_monitor import MarginMonitor, MarginReading

D = Decimal
T0 = datetime(2018, 2, 2, 21, tzinfo=UTC)


def _stopped_out(ctx: SafetyContext, symbol: str, at: datetime) -> None:
    p = ctx.store.open_position(mode="paper", broker="sim", symbol=symbol, quantity=D(10), avg_price=D(100),
                                opened_at=at - timedelta(days=1), stop_loss=D(95))  # fmt: skip
    ctx.store.close_position(p.id, D(95), "stop", D(-50), closed_at=at)


def _live_bracket(ctx: SafetyContext, sig: str, stop_state: OrderState) -> None:
    q = D(10)
    entry = Order(OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, "AAPL", Side.BUY, q))
    stop = Order(
        OrderIntent(client_order_id(sig, "stop"), sig, OrderLeg.STOP_LOSS, "AAPL", Side.SELL, q,
                    order_type=OrderType.STOP, stop_price=D(95), reduce_only=True),
        parent_client_order_id=entry.client_order_id,
    )  # fmt: skip
    for o in (entry, stop):
        o.transition(OrderState.SUBMITTING)
        o.transition(OrderState.ACCEPTED)
    entry.apply_fill(Fill(f"x-{sig}", entry.client_order_id, "AAPL", Side.BUY, q, D(100), T0))
    if stop_state is OrderState.CANCELLED:
        stop.transition(OrderState.CANCELLED, "cancelled by the broker")
    for o in (entry, stop):
        ctx.store.save_order(o, broker="ibkr", mode="live")


def test_status_json_shows_locks_broker_stops_and_guards(ctx: SafetyContext, data_dir: Path) -> None:
    _stopped_out(ctx, "MSFT", T0)
    ctx.store.record_equity(T0, "paper", D(99950), D(99950))
    _live_bracket(ctx, "covered", OrderState.ACCEPTED)
    _live_bracket(ctx, "naked", OrderState.CANCELLED)
    CircuitBreaker("ibkr", BreakerConfig(max_disconnects=1), ctx).record(BreakerEvent.DISCONNECT, "socket")
    acct = AccountInfo("U1", "USD", equity=D(100000), cash=D(0), available_funds=D(20000))
    MarginMonitor(MarginConfig(), ctx).check(MarginReading.from_account("ibkr", acct))

    r = CliRunner().invoke(app, ["status", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    # The paper book's time is 2018-02-02 (its last equity point), not today: the cooldown holds.
    assert {(lk["policy"], lk["scope"]) for lk in s["protection_locks"]} == {("cooldown", "MSFT")}
    by_sig = {p["signal_id"]: p for p in s["broker_positions"]}
    assert by_sig["covered"]["unprotected"] is False
    assert by_sig["covered"]["broker_stops"] == [
        {"client_order_id": client_order_id("covered", "stop"), "stop_price": "95", "quantity": "10",
         "state": "ACCEPTED"}
    ]  # fmt: skip
    assert by_sig["naked"]["unprotected"] is True and by_sig["naked"]["broker_stops"] == []
    assert s["breakers"]["ibkr"]["state"] == "tripped"
    assert s["margin"]["level"] == "warn"
    assert s["trading_state"]["state"] == "halted"
    assert {"day", "pnl_pct", "daily_loss_limit_pct", "limit_hit"} <= set(s["daily_pnl"])
    assert s["audit"]["ok"] is True and "daemon" in s
    assert {o["client_order_id"] for o in s["working_orders"]} == {client_order_id("covered", "stop")}

    human = CliRunner().invoke(app, ["status"])
    assert human.exit_code == 0, human.output
    out = human.stdout
    assert "protection lock cooldown on MSFT" in out
    assert "broker-side stops" in out and "10 @ 95 (ACCEPTED)" in out and "NO" in out
    assert "breaker ibkr: tripped" in out and "margin: warn at ibkr" in out


def test_status_without_locks_says_none(data_dir: Path) -> None:
    r = CliRunner().invoke(app, ["status"])
    assert r.exit_code == 0 and "protection locks: none" in r.stdout
    # A fresh folder has no equity marked: said so, not "today (None): PnL 0 (0%)" (review r1119).
    assert "today: no equity recorded yet" in r.stdout and "None" not in r.stdout


def test_a_fresh_heartbeat_with_no_process_on_the_folder_is_not_a_running_daemon(
    ctx: SafetyContext, data_dir: Path
) -> None:
    """Hostile review: a daemon SIGKILLed (or OOM-killed) a moment ago left a heartbeat younger than the
    stale cut-off (3 × its interval: minutes with a 60 s heartbeat), and `joe status` said "daemon:
    running" while no process held the data folder. The folder's lock is the proof of life."""
    from joe.runtime.daemon import HEARTBEAT_KEY
    from joe.safety.lock import InstanceLock

    ctx.store.set_state(HEARTBEAT_KEY, {"ts": datetime.now(UTC).isoformat(), "status": "running",
                                        "pid": 2**22 + 7, "mode": "paper", "every_s": 600})  # fmt: skip
    r = CliRunner().invoke(app, ["status"])
    assert r.exit_code == 0, r.output
    assert "daemon: running" not in r.stdout and "daemon: GONE" in r.stdout
    doc = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert doc["daemon"]["running"] is False and doc["daemon"]["gone"] is True
    with InstanceLock.for_data_dir(data_dir):  # a process holds the folder: the beat is believed
        held = CliRunner().invoke(app, ["status"])
    assert "daemon: running" in held.stdout, held.output
