"""CapitalExecutor against the simulator: brackets, working orders, amend (full replacement),
cancel/close, confirms that 404 first, the right position id, rejections, mapping to Joe's models."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from joe.brokers.base import Executor, OrderOutcomeUnknown
from joe.brokers.capital import CapitalExecutor
from joe.core.events import NullAudit, OrderEventType
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.simulators.capital import CapitalSimulator

D = Decimal


def intent(cid: str, symbol: str = "GOLD", side: Side = Side.BUY, qty: str = "1", **kw: Any) -> OrderIntent:
    return OrderIntent(
        client_order_id=cid,
        signal_id="sig-" + cid,
        leg=kw.pop("leg", OrderLeg.ENTRY),
        symbol=symbol,
        side=side,
        quantity=D(qty),
        **kw,
    )


def mid(sim: CapitalSimulator, epic: str) -> Decimal:
    bid, ask = sim.exchange.quote(epic)
    return (bid + ask) / 2


async def test_protocol_conformance(executor: CapitalExecutor) -> None:
    assert isinstance(executor, Executor)


async def test_market_with_stop_and_target_uses_affected_deal_id(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    px = mid(sim, "GOLD")
    res = await executor.place(
        intent("a1", stop_loss=(px - 20).quantize(D("0.01")), take_profit=(px + 40).quantize(D("0.01")))
    )
    assert res.accepted and res.filled_quantity == 1 and res.avg_price is not None
    (pos,) = await executor.positions()
    assert pos.broker_position_id == res.broker_position_id != res.broker_order_id
    assert pos.quantity == 1 and pos.symbol == "GOLD"
    assert pos.stop_loss == (px - 20).quantize(D("0.01")) and pos.take_profit == (px + 40).quantize(D("0.01"))
    sim.paused = True
    sim.set_mid("GOLD", float(px - 30))  # through the stop: the simulator closes the position
    assert await executor.positions() == []
    acts = await executor.accounts.activity(last_period_s=600)
    assert any(a.source == "SL" for a in acts)


async def test_trailing_stop_attached_and_ratchets(sim: CapitalSimulator, executor: CapitalExecutor) -> None:
    sim.paused = True
    px = mid(sim, "US500")
    res = await executor.place(intent("t1", "US500", trailing_distance=D(20)))
    (pos,) = await executor.positions()
    assert pos.trailing_distance == 20 and pos.broker_position_id == res.broker_position_id
    sim.set_mid("US500", float(px + 50))
    sim.set_mid("US500", float(px + 35))  # the stop ratcheted to ~px+29: still above it
    assert len(await executor.positions()) == 1
    sim.set_mid("US500", float(px + 20))
    assert await executor.positions() == []


async def test_amend_keeps_the_leg_not_being_changed(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    px = mid(sim, "GOLD")
    sl, tp = (px - 20).quantize(D("0.01")), (px + 40).quantize(D("0.01"))
    await executor.place(intent("m1", stop_loss=sl, take_profit=tp))
    await executor.modify("m1", stop_loss=sl + 5)
    (pos,) = await executor.positions()
    assert pos.stop_loss == sl + 5 and pos.take_profit == tp  # PUT replaced the set; we re-sent the target
    put = [r for r in sim.requests if r.method == "PUT" and r.path.startswith("/positions/")][-1]
    assert put.body["profitLevel"] == float(tp)
    with pytest.raises(Exception, match="size"):
        await executor.modify("m1", quantity=D(2))


async def test_working_orders_limit_stop_amend_cancel(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    sim.paused = True
    px = mid(sim, "GOLD")
    lim = await executor.place(
        intent("w1", order_type=OrderType.LIMIT, limit_price=(px - 50).quantize(D("0.01")))
    )
    stp = await executor.place(
        intent("w2", order_type=OrderType.STOP, stop_price=(px + 50).quantize(D("0.01")))
    )
    assert lim.accepted and lim.filled_quantity == 0 and stp.accepted
    open_ = await executor.open_orders()
    assert {e.client_order_id for e in open_} == {"w1", "w2"}
    await executor.modify("w1", limit_price=(px - 60).quantize(D("0.01")))
    wo = [w.workingOrderData for w in await executor.trading.working_orders()]
    assert (px - 60).quantize(D("0.01")) in {w.orderLevel for w in wo}
    await executor.cancel("w1")
    assert [e.client_order_id for e in await executor.open_orders()] == ["w2"]
    sim.set_mid("GOLD", float(px + 60))  # the STOP entry triggers and becomes a position
    (pos,) = await executor.positions()
    assert pos.quantity == 1
    assert await executor.open_orders() == []


async def test_close_position_and_reduce_only_exit(sim: CapitalSimulator, executor: CapitalExecutor) -> None:
    await executor.place(intent("c1", "EURUSD", qty="1000"))
    await executor.place(intent("c2", "EURUSD", qty="500"))
    assert len(await executor.positions()) == 2
    await executor.close_position("c1")
    exit_ = await executor.place(
        intent("c3", "EURUSD", Side.SELL, "500", leg=OrderLeg.EXIT, reduce_only=True)
    )
    assert exit_.accepted
    assert await executor.positions() == []
    assert sim.count("/positions/", method="DELETE") == 2


async def test_netting_opposite_order_reduces_oldest_first(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    await executor.place(intent("n1", "GOLD", qty="2"))
    await executor.place(intent("n2", "GOLD", qty="1"))
    res = await executor.place(intent("n3", "GOLD", Side.SELL, "2.5"))
    assert res.accepted and res.broker_position_id is None  # nothing opened: only reduced
    (left,) = await executor.positions()
    assert left.quantity == D("0.5")


async def test_confirm_404_first_then_found(sim: CapitalSimulator, executor: CapitalExecutor) -> None:
    sim.faults.arm("confirm_delay", 1, polls=3)
    res = await executor.place(intent("d1"))
    assert res.accepted and res.broker_position_id
    assert sim.count("/confirms/", status=404) == 3
    assert sim.count("/positions", method="POST") == 1


async def test_rejections_are_reported_not_raised(sim: CapitalSimulator, executor: CapitalExecutor) -> None:
    px = mid(sim, "GOLD")
    bad = await executor.place(intent("r1", stop_loss=(px + 1).quantize(D("0.01"))))
    assert not bad.accepted and bad.reason == "error.invalid.stoploss.maxvalue"
    sim.exchange.status["AAPL"] = "CLOSED"
    closed = await executor.place(intent("r2", "AAPL"))
    assert not closed.accepted and "closed" in closed.reason
    small = await executor.place(intent("r3", "AAPL", qty="0.5"))
    assert not small.accepted
    events = []
    while not executor._events.empty():
        events.append(executor._events.get_nowait())
    assert [e.type for e in events] == [OrderEventType.REJECTED] * 3


async def test_same_client_order_id_never_makes_a_second_order(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    a = await executor.place(intent("i1"))
    b = await executor.place(intent("i1"))
    assert a == b
    assert sim.count("/positions", method="POST") == 1


async def test_account_info_and_executions(sim: CapitalSimulator, executor: CapitalExecutor) -> None:
    since = sim.clock() - timedelta(seconds=5)  # the broker's now (a pinned Tuesday), not the host's
    await executor.place(intent("x1", "GOLD", qty="1"))
    info = await executor.account()
    assert info.account_id == "12345678901234567" and info.currency == "USD"
    assert info.margin_used > 0 and info.equity == info.cash + info.unrealized_pnl
    fills = await executor.executions_since(since)
    assert [f.client_order_id for f in fills] == ["x1"]
    assert fills[0].side is Side.BUY and fills[0].quantity == 1


async def test_unknown_when_post_fails_before_processing(sim: CapitalSimulator, executor_factory) -> None:  # type: ignore[no-untyped-def]
    ex = executor_factory(reconcile_window_s=0.3)
    await ex.connect()
    sim.faults.arm("http_504_html", 1, path="/positions", method="POST")
    with pytest.raises(OrderOutcomeUnknown):
        await ex.place(intent("u1"))
    assert sim.count("/positions", method="POST") == 1  # never re-sent
    assert await ex.positions() == []


async def test_events_stream_yields_fills(executor: CapitalExecutor) -> None:
    await executor.place(intent("e1"))
    ev = await asyncio.wait_for(executor.events().__anext__(), 1)
    assert ev.type is OrderEventType.FILLED and ev.client_order_id == "e1" and ev.fill is not None


async def test_audit_records_every_order_step(
    sim: CapitalSimulator, executor: CapitalExecutor, audit: NullAudit
) -> None:
    await executor.place(intent("au1"))
    kinds = [r[0] for r in audit.records if r[2].get("client_order_id") == "au1"]
    assert kinds == ["capital.order.submit", "capital.order.confirm"]


async def test_transactions_after_a_close(sim: CapitalSimulator, executor: CapitalExecutor) -> None:
    await executor.place(intent("tx1"))
    await executor.close_position("tx1")
    txs = await executor.accounts.transactions(last_period_s=600)
    assert [t.transactionType for t in txs] == ["TRADE"]
    assert Decimal(txs[0].size) == sim.exchange.accounts["12345678901234567"].balance - 100_000


async def test_reduce_only_without_exact_match_on_hedging_account_is_refused(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    sim.exchange.accounts["12345678901234567"].hedging = True
    await executor.place(intent("h1", qty="2"))
    res = await executor.place(intent("h2", side=Side.SELL, qty="1", leg=OrderLeg.EXIT, reduce_only=True))
    assert not res.accepted and "hedging" in res.reason
    assert len(await executor.positions()) == 1


async def test_amend_after_session_expiry_is_sent_again_once(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    px = mid(sim, "GOLD")
    await executor.place(intent("se1", stop_loss=(px - 20).quantize(D("0.01"))))
    sim.faults.arm("session_invalidate", 1, path="/positions/", method="PUT")
    await executor.modify("se1", take_profit=(px + 30).quantize(D("0.01")))
    assert sim.count("/positions/", method="PUT", status=401) == 1
    assert sim.count("/positions/", method="PUT", status=200) == 1
    (pos,) = await executor.positions()
    assert pos.take_profit == (px + 30).quantize(D("0.01")) and pos.stop_loss == (px - 20).quantize(D("0.01"))


async def test_order_after_session_expiry_is_sent_again_once(
    sim: CapitalSimulator, executor: CapitalExecutor
) -> None:
    sim.faults.arm("session_invalidate", 1, path="/positions", method="POST")
    res = await executor.place(intent("se2"))
    assert res.accepted
    assert sim.count("/positions", method="POST", status=401) == 1
    assert len(await executor.positions()) == 1


async def test_restore_after_restart_allows_amend_and_close(sim: CapitalSimulator, executor_factory) -> None:  # type: ignore[no-untyped-def]
    first: CapitalExecutor = executor_factory()
    await first.connect()
    res = await first.place(intent("rs1"))
    second: CapitalExecutor = executor_factory()  # a fresh process knows nothing
    assert res.broker_position_id is not None
    second.restore(
        "rs1", kind="position", deal_id=res.broker_position_id, symbol="GOLD", side=Side.BUY, quantity=D(1)
    )
    assert (await second.place(intent("rs1"))).broker_position_id == res.broker_position_id  # no new order
    await second.close_position("rs1")
    assert await second.positions() == []
    assert sim.count("/positions", method="POST") == 1
