"""Defects the chaos suite found, each kept as a regression test with the seed that found it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from chaos.worlds import IbkrWorld
from joe.brokers.base import BrokerError
from joe.core.events import NullAudit


async def test_an_ibkr_read_on_a_socket_that_just_dropped_is_broker_unavailable(tmp_path: Path) -> None:
    """Seeds 5 and 9 (disconnect before submit, nightly reset): the OrderManager's pre-send check
    read the open orders right after TWS dropped the socket; ib_async writes a request as it is made,
    so "Not connected" came out as a raw `ConnectionError` before the client's guard could turn it
    into `BrokerUnavailable`, and the submit crashed instead of leaving the intent NEW (not sent).
    Every read during the drop must answer or raise a `BrokerError`."""
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    world = IbkrWorld(5, 157, ("AAPL",))
    await world.start()
    xc = await world.client(NullAudit(), tmp_path)
    try:
        world.sim.drop_connections()
        outcomes: set[str] = set()
        for _ in range(100):  # through the drop, until it is met
            for read in (lambda: xc.presend_check("joe-x"), xc.mass_status):  # type: ignore[attr-defined]
                try:
                    await read()
                    outcomes.add("answered")
                except BrokerError:
                    outcomes.add("broker_error")
            if "broker_error" in outcomes:
                break
            await asyncio.sleep(0.01)
        assert "broker_error" in outcomes  # the drop was met (the reads did not all come after it)
    finally:
        await world.close_client(xc)
        await world.stop()
