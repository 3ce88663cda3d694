"""`IBKRExecutionClient` against the TWS simulator through ib_async: submit, ids, rules, asking the broker."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import BrokerOrderRef, ExecutionClient, InvalidOrder, SendFailed
from joe.brokers.ibkr import FileOrderIdStore
from joe.core.models import OrderLeg, OrderType, Side
from joe.core.reports import BrokerNotice, FillReport, VenueOrderStatus
from joe.simulators.ibkr import IBKRSimulator

from .helpers import bracket_intents, single, wait_for

W = VenueOrderStatus


async def test_bracket_submit_is_one_linked_group(sim: IBKRSimulator, make_client: Any) -> None:
    sim.set_price("AAPL", 100)
    client = await make_client(sim)
    assert isinstance(client, ExecutionClient)
    entry, stop, target = bracket_intents("c1")
    acks = await client.submit([entry, stop, target])
    assert [a.client_order_id for a in acks] == [
        entry.client_order_id,
        stop.client_order_id,
        target.client_order_id,
    ]
    # What TWS received: orderRef on every leg, parentId, one OCA group, transmit on the last leg only.
    await wait_for(lambda: len(sim.placed) == 3, what="three legs at the broker")
    placed = {p.order_ref: p for p in sim.placed}
    p, s, t = (placed[i.client_order_id] for i in (entry, stop, target))
    assert [str(x.order_id) for x in (p, s, t)] == [a.broker_order_id for a in acks]
    assert (p.transmit, s.transmit, t.transmit) == (False, False, True)
    assert s.parent_id == t.parent_id == p.order_id and p.parent_id == 0
    assert s.oca_group == t.oca_group == f"oca-{entry.client_order_id}" and s.oca_type == t.oca_type == 2
    assert (s.order_type, s.aux_price, s.action) == ("STP", Decimal(95), "SELL")
    assert (t.order_type, t.lmt_price, t.action) == ("LMT", Decimal(110), "SELL")
    rec = client.recorder
    await wait_for(
        lambda: all(rec.last_status(i.client_order_id) for i in (entry, stop, target)), what="acks"
    )
    first = rec.last_status(stop.client_order_id)
    assert (
        first.status is W.WORKING and first.raw_status == "PreSubmitted" and first.leg is OrderLeg.STOP_LOSS
    )
    assert first.parent_broker_order_id == acks[0].broker_order_id and first.stop_price == Decimal(95)
    # The parent fills: a fill, its commission (same identity), children working at the broker.
    sim.set_price("AAPL", 98.5)
    await wait_for(lambda: bool(rec.fills(entry.client_order_id)), what="entry fill")
    await wait_for(lambda: bool(rec.commissions()), what="commission")
    fill = rec.fills(entry.client_order_id)[0]
    assert fill.fill.quantity == 100 and fill.fill.side is Side.BUY and fill.revision == 0
    assert rec.commissions()[0].fill_id == fill.fill.fill_id and rec.commissions()[0].commission == Decimal(1)
    await wait_for(lambda: rec.raw(stop.client_order_id) == "Submitted", what="children live")
    assert rec.state(entry.client_order_id) is W.FILLED
    assert sim.find(stop.client_order_id).status == sim.find(target.client_order_id).status == "Submitted"


async def test_lone_entry_with_protection_is_refused(sim178: IBKRSimulator, make_client: Any) -> None:
    client = await make_client(sim178)
    entry = single("c2", stop_loss=Decimal(95), take_profit=Decimal(110))
    with pytest.raises(InvalidOrder, match="child intents"):
        await client.submit([entry])
    assert sim178.placed == []


async def test_instrument_rules_and_tick_grid(
    sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    """minTick comes from contract details per contract; off-grid prices and sizes never leave Joe."""
    ib_log_guard.allow(r"Error 200")
    sim178.set_min_tick("XYZ", "0.005")
    client = await make_client(sim178)
    aapl = await client.instrument_rules("AAPL")
    xyz = await client.instrument_rules("XYZ")
    assert (aapl.tick_size, xyz.tick_size) == (Decimal("0.01"), Decimal("0.005"))
    assert aapl.size_increment == aapl.min_size == 1
    signal_price = Decimal("10.1624")  # what a signal carries before rounding
    for symbol in ("AAPL", "XYZ"):
        bad = single(f"t-{symbol}", symbol=symbol, order_type=OrderType.LIMIT, limit_price=signal_price)
        with pytest.raises(InvalidOrder, match=r"limit_price=10\.1624 is not a multiple"):
            await client.submit([bad])
    with pytest.raises(InvalidOrder, match=r"stop_price=9\.995"):
        await client.submit(bracket_intents("t3", stop="9.995", limit="10.01", target="10.5"))
    with pytest.raises(InvalidOrder, match=r"quantity=10\.5"):
        await client.submit([single("t4", qty="10.5")])
    assert sim178.placed == []  # nothing was sent
    await client.submit(
        [single("t5", symbol="XYZ", order_type=OrderType.LIMIT, limit_price=Decimal("10.165"))]
    )
    await wait_for(lambda: bool(sim178.placed), what="sent")
    assert sim178.find(single("t5").client_order_id).placed.lmt_price == Decimal("10.165")
    with pytest.raises(InvalidOrder, match="does not know"):
        await client.instrument_rules("NOSUCH")


async def test_order_ids_persist_and_only_increase(
    sim178: IBKRSimulator, make_client: Any, tmp_path: Any
) -> None:
    path = tmp_path / "ids.json"
    first = await make_client(sim178, client_id=41, order_ids=path)
    a = await first.submit([single("i1", order_type=OrderType.LIMIT, limit_price=Decimal(1))])
    await first.close()
    FileOrderIdStore(path).save(500)  # another process sharing the file used ids up to 500
    second = await make_client(sim178, client_id=41, order_ids=path)
    b = await second.submit([single("i2", order_type=OrderType.LIMIT, limit_price=Decimal(1))])
    assert int(a[0].broker_order_id) < 500 < int(b[0].broker_order_id)
    assert FileOrderIdStore(path).load() == int(b[0].broker_order_id)


async def test_send_failed_when_not_connected(sim178: IBKRSimulator, make_client: Any) -> None:
    client = await make_client(sim178, connect=False)
    with pytest.raises(SendFailed):
        await client.submit([single("n1")])
    assert sim178.placed == []


async def test_order_status_asks_the_broker(sim: IBKRSimulator, make_client: Any, ib_log_guard: Any) -> None:
    """Open (reqAllOpenOrders), completed (reqCompletedOrders) and executions, by orderRef; [] if none."""
    ib_log_guard.allow(r"Error 202", r"Canceled order")
    sim.set_price("AAPL", 100)
    client = await make_client(sim)
    assert await client.order_status("nothing-here") == []
    resting = single("s1", order_type=OrderType.LIMIT, limit_price=Decimal(90))
    done = single("s2")
    await client.submit([resting])
    await client.submit([done])
    await wait_for(lambda: len(sim.placed) == 2, what="both sent")
    [r] = await client.order_status(resting.client_order_id)
    assert (r.status, r.quantity, r.limit_price, r.from_reconciliation) == (W.WORKING, 100, Decimal(90), True)
    [d] = await client.order_status(done.client_order_id)
    assert (d.status, d.filled_quantity) == (W.FILLED, 100)
    await client.cancel(BrokerOrderRef(resting, r.broker_order_id))
    await wait_for(lambda: sim.find(resting.client_order_id).status == "Cancelled", what="cancelled")
    [c] = await client.order_status(resting.client_order_id)
    assert c.status is W.CANCELLED and c.filled_quantity == 0
    # Another process (new client, same clientId after a restart) sees the same truth by orderRef.
    await client.close()
    other = await make_client(sim, client_id=31)
    [again] = await other.order_status(done.client_order_id)
    assert (again.status, again.filled_quantity, again.quantity) == (W.FILLED, 100, 100)


async def test_mass_status_bundles_everything(sim178: IBKRSimulator, make_client: Any) -> None:
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    await client.submit([single("m1")])
    await client.submit([single("m2", order_type=OrderType.LIMIT, limit_price=Decimal(80))])
    await wait_for(lambda: bool(client.recorder.fills()), what="fill")
    ms = await client.mass_status()
    by_ref = {o.client_order_id: o for o in ms.orders}
    assert by_ref[single("m1").client_order_id].status is W.FILLED
    assert by_ref[single("m2").client_order_id].status is W.WORKING
    assert [f.fill.quantity for f in ms.fills] == [100] and isinstance(ms.fills[0], FillReport)
    assert [c.fill_id for c in ms.commissions] == [ms.fills[0].fill.fill_id]
    assert [(p.symbol, p.quantity) for p in ms.positions] == [("AAPL", Decimal(100))]
    assert ms.account is not None and ms.account.equity > 0
    assert [(p.symbol, p.quantity) for p in await client.positions()] == [("AAPL", Decimal(100))]


async def test_every_listener_gets_every_observation(sim178: IBKRSimulator, make_client: Any) -> None:
    """The OrderManager and, say, a monitor can both iterate `observations()`; what arrived before
    anyone listened (executions re-read on connect) goes to the first listener."""
    sim178.set_price("AAPL", 100)
    first = await make_client(sim178)
    await first.submit([single("f1")])
    await wait_for(lambda: bool(first.recorder.fills()), what="fill")
    await first.close()
    client = await make_client(sim178, connect=False)
    client.recorder.stop()  # no listener while connecting: the re-read executions wait in the backlog
    await client.connect()
    one, two = client.observations(), client.observations()
    backlog = [await anext(one)]
    while not (isinstance(backlog[-1], BrokerNotice) and backlog[-1].code == "resynced"):
        backlog.append(await anext(one))
    assert [
        f.fill.client_order_id for f in backlog if isinstance(f, FillReport) and f.from_reconciliation
    ] == [single("f1").client_order_id]
    await client.submit([single("f2")])
    seen_one: list[Any] = []
    seen_two: list[Any] = []

    async def until_fill(stream: Any, out: list[Any]) -> None:
        async for obs in stream:
            out.append(obs)
            if isinstance(obs, FillReport) and not obs.from_reconciliation:
                return

    await asyncio.wait_for(asyncio.gather(until_fill(one, seen_one), until_fill(two, seen_two)), 5)
    assert [type(o) for o in seen_two] == [type(o) for o in seen_one[-len(seen_two) :]]
    assert seen_two[-1] == seen_one[-1]
