"""HALTED cancels working entry orders through the `OrderManager`; protective stops stay.

At both simulators, through the client code a user runs: a resting LMT entry (with its bracket) and
an open position with its stop. A move to HALTED — from a guard in this process (breaker, margin
monitor, control function) or from another process (the kill file, ``joe kill`` on the store) —
ends with the LMT entry cancelled at the broker and the position's stop still resting there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from joe.audit.log import tail
from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.brokers.ibkr import IBKRExecutionClient
from joe.config.schema import BreakerConfig, MarginConfig
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import AccountInfo, OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.safety.alert_audit import AlertingAudit
from joe.safety.circuit_breaker import BreakerEvent, CircuitBreaker
from joe.safety.control import SafetyContext, alert_on_state_changes, kill
from joe.safety.halt_enforcer import HaltEnforcer
from joe.safety.kill_switch import KillLevel, write_kill_file
from joe.safety.margin_monitor import MarginMonitor, MarginReading
from joe.safety.trading_state import TradingState, TradingStateStore
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.ibkr import IBKRSimulator
from market_clock import sim_clock

D = Decimal
S = OrderState


async def until(pred: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _bracket(
    sig: str, symbol: str, side: Side, qty: str, stop: D, target: D, limit: D | None
) -> list[OrderIntent]:
    q, exit_side = D(qty), side.opposite
    entry_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
    return [
        OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, symbol, side, q,
                    order_type=entry_type, limit_price=limit, stop_loss=stop, take_profit=target),
        OrderIntent(client_order_id(sig, "stop"), sig, OrderLeg.STOP_LOSS, symbol, exit_side, q,
                    order_type=OrderType.STOP, stop_price=stop, reduce_only=True),
        OrderIntent(client_order_id(sig, "target"), sig, OrderLeg.TAKE_PROFIT, symbol, exit_side, q,
                    order_type=OrderType.LIMIT, limit_price=target, reduce_only=True),
    ]  # fmt: skip


# Each way of moving to HALTED; the ones marked "other process" act on the store/data folder only.
def _via_control(ctx: SafetyContext) -> None:
    kill(ctx, KillLevel.HALT, reason="test: control function", by="test")


def _via_breaker(ctx: SafetyContext) -> None:
    b = CircuitBreaker("test", BreakerConfig(max_unknown=1), ctx)
    b.record(BreakerEvent.UNKNOWN, "order outcome unknown")


def _via_margin(ctx: SafetyContext) -> None:
    acct = AccountInfo("U1", "USD", equity=D(100000), cash=D(0), available_funds=D(2000))
    MarginMonitor(MarginConfig(), ctx).check(MarginReading.from_account("test", acct))


def _via_reconciler(ctx: SafetyContext) -> None:
    # What `joe.execution.reconciler.Reconciler` does on an unexplained mismatch: its own state store.
    TradingStateStore(ctx.store, ctx.audit).escalate(
        TradingState.HALTED, by="reconciler:test", reason="position mismatch"
    )


def _via_kill_file(ctx: SafetyContext) -> None:  # other process: `touch data/KILL`
    write_kill_file(ctx.data_dir, KillLevel.HALT, "operator kill file")


def _via_other_process_cli(ctx: SafetyContext) -> None:  # other process: `joe kill --halt`
    from joe.safety.trading_state import STATE_KEY, StateRecord

    rec = StateRecord(TradingState.HALTED, "cli:someone", "kill --halt: from another shell", "")
    ctx.store.set_state(STATE_KEY, rec.to_json())


def _via_reduce(ctx: SafetyContext) -> None:  # REDUCING is "exits only": a resting entry goes too
    kill(ctx, KillLevel.REDUCE, reason="test: exits only", by="test")


HALTS = {
    "reduce": _via_reduce,
    "control": _via_control,
    "breaker": _via_breaker,
    "margin": _via_margin,
    "reconciler": _via_reconciler,
    "kill_file": _via_kill_file,
    "other_process_cli": _via_other_process_cli,
}


@pytest.fixture
async def ibkr(data_dir: Path, ctx: SafetyContext) -> AsyncIterator[tuple[IBKRSimulator, OrderManager]]:
    sim = IBKRSimulator(server_version=178, seed=7, clock=sim_clock())
    await sim.start()
    client = IBKRExecutionClient(
        "127.0.0.1", sim.port, 51, "", "paper", NullAudit(), data_dir / "ids.json",
        backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0, request_timeout=3.0,
    )  # fmt: skip
    await client.connect()
    # The audit sink that also alerts (fills, rejects, UNKNOWN), as the live wiring hands it over.
    om = OrderManager(client, ctx.store, AlertingAudit(ctx.audit, ctx.alerts), confirm_timeout=2.0)
    await om.start()
    try:
        yield sim, om
    finally:
        await om.stop()
        await client.close()
        await sim.stop()


@pytest.fixture
async def capital(ctx: SafetyContext) -> AsyncIterator[tuple[CapitalSimulator, OrderManager]]:
    sim = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02, clock=sim_clock())
    await sim.start()
    creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password, False)
    http = CapitalClient(sim.url, creds, audit=NullAudit(), limits=Limits().scaled(10.0), backoff_s=0.01)
    await http.open()
    xc = CapitalExecutionClient(
        http, audit=NullAudit(), confirm_interval_s=0.02, confirm_timeout_s=0.6, fill_wait_s=0.5
    )
    om = OrderManager(xc, ctx.store, ctx.audit, confirm_timeout=2.0)
    await om.start()
    try:
        yield sim, om
    finally:
        await om.stop()
        await http.close()
        await sim.stop()


async def _enforce(how: str, ctx: SafetyContext, om: OrderManager) -> HaltEnforcer:
    enforcer = HaltEnforcer(ctx, [om], poll_s=0.05)
    enforcer.install()
    stop_alerting = alert_on_state_changes(ctx)
    poller = asyncio.create_task(enforcer.run()) if how in ("kill_file", "other_process_cli") else None
    try:
        HALTS[how](ctx)
        await asyncio.sleep(0)  # in-process: the listener has scheduled its pass
        await enforcer.drain()
        if poller is not None:
            await until(lambda: bool(enforcer.reports), "the poll to see the halt")
    finally:
        enforcer.uninstall()
        stop_alerting()
        if poller is not None:
            poller.cancel()
    want = TradingState.REDUCING if how == "reduce" else TradingState.HALTED
    assert ctx.states.current().state is want
    return enforcer


def _state(om: OrderManager, coid: str) -> S | None:
    o = om.order(coid)
    return None if o is None else o.state


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", list(HALTS))
async def test_ibkr_halt_cancels_the_resting_entry_and_keeps_the_stop(
    how: str, ibkr: tuple[IBKRSimulator, OrderManager], ctx: SafetyContext
) -> None:
    sim, om = ibkr
    sim.set_price("AAPL", 100)
    sim.set_price("MSFT", 200)
    held = _bracket("h-open", "AAPL", Side.BUY, "10", D(95), D(110), None)
    resting = _bracket("h-rest", "MSFT", Side.BUY, "5", D(170), D(230), D(180))
    await om.submit(held)
    await om.submit(resting)
    await until(lambda: _state(om, held[1].client_order_id) is S.ACCEPTED, "the open position's stop")
    await until(lambda: _state(om, resting[0].client_order_id) is S.ACCEPTED, "the resting LMT entry")

    enforcer = await _enforce(how, ctx, om)

    entry_id = resting[0].client_order_id
    assert entry_id in [c for r in enforcer.reports for c in r.cancelled]
    await until(lambda: _state(om, entry_id) is S.CANCELLED, "the entry cancel to be confirmed")
    working = {o.placed.order_ref: o for o in sim.book.working()}
    assert entry_id not in working  # the broker is the truth: the entry is gone there
    stop = working.get(held[1].client_order_id)
    assert stop is not None and stop.sim.stop_price == D(95)  # the stop of the open position rests
    assert sim.book.positions["AAPL"].qty == D(10)
    recs = [r for r in tail(ctx.data_dir / "audit", 400) if r["event"] == "safety.entries_cancelled"]
    assert recs and entry_id in recs[-1]["payload"]["cancelled"]
    titles = [a.title for a in ctx.alerts.pending]
    assert "FILL: AAPL" in titles  # execution alerts, end to end
    if how not in ("other_process_cli", "reduce"):  # another process alerts its own state change
        assert "Trading state: HALTED" in titles


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["control", "reduce", "breaker", "kill_file", "other_process_cli"])
async def test_capital_halt_cancels_the_resting_entry_and_keeps_the_stop(
    how: str, capital: tuple[CapitalSimulator, OrderManager], ctx: SafetyContext
) -> None:
    sim, om = capital
    bid, ask = sim.exchange.quote("GOLD")
    mid = (bid + ask) / 2
    held = _bracket("c-open", "GOLD", Side.BUY, "1", (mid * D("0.95")).quantize(D("0.01")),
                    (mid * D("1.05")).quantize(D("0.01")), None)  # fmt: skip
    low = (mid * D("0.90")).quantize(D("0.01"))
    resting = _bracket("c-rest", "GOLD", Side.BUY, "1", (low * D("0.95")).quantize(D("0.01")),
                       (low * D("1.10")).quantize(D("0.01")), low)  # fmt: skip
    await om.submit(held)
    await om.submit(resting)
    await until(lambda: _state(om, held[1].client_order_id) is S.ACCEPTED, "the open position's stop")
    await until(lambda: _state(om, resting[0].client_order_id) is S.ACCEPTED, "the resting LMT entry")
    acc = sim.account()
    assert len(acc.orders) == 1 and len(acc.positions) == 1

    await _enforce(how, ctx, om)

    await until(lambda: _state(om, resting[0].client_order_id) is S.CANCELLED, "the entry cancel")
    acc = sim.account()
    assert acc.orders == []  # the working LMT entry is gone at the broker
    [pos] = acc.positions
    assert pos.stop_order is not None and pos.stop_order.stop_price == held[1].stop_price  # stop rests


@pytest.mark.timeout(90)
@pytest.mark.parametrize("asked_by", ["kill_file", "cli_while_running"])
async def test_ibkr_flatten_asked_of_the_running_joe_is_done_by_its_order_managers(
    asked_by: str, ibkr: tuple[IBKRSimulator, OrderManager], ctx: SafetyContext
) -> None:
    """`data/KILL` saying flatten, or `joe kill --flatten` while this process holds the data folder:
    the process that owns the orders closes everything through its OrderManager."""
    from joe.safety.halt_enforcer import BROKER_FLATTEN_KEY

    sim, om = ibkr
    sim.set_price("AAPL", 100)
    sim.set_price("MSFT", 200)
    held = _bracket("f-open", "AAPL", Side.BUY, "10", D(95), D(110), None)
    resting = _bracket("f-rest", "MSFT", Side.BUY, "5", D(170), D(230), D(180))
    await om.submit(held)
    await om.submit(resting)
    await until(lambda: _state(om, held[1].client_order_id) is S.ACCEPTED, "the open position's stop")
    await until(lambda: _state(om, resting[0].client_order_id) is S.ACCEPTED, "the resting LMT entry")
    if asked_by == "kill_file":
        write_kill_file(ctx.data_dir, KillLevel.FLATTEN, "flatten everything now")
    else:
        kill(ctx, KillLevel.FLATTEN, reason="flatten from another shell", by="cli:other")
        ctx.store.set_state(BROKER_FLATTEN_KEY, {"reason": "flatten from another shell", "by": "cli:other"})

    enforcer = HaltEnforcer(ctx, [om], poll_s=0.05)
    await enforcer.enforce()

    assert enforcer.flattened and all(r.flat for r in enforcer.flattened), [
        r.to_dict() for r in enforcer.flattened
    ]
    assert {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {}
    assert sim.book.working() == []
    assert ctx.store.get_state(BROKER_FLATTEN_KEY) is None  # done: the request is cleared
    # Joe's own books see the position closed by its signal's exit (not an anonymous order).
    await until(lambda: om.position_of("f-open") == 0, "the signal's exit fill")
    n = len(enforcer.flattened)
    await enforcer.enforce()  # the same kill file again: nothing more to do
    assert len(enforcer.flattened) == n


def test_cli_flatten_while_another_joe_runs_leaves_the_request(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from joe.cli.main import app
    from joe.safety.lock import InstanceLock

    cfg = data_dir.parent / "execution.yaml"
    cfg.write_text("version: 1\nlive:\n  enabled: true\n")
    live = {"TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_PORT": "4002", "IBKR_ACCOUNT": "DU1234567"}
    for k, v in (live | {"IBKR_HOST": "127.0.0.1", "IBKR_CLIENT_ID": "3"}).items():
        monkeypatch.setenv(k, v)
    import os

    with InstanceLock.for_data_dir(data_dir) as lock:  # "the daemon": another process's pid holds it
        lock.path.write_text(f"{os.getpid() + 100000}\n")
        r = CliRunner().invoke(app, ["kill", "--flatten", "--reason", "get out now", "--json"])
    assert r.exit_code == 3, r.output
    out = json.loads(r.stdout)
    assert out["mode"] == "live" and out["trading_state"]["state"] == "halted"
    assert "another Joe is running" in out["flatten"]["error"] and out["flatten"]["transmitted"] is False
    st = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert st["broker_flatten_pending"]["reason"] == "get out now"


async def test_a_process_without_order_managers_leaves_the_flatten_request(ctx: SafetyContext) -> None:
    from joe.safety.halt_enforcer import BROKER_FLATTEN_KEY

    ctx.store.set_state(BROKER_FLATTEN_KEY, {"reason": "x", "by": "cli:other"})
    kill(ctx, KillLevel.FLATTEN, reason="x", by="cli:other")
    enforcer = HaltEnforcer(ctx, [])
    await enforcer.enforce()
    assert ctx.store.get_state(BROKER_FLATTEN_KEY) is not None and enforcer.flattened == []


async def test_broker_flatten_retries_the_connection_within_limits(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from joe.runtime.bootstrap import bootstrap
    from joe.safety.broker_flatten import flatten_at_broker

    (data_dir.parent / "execution.yaml").write_text(
        "version: 1\nlive:\n  enabled: true\nsafety:\n  flatten_attempts: 4\n"
    )
    live = {"TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_PORT": "4002", "IBKR_ACCOUNT": "DU1234567"}
    for k, v in live.items():
        monkeypatch.setenv(k, v)
    rt = bootstrap()
    tries: list[int] = []

    async def down(_rt: object) -> Any:
        tries.append(1)
        raise ConnectionRefusedError("gateway restarting")

    try:
        ctx = SafetyContext.from_runtime(rt)
        with pytest.raises(ConnectionRefusedError):
            await flatten_at_broker(rt, ctx, reason="x", by="test", pause_s=0, connect=down)
        assert len(tries) == 4 and ctx.states.current().state is TradingState.HALTED
        failed = [r for r in tail(data_dir / "audit", 50) if r["event"] == "safety.flatten_connect_failed"]
        assert [r["payload"]["attempt"] for r in failed] == [1, 2, 3, 4]
    finally:
        rt.close()
