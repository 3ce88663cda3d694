"""Order messages pass ahead of the reads ib_async's throttle holds (`joe.brokers.ibkr.order_lane`;
chaos seed 477: a cancel of an over-sized target reached TWS after the target had filled, queued
behind a second of reads). The throttle is ib_async's own `Client.sendMsg`, run on a real event loop
with a tiny limit; nothing is timed."""

from __future__ import annotations

import asyncio
from typing import Any

from ib_async.client import Client

from joe.brokers.ibkr.order_lane import OrderLane


class _Conn:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def sendMsg(self, msg: bytes) -> None:  # ib_async's name
        self.sent.append(msg[4:].decode())


def _client(limit: int) -> tuple[Client, _Conn]:
    c = Client(Any)  # type: ignore[arg-type]
    conn = _Conn()
    c.conn = conn  # type: ignore[assignment]
    c.MaxRequests, c.RequestsInterval = limit, 3600  # the window never passes during the test
    return c, conn


async def test_order_messages_pass_queued_reads_in_their_own_order() -> None:
    client, conn = _client(limit=2)
    lane = OrderLane(client)
    for r in ("read-1", "read-2", "read-3", "read-4"):  # two go out, two wait in the throttle
        client.sendMsg(r)
    lane.send(lambda: client.sendMsg("place-parent"))
    lane.send(lambda: client.sendMsg("place-child"))
    client.sendMsg("read-5")
    lane.send(lambda: client.sendMsg("cancel"))
    assert conn.sent == ["read-1", "read-2"]
    assert list(client._msgQ) == ["place-parent", "place-child", "cancel", "read-3", "read-4", "read-5"]
    client._timeQ.clear()  # the window passes: the queue drains in that order
    client.sendMsg("")
    assert conn.sent[2:4] == ["place-parent", "place-child"]


async def test_an_order_message_not_throttled_goes_out_at_once() -> None:
    client, conn = _client(limit=10)
    OrderLane(client).send(lambda: client.sendMsg("cancel"))
    assert conn.sent == ["cancel"] and not client._msgQ
    await asyncio.sleep(0)
