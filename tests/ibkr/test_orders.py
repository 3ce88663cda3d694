"""Single orders through IBKRExecutor against the simulator: types, what-if, reject, modify, cancel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import BrokerError, OrderOutcomeUnknown, OrderRejected, WhatIfResult
from joe.core.events import NullAudit, OrderEventType
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.simulators.ibkr import IBKRSimulator

from .helpers import audit_types, drain, wait_for


def intent(
    sig: str, leg: OrderLeg = OrderLeg.ENTRY, side: Side = Side.BUY, qty: int = 100, **kw: Any
) -> OrderIntent:
    return OrderIntent(
        client_order_id(sig, leg.value), sig, leg, kw.pop("symbol", "AAPL"), side, Decimal(qty), **kw
    )


def real_orders(sim: IBKRSimulator) -> list[Any]:
    return [p for p in sim.placed if not p.what_if]


async def test_market_entry_fills_with_commission(
    sim: IBKRSimulator, make_executor: Any, audit: NullAudit
) -> None:
    ex = await make_executor(sim)
    it = intent("m1")
    res = await ex.place(it)
    assert res.accepted and res.client_order_id == it.client_order_id
    await wait_for(lambda: ex.order(it.client_order_id).state is OrderState.FILLED, what="fill")  # type: ignore[union-attr]
    await wait_for(
        lambda: any(e.type is OrderEventType.FILLED for e in list(ex.ledger.queue._queue)), what="event"
    )
    events = drain(ex)
    assert [e.type for e in events] == [
        OrderEventType.SUBMITTED,
        OrderEventType.ACCEPTED,
        OrderEventType.FILLED,
    ]
    fill = events[-1].fill
    assert fill is not None and fill.quantity == 100 and fill.commission == Decimal(1)
    assert fill.fill_id.endswith(".01") and fill.client_order_id == it.client_order_id
    assert fill.price == sim.prices.quote("AAPL").ask
    types = audit_types(audit)
    for t in ("order.what_if", "order.attempt", "order.ack", "order.fill", "order.commission"):
        assert t in types
    assert types.index("order.attempt") < types.index("order.ack") < types.index("order.fill")
    positions = await ex.positions()
    assert [(p.symbol, p.quantity) for p in positions] == [("AAPL", Decimal(100))]
    since = fill.ts.replace(year=2000)
    assert [f.fill_id for f in await ex.executions_since(since)] == [fill.fill_id]


async def test_what_if_precedes_every_entry_and_can_veto(
    sim178: IBKRSimulator, make_executor: Any, audit: NullAudit
) -> None:
    seen: list[WhatIfResult] = []

    def gate(it: OrderIntent, wi: WhatIfResult) -> None:
        seen.append(wi)
        if it.quantity > 1000:
            raise OrderRejected(f"margin {wi.init_margin_change} too large")

    ex = await make_executor(sim178, what_if_check=gate)
    ok = intent("w1", order_type=OrderType.LIMIT, limit_price=Decimal(1))
    await ex.place(ok)
    first, second = sim178.placed
    assert first.what_if and not second.what_if
    assert first.order_ref == second.order_ref == ok.client_order_id
    assert seen[0].init_margin_change == Decimal(25)  # 100 x 1.00 x 25 % at the simulator
    with pytest.raises(OrderRejected, match="too large"):
        await ex.place(intent("w2", qty=5000))
    assert len(real_orders(sim178)) == 1  # the vetoed entry never reached the broker
    assert ex.order(client_order_id("w2", "entry")) is None
    # Exits skip the what-if (they reduce risk).
    await ex.place(
        intent("w3", OrderLeg.EXIT, Side.SELL, order_type=OrderType.LIMIT, limit_price=Decimal(9999))
    )
    assert not sim178.placed[-1].what_if and sim178.placed[-2].what_if


async def test_reject_201(
    sim: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 201", r"Canceled order")
    ex = await make_executor(sim)
    sim.faults.arm("reject_next", reason="Order rejected - reason: simulated margin")
    it = intent("r1")
    res = await ex.place(it)
    assert not res.accepted and "201" in res.reason
    order = ex.order(it.client_order_id)
    assert order is not None and order.state is OrderState.REJECTED
    assert "order.reject" in audit_types(audit)
    assert OrderEventType.REJECTED in [e.type for e in drain(ex)]


async def test_limit_modify_then_cancel(
    sim: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 202")
    ex = await make_executor(sim)
    it = intent("l1", order_type=OrderType.LIMIT, limit_price=Decimal(10))
    await ex.place(it)
    await ex.modify(it.client_order_id, limit_price=Decimal("11.5"), quantity=Decimal(80))
    await wait_for(lambda: sim.find(it.client_order_id).placed.lmt_price == Decimal("11.5"), what="modify")  # type: ignore[union-attr]
    bo = sim.find(it.client_order_id)
    assert (
        bo is not None
        and bo.placed.quantity == 80
        and bo.order_id == int(ex.order(it.client_order_id).broker_order_id)
    )  # type: ignore[union-attr]
    await ex.cancel(it.client_order_id)
    await wait_for(lambda: ex.order(it.client_order_id).state is OrderState.CANCELLED, what="cancel")  # type: ignore[union-attr]
    types = [e.type for e in drain(ex)]
    assert OrderEventType.MODIFIED in types and types[-1] is OrderEventType.CANCELLED
    assert {"order.modify", "order.cancel", "order.cancelled"} <= set(audit_types(audit))
    assert await ex.open_orders() == []


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
    sim178: IBKRSimulator, make_executor: Any, kw: dict[str, Any], wire: tuple[Any, ...]
) -> None:
    ex = await make_executor(sim178)
    it = intent("t1", OrderLeg.EXIT, Side.SELL, **kw)
    assert (await ex.place(it)).accepted
    (p,) = real_orders(sim178)
    assert (p.order_type, p.lmt_price, p.aux_price, p.trailing_percent, p.trail_stop_price) == wire
    assert p.order_ref == it.client_order_id and p.transmit and p.parent_id == 0 and p.action == "SELL"


async def test_trailing_stop_trails_the_simulated_price(sim178: IBKRSimulator, make_executor: Any) -> None:
    sim178.set_price("AAPL", 100)
    ex = await make_executor(sim178)
    it = intent(
        "tr",
        OrderLeg.EXIT,
        Side.SELL,
        qty=10,
        order_type=OrderType.TRAILING_STOP,
        trailing_distance=Decimal(2),
    )
    await ex.place(it)
    for mid in (101, 103, 106):  # the stop ratchets up with the bid, never down
        sim178.set_price("AAPL", mid)
    bo = sim178.find(it.client_order_id)
    assert bo is not None and bo.sim.stop_price == sim178.prices.quote("AAPL").bid - 2
    sim178.set_price("AAPL", 105)
    assert bo.sim.stop_price == Decimal("103.99") and not bo.done
    sim178.set_price("AAPL", 103.5)
    await wait_for(lambda: ex.order(it.client_order_id).state is OrderState.FILLED, what="trail fill")  # type: ignore[union-attr]
    fill = next(iter(ex.order(it.client_order_id).fills.values()))  # type: ignore[union-attr]
    assert fill.price > Decimal(101)  # far above where a fixed stop at entry - 2 would have sold


async def test_same_intent_twice_places_one_order(sim178: IBKRSimulator, make_executor: Any) -> None:
    ex = await make_executor(sim178)
    it = intent("d1", order_type=OrderType.LIMIT, limit_price=Decimal(1))
    a = await ex.place(it)
    b = await ex.place(it)
    assert a.broker_order_id == b.broker_order_id and len(real_orders(sim178)) == 1


async def test_no_ack_is_unknown_then_reconciled(
    sim178: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Peer closed connection")
    ex = await make_executor(sim178, ack_timeout=0.3)
    sim178.faults.arm("ignore_next")
    it = intent("u1", OrderLeg.EXIT, Side.SELL, order_type=OrderType.LIMIT, limit_price=Decimal(9999))
    with pytest.raises(OrderOutcomeUnknown):
        await ex.place(it)
    assert ex.order(it.client_order_id).state is OrderState.UNKNOWN  # type: ignore[union-attr]
    assert "order.unknown" in audit_types(audit)
    sim178.drop_connections()  # reconnect + re-sync proves the order does not exist at the broker
    await wait_for(lambda: ex.order(it.client_order_id).state is OrderState.REJECTED, what="reconcile")  # type: ignore[union-attr]
    assert "not found" in (ex.order(it.client_order_id).reject_reason or "")  # type: ignore[union-attr]


async def test_restart_maps_open_orders_back_by_order_ref(
    sim178: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    """A new process (new executor, same clientId) finds and cancels yesterday's order by orderRef."""
    ib_log_guard.allow(r"Error 202")
    first = await make_executor(sim178, client_id=40)
    it = intent("rs", order_type=OrderType.LIMIT, limit_price=Decimal(1))
    await first.place(it)
    await first.close()
    second = await make_executor(sim178, client_id=40)
    (ev,) = await second.open_orders()
    assert ev.client_order_id == it.client_order_id and ev.type is OrderEventType.ACCEPTED
    await second.cancel(it.client_order_id)
    await wait_for(lambda: sim178.find(it.client_order_id).status == "Cancelled", what="cancel")  # type: ignore[union-attr]
    with pytest.raises(BrokerError, match="unknown order"):
        await second.cancel("joe-nonexistent")


