"""`joe daemon` in live mode (an IBKR paper `DU…` account) as a separate process against the TWS
simulator, through ib_async on the real wire: it reconciles first, watches the open bracket, trails
its stop at the broker as the price rises (confirmed, never loosened), exits 0 on SIGTERM with the
stop resting; restarted, it books the broker's stop fill exactly once. SIGKILL at random moments
then restart: no duplicate order, no lost fill, the position protected. The simulator is the truth."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import subprocess
import tempfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from joe.brokers.ibkr.client import IBKRExecutionClient
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.simulators.ibkr import IBKRSimulator
from joe.store import open_store
from market_clock import sim_clock
from runtime.daemon_harness import JOE, DaemonProc, audit_kinds, heartbeat, read_store, settled, until

SIG = "daemon-ibkr-1"
CLIENT_ID = 7
ACCOUNT = "DU1234567"
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
STOP_ID, TARGET_ID = client_order_id(SIG, "stop"), client_order_id(SIG, "target")


@functools.cache
def gates_accept_a_simulator_port() -> bool:
    """Do the live gates accept a paper (DU…) account on a non-standard port (the simulator's)?
    They do once issue 10's gates land; before that, live mode falls back to paper there."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "execution.yaml"
        cfg.write_text(LIVE_CONFIG)
        env = {**os.environ, "TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_PORT": "45123",
               "IBKR_ACCOUNT": ACCOUNT, "JOE_CONFIG": str(cfg),
               "JOE_DATA_DIR": str(Path(tmp) / "data")}  # fmt: skip
        out = subprocess.run([JOE, "mode", "--json"], env=env, capture_output=True, text=True, timeout=120)
    return bool(out.returncode == 0 and json.loads(out.stdout).get("mode") == "live")


@pytest.fixture(autouse=True)
def _live_gates() -> None:
    if not gates_accept_a_simulator_port():
        pytest.skip("the live gates do not accept the TWS simulator's port for a DU account yet (issue 10)")


@pytest.fixture
async def sim() -> AsyncIterator[IBKRSimulator]:
    s = IBKRSimulator(server_version=178, seed=7, account=ACCOUNT, clock=sim_clock())
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def live_env(project: Path, sim: IBKRSimulator) -> dict[str, str]:
    return {
        **os.environ, "TRADING_MODE": "live", "JOE_BROKER": "ibkr", "IBKR_PORT": str(sim.port),
        "IBKR_ACCOUNT": ACCOUNT, "IBKR_CLIENT_ID": str(CLIENT_ID),
        "JOE_DATA_DIR": str(project / "data"), "JOE_CONFIG": str(project / "config/execution.yaml"),
    }  # fmt: skip


def stop_at_broker(sim: IBKRSimulator) -> Decimal | None:
    """The resting stop's trigger price at the simulated TWS (None: no working stop)."""
    bo = sim.find(STOP_ID)
    if bo is None or bo.done:
        return None
    return Decimal(str(bo.placed.aux_price))


def position(sim: IBKRSimulator, symbol: str = "AAPL") -> Decimal:
    p = sim.book.positions.get(symbol)
    return p.qty if p is not None else Decimal(0)


async def place_bracket(sim: IBKRSimulator, data: Path) -> None:
    """A previous live run of Joe (same clientId and order-id file) opened a bracket on AAPL at 100:
    market entry filled, stop 95 and target 130 resting."""
    client = IBKRExecutionClient("127.0.0.1", sim.port, CLIENT_ID, ACCOUNT, "live", NullAudit(),
                                 data / "ibkr-order-ids.json", connect_timeout=5.0)  # fmt: skip
    await client.connect()
    store = open_store(f"sqlite:///{data / 'joe.db'}", data_dir=data)
    om = OrderManager(client, store, NullAudit())
    try:
        await om.start()
        q = Decimal(10)
        await om.submit([
            OrderIntent(client_order_id(SIG, "entry"), SIG, OrderLeg.ENTRY, "AAPL", Side.BUY, q,
                        stop_loss=Decimal(95), take_profit=Decimal(130)),
            OrderIntent(STOP_ID, SIG, OrderLeg.STOP_LOSS, "AAPL", Side.SELL, q, OrderType.STOP,
                        stop_price=Decimal(95), reduce_only=True),
            OrderIntent(TARGET_ID, SIG, OrderLeg.TAKE_PROFIT, "AAPL", Side.SELL, q, OrderType.LIMIT,
                        limit_price=Decimal(130), reduce_only=True),
        ])  # fmt: skip
        entry = client_order_id(SIG, "entry")
        await until(lambda: om.order(entry).state is OrderState.FILLED, "entry filled")  # type: ignore[union-attr]
        await until(lambda: stop_at_broker(sim) == Decimal(95), "stop resting at the broker")
    finally:
        await om.stop()
        await client.close()
        store.close()


async def setup(sim: IBKRSimulator, project: Path) -> dict[str, str]:
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    (project / "data").mkdir(exist_ok=True)
    sim.set_price("AAPL", 100)
    await place_bracket(sim, project / "data")
    assert position(sim) == 10
    return live_env(project, sim)


def assert_broker_truth(sim: IBKRSimulator, data: Path, *, open_qty: Decimal) -> None:
    """One order per intent at the broker, Joe's fills equal the broker's executions, and an open
    position has a working stop of its size."""
    refs = [o.placed.order_ref for o in sim.book.orders.values() if o.placed.order_ref.startswith("joe-")]
    assert len(refs) == len(set(refs)), f"an intent became two orders at the broker: {sorted(refs)}"
    assert position(sim) == open_qty
    if open_qty:
        bo = sim.find(STOP_ID)
        assert bo is not None and not bo.done and Decimal(bo.placed.quantity) == open_qty
    orders = read_store(data, lambda s: s.orders_for_signal(SIG))
    for o in orders:
        broker = sim.find(o.client_order_id)
        assert broker is not None
        assert o.filled_quantity == broker.sim.filled, (o.client_order_id, o.filled_quantity)


@pytest.mark.timeout(300)
async def test_live_daemon_trails_the_ibkr_stop_exits_0_and_books_the_stop_fill_once(
    sim: IBKRSimulator, project: Path
) -> None:
    env = await setup(sim, project)
    data = project / "data"
    d = DaemonProc(project, env, "ibkr")
    try:
        await d.beat(lambda b: b["status"] == "running" and b["mode"] == "live" and b["positions"] == 1,
                     "the bracket watched")  # fmt: skip
        for k in range(1, 7):  # the price rises to 103 in steps: the stop follows at the broker
            sim.set_price("AAPL", 100 + Decimal("0.5") * k)
            await asyncio.sleep(0.2)
        await until(lambda: (stop_at_broker(sim) or 0) > 95, "the stop moved at the broker")

        async def same_again() -> None:
            sim.set_price("AAPL", 103)

        moved = await settled(lambda: stop_at_broker(sim), same_again)  # every step has landed
        assert moved is not None and Decimal(95) < moved <= Decimal(98)
        sim.set_price("AAPL", 101)  # falling back, above the stop: never loosened
        await asyncio.sleep(1.0)
        assert stop_at_broker(sim) == moved
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    assert stop_at_broker(sim) == moved and position(sim) == 10  # left protected at the broker
    assert heartbeat(data)["status"] == "stopped"  # type: ignore[index]
    kinds = audit_kinds(project)
    assert "monitor.stop_moved" in kinds and "daemon.exit_unrouted" not in kinds
    if "reconcile.report" in kinds:  # the Reconciler ran before the position was watched
        assert kinds.index("reconcile.report") < kinds.index("daemon.watching")

    d = DaemonProc(project, env, "ibkr")
    try:
        await d.beat(lambda b: b["status"] == "running" and b["positions"] == 1, "watching after restart")
        sim.set_price("AAPL", moved - 1)  # through the stop: the broker fills it
        await until(lambda: position(sim) == 0, "the broker's stop filled")
        await d.beat(lambda b: b["positions"] == 0, "the position closed in the daemon")
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    orders = read_store(data, lambda s: s.orders_for_signal(SIG))
    assert not [o for o in orders if o.intent.leg is OrderLeg.EXIT]  # the broker's stop did it
    assert [o.state for o in orders if o.client_order_id == STOP_ID] == [OrderState.FILLED]
    assert len(read_store(data, lambda s: s.fills(STOP_ID))) == 1
    assert_broker_truth(sim, data, open_qty=Decimal(0))


@pytest.mark.timeout(300)
async def test_broker_stop_not_filled_while_through_it_gives_exactly_one_bot_exit(
    sim: IBKRSimulator, project: Path
) -> None:
    env = await setup(sim, project)
    data = project / "data"
    bo = sim.find(STOP_ID)
    assert bo is not None
    bo.active = False  # the broker shows the stop working but never triggers it (a stuck stop)
    d = DaemonProc(project, env, "ibkr", "--stale-after", "60")
    try:
        await d.beat(lambda b: b["status"] == "running" and b["positions"] == 1, "the bracket watched")
        for px in (94, 93.5, 93, 92.5, 92):  # through the stop for longer than the 2 s grace
            sim.set_price("AAPL", px)
            await asyncio.sleep(1.0)
        await until(lambda: position(sim) == 0, "the bot-side exit filled at the broker")
        await d.beat(lambda b: b["positions"] == 0, "the position closed in the daemon")
        for px in (91, 90):  # more quotes through the old stop: nothing more is sent
            sim.set_price("AAPL", px)
            await asyncio.sleep(0.5)
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    orders = read_store(data, lambda s: s.orders_for_signal(SIG))
    exits = [o for o in orders if o.intent.leg is OrderLeg.EXIT]
    assert len(exits) == 1 and exits[0].intent.reduce_only and exits[0].state is OrderState.FILLED
    assert audit_kinds(project).count("monitor.exit_requested") == 1
    assert position(sim) == 0  # reduce-only: flat, not reversed


@pytest.mark.timeout(900)
@pytest.mark.slow
async def test_sigkill_at_random_moments_then_restart_keeps_one_order_per_intent_and_every_fill(
    sim: IBKRSimulator, project: Path
) -> None:
    """10 seeds: the daemon is SIGKILLed at a random moment while the price trails up (modifies in
    flight); a fresh daemon restarts and reconciles. At the end: one order per intent at the broker,
    Joe's fills equal the broker's, the open position has a working stop of its size."""
    env = await setup(sim, project)
    data = project / "data"
    price = Decimal(100)
    for seed in range(10):
        rng = random.Random(seed)
        d = DaemonProc(project, env, "ibkr")
        try:
            await d.beat(lambda b: b["status"] == "running" and b["positions"] == 1, f"seed {seed} running")
            end = asyncio.get_running_loop().time() + rng.uniform(0.0, 2.0)
            while asyncio.get_running_loop().time() < end:
                price += Decimal("0.25")
                sim.set_price("AAPL", price)
                await asyncio.sleep(rng.uniform(0.01, 0.2))
        finally:
            await d.kill()
        assert_broker_truth(sim, data, open_qty=Decimal(10))
    d = DaemonProc(project, env, "ibkr")
    try:
        await d.beat(lambda b: b["status"] == "running" and b["positions"] == 1, "final restart")
        await asyncio.sleep(1.0)
        rc, err = await d.terminate()
    finally:
        if d.proc.poll() is None:
            await d.kill()
    assert rc == 0, err[-4000:]
    assert_broker_truth(sim, data, open_qty=Decimal(10))
    stop = stop_at_broker(sim)
    assert stop is not None and stop > 95  # it trailed across the restarts, never loosened
