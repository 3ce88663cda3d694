"""`joe daemon` in live (demo) mode as a separate process against the Capital.com simulator, through
the real client (httpx + websockets): it reconciles first, watches the open bracket, trails its stop
at the broker as the price rises (confirmed, never loosened), exits 0 on SIGTERM with the stop
resting, and books the broker's stop fill exactly once. The simulator's state is the truth."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.store import open_store
from market_clock import sim_clock
from runtime.daemon_harness import DaemonProc, audit_kinds, heartbeat, read_store, settled, until

SIG = "daemon-live-1"
CENT = Decimal("0.01")
LIVE_CONFIG = """\
version: 1
live:
  enabled: true
ai:
  enabled: false
daemon:
  backup_exit_grace_s: 2
  trail_step_pct: 0.5
"""


@pytest.fixture
async def sim() -> AsyncIterator[CapitalSimulator]:
    s = CapitalSimulator(seed=11, limits=SimLimits().scaled(10.0), tick_s=0.05, clock=sim_clock())
    await s.start()
    s.paused = True  # prices move only when the test says so
    yield s
    await s.stop()


def live_env(project: Path, sim: CapitalSimulator) -> dict[str, str]:
    login = sim.login
    return {
        **os.environ, "TRADING_MODE": "live", "JOE_BROKER": "capital", "CAPITAL_DEMO": "true",
        "CAPITAL_API_KEY": login.api_key, "CAPITAL_IDENTIFIER": login.identifier,
        "CAPITAL_PASSWORD": login.password, "CAPITAL_API_URL": sim.url, "CAPITAL_STREAM_URL": sim.stream_url,
        "JOE_DATA_DIR": str(project / "data"), "JOE_CONFIG": str(project / "config/execution.yaml"),
    }  # fmt: skip


def mid_of(sim: CapitalSimulator, epic: str = "GOLD") -> Decimal:
    bid, ask = sim.exchange.quote(epic)
    return ((Decimal(str(bid)) + Decimal(str(ask))) / 2).quantize(CENT)


def positions(sim: CapitalSimulator, epic: str = "GOLD") -> list[Any]:
    return [p for p in sim.account().positions if p.epic == epic]


def resting_stop(sim: CapitalSimulator) -> Decimal | None:
    ps = positions(sim)
    if len(ps) != 1 or ps[0].stop_order is None:
        return None
    return Decimal(str(ps[0].stop_order.stop_price))


async def place_bracket(sim: CapitalSimulator, data: Path, stop: Decimal, target: Decimal) -> None:
    """A previous run of Joe (live) opened a bracket: entry filled, stop and target resting."""
    login = sim.login
    client = CapitalClient(sim.url, Credentials(login.api_key, login.identifier, login.password),
                           audit=NullAudit(), limits=Limits().scaled(10.0))  # fmt: skip
    await client.open()
    store = open_store(f"sqlite:///{data / 'joe.db'}", data_dir=data)
    xc = CapitalExecutionClient(client, audit=NullAudit(), confirm_interval_s=0.02, confirm_timeout_s=2.0)
    om = OrderManager(xc, store, NullAudit())
    try:
        await om.start()
        q = Decimal(1)
        await om.submit([
            OrderIntent(client_order_id(SIG, "entry"), SIG, OrderLeg.ENTRY, "GOLD", Side.BUY, q,
                        stop_loss=stop, take_profit=target),
            OrderIntent(client_order_id(SIG, "stop"), SIG, OrderLeg.STOP_LOSS, "GOLD", Side.SELL, q,
                        OrderType.STOP, stop_price=stop, reduce_only=True),
            OrderIntent(client_order_id(SIG, "target"), SIG, OrderLeg.TAKE_PROFIT, "GOLD", Side.SELL, q,
                        OrderType.LIMIT, limit_price=target, reduce_only=True),
        ])  # fmt: skip
        entry = client_order_id(SIG, "entry")
        await until(lambda: om.order(entry).state is OrderState.FILLED, "entry filled")  # type: ignore[union-attr]
        await until(lambda: resting_stop(sim) == stop, "stop resting at the broker")
    finally:
        await om.stop()
        await client.close()
        store.close()


async def push_price(sim: CapitalSimulator, mid: Decimal) -> None:
    sim.set_mid("GOLD", float(mid))
    await sim.stream.pump(["GOLD"])


@pytest.mark.timeout(300)
async def test_live_daemon_trails_the_broker_stop_exits_0_and_books_the_stop_fill_once(
    sim: CapitalSimulator, project: Path
) -> None:
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    data = project / "data"
    data.mkdir(exist_ok=True)
    m0 = mid_of(sim)
    stop0, target = (m0 * Decimal("0.95")).quantize(CENT), (m0 * Decimal("1.3")).quantize(CENT)
    await place_bracket(sim, data, stop0, target)
    env = live_env(project, sim)

    d = DaemonProc(project, env, "capital")
    try:
        beat = await d.beat(
            lambda b: b["status"] == "running" and b["mode"] == "live" and b["positions"] == 1,
            "the bracket watched",
        )
        assert beat["broker_connected"] and beat["reconciled"]["explained"] is True  # reconciled first
        # The price rises 3% in steps: the stop follows at the broker, in steps, confirmed.
        for k in range(1, 7):
            await push_price(sim, m0 * (1 + Decimal("0.005") * k))
            await asyncio.sleep(0.1)
        await until(lambda: (resting_stop(sim) or stop0) > stop0, "the stop moved at the broker")
        top = m0 * Decimal("1.03")
        moved = await settled(lambda: resting_stop(sim), lambda: push_price(sim, top))  # every step landed
        assert moved is not None and moved > stop0 and moved < m0 * Decimal("1.03")
        # Falling back (still above the stop): the stop never loosens.
        await push_price(sim, m0 * Decimal("1.01"))
        await asyncio.sleep(1.0)
        assert resting_stop(sim) == moved
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    assert resting_stop(sim) == moved  # SIGTERM left the position protected at the broker
    assert heartbeat(data)["status"] == "stopped"  # type: ignore[index]
    kinds = audit_kinds(project)
    if "reconcile.report" in kinds:  # the Reconciler ran before the position was watched
        assert kinds.index("reconcile.report") < kinds.index("daemon.watching")
    assert "monitor.stop_moved" in kinds

    # Restarted: it reconciles, watches the position again at the broker's (trailed) stop; the price
    # falls through the stop, the broker fills it, and the fill is booked exactly once.
    d = DaemonProc(project, env, "capital")
    try:
        await d.beat(lambda b: b["status"] == "running" and b["positions"] == 1, "watching after restart")
        assert moved is not None
        await push_price(sim, moved - Decimal(2))
        await until(lambda: not positions(sim), "the broker's stop filled")
        await d.beat(lambda b: b["positions"] == 0, "the position closed in the daemon")
        await asyncio.sleep(1.0)
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    orders = read_store(data, lambda s: s.orders_for_signal(SIG))
    by_leg = {o.intent.leg: o for o in orders}
    assert by_leg[OrderLeg.STOP_LOSS].state is OrderState.FILLED
    assert by_leg[OrderLeg.STOP_LOSS].filled_quantity == Decimal(1)
    assert not [o for o in orders if o.intent.leg is OrderLeg.EXIT]  # the broker's stop did it: no bot exit
    fills = read_store(data, lambda s: s.fills(client_order_id(SIG, "stop")))
    assert len(fills) == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_sigkill_at_random_moments_then_restart_keeps_one_deal_and_its_stop(
    sim: CapitalSimulator, project: Path
) -> None:
    """10 seeds: the daemon is SIGKILLed at a random moment while the price trails up (stop modifies
    in flight); a fresh daemon restarts and reconciles. At the end: one deal at the broker for the one
    entry, one entry fill in Joe's store, the position protected by a stop Joe knows, never loosened."""
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    data = project / "data"
    data.mkdir(exist_ok=True)
    m0 = mid_of(sim)
    stop0, target = (m0 * Decimal("0.95")).quantize(CENT), (m0 * Decimal("1.5")).quantize(CENT)
    await place_bracket(sim, data, stop0, target)
    env = live_env(project, sim)
    price, last_stop = m0, stop0

    def check() -> Decimal:
        ps = positions(sim)
        assert len(ps) == 1 and Decimal(str(ps[0].size)) == 1, "one deal for the one entry"
        stop = resting_stop(sim)
        assert stop is not None and stop >= last_stop, f"stop {stop} missing or loosened (was {last_stop})"
        orders = read_store(data, lambda s: s.orders_for_signal(SIG))
        assert [o.intent.leg for o in orders].count(OrderLeg.ENTRY) == 1
        assert not [o for o in orders if o.intent.leg is OrderLeg.EXIT]
        assert len(read_store(data, lambda s: s.fills(client_order_id(SIG, "entry")))) == 1
        return stop

    for seed in range(10):
        rng = random.Random(seed)
        d = DaemonProc(project, env, "capital")
        try:
            await d.beat(lambda b: b["status"] == "running" and b["positions"] == 1, f"seed {seed} running")
            end = asyncio.get_running_loop().time() + rng.uniform(0.0, 2.0)
            while asyncio.get_running_loop().time() < end:
                price += (m0 * Decimal("0.002")).quantize(CENT)
                await push_price(sim, price)
                await asyncio.sleep(rng.uniform(0.01, 0.2))
        finally:
            await d.kill()
        last_stop = check()
    d = DaemonProc(project, env, "capital")
    try:
        await d.beat(lambda b: b["status"] == "running" and b["positions"] == 1, "final restart")
        stop = await settled(lambda: resting_stop(sim), lambda: push_price(sim, price))
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    last_stop = check()
    assert stop == last_stop and stop > stop0  # it trailed across the restarts
    working = [o for o in read_store(data, lambda s: s.orders_for_signal(SIG))
               if o.intent.leg is OrderLeg.STOP_LOSS and o.state is OrderState.ACCEPTED]  # fmt: skip
    assert len(working) == 1 and working[0].intent.stop_price == stop  # Joe's record = the broker's


