"""Capital.com account semantics (issue 9 kinds 2b, 6a, 6b, 6c) against the simulator's books:
netting vs hedging accounts, the account owner's own deals, exits capped at Joe's live deals.
"""

from __future__ import annotations

import pytest

from capital.truth_helpers import adapter, around, books, bracket, drain, entry, exit_intent, posts
from joe.brokers.base import InvalidOrder, OrderOutcomeUnknown
from joe.brokers.capital import CapitalClient
from joe.core.models import Side
from joe.core.reports import BrokerNotice, FillReport, OrderStatusReport, VenueOrderStatus
from joe.simulators.capital import CapitalSimulator


async def test_netting_exit_is_capped_at_the_live_position(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    """2b: Joe's long is 2, the trader closes 1 elsewhere; Joe's reduce-only SELL 2 leaves no short."""
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    await xc.submit(bracket("sig-2b", "GOLD", Side.BUY, "2", stop, target))
    sim.manual_trade("GOLD", "SELL", 1)  # netting: reduces Joe's deal to 1
    assert [(d, s) for _, d, s, _ in books(sim)] == [("BUY", 1)]
    drain(xc)
    acks = await xc.submit([exit_intent("sig-2b", "GOLD", Side.SELL, "2")])
    assert books(sim) == []  # flat: no short 1 left without a stop
    obs = drain(xc)
    [rep] = [o for o in obs if isinstance(o, OrderStatusReport)]
    assert (rep.status, rep.quantity, rep.filled_quantity) == (VenueOrderStatus.FILLED, 1, 1)
    assert any(isinstance(o, BrokerNotice) and o.code == "joe.exit.capped" for o in obs)
    [fill] = [o for o in obs if isinstance(o, FillReport)]
    assert (fill.fill.side, fill.fill.quantity) == (Side.SELL, 1)
    assert acks[0].broker_position_id is not None


async def test_partial_exit_never_nets_against_the_traders_older_deal(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    """2b/6b, another case: a partial exit on netting would close the oldest deal, the trader's."""
    xc = adapter(client)
    sim.manual_trade("GOLD", "BUY", 1)  # the trader's, older
    await xc.submit([entry("sig-p", "GOLD", Side.BUY, "2")])
    with pytest.raises(InvalidOrder, match="did not open"):
        await xc.submit([exit_intent("sig-p", "GOLD", Side.SELL, "1")])
    assert sorted(s for _, _, s, _ in books(sim)) == [1, 2]  # nothing touched


async def test_partial_exit_nets_joes_own_oldest_deal_and_resizes_its_stop(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    group = bracket("sig-q", "GOLD", Side.BUY, "3", stop, target)
    await xc.submit(group)
    await xc.submit([exit_intent("sig-q", "GOLD", Side.SELL, "1")])
    [pos] = sim.account().positions
    assert pos.size == 2 and pos.deal_reference == group[0].client_order_id
    assert pos.stop_order is not None and pos.stop_order.quantity == 2  # protection follows the size
    [stop_now] = await xc.order_status(group[1].client_order_id)
    assert stop_now.quantity == 2


async def test_netting_sell_entry_against_a_long_is_refused(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    """6a: on a netting account a SELL entry would close the long; Joe must not record a short."""
    xc = adapter(client)
    sim.manual_trade("GOLD", "BUY", 2)
    lo, hi = around(sim, "GOLD", "2")
    with pytest.raises(InvalidOrder, match="netting account holds BUY 2"):
        await xc.submit(bracket("sig-6a", "GOLD", Side.SELL, "1", hi, lo))
    assert posts(sim) == 0 and [(d, s) for _, d, s, _ in books(sim)] == [("BUY", 2)]


async def test_hedging_sell_entry_opens_its_own_short_with_its_stop(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    sim.set_hedging(True)
    xc = adapter(client)
    sim.manual_trade("GOLD", "BUY", 2)
    lo, hi = around(sim, "GOLD", "2")
    group = bracket("sig-h", "GOLD", Side.SELL, "1", hi, lo)
    await xc.submit(group)
    short = [p for p in sim.account().positions if p.direction == "SELL"]
    assert len(short) == 1 and short[0].deal_reference == group[0].client_order_id
    assert short[0].bracket.stop_level == hi
    assert sorted((d, s) for _, d, s, _ in books(sim)) == [("BUY", 2), ("SELL", 1)]


@pytest.mark.parametrize("hedging", [False, True])
async def test_exit_closes_joes_deal_by_id_not_the_traders_of_the_same_size(
    sim: CapitalSimulator, client: CapitalClient, hedging: bool
) -> None:
    """6b: the trader's deal of the same size, older, must survive Joe's exit."""
    sim.set_hedging(hedging)
    xc = adapter(client)
    trader = sim.manual_trade("GOLD", "BUY", 1)["affectedDeals"][0]["dealId"]
    await xc.submit([entry("sig-6b", "GOLD", Side.BUY, "1")])
    await xc.submit([exit_intent("sig-6b", "GOLD", Side.SELL, "1")])
    assert [d for d, *_ in books(sim)] == [trader]


async def test_unprocessed_503_never_adopts_the_traders_identical_deal(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    """6c: POST answered 503 without being processed while the trader opens the same deal."""
    xc = adapter(client)
    sim.faults.arm("http_5xx", 1, path="/positions", method="POST", status=503, code="error.service")
    order = entry("sig-6c", "GOLD", Side.BUY, "1")
    sim.manual_trade("GOLD", "BUY", 1)
    with pytest.raises(OrderOutcomeUnknown):
        await xc.submit([order])
    assert await xc.order_status(order.client_order_id) == []  # asked: the broker has none of Joe's
    mass = await xc.mass_status()
    assert [r.client_order_id for r in mass.positions] == [""]  # the trader's deal stays the trader's
    assert all(f.fill.client_order_id != order.client_order_id for f in mass.fills)


async def test_exit_with_nothing_live_sends_nothing(sim: CapitalSimulator, client: CapitalClient) -> None:
    xc = adapter(client)
    sim.manual_trade("GOLD", "BUY", 1)
    with pytest.raises(InvalidOrder, match="no live deal"):
        await xc.submit([exit_intent("sig-none", "GOLD", Side.SELL, "1")])
    assert len(books(sim)) == 1


async def test_exit_fill_has_one_identity_and_owner_live_and_in_reconciliation(
    sim: CapitalSimulator, client: CapitalClient
) -> None:
    xc = adapter(client)
    stop, target = around(sim, "GOLD", "2")
    await xc.submit(bracket("sig-x", "GOLD", Side.BUY, "1", stop, target))
    drain(xc)
    exit_ = exit_intent("sig-x", "GOLD", Side.SELL, "1")
    await xc.submit([exit_])
    [live] = [o for o in drain(xc) if isinstance(o, FillReport)]
    assert live.fill.client_order_id == exit_.client_order_id and live.fill.side is Side.SELL
    mass = await xc.mass_status()
    [again] = [f for f in mass.fills if f.fill.fill_id == live.fill.fill_id]
    assert again.fill.client_order_id == exit_.client_order_id
    [rep] = await xc.order_status(exit_.client_order_id)
    assert (rep.status, rep.filled_quantity) == (VenueOrderStatus.FILLED, 1)


async def test_exit_whose_answer_is_lost_is_settled_by_asking(sim: CapitalSimulator) -> None:
    """The DELETE is processed but its answer comes after the client's timeout: no second DELETE."""
    from capital.conftest import make_client

    client = make_client(sim, order_timeout_s=0.3)
    await client.open()
    try:
        xc = adapter(client)
        await xc.submit([entry("sig-l", "GOLD", Side.BUY, "1")])
        sim.faults.arm("delay_response", 1, path="/positions/", method="DELETE", seconds=0.8)
        await xc.submit([exit_intent("sig-l", "GOLD", Side.SELL, "1")])
        assert books(sim) == []
        assert sum(1 for r in sim.requests if r.method == "DELETE") == 1
        [rep] = [o for o in drain(xc) if isinstance(o, OrderStatusReport) and o.leg is not None
                 and o.leg.value == "exit"]  # fmt: skip
        assert (rep.status, rep.filled_quantity) == (VenueOrderStatus.FILLED, 1)
    finally:
        await client.close()
