"""CapitalExecutionClient against the simulator: submit, reports, one fill identity, instrument rules,
and one intent never becoming two orders (issue 9 kinds 1b, 1c, 4d and "instrument increments").

The simulator's books are the truth every assertion compares against.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from capital.conftest import make_client
from capital.truth_helpers import adapter, around, books, bracket, drain, entry, posts
from joe.brokers.base import InvalidOrder, OrderOutcomeUnknown
from joe.brokers.capital import CapitalClient
from joe.core.events import NullAudit
from joe.core.models import OrderLeg, OrderType, Side
from joe.core.reports import FillReport, OrderStatusReport, VenueOrderStatus
from joe.simulators.capital import CapitalSimulator


async def test_bracket_entry_reports_entry_legs_and_fill(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-a", "GOLD", Side.BUY, "1", stop, target)
    acks = await xc.submit(group)
    deal = books(sim, "GOLD")
    assert len(deal) == 1 and deal[0][3] == group[0].client_order_id  # the broker holds Joe's id
    pos = sim.account().positions[0]
    assert (pos.bracket.stop_level, pos.bracket.profit_level) == (stop, target)
    assert [a.client_order_id for a in acks] == [i.client_order_id for i in group]
    assert acks[0].broker_order_id == deal[0][0] == acks[0].broker_position_id
    obs = drain(xc)
    reports = {o.client_order_id: o for o in obs if isinstance(o, OrderStatusReport)}
    assert reports[group[0].client_order_id].status is VenueOrderStatus.FILLED
    assert reports[group[1].client_order_id].status is VenueOrderStatus.WORKING
    assert reports[group[1].client_order_id].stop_price == stop
    assert reports[group[2].client_order_id].limit_price == target
    fills = [o for o in obs if isinstance(o, FillReport)]
    assert len(fills) == 1 and fills[0].fill.quantity == 1 and fills[0].fill.side is Side.BUY
    assert fills[0].fill.client_order_id == group[0].client_order_id
    # One fill, one identity: the same fill read back by reconciliation has the same id.
    mass = await xc.mass_status()
    assert [f.fill.fill_id for f in mass.fills] == [fills[0].fill.fill_id]
    assert mass.fills[0].from_reconciliation
    # The attached legs are reported with the deal's size, and asked for by their own ids.
    [stop_now] = await xc.order_status(group[1].client_order_id)
    assert (stop_now.status, stop_now.stop_price, stop_now.quantity) == (VenueOrderStatus.WORKING, stop, 1)


async def test_order_status_finds_an_order_by_reference_from_a_fresh_process(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    lo, _ = around(sim, "GOLD", "3")
    order = entry("sig-w", "GOLD", Side.BUY, "2", order_type=OrderType.LIMIT, limit_price=lo)
    await xc.submit([order])
    fresh = adapter(client)  # no memory of the order
    [rep] = await fresh.order_status(order.client_order_id)
    assert rep.status is VenueOrderStatus.WORKING and rep.limit_price == lo and rep.quantity == 2
    assert rep.broker_order_id == sim.account().orders[0].deal_id
    assert await fresh.order_status("joe-never-sent") == []


@pytest.mark.parametrize(
    ("symbol", "qty", "price", "field"),
    [
        ("EURUSD", "1234.5678", None, "minSizeIncrement"),  # the example (min 100, step 100)
        ("EURUSD", "150", None, "minSizeIncrement"),
        ("EURUSD", "50", None, "minDealSize"),
        ("AAPL", "1.5", None, "minSizeIncrement"),
        ("GOLD", "1", "1999.995", "tick"),
    ],
)
async def test_non_conforming_orders_are_refused_before_sending(
    sim: CapitalSimulator, client: CapitalClient, symbol: str, qty: str, price: str | None, field: str
) -> None:
    xc = adapter(client)
    kw: dict[str, Any] = {}
    if price is not None:
        kw = {"order_type": OrderType.LIMIT, "limit_price": Decimal(price)}
    with pytest.raises(InvalidOrder, match=field):
        await xc.submit([entry("sig-bad", symbol, Side.BUY, qty, **kw)])
    assert posts(sim) + posts(sim, "/workingorders") == 0
    rules = await xc.instrument_rules("EURUSD")
    assert (rules.min_size, rules.size_increment) == (100, 100)


async def test_timeout_then_503_is_unknown_and_never_posted_twice(sim: CapitalSimulator) -> None:
    """Kind 1b: POST /positions answered after the client's timeout while every read fails."""
    client = make_client(sim, order_timeout_s=0.3, read_retries=1)
    await client.open()
    try:
        xc = adapter(client)
        sim.faults.arm("delay_response", 1, path="/positions", method="POST", seconds=0.8)
        # The five pre-send reads (rules, confirm, preferences, positions, working orders) pass; every
        # read after the POST answers 503 (GET /positions, the confirm, the activity history).
        sim.faults.arm("http_5xx", -1, skip=5, method="GET", status=503, code="error.service.unavailable")
        order = entry("sig-1b", "GOLD", Side.BUY, "1")
        with pytest.raises(OrderOutcomeUnknown):
            await xc.submit([order])
        assert posts(sim) == 1 and len(books(sim)) == 1  # the order exists at the broker
        with pytest.raises(OrderOutcomeUnknown):  # the same intent again: asked for, not re-sent
            await xc.submit([order])
        assert posts(sim) == 1
        sim.faults.disarm()
        [rep] = await adapter(client).order_status(order.client_order_id)  # a restarted process
        assert rep.status is VenueOrderStatus.FILLED and rep.broker_order_id == books(sim)[0][0]
        acks = await adapter(client).submit([order])  # a second process placing the same intent
        assert posts(sim) == 1 and acks[0].broker_order_id == books(sim)[0][0]
    finally:
        await client.close()


