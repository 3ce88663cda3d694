"""Order messages go first through ib_async's message throttle.

IBKR closes a connection that sends more than 50 messages a second (IB `order_limitations`);
ib_async queues whatever exceeds `Client.MaxRequests` per `RequestsInterval` (45/s here,
`IBKRConnection`) and sends the queue in order. Joe's reads (open and completed orders, executions,
positions: a reconciliation, an `order_status` per order asked about) can fill that queue for up to
a second, and a cancel or a modify that protects a position waited behind them while the leg it was
meant to stop filled (chaos seed 477: a cancel of an over-sized target reached TWS 1.1 s after it was
sent, after the target had sold 3 of a position of 1). Here an order message that the throttle
queues is moved ahead of the queued reads, behind the order messages already waiting (their order
kept: a bracket's parent before its children); it still counts against the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class OrderLane:
    """Sends order messages (place, modify, cancel) through `client` (an ib_async `Client`) ahead of
    the reads its throttle holds. Without a throttle queue (another client) it just sends."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._mine: set[int] = set()  # ids of the order messages still queued

    def send(self, send: Callable[[], object]) -> None:
        """Run `send` (one ib_async call that writes order messages) and move what it queued."""
        q = getattr(self.client, "_msgQ", None)
        if q is None:
            send()
            return
        before = {id(m) for m in q}
        send()
        new = [m for m in q if id(m) not in before]
        if not new:
            return  # sent at once
        queued = {id(m) for m in q}
        self._mine &= queued
        for m in new:
            q.remove(m)
        k = 0
        while k < len(q) and id(q[k]) in self._mine:
            k += 1
        for i, m in enumerate(new):
            q.insert(k + i, m)
        self._mine.update(id(m) for m in new)
