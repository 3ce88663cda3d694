"""TWS message codes through `IBKRExecutionClient`: each is reported as a `BrokerNotice` with the
meaning from `joe.brokers.ibkr.codes`, and the order's reported state comes only from the broker's
own status messages (ib_async 2.1 marks these trades Cancelled; the adapter must not follow it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.base import BrokerOrderRef, InvalidOrder
from joe.brokers.ibkr.codes import CODES, classify, refused_cancel_state
from joe.core.models import OrderType, Side
from joe.core.reports import CodeMeaning, VenueOrderStatus
from joe.simulators.ibkr import IBKRSimulator

from .helpers import bracket_intents, single, wait_for

M = CodeMeaning
W = VenueOrderStatus
IB_CANCELS = (r"Error \d+", r"Canceled order")  # ib_async's own (wrong) reading, logged at ERROR


def test_code_table_in_context() -> None:
    assert classify(10349, request="place") is M.NOTICE
    assert classify(10148, "cannot be cancelled, state: Filled.", request="cancel") is M.REQUEST_REFUSED
    assert classify(201, request="place", acknowledged=False) is M.REJECTED
    assert classify(201, request="place", acknowledged=True) is M.AMBIGUOUS
    assert classify(201, request="") is M.AMBIGUOUS  # on a working stop
    assert classify(201, request="modify", acknowledged=True) is M.AMBIGUOUS
    assert classify(110, request="place") is M.REJECTED
    assert classify(110, request="modify", acknowledged=True) is M.REQUEST_REFUSED
    assert classify(202, request="cancel") is M.AMBIGUOUS  # a cancel, but fills may precede it: ask
    for code in (10147, 161, 135, 136):
        assert classify(code, request="cancel") is M.AMBIGUOUS
    for code in (1100, 1101, 1102):
        assert classify(code) is M.CONNECTIVITY
    assert classify(399, "Order message error: warning") is M.NOTICE
    assert classify(399, "Order will be rejected: size") is M.AMBIGUOUS
    assert classify(162, "Historical data request pacing violation") is M.PACING
    assert refused_cancel_state(
        "OrderId 7 that needs to be cancelled cannot be cancelled, state: PendingCancel."
    ) == ("PendingCancel")


@given(code=st.integers(min_value=-10, max_value=100_000).filter(lambda c: c not in CODES), msg=st.text())
def test_unknown_code_is_always_ambiguous(code: int, msg: str) -> None:
    for request in ("place", "modify", "cancel", ""):
        for acked in (False, True):
            assert classify(code, msg, request=request, acknowledged=acked) is M.AMBIGUOUS


@given(code=st.sampled_from(sorted(CODES)), request=st.sampled_from(["place", "modify", "cancel", ""]))
def test_no_code_ever_rejects_an_acknowledged_order(code: int, request: str) -> None:
    """REJECTED only ever means 'a new, never acknowledged order'."""
    assert classify(code, request=request, acknowledged=True) is not M.REJECTED


async def test_10349_is_a_notice_and_the_order_fills(
    sim: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_CANCELS)
    sim.set_price("AAPL", 100)
    client = await make_client(sim)
    sim.faults.arm("notice_10349")
    it = single("n1", order_type=OrderType.LIMIT, limit_price=Decimal(99))
    [ack] = await client.submit([it])
    rec = client.recorder
    await wait_for(lambda: bool(rec.notices("10349")), what="10349")
    [notice] = rec.notices("10349")
    assert (notice.meaning, notice.client_order_id, notice.request) == (M.NOTICE, it.client_order_id, "place")
    trade = client.ib.wrapper.trades[(31, int(ack.broker_order_id))]
    assert trade.orderStatus.status == "Cancelled"  # ib_async 2.1's reading: the reason for the raw tap
    assert all(r.status is W.WORKING for r in rec.statuses(it.client_order_id))
    [broker] = await client.order_status(it.client_order_id)
    assert broker.status is W.WORKING and broker.raw.get("tif") == "DAY"
    sim.set_price("AAPL", 98.5)
    await wait_for(lambda: bool(rec.fills(it.client_order_id)), what="the fill after the notice")
    await wait_for(lambda: rec.state(it.client_order_id) is W.FILLED, what="filled")
    assert sim.book.positions["AAPL"].qty == 100


async def test_10349_on_a_bracket_child_leaves_the_bracket_intact(
    sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_CANCELS)
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    sim178.faults.arm("notice_10349", skip=1)  # the second leg: the stop
    legs = bracket_intents("n2")
    await client.submit(legs)
    rec = client.recorder
    await wait_for(lambda: bool(rec.notices("10349")), what="10349")
    assert rec.notices("10349")[0].client_order_id == legs[1].client_order_id
    sim178.set_price("AAPL", 98.5)
    await wait_for(lambda: rec.raw(legs[1].client_order_id) == "Submitted", what="stop live")
    assert [sim178.find(i.client_order_id).status for i in legs] == ["Filled", "Submitted", "Submitted"]
    assert not any(r.status is W.CANCELLED for i in legs for r in rec.statuses(i.client_order_id))


async def test_10148_refused_cancel_is_not_a_cancel(
    sim: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_CANCELS)
    sim.set_price("AAPL", 100)
    client = await make_client(sim)
    it = single("r1", order_type=OrderType.LIMIT, limit_price=Decimal(99))
    [ack] = await client.submit([it])
    await wait_for(lambda: client.recorder.last_status(it.client_order_id) is not None, what="ack")
    sim.faults.arm("refuse_cancel", state="Submitted")
    await client.cancel(BrokerOrderRef(it, ack.broker_order_id))
    rec = client.recorder
    await wait_for(lambda: bool(rec.notices("10148")), what="10148")
    [n] = rec.notices("10148")
    assert (n.meaning, n.request, n.broker_order_id) == (M.REQUEST_REFUSED, "cancel", ack.broker_order_id)
    assert refused_cancel_state(n.message) == "Submitted"
    [broker] = await client.order_status(it.client_order_id)
    assert broker.status is W.WORKING
    sim.set_price("AAPL", 98.5)  # still live: it fills
    await wait_for(lambda: rec.state(it.client_order_id) is W.FILLED, what="filled")
    assert not any(r.status is W.CANCELLED for r in rec.statuses(it.client_order_id))
    # A cancel of the filled order: 10148 "state: Filled", still not a cancel.
    await client.cancel(BrokerOrderRef(it, ack.broker_order_id))
    await wait_for(lambda: len(rec.notices("10148")) == 2, what="second 10148")
    assert refused_cancel_state(rec.notices("10148")[1].message) == "Filled"


async def test_201_on_a_working_stop_is_ambiguous_and_it_still_fires(
    sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_CANCELS)
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    stop = single("s1", side=Side.SELL, order_type=OrderType.STOP, stop_price=Decimal(95))
    await client.submit([stop])
    rec = client.recorder
    await wait_for(lambda: rec.last_status(stop.client_order_id) is not None, what="ack")
    sim178.order_error(stop.client_order_id, 201, "Order rejected - reason: simulated revision refused")
    await wait_for(lambda: bool(rec.notices("201")), what="201")
    assert rec.notices("201")[0].meaning is M.AMBIGUOUS
    [broker] = await client.order_status(stop.client_order_id)
    assert broker.status is W.WORKING
    sim178.set_price("AAPL", 94)
    await wait_for(lambda: rec.state(stop.client_order_id) is W.FILLED, what="the stop fires")


async def test_201_on_a_new_order_is_rejected(
    sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_CANCELS)
    client = await make_client(sim178)
    sim178.faults.arm("reject_next")
    it = single("j1", order_type=OrderType.LIMIT, limit_price=Decimal(1))
    await client.submit([it])
    await wait_for(lambda: bool(client.recorder.notices("201")), what="201")
    [n] = client.recorder.notices("201")
    assert (n.meaning, n.client_order_id, n.request) == (M.REJECTED, it.client_order_id, "place")
    assert await client.order_status(it.client_order_id) == []


async def test_110_refused_modify_keeps_the_broker_price(
    sim: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_CANCELS)
    sim.set_price("AAPL", 100)
    client = await make_client(sim)
    legs = bracket_intents("m1", limit=None)  # market entry: fills at once, children go live
    acks = await client.submit(legs)
    rec = client.recorder
    stop, stop_id = legs[1], acks[1].broker_order_id
    await wait_for(lambda: rec.raw(stop.client_order_id) == "Submitted", what="stop live")
    # Off the tick grid: refused before sending.
    with pytest.raises(InvalidOrder, match=r"stop_price=97\.033"):
        await client.modify(
            BrokerOrderRef(stop, stop_id, acks[0].broker_order_id), stop_price=Decimal("97.033")
        )
    # TWS refuses the revision (its market rule, say): 110 on a modify is a refused request.
    sim.faults.arm("refuse_modify", code=110)
    n_status = len(rec.statuses(stop.client_order_id))
    await client.modify(BrokerOrderRef(stop, stop_id, acks[0].broker_order_id), stop_price=Decimal("97.03"))
    await wait_for(lambda: bool(rec.notices("110")), what="110")
    [n] = rec.notices("110")
    assert (n.meaning, n.request, n.client_order_id) == (M.REQUEST_REFUSED, "modify", stop.client_order_id)
    assert len(rec.statuses(stop.client_order_id)) == n_status  # no status claims the new price
    [broker] = await client.order_status(stop.client_order_id)
    assert broker.stop_price == Decimal(95) and sim.find(stop.client_order_id).sim.stop_price == 95
    # An accepted revision is reported with the broker's new price.
    await client.modify(BrokerOrderRef(stop, stop_id, acks[0].broker_order_id), stop_price=Decimal("96.5"))
    await wait_for(lambda: rec.last_status(stop.client_order_id).stop_price == Decimal("96.5"), what="moved")


async def test_unknown_code_on_an_order_is_ambiguous(
    sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_CANCELS)
    client = await make_client(sim178)
    it = single("u1", order_type=OrderType.LIMIT, limit_price=Decimal(1))
    await client.submit([it])
    await wait_for(lambda: client.recorder.last_status(it.client_order_id) is not None, what="ack")
    sim178.order_error(it.client_order_id, 4242, "Something new from TWS")
    await wait_for(lambda: bool(client.recorder.notices("4242")), what="notice")
    assert client.recorder.notices("4242")[0].meaning is M.AMBIGUOUS


async def test_connectivity_codes_are_reported(
    sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 1100", r"Error 1102")
    client = await make_client(sim178)
    sim178.inject_error(1100)
    sim178.inject_error(1102)
    await wait_for(lambda: bool(client.recorder.notices("resynced")), what="resync after 1102")
    codes = [(n.code, n.meaning) for n in client.recorder.notices()]
    assert ("1100", M.CONNECTIVITY) in codes and ("1102", M.CONNECTIVITY) in codes
