"""Attached legs and working orders through CapitalExecutionClient: modify, cancel, a stop that fires,
a working entry that fills — each checked against the simulator's books (the truth)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from capital.truth_helpers import adapter, around, bracket, drain, entry, mid, tick
from joe.brokers.base import BrokerOrderRef, InvalidOrder
from joe.brokers.capital import CapitalClient
from joe.core.models import OrderIntent, OrderType, Side
from joe.core.reports import BrokerNotice, CodeMeaning, FillReport, OrderStatusReport, VenueOrderStatus
from joe.simulators.capital import CapitalSimulator


def ref(intent: OrderIntent, broker_id: str | None, parent: str | None = None) -> BrokerOrderRef:
    return BrokerOrderRef(intent, broker_id, parent)


def reports(obs: list, cid: str) -> list[OrderStatusReport]:
    return [o for o in obs if isinstance(o, OrderStatusReport) and o.client_order_id == cid]


async def test_modify_stop_keeps_target_and_reports_the_new_level(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-m", "GOLD", Side.BUY, "1", stop, target)
    acks = await xc.submit(group)
    drain(xc)
    new_stop = tick(stop + 5)
    await xc.modify(ref(group[1], acks[1].broker_order_id, acks[0].broker_order_id), stop_price=new_stop)
    [pos] = sim.account().positions
    assert (pos.bracket.stop_level, pos.bracket.profit_level) == (new_stop, target)
    [rep] = reports(drain(xc), group[1].client_order_id)
    assert (rep.status, rep.stop_price) == (VenueOrderStatus.WORKING, new_stop)
    puts = sum(1 for r in sim.requests if r.method == "PUT")
    with pytest.raises(InvalidOrder, match="tick"):
        await xc.modify(ref(group[1], acks[1].broker_order_id), stop_price=new_stop + Decimal("0.005"))
    assert sum(1 for r in sim.requests if r.method == "PUT") == puts  # nothing sent


async def test_refused_modify_is_a_notice_and_changes_nothing(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-r", "GOLD", Side.BUY, "1", stop, target)
    acks = await xc.submit(group)
    drain(xc)
    above_market = tick(mid(sim, "GOLD") * Decimal("1.01"))  # a long's stop above the market
    await xc.modify(ref(group[1], acks[1].broker_order_id), stop_price=above_market)
    assert sim.account().positions[0].bracket.stop_level == stop
    obs = drain(xc)
    [notice] = [o for o in obs if isinstance(o, BrokerNotice)]
    assert notice.meaning is CodeMeaning.REQUEST_REFUSED and notice.code.startswith("error.invalid.stoploss")
    assert reports(obs, group[1].client_order_id) == []


async def test_cancel_target_detaches_it_and_stop_stays(sim: CapitalSimulator, client: CapitalClient) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-c", "GOLD", Side.BUY, "1", stop, target)
    acks = await xc.submit(group)
    drain(xc)
    await xc.cancel(ref(group[2], acks[2].broker_order_id, acks[0].broker_order_id))
    [pos] = sim.account().positions
    assert (pos.bracket.stop_level, pos.bracket.profit_level) == (stop, None)
    [rep] = reports(drain(xc), group[2].client_order_id)
    assert rep.status is VenueOrderStatus.CANCELLED
    [again] = await xc.order_status(group[2].client_order_id)
    assert again.status is VenueOrderStatus.CANCELLED
    [still] = await xc.order_status(group[1].client_order_id)
    assert still.status is VenueOrderStatus.WORKING


async def test_resizing_an_attached_leg_reports_the_deal_size_and_sends_nothing(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-z", "GOLD", Side.BUY, "2", stop, target)
    acks = await xc.submit(group)
    drain(xc)
    writes = sum(1 for r in sim.requests if r.method in ("PUT", "POST", "DELETE"))
    await xc.modify(ref(group[1], acks[1].broker_order_id), quantity=Decimal(1))
    assert sum(1 for r in sim.requests if r.method in ("PUT", "POST", "DELETE")) == writes
    [rep] = reports(drain(xc), group[1].client_order_id)
    assert rep.quantity == 2


async def test_a_stop_that_fires_is_filled_and_its_target_cancelled(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-f", "GOLD", Side.BUY, "1", stop, target)
    acks = await xc.submit(group)
    sim.paused = True
    sim.set_mid("GOLD", float(stop) - 5)
    assert sim.account().positions == []
    [s] = await xc.order_status(group[1].client_order_id)
    [t] = await xc.order_status(group[2].client_order_id)
    assert (s.status, s.filled_quantity) == (VenueOrderStatus.FILLED, 1)
    assert t.status is VenueOrderStatus.CANCELLED
    mass = await xc.mass_status()
    closing = [f for f in mass.fills if f.fill.broker_order_id == acks[0].broker_order_id + ":SL"]
    assert len(closing) == 1 and closing[0].fill.side is Side.SELL and closing[0].fill.quantity == 1
    assert closing[0].fill.client_order_id == group[1].client_order_id  # the stop's fill


async def test_working_entry_lifecycle(sim: CapitalSimulator, client: CapitalClient) -> None:
    xc = adapter(client)
    lo, _ = around(sim, "GOLD", "3")
    order = entry("sig-wl", "GOLD", Side.BUY, "1", order_type=OrderType.LIMIT, limit_price=lo)
    [ack] = await xc.submit([order])
    [rep] = reports(drain(xc), order.client_order_id)
    assert rep.status is VenueOrderStatus.WORKING and ack.broker_order_id == sim.account().orders[0].deal_id
    lower = tick(lo - 1)
    await xc.modify(ref(order, ack.broker_order_id), limit_price=lower)
    assert sim.account().orders[0].level == lower
    await xc.cancel(ref(order, ack.broker_order_id))
    assert sim.account().orders == []
    assert [r.status for r in reports(drain(xc), order.client_order_id)][-1] is VenueOrderStatus.CANCELLED
    [gone] = await xc.order_status(order.client_order_id)
    assert gone.status is VenueOrderStatus.CANCELLED


async def test_working_entry_that_fills_is_found_filled_with_one_fill(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    lo, _ = around(sim, "GOLD", "1")
    order = entry("sig-wf", "GOLD", Side.BUY, "1", order_type=OrderType.LIMIT, limit_price=lo)
    await xc.submit([order])
    sim.paused = True
    sim.set_mid("GOLD", float(lo) - 2)
    [pos] = sim.account().positions
    assert pos.deal_reference == order.client_order_id  # the position carries the order's reference
    [rep] = await xc.order_status(order.client_order_id)
    assert rep.status is VenueOrderStatus.FILLED and rep.broker_order_id == pos.deal_id
    mass = await xc.mass_status()
    mine = [f for f in mass.fills if f.fill.client_order_id == order.client_order_id]
    assert len(mine) == 1 and isinstance(mine[0], FillReport) and mine[0].fill.price <= lo


async def test_the_watcher_reports_a_fired_stop_without_being_asked(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    from joe.brokers.capital.watch import Watcher

    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-wa", "GOLD", Side.BUY, "1", stop, target)
    await xc.submit(group)
    watcher = Watcher(xc)
    drain(xc)
    assert await watcher.poll() == 0  # nothing new
    sim.paused = True
    sim.set_mid("GOLD", float(stop) - 5)
    await watcher.poll()
    obs = drain(xc)
    [s] = reports(obs, group[1].client_order_id)
    [t] = reports(obs, group[2].client_order_id)
    assert (s.status, t.status) == (VenueOrderStatus.FILLED, VenueOrderStatus.CANCELLED)
    [fill] = [o for o in obs if isinstance(o, FillReport)]
    assert fill.fill.side is Side.SELL and fill.fill.broker_order_id.endswith(":SL")
    assert reports(obs, group[0].client_order_id) == []  # the entry's fill is old news
    assert await watcher.poll() == 0


async def test_the_watcher_reports_a_working_entry_filled_on_a_price_move(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    lo, _ = around(sim, "GOLD", "1")
    order = entry("sig-wb", "GOLD", Side.BUY, "1", order_type=OrderType.LIMIT, limit_price=lo)
    await xc.submit([order])
    drain(xc)
    watcher = xc.watch(interval_s=0.02)
    sim.paused = True
    sim.set_mid("GOLD", float(lo) - 2)
    for _ in range(100):
        obs = [o for o in drain(xc) if getattr(o, "client_order_id", None) == order.client_order_id]
        if obs:
            break
        await asyncio.sleep(0.02)
    await watcher.stop()
    [rep] = [o for o in obs if isinstance(o, OrderStatusReport)]
    assert rep.status is VenueOrderStatus.FILLED and rep.quantity == 1
