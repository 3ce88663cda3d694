"""Fills, corrections, commissions and broker-side resizes/cancels, as `IBKRExecutionClient` reports them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.base import BrokerOrderRef
from joe.brokers.ibkr.translate import split_exec_id
from joe.core.models import OrderType
from joe.core.reports import CodeMeaning, CommissionReport, FillReport, VenueOrderStatus
from joe.simulators.ibkr import IBKRSimulator

from .helpers import bracket_intents, single, wait_for

W = VenueOrderStatus
DROP_LOGS = (r"Peer closed connection", r"API connection failed", r"Make sure API port")

_part = st.text(alphabet="0123456789abcdef", min_size=1, max_size=10)


def test_split_exec_id_examples() -> None:
    assert split_exec_id("0000e0d5.6553e2a1.01.01") == ("0000e0d5.6553e2a1.01", 0)
    assert split_exec_id("0000e0d5.6553e2a1.01.02") == ("0000e0d5.6553e2a1.01", 1)
    assert split_exec_id("plain") == ("plain", 0)
    assert split_exec_id("a.b.X") == ("a.b.X", 0)


@given(head=st.lists(_part, min_size=1, max_size=4), a=st.integers(1, 99), b=st.integers(1, 99))
def test_corrections_share_identity_and_order_by_revision(head: list[str], a: int, b: int) -> None:
    base = ".".join(head)
    (ida, ra), (idb, rb) = split_exec_id(f"{base}.{a:02d}"), split_exec_id(f"{base}.{b:02d}")
    assert ida == idb == base and (ra < rb) == (a < b)


async def test_execution_correction_replaces(sim: IBKRSimulator, make_client: Any) -> None:
    """TWS fills 100, then corrects that execution to 50 (….01 → ….02): one fill identity, revision 1."""
    sim.set_price("AAPL", 100)
    client = await make_client(sim)
    it = single("x1", order_type=OrderType.LIMIT, limit_price=Decimal(90))
    await client.submit([it])
    rec = client.recorder
    await wait_for(lambda: rec.state(it.client_order_id) is W.WORKING, what="ack")
    sim.faults.arm("correct_exec", qty=50, price="89.5")
    sim.fill(it.client_order_id, 100, 90)
    await wait_for(lambda: len(rec.fills(it.client_order_id)) == 2, what="fill + correction")
    first, fix = rec.fills(it.client_order_id)
    assert first.fill.fill_id == fix.fill.fill_id and (first.revision, fix.revision) == (0, 1)
    assert first.raw_exec_id != fix.raw_exec_id and split_exec_id(fix.raw_exec_id)[0] == fix.fill.fill_id
    assert (fix.fill.quantity, fix.fill.price) == (50, Decimal("89.5"))
    await wait_for(lambda: rec.state(it.client_order_id) is W.WORKING, what="works again")
    assert rec.last_status(it.client_order_id).filled_quantity == 50  # type: ignore[union-attr]
    # The broker's books: 50 filled, 50 still working; both executions kept, the later one wins.
    bo = sim.find(it.client_order_id)
    assert bo is not None and (bo.sim.filled, bo.status) == (50, "Submitted")
    assert sim.book.positions["AAPL"].qty == 50 and len(sim.book.executions) == 2
    [broker] = await client.order_status(it.client_order_id)
    assert (broker.status, broker.filled_quantity) == (W.WORKING, 50)
    # The real second fill is not an overfill.
    sim.fill(it.client_order_id, 50, 90)
    await wait_for(lambda: rec.state(it.client_order_id) is W.FILLED, what="filled")
    assert sim.book.positions["AAPL"].qty == 100
    ms = await client.mass_status()
    revs = sorted((f.fill.fill_id, f.revision, f.fill.quantity) for f in ms.fills)
    assert len({f for f, _, _ in revs}) == 2 and [q for _, _, q in revs] == [100, 50, 50]


async def test_commission_before_its_execution_is_reported(sim178: IBKRSimulator, make_client: Any) -> None:
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    sim178.faults.arm("commission_first")
    it = single("k1")
    await client.submit([it])
    rec = client.recorder
    await wait_for(lambda: bool(rec.fills(it.client_order_id)), what="fill")
    kinds = [o for o in rec.seen if isinstance(o, FillReport | CommissionReport)]
    assert isinstance(kinds[0], CommissionReport) and isinstance(kinds[1], FillReport)
    assert kinds[0].fill_id == kinds[1].fill.fill_id and kinds[0].commission == Decimal(1)
    ms = await client.mass_status()
    assert [c.commission for c in ms.commissions] == [Decimal(1)] and ms.fills[0].fill.commission == Decimal(
        1
    )


async def test_partial_parent_then_cancel_resizes_children(
    sim: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    """Entry LMT BUY 100 fills 30, the rest is cancelled: TWS resizes stop and target to 30."""
    ib_log_guard.allow(r"Error 202", r"Canceled order")
    sim.set_price("AAPL", 100)
    client = await make_client(sim)
    legs = bracket_intents("p1")
    acks = await client.submit(legs)
    rec = client.recorder
    await wait_for(lambda: rec.raw(legs[2].client_order_id) == "PreSubmitted", what="group acked")
    sim.fill(legs[0].client_order_id, 30, 99)
    await client.cancel(BrokerOrderRef(legs[0], acks[0].broker_order_id))
    for child in legs[1:]:
        await wait_for(lambda c=child: rec.raw(c.client_order_id) == "Submitted", what="child live")
        last = rec.last_status(child.client_order_id)
        assert last is not None and last.quantity == 30 and last.status is W.WORKING
        assert sim.find(child.client_order_id).sim.quantity == 30  # type: ignore[union-attr]
    await wait_for(lambda: rec.state(legs[0].client_order_id) is W.CANCELLED, what="parent cancelled")
    parent = rec.last_status(legs[0].client_order_id)
    assert parent is not None and (parent.quantity, parent.filled_quantity) == (100, 30)
    stop_now = [r for r in await client.order_status(legs[1].client_order_id)]
    assert [(r.status, r.quantity) for r in stop_now] == [(W.WORKING, 30)]
    assert sim.book.positions["AAPL"].qty == 30


async def test_modify_parent_quantity_then_children(sim178: IBKRSimulator, make_client: Any) -> None:
    """The simulator, like the API, leaves children alone when the parent's quantity changes; each
    leg's modify is reported with the broker's new quantity."""
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    legs = bracket_intents("q1")
    acks = await client.submit(legs)
    rec = client.recorder
    await wait_for(lambda: rec.raw(legs[2].client_order_id) == "PreSubmitted", what="group acked")
    parent_id = acks[0].broker_order_id
    await client.modify(BrokerOrderRef(legs[0], parent_id), quantity=Decimal(200))
    await wait_for(lambda: rec.last_status(legs[0].client_order_id).quantity == 200, what="parent 200")  # type: ignore[union-attr]
    assert sim178.find(legs[1].client_order_id).sim.quantity == 100  # type: ignore[union-attr]
    for leg, ack in zip(legs[1:], acks[1:], strict=True):
        await client.modify(BrokerOrderRef(leg, ack.broker_order_id, parent_id), quantity=Decimal(200))
    for leg in legs[1:]:
        await wait_for(lambda c=leg: rec.last_status(c.client_order_id).quantity == 200, what="child 200")  # type: ignore[union-attr]
        bo = sim178.find(leg.client_order_id)
        assert bo is not None and bo.sim.quantity == 200 and bo.placed.parent_id == int(parent_id)
        assert bo.placed.oca_group == f"oca-{legs[0].client_order_id}"


async def test_broker_cancels_a_stop(sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any) -> None:
    ib_log_guard.allow(r"Error 202", r"Canceled order")
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    legs = bracket_intents("b1", limit=None)
    await client.submit(legs)
    rec = client.recorder
    await wait_for(lambda: rec.raw(legs[1].client_order_id) == "Submitted", what="stop live")
    sim178.broker_cancel(legs[1].client_order_id, reason="price check")
    await wait_for(lambda: rec.state(legs[1].client_order_id) is W.CANCELLED, what="stop cancelled")
    await wait_for(lambda: bool(rec.notices("202")), what="202")
    assert rec.notices("202")[0].meaning is CodeMeaning.AMBIGUOUS
    assert rec.notices("202")[0].client_order_id == legs[1].client_order_id
    assert [(p.symbol, p.quantity) for p in await client.positions()] == [("AAPL", Decimal(100))]


async def test_fills_missed_while_disconnected_are_reported_after_reconnect(
    sim: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*DROP_LOGS)
    client = await make_client(sim)
    sim.set_fill_chunk(100)
    sim.faults.arm("drop_after_execs", n=3)
    it = single("d1", qty=500)
    await client.submit([it])
    rec = client.recorder
    await wait_for(lambda: bool(rec.notices("resynced")) and client.ready, what="reconnect")
    await wait_for(
        lambda: len({f.fill.fill_id for f in rec.fills(it.client_order_id)}) == 5, what="all fills"
    )
    live = {f.fill.fill_id for f in rec.fills(it.client_order_id) if not f.from_reconciliation}
    recovered = {f.fill.fill_id for f in rec.fills(it.client_order_id) if f.from_reconciliation}
    assert len(live) == 3 and live | recovered == {
        split_exec_id(e.wire.exec_id)[0] for e in sim.book.executions
    }
    [broker] = await client.order_status(it.client_order_id)
    assert (broker.status, broker.filled_quantity) == (W.FILLED, 500)
