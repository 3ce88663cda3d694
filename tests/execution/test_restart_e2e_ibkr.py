"""Restart end to end at IBKR: a Joe process (a subprocess, ib_async on the TWS wire) is SIGKILLed
between the store write and the send, or between the send and the acknowledgement; after a restart
through the OrderManager the simulator holds exactly one bracket for the intent."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from execution.restart_child_ibkr import SIGNAL, bracket, client
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.simulators.ibkr import IBKRSimulator
from joe.store import open_store

CHILD = Path(__file__).with_name("restart_child_ibkr.py")


@pytest.fixture
async def sim() -> AsyncIterator[IBKRSimulator]:
    s = IBKRSimulator(server_version=178, seed=7)
    await s.start()
    s.set_price("AAPL", 100)
    yield s
    await s.stop()


def _refs(sim: IBKRSimulator) -> list[str]:
    return sorted(o.placed.order_ref for o in sim.book.orders.values())


@pytest.mark.parametrize("kill", ["after_write", "after_send"])
async def test_killed_process_then_restart_leaves_one_bracket(
    sim: IBKRSimulator, tmp_path: Path, kill: str
) -> None:
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
    ids = sorted(i.client_order_id for i in bracket())
    assert _refs(sim) == ([] if kill == "after_write" else ids)

    store = open_store(data_dir=tmp_path)
    xc = client(sim.port, 61, tmp_path)
    await xc.connect()
    om = OrderManager(xc, store, NullAudit())
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
