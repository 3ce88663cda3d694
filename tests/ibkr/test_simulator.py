"""The TWS simulator on its own, driven by the raw ib_async client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Order, Stock

from joe.simulators.ibkr import IBKRSimulator
from joe.simulators.ibkr.book import con_id_for

from .helpers import wait_for


@pytest.fixture
async def ib(sim: IBKRSimulator) -> AsyncIterator[IB]:
    client = IB()
    await client.connectAsync("127.0.0.1", sim.port, clientId=31, timeout=3)
    yield client
    client.disconnect()


def test_rejects_unsupported_server_versions() -> None:
    with pytest.raises(ValueError, match=r"157\.\.178"):
        IBKRSimulator(server_version=179)
    with pytest.raises(ValueError):
        IBKRSimulator(server_version=156)


async def test_contract_details_and_unknown_symbol(sim: IBKRSimulator, ib: IB, ib_log_guard: Any) -> None:
    ib_log_guard.allow(r"Error 200")
    (c,) = await ib.qualifyContractsAsync(Stock("NVDA", "SMART", "USD"))
    assert isinstance(c, Stock) and c.conId == con_id_for("NVDA") and c.primaryExchange == "NASDAQ"
    details = await ib.reqContractDetailsAsync(Stock("NOSUCH", "SMART", "USD"))
    assert details == []


async def test_duplicate_client_id_refused(sim: IBKRSimulator, ib: IB, ib_log_guard: Any) -> None:
    ib_log_guard.allow(r"Error 326", r"Peer closed", r"API connection failed", r"already in use")
    other = IB()
    with pytest.raises((ConnectionError, TimeoutError)):
        await other.connectAsync("127.0.0.1", sim.port, clientId=31, timeout=1)
    assert ib.isConnected()


async def test_nightly_reset_refuses_then_accepts(sim: IBKRSimulator, ib: IB, ib_log_guard: Any) -> None:
    ib_log_guard.allow(r"Peer closed", r"API connection failed")
    reset = asyncio.get_running_loop().create_task(sim.nightly_reset(0.3))
    await wait_for(lambda: not ib.isConnected(), what="drop")
    with pytest.raises((ConnectionError, TimeoutError)):
        await IB().connectAsync("127.0.0.1", sim.port, clientId=32, timeout=0.2)
    await reset
    again = IB()
    await again.connectAsync("127.0.0.1", sim.port, clientId=32, timeout=2)
    assert again.isConnected()
    again.disconnect()


async def test_held_orders_wait_for_transmit(sim: IBKRSimulator, ib: IB) -> None:
    c = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(c)
    sim.set_price("AAPL", 100)
    parent = LimitOrder("BUY", 10, 90, transmit=False, orderRef="p")
    trade = ib.placeOrder(c, parent)
    await wait_for(lambda: sim.find("p") is not None, what="the parent at the simulator")  # not a 50 ms sleep
    assert sim.find("p").held and trade.orderStatus.status == "PendingSubmit"  # type: ignore[union-attr]
    child = Order(action="SELL", totalQuantity=10, orderType="STP", auxPrice=80, parentId=parent.orderId)
    child.orderRef, child.transmit = "c", True
    ib.placeOrder(c, child)
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="released")
    assert sim.find("c").status == "PreSubmitted"  # type: ignore[union-attr]


async def test_reconnect_sees_open_completed_orders_and_executions(sim: IBKRSimulator, ib: IB) -> None:
    c = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(c)
    sim.set_price("AAPL", 100)
    done = ib.placeOrder(c, MarketOrder("BUY", 5, orderRef="m"))
    resting = ib.placeOrder(c, LimitOrder("BUY", 5, 50, orderRef="l"))
    await wait_for(lambda: done.orderStatus.status == "Filled" and resting.orderStatus.status == "Submitted")
    ib.disconnect()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=31, timeout=3)
    assert [t.order.orderRef for t in ib.openTrades()] == ["l"]
    completed = await ib.reqCompletedOrdersAsync(False)
    assert [(t.order.orderRef, t.orderStatus.status) for t in completed] == [("m", "Filled")]
    fills = ib.fills()
    assert [(f.execution.orderRef, f.execution.shares) for f in fills] == [("m", 5.0)]
    assert fills[0].commissionReport.commission == 1.0


async def test_step_streams_quotes_and_tracks_positions(sim: IBKRSimulator, ib: IB) -> None:
    c = Stock("MSFT", "SMART", "USD")
    await ib.qualifyContractsAsync(c)
    ticker = ib.reqMktData(c)
    await wait_for(lambda: ticker.bid > 0, what="first quote")
    seen = set()
    for _ in range(5):
        sim.step()
        # Each step's quote reaches the client before the next (not "within 10 ms").
        await wait_for(lambda: ticker.bid == float(sim.prices.quote("MSFT").bid), what="the step's quote")
        seen.add(ticker.bid)
    assert len(seen) > 1 and ticker.bid == float(sim.prices.quote("MSFT").bid)
    sell = ib.placeOrder(c, MarketOrder("SELL", 3))
    await wait_for(lambda: sell.orderStatus.status == "Filled")
    await wait_for(lambda: bool(ib.positions()))
    assert ib.positions()[0].position == -3 and sim.book.positions["MSFT"].qty == Decimal(-3)
    vals = sim.book.account_values()
    assert vals["MaintMarginReq"] > 0 and vals["AvailableFunds"] < vals["NetLiquidation"]


async def test_delay_fills_fault(sim: IBKRSimulator, ib: IB) -> None:
    c = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(c)
    sim.faults.arm("delay_fills", seconds=0.2)
    trade = ib.placeOrder(c, MarketOrder("BUY", 1))
    await wait_for(lambda: trade.orderStatus.status == "Submitted")
    assert trade.orderStatus.filled == 0  # acknowledged, not yet filled
    await wait_for(lambda: trade.orderStatus.status == "Filled", what="delayed fill")


async def test_run_ibkr_sim_entry_point_serves_until_stopped() -> None:
    """The blocking entry point behind `joe sim ibkr --port N` (run in a child process, then stopped)."""
    import re
    import subprocess
    import sys

    code = "from joe.simulators.ibkr import run_ibkr_sim; run_ibkr_sim(0, 157)"  # 0: the OS picks the port
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        listening = re.search(r"version 157\) listening on 127\.0\.0\.1:(\d+);", line)
        assert listening is not None, line
        port = int(listening.group(1))
        client = IB()
        await client.connectAsync("127.0.0.1", port, clientId=1, timeout=3)
        assert client.client.serverVersion() == 157
        client.disconnect()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_prices_off_the_min_tick_are_refused_with_110(
    sim: IBKRSimulator, ib: IB, ib_log_guard: Any
) -> None:
    """A new order off the grid is never placed; a revision off the grid leaves the old price."""
    ib_log_guard.allow(r"110", r"Canceled order")
    sim.set_min_tick("XYZ", "0.05")
    [details] = await ib.reqContractDetailsAsync(Stock("XYZ", "SMART", "USD"))
    assert details.minTick == 0.05
    bad = ib.placeOrder(Stock("XYZ", "SMART", "USD"), LimitOrder("BUY", 10, 10.03))
    await wait_for(lambda: any(e.errorCode == 110 for e in bad.log), what="110 on a new order")
    assert sim.book.orders == {}
    good = ib.placeOrder(Stock("XYZ", "SMART", "USD"), LimitOrder("BUY", 10, 10.05, orderRef="joe-t"))
    await wait_for(lambda: good.orderStatus.status == "Submitted", what="accepted")
    revised = Order(**{**good.order.__dict__, "lmtPrice": 10.07})
    ib.client.placeOrder(good.order.orderId, good.contract, revised)
    await wait_for(lambda: len(sim.placed) == 3, what="revision received")
    await asyncio.sleep(0.05)
    bo = sim.find("joe-t")
    assert bo is not None and bo.placed.lmt_price == Decimal("10.05") and bo.status == "Submitted"


async def test_all_open_orders_span_clients_and_completed_orders_carry_order_ref(
    sim: IBKRSimulator, ib: IB, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 202", r"Canceled order")
    other = IB()
    await other.connectAsync("127.0.0.1", sim.port, clientId=77, timeout=3)
    try:
        mine = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 5, 1, orderRef="joe-a"))
        theirs = other.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 5, 1, orderRef="joe-b"))
        acked = ("Submitted", "Submitted")
        await wait_for(lambda: (theirs.orderStatus.status, mine.orderStatus.status) == acked, what="acks")
        refs = {t.order.orderRef for t in await ib.reqAllOpenOrdersAsync()}
        assert refs == {"joe-a", "joe-b"}
        ib.cancelOrder(mine.order)
        await wait_for(lambda: sim.find("joe-a").status == "Cancelled", what="cancel")  # type: ignore[union-attr]
        done = await ib.reqCompletedOrdersAsync(False)
        assert [(t.order.orderRef, t.orderStatus.status) for t in done] == [("joe-a", "Cancelled")]
    finally:
        other.disconnect()