class FailingAudit(NullAudit):
    """An audit sink whose write of `event` fails `times` times (disk full), then works."""

    def __init__(self, event: str, times: int = 1) -> None:
        self.event, self.times = event, times
        self.records: list[tuple[str, dict[str, Any]]] = []

    def record(self, event: str, payload: dict[str, Any] | None = None, **kw: Any) -> None:
        if event == self.event and self.times > 0:
            self.times -= 1
            raise OSError("No space left on device")
        self.records.append((event, payload or {}))


async def test_audit_failure_after_post_neither_forgets_nor_resends(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    """Kind 1c: the audit write fails right after a successful POST."""
    audit = FailingAudit("capital.order.sent")
    xc = adapter(client, audit=audit)
    order = entry("sig-1c", "GOLD", Side.SELL, "1")
    acks = await xc.submit([order])
    assert acks[0].broker_order_id == books(sim)[0][0]
    assert posts(sim) == 1
    await xc.submit([order])  # a retry of the same intent
    await adapter(client).submit([order])  # and a restarted process
    assert posts(sim) == 1 and len(books(sim)) == 1
    assert "capital.order.sent" in [e for e, _ in audit.records]  # written again, not lost


async def test_a_broker_refusal_is_reported_not_decided(sim: CapitalSimulator, client: CapitalClient) -> None:
    xc = adapter(client)
    sim.exchange.status["GOLD"] = "CLOSED"
    order = entry("sig-closed", "GOLD", Side.BUY, "1")
    acks = await xc.submit([order])
    assert acks[0].broker_order_id is None and books(sim) == []
    obs = drain(xc)
    [rep] = [o for o in obs if isinstance(o, OrderStatusReport)]
    assert rep.status is VenueOrderStatus.REJECTED and "closed" in rep.reason
    assert rep.leg is OrderLeg.ENTRY


async def test_prices_are_a_function_of_seed_and_clock() -> None:
    """The simulator's prices move only with its clock, identically for one seed."""
    from joe.simulators.common import SimClock

    runs = []
    for _ in range(2):
        clock = SimClock.frozen()
        async with CapitalSimulator(seed=7, tick_s=0.01, clock=clock) as s:
            before = s.exchange.quote("GOLD")
            await asyncio.sleep(0.1)  # wall time passes; the frozen clock does not
            still = s.exchange.quote("GOLD")
            clock.advance(1.0)
            await asyncio.sleep(0.1)  # the pump catches up with the clock: 100 steps
            runs.append((before, still, s.exchange.quote("GOLD")))
    assert runs[0] == runs[1]
    before, still, moved = runs[0]
    assert before == still and moved != before


async def test_observations_reach_every_listener(sim: CapitalSimulator, client: CapitalClient) -> None:
    """The OrderManager's consumer and any other listener each get every observation; the first
    listener also gets what was reported before it subscribed."""
    xc = adapter(client)
    sim.exchange.status["GOLD"] = "CLOSED"
    early = entry("sig-early", "GOLD", Side.BUY, "1")
    await xc.submit([early])  # reported before anyone listens
    first, second = xc.observations(), xc.observations()
    got_first = await asyncio.wait_for(anext(first), 1)
    late = entry("sig-late", "GOLD", Side.BUY, "1")
    second_task = asyncio.ensure_future(anext(second))
    await asyncio.sleep(0)  # the second listener subscribes
    await xc.submit([late])
    got_second = await asyncio.wait_for(second_task, 1)
    ids = {getattr(o, "client_order_id", None) for o in (got_first, got_second)}
    assert ids == {early.client_order_id, late.client_order_id}
    await first.aclose()
    await second.aclose()
