"""PositionMonitor → OrderManager → Capital.com simulator (the real httpx client on the wire): a
trailing stop is moved at the broker in steps and only after the broker confirms; when the price is
through the stop and the broker holds no stop to fill, exactly one reduce-only exit reaches it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.execution.monitor_bridge import OrderManagerBridge
from joe.execution.order_manager import OrderManager
from joe.execution.position_monitor import PositionMonitor
from joe.execution.protection import TrailingStop, WatchedPosition
from joe.execution.quotes import InstrumentIndex, QuoteBatch
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.store import open_store
from market_clock import sim_clock

SIG = "trail-1"
CENT = Decimal("0.01")


async def until(cond: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def sim() -> AsyncIterator[CapitalSimulator]:
    s = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02, clock=sim_clock())
    await s.start()
    s.paused = True  # prices move only when the test says so
    yield s
    await s.stop()


def mid_of(sim: CapitalSimulator) -> Decimal:
    bid, ask = sim.exchange.quote("GOLD")
    return ((Decimal(str(bid)) + Decimal(str(ask))) / 2).quantize(CENT)


def gold_positions(sim: CapitalSimulator) -> list[object]:
    return [p for p in sim.account().positions if p.epic == "GOLD"]


async def test_trailing_stop_moves_at_the_broker_then_one_backup_exit(
    sim: CapitalSimulator, tmp_path: Path
) -> None:
    login = sim.login
    client = CapitalClient(sim.url, Credentials(login.api_key, login.identifier, login.password),
                           audit=NullAudit(), limits=Limits().scaled(10.0))  # fmt: skip
    await client.open()
    store = open_store(data_dir=tmp_path)
    audit = NullAudit()
    xc = CapitalExecutionClient(client, audit=audit, confirm_interval_s=0.02, confirm_timeout_s=2.0)
    om = OrderManager(xc, store, audit)
    try:
        await om.start()
        m0 = mid_of(sim)
        stop0, target = (m0 * Decimal("0.95")).quantize(CENT), (m0 * Decimal("1.2")).quantize(CENT)
        q = Decimal(1)

        def exit_leg(leg: OrderLeg, kind: OrderType, **price: Decimal) -> OrderIntent:
            name = "stop" if leg is OrderLeg.STOP_LOSS else "target"
            coid = client_order_id(SIG, name)
            return OrderIntent(coid, SIG, leg, "GOLD", Side.SELL, q, kind, reduce_only=True, **price)  # type: ignore[arg-type]

        await om.submit([
            OrderIntent(client_order_id(SIG, "entry"), SIG, OrderLeg.ENTRY, "GOLD", Side.BUY, q),
            exit_leg(OrderLeg.STOP_LOSS, OrderType.STOP, stop_price=stop0),
            exit_leg(OrderLeg.TAKE_PROFIT, OrderType.LIMIT, limit_price=target),
        ])  # fmt: skip
        entry = client_order_id(SIG, "entry")
        await until(lambda: om.order(entry).state is OrderState.FILLED, "entry filled")  # type: ignore[union-attr]

        idx = InstrumentIndex()
        bridge = OrderManagerBridge(om, audit, confirm_timeout_s=5.0)
        monitor = PositionMonitor(idx, bridge, grace_s=0.0, audit=audit)
        bridge.monitor = monitor
        step = (m0 * Decimal("0.005")).quantize(CENT)
        monitor.add(WatchedPosition(SIG, "GOLD", Side.BUY, q, m0, stop=stop0, take_profit=target,
                                    trailing=TrailingStop(m0 - stop0, step)))  # fmt: skip
        assert monitor.check_protection(bridge) == []

        def quote(mid: Decimal, t: int) -> None:
            sim.set_mid("GOLD", float(mid))
            bid, ask = sim.exchange.quote("GOLD")
            monitor.on_batch(QuoteBatch.of([idx.id("GOLD")], [t], [float(bid)], [float(ask)]))

        # the price rises 2%: the stop may tighten by whole steps behind it, confirmed by the broker
        quote(m0 * Decimal("1.02"), 1)
        await until(lambda: monitor.stop_of(SIG) != stop0, "stop confirmed")
        new_stop = monitor.stop_of(SIG)
        assert new_stop is not None and new_stop > stop0 and (new_stop - stop0) % step == 0
        [pos] = gold_positions(sim)
        assert pos.stop_order is not None and Decimal(str(pos.stop_order.stop_price)) == new_stop  # type: ignore[attr-defined]
        assert monitor.check_protection(bridge) == []
        quote(m0 * Decimal("1.01"), 2)  # falling back: the stop never loosens
        await asyncio.sleep(0.2)
        assert monitor.stop_of(SIG) == new_stop

        # The broker's stop disappears (cancelled); the price falls through Joe's stop level.
        await om.cancel(client_order_id(SIG, "stop"))
        await until(lambda: gold_positions(sim)[0].stop_order is None, "stop gone at the broker")  # type: ignore[attr-defined]
        assert [g.problem for g in monitor.check_protection(bridge)] == ["no resting stop at the broker"]
        assert new_stop is not None
        for t in range(3, 8):
            quote(new_stop - Decimal(1), t)
            monitor.tick(t * 10**9)
        await until(lambda: not gold_positions(sim), "position closed at the broker")
        await bridge.close()
        bridge.refresh()
        assert SIG not in monitor
        exits = [o for o in om.book.signal_orders(SIG) if o.intent.leg is OrderLeg.EXIT]
        assert len(exits) == 1 and exits[0].intent.reduce_only
        assert [r[0] for r in audit.records].count("monitor.exit_requested") == 1
    finally:
        await om.stop()
        await client.close()
        store.close()
