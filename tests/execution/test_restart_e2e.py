"""Restart end to end: a Joe process (a subprocess) is SIGKILLed between the store write and the
send, or between the send and the acknowledgement; after a restart through the OrderManager the
broker simulator holds exactly one order per intent (its books are the truth).

Capital.com: the real client (httpx) against the Capital simulator. IBKR joins when its
ExecutionClient adapter is on main.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from execution.restart_child import SIGNAL, bracket
from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.store import open_store
from market_clock import sim_clock

CHILD = Path(__file__).with_name("restart_child.py")


@pytest.fixture
async def sim() -> AsyncIterator[CapitalSimulator]:
    # On the suite's market clock (days behind the host on most dates): Joe reads the broker's executions
    # on the broker's clock, so a fill made while Joe was down is Joe's whatever the host's date.
    s = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02, clock=sim_clock())
    await s.start()
    yield s
    await s.stop()


def _levels(sim: CapitalSimulator) -> tuple[str, str]:
    bid, ask = sim.exchange.quote("GOLD")
    mid = (bid + ask) / 2
    return str((mid * Decimal("0.95")).quantize(Decimal("0.01"))), str(
        (mid * Decimal("1.05")).quantize(Decimal("0.01"))
    )


async def _child(sim: CapitalSimulator, data: Path, kill: str) -> int:
    stop, target = _levels(sim)
    login = sim.login
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        sim.url,
        login.api_key,
        login.identifier,
        login.password,
        str(data),
        kill,
        stop,
        target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    if kill != "none":
        assert proc.returncode == -9, err.decode()[-2000:]
    return proc.returncode


def _deals(sim: CapitalSimulator) -> list[str]:
    return [p.deal_reference for p in sim.account().positions if p.epic == "GOLD"]


@pytest.mark.parametrize("kill", ["after_write", "in_flight", "after_send"])
async def test_killed_process_then_restart_leaves_one_order_per_intent(
    sim: CapitalSimulator, tmp_path: Path, kill: str
) -> None:
    """`in_flight`: the POST is on the wire when the process dies and the broker executes it 1.5 s
    later, while the restarted process reconciles: it asks (over its in-doubt window), finds and
    adopts the deal, and never sends the POST again."""
    if kill == "in_flight":
        sim.faults.arm("latency", 1, path="/positions", method="POST", seconds=1.5)
    await _child(sim, tmp_path, kill)
    entry_id = client_order_id(SIGNAL, "entry")
    store = open_store(data_dir=tmp_path)
    left = store.load_order(entry_id)
    # What the dead process left: the intent committed NEW (nothing sent), or SUBMITTING (may be sent).
    assert left is not None
    assert left.state is (OrderState.NEW if kill == "after_write" else OrderState.SUBMITTING)
    assert _deals(sim) == ([entry_id] if kill == "after_send" else [])

    login = sim.login
    client = CapitalClient(
        sim.url,
        Credentials(login.api_key, login.identifier, login.password),
        audit=NullAudit(),
        limits=Limits().scaled(10.0),
    )
    await client.open()
    try:
        xc = CapitalExecutionClient(client, audit=NullAudit(), confirm_interval_s=0.02, confirm_timeout_s=2.0)
        om = OrderManager(xc, store, NullAudit(), in_doubt_window=8.0, in_doubt_interval=0.1)
        await om.start()  # reconciles first: adopts what the broker has, sends what it provably lacks
        stop, target = _levels(sim)
        await om.submit(bracket(Decimal(stop), Decimal(target)))  # the same intent again
        await om.stop()
        assert _deals(sim) == [entry_id]  # exactly one order at the broker for the intent
        posts = [r for r in sim.requests if r.method == "POST" and r.path == "/positions"]
        assert len(posts) == 1
        entry = store.load_order(entry_id)
        assert entry is not None and entry.state is OrderState.FILLED and entry.filled_quantity == 1
    finally:
        await client.close()
        store.close()


async def _restart(sim: CapitalSimulator, store: Any) -> tuple[Any, Any, CapitalClient]:
    from joe.execution.reconciler import Reconciler

    login = sim.login
    client = CapitalClient(
        sim.url,
        Credentials(login.api_key, login.identifier, login.password),
        audit=NullAudit(),
        limits=Limits().scaled(10.0),
    )
    await client.open()
    xc = CapitalExecutionClient(client, audit=NullAudit(), confirm_interval_s=0.02, confirm_timeout_s=2.0)
    om = OrderManager(xc, store, NullAudit())
    report = await Reconciler(om).start()
    return om, report, client


async def test_killed_after_entry_ack_legs_are_attributed_after_restart(
    sim: CapitalSimulator, tmp_path: Path
) -> None:
    """SIGKILL after the broker acknowledged the entry (the legs are levels on its deal; the dead
    process never recorded them): after a restart the stop and target are WORKING with the broker's
    levels, attributed from the store's links (no in-memory hint survives)."""
    await _child(sim, tmp_path, "after_send")
    store = open_store(data_dir=tmp_path)
    stop_id, target_id = client_order_id(SIGNAL, "stop"), client_order_id(SIGNAL, "target")
    assert store.load_order(stop_id).state is OrderState.SUBMITTING  # type: ignore[union-attr]
    om, report, client = await _restart(sim, store)
    try:
        [deal] = [p for p in sim.account().positions if p.epic == "GOLD"]
        stop, target = store.load_order(stop_id), store.load_order(target_id)
        assert stop is not None and target is not None
        assert (stop.state, target.state) == (OrderState.ACCEPTED, OrderState.ACCEPTED)
        assert stop.intent.stop_price == deal.bracket.stop_level
        assert target.intent.limit_price == deal.bracket.profit_level
        assert stop.broker_order_id == deal.deal_id + ":SL"
        assert report.explained, report.summary()
        assert om.unprotected_now == {}
    finally:
        await om.stop()
        await client.close()
        store.close()


async def test_stop_fired_while_down_one_exit_fill_after_restart(
    sim: CapitalSimulator, tmp_path: Path
) -> None:
    """SIGKILL after the entry ack, then the stop fires while Joe is down: after a restart one exit
    fill is booked on the stop, the position is closed, both legs are terminal."""
    await _child(sim, tmp_path, "after_send")
    [deal] = [p for p in sim.account().positions if p.epic == "GOLD"]
    sim.paused = True
    sim.set_mid("GOLD", float(deal.bracket.stop_level) - 5)  # the stop fires while Joe is down
    assert [p for p in sim.account().positions if p.epic == "GOLD"] == []
    store = open_store(data_dir=tmp_path)
    om, report, client = await _restart(sim, store)
    try:
        entry_id = client_order_id(SIGNAL, "entry")
        stop_id, target_id = client_order_id(SIGNAL, "stop"), client_order_id(SIGNAL, "target")
        stop, target = store.load_order(stop_id), store.load_order(target_id)
        assert stop is not None and target is not None
        assert stop.state is OrderState.FILLED and len(stop.fills) == 1 and stop.filled_quantity == 1
        assert target.state.is_terminal and target.filled_quantity == 0
        assert store.load_order(entry_id).state is OrderState.FILLED  # type: ignore[union-attr]
        assert om.position_of(SIGNAL) == 0 and store.net_filled("capital", "live").get("GOLD") == 0
        assert report.explained, report.summary()
        again = await _restart(sim, store)  # and once more: nothing is applied twice
        await again[0].stop()
        await again[2].close()
        assert again[1].applied_fills == () and again[1].explained
    finally:
        await om.stop()
        await client.close()
        store.close()
