"""Restart end to end at IBKR: a Joe process (a subprocess, ib_async on the TWS wire) is SIGKILLed
between the store write and the send, while the request is in flight (TWS slow to process it), or
between the send and the acknowledgement; after a restart through the OrderManager the simulator
holds exactly one bracket for the intent, and an order whose send may have happened is asked for,
never resent."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from execution.restart_child_ibkr import SIGNAL, bracket, client
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.simulators.ibkr import IBKRSimulator
from joe.store import open_store
from market_clock import sim_clock

CHILD = Path(__file__).with_name("restart_child_ibkr.py")


@pytest.fixture
async def sim() -> AsyncIterator[IBKRSimulator]:
    s = IBKRSimulator(server_version=178, seed=7, clock=sim_clock())
    await s.start()
    s.set_price("AAPL", 100)
    yield s
    await s.stop()


def _refs(sim: IBKRSimulator) -> list[str]:
    return sorted(o.placed.order_ref for o in sim.book.orders.values())


async def _child(sim: IBKRSimulator, tmp_path: Path, kill: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(sim.port),
        "61",
        str(tmp_path),
        kill,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == -9, err.decode()[-2000:]


@pytest.mark.parametrize("kill", ["after_write", "in_flight", "after_send"])
async def test_killed_process_then_restart_leaves_one_bracket(
    sim: IBKRSimulator, tmp_path: Path, kill: str
) -> None:
    if kill == "in_flight":  # TWS processes the bracket 1.5 s late, after the process died
        sim.faults.arm("place_latency", seconds=1.5)
    await _child(sim, tmp_path, kill)
    ids = sorted(i.client_order_id for i in bracket())
    assert _refs(sim) == ([] if kill in ("after_write", "in_flight") else ids)
    if kill != "after_send":  # the intent committed NEW; SUBMITTING = the send may have happened
        left = open_store(data_dir=tmp_path)
        expected = OrderState.NEW if kill == "after_write" else OrderState.SUBMITTING
        assert [left.load_order(i).state for i in ids] == [expected] * 3  # type: ignore[union-attr]
        left.close()

    store = open_store(data_dir=tmp_path)
    # A restarted process may get another client id (61's dead socket may not be noticed yet).
    xc = client(sim.port, 62 if kill == "in_flight" else 61, tmp_path)
    await xc.connect()
    om = OrderManager(xc, store, NullAudit(), in_doubt_window=8.0, in_doubt_interval=0.1)
    try:
        await om.start()  # reconciles first: adopts what TWS has, sends what it provably lacks
        await om.submit(bracket())  # the same intent again
        assert _refs(sim) == ids  # exactly one bracket at the broker
        entry = client_order_id(SIGNAL, "entry")
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while om.order(entry).state is not OrderState.ACCEPTED and loop.time() < end:  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
        assert [om.order(i).state for i in ids] == [OrderState.ACCEPTED] * 3  # type: ignore[union-attr]
    finally:
        await om.stop()
        await xc.close()
        store.close()


async def test_send_lost_in_flight_stays_unknown_never_resent(sim: IBKRSimulator, tmp_path: Path) -> None:
    """The process dies with the bracket on the wire and TWS never gets it: after a restart Joe
    cannot tell "never arrived" from "not processed yet", so the orders stay UNKNOWN (alerted) and
    are never resent; new entries on the instrument are refused, the same intent is not sent again."""
    from joe.brokers.base import EntriesRefused, OrderOutcomeUnknown
    from joe.core.models import OrderIntent, OrderLeg, Side

    sim.faults.arm("ignore_next")  # the parent is lost on the way; its children then fail (135)
    sim.faults.arm("place_latency", seconds=1.0)
    await _child(sim, tmp_path, "in_flight")
    await asyncio.sleep(1.5)
    store = open_store(data_dir=tmp_path)
    xc = client(sim.port, 62, tmp_path)
    await xc.connect()
    om = OrderManager(xc, store, NullAudit(), in_doubt_window=0.5, in_doubt_interval=0.1)
    try:
        await om.start()
        ids = [i.client_order_id for i in bracket()]
        assert om.order(ids[0]).state is OrderState.UNKNOWN  # type: ignore[union-attr]
        with pytest.raises(OrderOutcomeUnknown):
            await om.submit(bracket())  # the same intent: asked for, never sent again
        other = OrderIntent(
            client_order_id("other", "entry"), "other", OrderLeg.ENTRY, "AAPL", Side.BUY, Decimal(10)
        )
        with pytest.raises(EntriesRefused, match="AAPL"):
            await om.submit([other])
        placed_parents = [p for p in sim.placed if p.order_ref == ids[0]]
        assert len(placed_parents) == 1  # the one the dead process sent; nothing since
        assert any("never resent" in a.message for a in om.alerts)
    finally:
        await om.stop()
        await xc.close()
        store.close()
