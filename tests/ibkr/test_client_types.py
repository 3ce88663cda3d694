"""`IBKRExecutionClient`: order types on the wire, trailing stops, OCA reduction, what-if, modify and
cancel, the account — the simulator's books are the truth each test compares against."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import BrokerOrderRef
from joe.core.events import NullAudit
from joe.core.models import OrderLeg, OrderType, Side
from joe.core.reports import VenueOrderStatus
from joe.simulators.ibkr import IBKRSimulator

from .helpers import audit_types, bracket_intents, single, wait_for

W = VenueOrderStatus


@pytest.mark.parametrize(
    ("kw", "wire"),
    [
        (dict(order_type=OrderType.STOP, stop_price=Decimal(150)), ("STP", None, Decimal(150), None, None)),
        (
            dict(order_type=OrderType.STOP_LIMIT, stop_price=Decimal(150), limit_price=Decimal(149)),
            ("STP LMT", Decimal(149), Decimal(150), None, None),
        ),
        (
            dict(order_type=OrderType.TRAILING_STOP, trailing_percent=Decimal("2.5")),
            ("TRAIL", None, None, Decimal("2.5"), None),
        ),
        (
            dict(order_type=OrderType.TRAILING_STOP, trailing_distance=Decimal(3), stop_price=Decimal(140)),
            ("TRAIL", None, Decimal(3), None, Decimal(140)),
        ),
    ],
)
async def test_order_types_on_the_wire(
    sim178: IBKRSimulator, make_client: Any, kw: dict[str, Any], wire: tuple[Any, ...]
) -> None:
    client = await make_client(sim178)
    it = single("t1", OrderLeg.EXIT, Side.SELL, **kw)
    await client.submit([it])
    await wait_for(lambda: bool(sim178.placed), what="sent")
    (p,) = sim178.placed
    assert (p.order_type, p.lmt_price, p.aux_price, p.trailing_percent, p.trail_stop_price) == wire
    assert p.order_ref == it.client_order_id and p.transmit and p.parent_id == 0 and p.action == "SELL"


async def test_trailing_stop_trails_the_simulated_price(sim178: IBKRSimulator, make_client: Any) -> None:
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    it = single("tr", OrderLeg.EXIT, Side.SELL, qty=10, order_type=OrderType.TRAILING_STOP,
                trailing_distance=Decimal(2))  # fmt: skip
    await client.submit([it])
    await wait_for(lambda: sim178.find(it.client_order_id) is not None, what="placed")
    for mid in (101, 103, 106):  # the stop ratchets up with the bid, never down
        sim178.set_price("AAPL", mid)
    bo = sim178.find(it.client_order_id)
    assert bo is not None and bo.sim.stop_price == sim178.prices.quote("AAPL").bid - 2
    sim178.set_price("AAPL", 105)
    assert bo.sim.stop_price == Decimal("103.99") and not bo.done
    sim178.set_price("AAPL", 103.5)
    await wait_for(lambda: bool(client.recorder.fills(it.client_order_id)), what="trail fill")
    assert client.recorder.fills(it.client_order_id)[0].fill.price > Decimal(101)


async def test_partial_take_profit_reduces_the_stop(sim178: IBKRSimulator, make_client: Any) -> None:
    """ocaType 2: a partial target fill shrinks the stop to the open quantity; both are reported."""
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    legs = bracket_intents("o1", limit=None)
    await client.submit(legs)
    rec = client.recorder
    await wait_for(lambda: rec.raw(legs[1].client_order_id) == "Submitted", what="children live")
    sim178.fill(legs[2].client_order_id, 40, 110)
    await wait_for(
        lambda: getattr(rec.last_status(legs[1].client_order_id), "quantity", 0) == 60, what="stop 60"
    )
    assert sim178.find(legs[1].client_order_id).sim.quantity == 60  # type: ignore[union-attr]
    assert sim178.book.positions["AAPL"].qty == 60
    sim178.set_price("AAPL", 111)  # the target completes: OCA cancels the stop
    await wait_for(lambda: rec.state(legs[1].client_order_id) is W.CANCELLED, what="stop cancelled")
    assert sim178.book.positions["AAPL"].qty == 0


async def test_what_if_reports_margin_and_places_nothing(
    sim178: IBKRSimulator, make_client: Any, audit: NullAudit
) -> None:
    client = await make_client(sim178)
    it = single("w1", order_type=OrderType.LIMIT, limit_price=Decimal(1))
    res = await client.what_if(it)
    assert res.init_margin_change == Decimal(25)  # 100 x 1.00 x 25 % at the simulator
    assert [p.what_if for p in sim178.placed] == [True] and sim178.book.orders == {}
    assert "ibkr.what_if" in audit_types(audit)


async def test_limit_modify_then_cancel(
    sim: IBKRSimulator, make_client: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 202", r"Canceled order")
    client = await make_client(sim)
    it = single("l1", order_type=OrderType.LIMIT, limit_price=Decimal(10))
    [ack] = await client.submit([it])
    ref = BrokerOrderRef(it, ack.broker_order_id)
    await client.modify(ref, limit_price=Decimal("11.5"), quantity=Decimal(80))
    rec = client.recorder
    await wait_for(lambda: getattr(rec.last_status(it.client_order_id), "limit_price", 0) == Decimal("11.5"),
                   what="modify reported")  # fmt: skip
    bo = sim.find(it.client_order_id)
    assert bo is not None and (bo.placed.quantity, bo.placed.lmt_price) == (80, Decimal("11.5"))
    assert rec.last_status(it.client_order_id).quantity == 80  # type: ignore[union-attr]
    await client.cancel(ref)
    await wait_for(lambda: rec.state(it.client_order_id) is W.CANCELLED, what="cancel")
    assert {"ibkr.place", "ibkr.modify", "ibkr.cancel"} <= set(audit_types(audit))


async def test_cancel_by_order_ref_after_a_restart(
    sim178: IBKRSimulator, make_client: Any, ib_log_guard: Any
) -> None:
    """A new process that lost the broker id still cancels its order, found by orderRef."""
    ib_log_guard.allow(r"Error 202", r"Canceled order")
    first = await make_client(sim178, client_id=40)
    it = single("rs", order_type=OrderType.LIMIT, limit_price=Decimal(1))
    await first.submit([it])
    await wait_for(lambda: first.recorder.state(it.client_order_id) is W.WORKING, what="ack")
    await first.close()
    second = await make_client(sim178, client_id=40)
    await second.cancel(BrokerOrderRef(it, None))
    await wait_for(lambda: sim178.find(it.client_order_id).status == "Cancelled", what="cancel")  # type: ignore[union-attr]


async def test_account_reflects_fills_margin_and_pnl(sim178: IBKRSimulator, make_client: Any) -> None:
    sim178.set_price("AAPL", 100)
    client = await make_client(sim178)
    before = await client.account()
    assert before.margin_used == 0 and before.unrealized_pnl == 0 and before.equity == Decimal(1_000_000)
    await client.submit([single("acct", qty=100)])
    await wait_for(lambda: sim178.book.positions.get("AAPL") is not None, what="fill")
    sim178.set_price("AAPL", 110)
    await client.submit([single("acct2", OrderLeg.EXIT, Side.SELL, qty=1)])
    await wait_for(lambda: sim178.book.positions["AAPL"].qty == 99, what="exit fill")
    avg = sim178.book.positions["AAPL"].avg_cost
    expected_margin = Decimal(99) * sim178.prices.quote("AAPL").mid * Decimal("0.25")

    def pushed() -> bool:  # the simulator pushes changed summary values after each fill
        vals = {v.tag: v.value for v in client.ib.wrapper.acctSummary.values()}
        return Decimal(vals.get("MaintMarginReq", "0")) == expected_margin

    await wait_for(pushed, what="account summary push")
    info = await client.account()
    assert info.margin_used == expected_margin
    assert info.unrealized_pnl == (sim178.prices.quote("AAPL").mid - avg) * 99
    assert info.realized_pnl == sim178.book.realized and info.realized_pnl > 0
    assert info.available_funds == info.equity - expected_margin
