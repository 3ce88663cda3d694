"""Bracket entries: transmit flags, parentId, OCA; children activate on the parent fill; OCA cancels."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from joe.core.events import NullAudit, OrderEventType
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.simulators.ibkr import IBKRSimulator

from .helpers import drain, wait_for


def bracket(sig: str, qty: int = 100, **kw: Any) -> OrderIntent:
    return OrderIntent(
        client_order_id(sig, "entry"),
        sig,
        OrderLeg.ENTRY,
        "AAPL",
        Side.BUY,
        Decimal(qty),
        stop_loss=Decimal(95),
        take_profit=Decimal(110),
        **kw,
    )


def ids(sig: str) -> tuple[str, str, str]:
    return client_order_id(sig, "entry"), client_order_id(sig, "target"), client_order_id(sig, "stop")


async def test_bracket_take_profit_cancels_stop(
    sim: IBKRSimulator, make_executor: Any, audit: NullAudit, ib_log_guard: Any
) -> None:
    sim.set_price("AAPL", 100)
    ex = await make_executor(sim)
    entry, target, stop = ids("b1")
    res = await ex.place(bracket("b1", order_type=OrderType.LIMIT, limit_price=Decimal(99)))
    assert res.accepted
    # What the broker received: whatIf first, then parent/TP (transmit=0) and SL (transmit=1), one OCA group.
    wi, parent, tp, sl = sim.placed
    assert wi.what_if and wi.order_ref == entry
    assert [(p.order_ref, p.transmit) for p in (parent, tp, sl)] == [
        (entry, False),
        (target, False),
        (stop, True),
    ]
    assert tp.parent_id == sl.parent_id == parent.order_id and parent.parent_id == 0
    assert tp.oca_group == sl.oca_group == f"oca-{entry}" and tp.oca_type == sl.oca_type == 2
    assert (tp.order_type, tp.lmt_price, tp.action) == ("LMT", Decimal(110), "SELL")
    assert (sl.order_type, sl.aux_price, sl.action) == ("STP", Decimal(95), "SELL")
    # Parent resting: children are held inactive at the broker.
    await wait_for(lambda: ex.order(stop).state is OrderState.ACCEPTED, what="children acked")  # type: ignore[union-attr]
    assert sim.find(target).status == sim.find(stop).status == "PreSubmitted"  # type: ignore[union-attr]
    # Parent fills → both children working.
    sim.set_price("AAPL", 98.5)
    await wait_for(lambda: ex.order(entry).state is OrderState.FILLED, what="parent fill")  # type: ignore[union-attr]
    assert sim.find(target).status == sim.find(stop).status == "Submitted"  # type: ignore[union-attr]
    assert [(p.symbol, p.quantity) for p in await ex.positions()] == [("AAPL", Decimal(100))]
    # Take-profit fills → the stop is cancelled by OCA; flat at the end.
    sim.set_price("AAPL", 111)
    await wait_for(lambda: ex.order(stop).state is OrderState.CANCELLED, what="stop cancelled")  # type: ignore[union-attr]
    assert ex.order(target).state is OrderState.FILLED  # type: ignore[union-attr]
    assert sim.find(stop).status == "Cancelled" and sim.find(stop).sim.filled == 0  # type: ignore[union-attr]
    await wait_for(lambda: not ex.ib.positions(), what="flat")
    assert await ex.positions() == []
    fills = {
        f.client_order_id: f for f in await ex.executions_since(ex.order(entry).created_at.replace(year=2000))
    }  # type: ignore[union-attr]
    assert fills[target].price >= Decimal(110) and fills[entry].price <= Decimal(99)
    kinds = [(e.client_order_id, e.type) for e in drain(ex)]
    assert (target, OrderEventType.FILLED) in kinds and (stop, OrderEventType.CANCELLED) in kinds


async def test_bracket_stop_loss_path_and_modify(sim178: IBKRSimulator, make_executor: Any) -> None:
    sim178.set_price("AAPL", 100)
    ex = await make_executor(sim178)
    entry, target, stop = ids("b2")
    await ex.place(bracket("b2"))  # market entry
    await wait_for(lambda: ex.order(entry).state is OrderState.FILLED, what="entry fill")  # type: ignore[union-attr]
    await ex.modify(entry, stop_loss=Decimal(97), take_profit=Decimal(120))
    await wait_for(lambda: sim178.find(stop).sim.stop_price == Decimal(97), what="stop moved")  # type: ignore[union-attr]
    assert sim178.find(target).placed.lmt_price == Decimal(120)  # type: ignore[union-attr]
    assert sim178.placed[-1].transmit and sim178.placed[-2].transmit  # modifications always transmit
    sim178.set_price("AAPL", 96.5)
    await wait_for(lambda: ex.order(stop).state is OrderState.FILLED, what="stop fill")  # type: ignore[union-attr]
    await wait_for(lambda: ex.order(target).state is OrderState.CANCELLED, what="target cancelled")  # type: ignore[union-attr]
    assert sim178.book.positions["AAPL"].qty == 0


async def test_partial_take_profit_reduces_stop(sim178: IBKRSimulator, make_executor: Any) -> None:
    """ocaType 2: a partial target fill shrinks the stop to the open quantity (never over-protects)."""
    sim178.set_price("AAPL", 100)
    ex = await make_executor(sim178)
    entry, target, stop = ids("b3")
    await ex.place(bracket("b3"))
    await wait_for(lambda: ex.order(entry).state is OrderState.FILLED, what="entry fill")  # type: ignore[union-attr]
    sim178.fill(target, 40, 110)
    await wait_for(lambda: ex.order(target).filled_quantity == 40, what="partial target")  # type: ignore[union-attr]
    assert sim178.find(stop).sim.quantity == 60 and sim178.find(stop).status == "Submitted"  # type: ignore[union-attr]
    assert sim178.book.positions["AAPL"].qty == 60


async def test_trailing_bracket_child(sim178: IBKRSimulator, make_executor: Any) -> None:
    sim178.set_price("AAPL", 100)
    ex = await make_executor(sim178)
    it = OrderIntent(
        client_order_id("b4", "entry"),
        "b4",
        OrderLeg.ENTRY,
        "AAPL",
        Side.BUY,
        Decimal(10),
        take_profit=Decimal(130),
        trailing_percent=Decimal(5),
    )
    await ex.place(it)
    sl = sim178.placed[-1]
    assert (sl.order_type, sl.trailing_percent, sl.transmit) == ("TRAIL", Decimal(5), True)


async def test_rejected_bracket_opens_nothing(
    sim178: IBKRSimulator, make_executor: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(r"Error 201", r"Error 135", r"Canceled order")
    ex = await make_executor(sim178)
    entry, target, stop = ids("b5")
    sim178.faults.arm("reject_next")
    res = await ex.place(bracket("b5"))
    assert not res.accepted
    await wait_for(lambda: all(ex.order(c).state.is_terminal for c in (target, stop)), what="children closed")  # type: ignore[union-attr]
    assert ex.order(entry).state is OrderState.REJECTED  # type: ignore[union-attr]
    assert sim178.book.working() == [] and sim178.book.positions == {}
