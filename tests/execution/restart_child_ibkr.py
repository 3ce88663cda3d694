"""A Joe process for the IBKR restart test: places one limit bracket through the OrderManager and
`IBKRExecutionClient` against the IBKR simulator, and SIGKILLs itself at a chosen point.

argv: <sim port> <client id> <data dir> <kill point: after_write | in_flight | after_send>
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from joe.brokers.ibkr.client import IBKRExecutionClient
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.execution.order_manager import OrderManager
from joe.store import open_store

SIGNAL = "restart-ib"


def bracket() -> list[OrderIntent]:
    q = Decimal(100)
    return [
        OrderIntent(
            client_order_id(SIGNAL, "entry"),
            SIGNAL,
            OrderLeg.ENTRY,
            "AAPL",
            Side.BUY,
            q,
            OrderType.LIMIT,
            limit_price=Decimal(99),
        ),
        OrderIntent(
            client_order_id(SIGNAL, "stop"),
            SIGNAL,
            OrderLeg.STOP_LOSS,
            "AAPL",
            Side.SELL,
            q,
            OrderType.STOP,
            stop_price=Decimal(95),
            reduce_only=True,
        ),
        OrderIntent(
            client_order_id(SIGNAL, "target"),
            SIGNAL,
            OrderLeg.TAKE_PROFIT,
            "AAPL",
            Side.SELL,
            q,
            OrderType.LIMIT,
            limit_price=Decimal(110),
            reduce_only=True,
        ),
    ]


def client(port: int, client_id: int, data: Path) -> IBKRExecutionClient:
    return IBKRExecutionClient(
        "127.0.0.1",
        port,
        client_id,
        "",
        "paper",
        NullAudit(),
        data / "ibkr-order-ids.json",
        backoff_initial=0.05,
        backoff_max=0.2,
        connect_timeout=2.0,
        request_timeout=3.0,
    )


async def run(port: str, client_id: str, data: str, kill: str) -> None:
    xc = client(int(port), int(client_id), Path(data))
    await xc.connect()
    real_submit = xc.submit

    async def submit(intents: Any) -> Any:
        if kill == "in_flight":  # the request is on the wire (TWS is slow, armed by the test)
            asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGKILL)
        acks = await real_submit(intents)
        await asyncio.sleep(0.3)  # let the bytes reach TWS
        if kill == "after_send":  # TWS has the bracket; Joe never records the acknowledgement
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
    await om.submit(bracket())


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:5]))
