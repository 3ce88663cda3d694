"""A Joe process for the restart tests: places one bracket through the OrderManager against a broker
simulator and SIGKILLs itself at a chosen point (run by tests/execution/test_restart_e2e.py).

argv: <sim url> <api key> <identifier> <password> <data dir>
      <kill point: after_write | in_flight | after_send | none>
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.execution.order_manager import OrderManager
from joe.store import open_store

SIGNAL = "restart-1"


def bracket(stop: Decimal, target: Decimal) -> list[OrderIntent]:
    q = Decimal(1)
    return [
        OrderIntent(client_order_id(SIGNAL, "entry"), SIGNAL, OrderLeg.ENTRY, "GOLD", Side.BUY, q),
        OrderIntent(
            client_order_id(SIGNAL, "stop"),
            SIGNAL,
            OrderLeg.STOP_LOSS,
            "GOLD",
            Side.SELL,
            q,
            OrderType.STOP,
            stop_price=stop,
            reduce_only=True,
        ),
        OrderIntent(
            client_order_id(SIGNAL, "target"),
            SIGNAL,
            OrderLeg.TAKE_PROFIT,
            "GOLD",
            Side.SELL,
            q,
            OrderType.LIMIT,
            limit_price=target,
            reduce_only=True,
        ),
    ]


async def run(url: str, key: str, ident: str, pw: str, data: str, kill: str, stop: str, target: str) -> None:
    client = CapitalClient(url, Credentials(key, ident, pw), audit=NullAudit(), limits=Limits().scaled(10.0))
    await client.open()
    xc = CapitalExecutionClient(client, audit=NullAudit(), confirm_interval_s=0.02, confirm_timeout_s=2.0)
    real_submit = xc.submit

    async def submit(intents: Any) -> Any:
        if kill == "in_flight":  # the POST is on the wire (the broker is slow, armed by the test)
            asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGKILL)
        acks = await real_submit(intents)
        if kill == "after_send":  # the broker has it; Joe never records the acknowledgement
            os.kill(os.getpid(), signal.SIGKILL)
        return acks

    xc.submit = submit  # type: ignore[method-assign]
    store = open_store(data_dir=Path(data))
    om = OrderManager(xc, store, NullAudit())
    real_send = om.send

    async def send(orders: Any) -> Any:
        if kill == "after_write":  # the intent is committed (NEW); SUBMITTING not yet, nothing sent
            os.kill(os.getpid(), signal.SIGKILL)
        return await real_send(orders)

    om.send = send  # type: ignore[method-assign]
    await om.start()
    await om.submit(bracket(Decimal(stop), Decimal(target)))
    await om.stop()
    store.close()
    await client.close()


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:9]))