@pytest.mark.timeout(300)
async def test_shadow_daemon_streams_and_checks_margin_but_sends_no_order(
    sim: CapitalSimulator, project: Path
) -> None:
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    env = {**live_env(project, sim), "TRADING_MODE": "shadow"}
    d = DaemonProc(project, env, "capital", "--watch", "GOLD")
    try:
        await d.beat(lambda b: b["status"] == "running" and b["mode"] == "shadow", "running in shadow")
        for _ in range(100):  # the subscription may land after the first heartbeat: quote until seen
            await push_price(sim, mid_of(sim) + Decimal("0.1"))
            beat = heartbeat(project / "data")
            if beat is not None and beat["quotes"] >= 1:
                break
            await asyncio.sleep(0.3)
        await d.beat(lambda b: b["quotes"] >= 1, "a quote")
        await until(lambda: "safety.margin" in audit_kinds(project), "a margin reading")
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    assert read_store(project / "data", lambda s: s.get_state("safety.margin"))["level"] == "ok"
    assert sim.count("/accounts", method="GET") >= 1  # the account was read (paths as recorded)
    for path in ("/positions", "/workingorders"):  # nothing transmitted
        assert sim.count(path, method="POST") == 0 and sim.count(path, method="PUT") == 0
        assert sim.count(path, method="DELETE") == 0