async def test_unknown_symbol_is_rejected_before_any_order(
    sim178: IBKRSimulator, make_executor: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 200")
    ex = await make_executor(sim178)
    with pytest.raises(OrderRejected, match="NOSUCH"):
        await ex.place(intent("x1", symbol="NOSUCH"))
    assert sim178.placed == []


async def test_account_reflects_fills_margin_and_pnl(sim178: IBKRSimulator, make_executor: Any) -> None:
    sim178.set_price("AAPL", 100)
    ex = await make_executor(sim178)
    before = await ex.account()
    assert before.margin_used == 0 and before.unrealized_pnl == 0
    it = intent("acct", qty=100)
    await ex.place(it)
    await wait_for(lambda: ex.order(it.client_order_id).state is OrderState.FILLED, what="fill")  # type: ignore[union-attr]
    sim178.set_price("AAPL", 110)  # the next fill event pushes fresh values; trigger one with a tiny exit
    await ex.place(intent("acct2", OrderLeg.EXIT, Side.SELL, qty=1))
    avg = sim178.book.positions["AAPL"].avg_cost
    await wait_for(lambda: sim178.book.positions["AAPL"].qty == 99, what="exit fill")
    expected_margin = Decimal(99) * sim178.prices.quote("AAPL").mid * Decimal("0.25")

    def pushed() -> bool:  # the simulator pushes changed summary values after each fill
        vals = {v.tag: v.value for v in ex.ib.wrapper.acctSummary.values()}
        return Decimal(vals.get("MaintMarginReq", "0")) == expected_margin

    await wait_for(pushed, what="account summary push")
    info = await ex.account()
    assert info.margin_used == expected_margin
    assert info.unrealized_pnl == (sim178.prices.quote("AAPL").mid - avg) * 99
    assert info.realized_pnl == sim178.book.realized and info.realized_pnl > 0
    assert info.available_funds == info.equity - expected_margin
