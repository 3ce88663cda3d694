"""Partial fills, cancel of the remainder, overfill and duplicate executions, and disconnect recovery."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import BrokerUnavailable, EntriesRefused
from joe.core.events import NullAudit, OrderEventType
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.simulators.ibkr import IBKRSimulator

from .helpers import audit_types, drain, wait_for

DROP_LOGS = (r"Peer closed connection", r"API connection failed", r"Make sure API port")


def limit_buy(sig: str, qty: int, px: str = "50") -> OrderIntent:
    return OrderIntent(
        client_order_id(sig, "entry"),
        sig,
        OrderLeg.ENTRY,
        "AAPL",
        Side.BUY,
        Decimal(qty),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(px),
    )


async def test_partial_fills_then_cancel_remainder(
    sim: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 202")
    ex = await make_executor(sim)
    it = limit_buy("p1", 100)
    await ex.place(it)
    sim.fill(it.client_order_id, 30, "49.9")
    sim.fill(it.client_order_id, 20, "50")
    order = ex.order(it.client_order_id)
    assert order is not None
    await wait_for(lambda: order.filled_quantity == 50, what="partials")
    assert order.state is OrderState.PARTIALLY_FILLED and order.avg_fill_price == Decimal("49.94")
    await ex.cancel(it.client_order_id)
    await wait_for(lambda: order.state is OrderState.CANCELLED, what="cancel")
    assert order.filled_quantity == 50 and len(order.fills) == 2
    assert sim.book.positions["AAPL"].qty == 50
    await wait_for(lambda: bool(ex.ib.positions()), what="position push")
    assert [(p.symbol, p.quantity) for p in await ex.positions()] == [("AAPL", Decimal(50))]
    await wait_for(lambda: ex.ledger.queue.qsize() >= 5, what="events")
    kinds = [e.type for e in drain(ex)]
    assert kinds.count(OrderEventType.PARTIALLY_FILLED) == 2 and kinds[-1] is OrderEventType.CANCELLED


async def test_overfill_and_duplicate_executions_ignored(
    sim: IBKRSimulator, make_executor: Any, audit: NullAudit
) -> None:
    ex = await make_executor(sim)
    sim.faults.arm("duplicate_exec", count=-1)
    sim.faults.arm("overfill", qty=7)
    it = OrderIntent(client_order_id("o1", "entry"), "o1", OrderLeg.ENTRY, "AAPL", Side.BUY, Decimal(100))
    sim.set_fill_chunk(40)  # 40 + 40 + 20, each execution message sent twice, then a bogus extra 7
    await ex.place(it)
    order = ex.order(it.client_order_id)
    assert order is not None
    await wait_for(lambda: "order.overfill_ignored" in audit_types(audit), what="overfill seen")
    assert order.state is OrderState.FILLED and order.filled_quantity == 100 and len(order.fills) == 3
    assert ("duplicate_exec", {}) in sim.faults.fired and len(sim.book.executions) == 3
    fills = await ex.executions_since(order.created_at.replace(year=2000))
    assert sorted(f.quantity for f in fills) == [20, 40, 40]
    assert audit_types(audit).count("order.fill") == 3


async def test_disconnect_during_fill_burst_recovers_every_fill_once(
    sim: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    """The socket drops after 3 of 5 executions; the other 2 happen while disconnected."""
    ib_log_guard.allow(*DROP_LOGS)
    ex = await make_executor(sim)
    sim.set_fill_chunk(100)
    sim.faults.arm("drop_after_execs", n=3)
    it = OrderIntent(client_order_id("f1", "entry"), "f1", OrderLeg.ENTRY, "AAPL", Side.BUY, Decimal(500))
    await ex.place(it)
    order = ex.order(it.client_order_id)
    assert order is not None
    await wait_for(lambda: ex.conn.reconnects >= 1 and ex.entries_allowed, what="reconnect + resync")
    await wait_for(lambda: order.state is OrderState.FILLED, what="all fills")
    assert order.filled_quantity == 500 and len(order.fills) == 5
    assert len(sim.book.executions) == 5
    assert {f.fill_id for f in order.fills.values()} == {e.wire.exec_id for e in sim.book.executions}
    assert [(p.symbol, p.quantity) for p in await ex.positions()] == [("AAPL", Decimal(500))]
    assert audit_types(audit).count("order.fill") == 5
    assert {"ibkr.connection_lost", "ibkr.reconnected"} <= set(audit_types(audit))
    # A later reconnect replays the same executions again: still exactly once.
    sim.drop_connections()
    await wait_for(lambda: ex.conn.reconnects >= 2 and ex.entries_allowed, what="second reconnect")
    fills = await ex.executions_since(order.created_at.replace(year=2000))
    assert len(fills) == 5 and audit_types(audit).count("order.fill") == 5
    await wait_for(lambda: ex.ledger.queue.qsize() >= 7, what="events")
    fill_events = [e for e in drain(ex) if e.fill is not None]
    assert len(fill_events) == 5 and len({e.fill.fill_id for e in fill_events if e.fill}) == 5


async def test_fail_closed_while_down_and_cancel_queued(
    sim178: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*DROP_LOGS, r"Error 202")
    ex = await make_executor(sim178, connect_timeout=0.5)
    resting = limit_buy("q1", 10)
    await ex.place(resting)
    reset = __import__("asyncio").get_running_loop().create_task(sim178.nightly_reset(0.8))
    await wait_for(lambda: not ex.entries_allowed, what="disconnect noticed")
    with pytest.raises(EntriesRefused):
        await ex.place(limit_buy("q2", 10))
    with pytest.raises(BrokerUnavailable):
        await ex.place(
            OrderIntent(client_order_id("q3", "exit"), "q3", OrderLeg.EXIT, "AAPL", Side.SELL, Decimal(1))
        )
    await ex.cancel(resting.client_order_id)  # queued, not lost
    types = audit_types(audit)
    assert "order.entry_refused" in types and "order.cancel_queued" in types
    assert not [m for m in sim178.client_messages(4)]
    await reset
    await wait_for(lambda: ex.entries_allowed, timeout=6, what="back after the reset")
    order = ex.order(resting.client_order_id)
    await wait_for(
        lambda: order is not None and order.state is OrderState.CANCELLED, what="queued cancel sent"
    )
    assert len(sim178.client_messages(4)) == 1
    assert ex.order(client_order_id("q2", "entry")) is None


async def test_1100_blocks_entries_until_1102_resync(
    sim178: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 1100", r"Error 1102")
    ex = await make_executor(sim178)
    sim178.inject_error(1100)
    await wait_for(lambda: not ex.entries_allowed, what="1100")
    with pytest.raises(EntriesRefused):
        await ex.place(limit_buy("c1", 1))
    n_exec_requests = len(sim178.client_messages(7))
    sim178.inject_error(1102)
    await wait_for(lambda: ex.entries_allowed, what="1102 resync")
    assert len(sim178.client_messages(7)) == n_exec_requests + 1  # executions re-read on restore
    assert (await ex.place(limit_buy("c1", 1))).accepted
    assert {"ibkr.connectivity_lost", "ibkr.connectivity_restored"} <= set(audit_types(audit))
