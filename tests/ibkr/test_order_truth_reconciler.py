"""The Reconciler end to end at IBKR: OrderManager → IBKRExecutionClient → ib_async → TWS simulator.

The simulator's books are the truth: a manual trade by the account owner (another API client, no
orderRef) is adopted as external and never touched; a fill that happened while Joe was down is
applied once; restarting twice applies nothing again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from joe.core.events import NullAudit
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import FindingKind, Reconciler
from joe.safety.trading_state import TradingState, TradingStateStore
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, wait_for
from .truth import S, agree, ids, joe, settle


@pytest.fixture
async def owner(sim178: IBKRSimulator) -> AsyncIterator[IB]:
    """The account owner trading on the platform: client id 0, orders without an orderRef."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim178.port, clientId=0, timeout=3)
    try:
        yield ib
    finally:
        ib.disconnect()


async def restarted(make_client: Callable[..., Any], sim: IBKRSimulator, store: Store, **kw: Any) -> Any:
    client = await make_client(sim, client_id=61)
    om = OrderManager(client, store, NullAudit(), confirm_timeout=3.0)
    return Reconciler(om, **kw)


async def test_owner_manual_trade_is_external_never_touched(
    sim178: IBKRSimulator, make_om: Any, make_client: Any, store: Store, owner: IB
) -> None:
    sim178.set_price("AAPL", 100)
    sim178.set_price("MSFT", 400)
    om = await make_om(sim178, store, client_id=61)
    legs = bracket_intents("rc-ext")
    await om.submit(legs)
    sim178.set_price("AAPL", 98.5)
    await settle(lambda: agree(sim178, store, ids(legs)))
    stock = Stock("MSFT", "SMART", "USD")
    owner.placeOrder(stock, MarketOrder("BUY", 7))
    working = owner.placeOrder(stock, LimitOrder("BUY", 3, 300))
    await wait_for(lambda: sim178.book.positions.get("MSFT") is not None, what="manual fill")
    await wait_for(lambda: len(sim178.book.working()) == 3, what="manual limit working")
    placed = len(sim178.placed)
    state = TradingStateStore(store, NullAudit())
    r = await Reconciler(om, trading_state=state).reconcile()
    assert r.explained, r.summary()
    assert {(f.kind, f.instrument) for f in r.findings} >= {
        (FindingKind.EXTERNAL_ORDER, "MSFT"),
        (FindingKind.EXTERNAL_POSITION, "MSFT"),
    }
    [pos] = store.reconcile_items("ibkr", "live", "external_position")
    assert (pos.symbol, pos.quantity) == ("MSFT", sim178.book.positions["MSFT"].qty) == ("MSFT", 7)
    [ext] = store.reconcile_items("ibkr", "live", "external_order")
    assert ext.ref == str(working.order.orderId) or ext.symbol == "MSFT"
    assert state.current().state is TradingState.ACTIVE
    again = await Reconciler(om).reconcile()
    assert again.adopted == () and again.explained
    assert len(sim178.placed) == placed  # Joe sent nothing, cancelled nothing
    assert any(bo.placed.order_type == "LMT" and bo.sim.symbol == "MSFT" for bo in sim178.book.working())
    agree(sim178, store, ids(legs))


async def test_fill_while_down_applied_once_restart_twice_applies_nothing(
    sim178: IBKRSimulator, make_om: Any, make_client: Any, store: Store
) -> None:
    sim178.set_price("AAPL", 100)
    first = await make_om(sim178, store, client_id=61)
    legs = bracket_intents("rc-down")
    await first.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    await first.stop()
    await first.client.close()
    sim178.set_price("AAPL", 98.5)  # the entry fills while Joe is down
    assert sim178.book.positions["AAPL"].qty == 100
    assert joe(store, legs[0].client_order_id).state is S.ACCEPTED
    rec = await restarted(make_client, sim178, store)
    r = await rec.start()
    assert r.explained, r.summary()
    assert len(r.applied_fills) == 1
    await settle(lambda: agree(sim178, store, ids(legs)))
    assert joe(store, legs[0].client_order_id).state is S.FILLED
    await rec.om.stop()
    for _ in range(2):
        await rec.om.client.close()
        rec = await restarted(make_client, sim178, store)
        r = await rec.start()
        await rec.om.stop()
        assert r.applied_fills == () and r.explained, r.summary()
    assert len(store.fills(legs[0].client_order_id)) == 1
    assert joe(store, legs[0].client_order_id).filled_quantity == Decimal(100)
    agree(sim178, store, ids(legs))


async def test_overfill_is_stored_alerted_and_a_disagreeing_broker_halts(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """TWS sends one execution too many for a filled order (the simulator's `overfill` fault; its own
    position does not have it). The fill is a fact as reported: stored, the order's size follows it,
    alerted. The broker's position disagrees, so the Reconciler cannot explain it: HALTED, nothing
    flattened, the stop stays."""
    from joe.execution.events import AlertKind

    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store, client_id=62)
    sim178.faults.arm("overfill", qty=1)
    legs = bracket_intents("rc-over", limit=None)
    await om.submit(legs)
    await wait_for(lambda: joe(store, legs[0].client_order_id).filled_quantity == 101, what="overfill")
    assert len(store.fills(legs[0].client_order_id)) == 2
    assert any(a.kind is AlertKind.OVERFILL for a in om.alerts)
    state = TradingStateStore(store, NullAudit())
    r = await Reconciler(om, trading_state=state).reconcile()
    [bad] = [f for f in r.findings if not f.explained]
    assert (bad.kind, bad.instrument, bad.broker_qty, bad.joe_qty) == (
        FindingKind.POSITION_MISMATCH,
        "AAPL",
        100,
        101,
    )
    assert r.halted and state.current().state is TradingState.HALTED
    assert sim178.book.positions["AAPL"].qty == 100 and len(sim178.placed) == 3  # nothing flattened


async def test_owner_trade_on_joes_instrument_explained_by_its_execution(
    sim178: IBKRSimulator, make_om: Any, store: Store, owner: IB
) -> None:
    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store, client_id=63)
    legs = bracket_intents("rc-same", limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim178, store, ids(legs)))
    rec = Reconciler(om)
    assert (await rec.reconcile()).explained
    owner.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 5))
    await wait_for(lambda: sim178.book.positions["AAPL"].qty == 105, what="manual fill")
    r = await rec.reconcile()
    assert r.explained, r.summary()
    [pos] = store.reconcile_items("ibkr", "live", "external_position")
    assert (pos.symbol, pos.quantity) == ("AAPL", 5)
    assert om.position_of(legs[0].signal_id) == 100  # Joe's position is Joe's; the stop still covers it
    assert [joe(store, c).state for c in ids(legs)] == [S.FILLED, S.ACCEPTED, S.ACCEPTED]


async def test_working_order_the_broker_forgot_is_lost_never_resent(
    sim178: IBKRSimulator, make_om: Any, store: Store
) -> None:
    """An acknowledged working order vanishes from the broker's books (a reset on its side): after
    `max_checks` passes it is LOST, alerted, never resent, and the pass is unexplained (HALTED)."""
    from joe.core.models import OrderType

    from .helpers import single

    sim178.set_price("AAPL", 100)
    om = await make_om(sim178, store, client_id=64)
    it = single("rc-lost", order_type=OrderType.LIMIT, limit_price=Decimal(90))
    await om.submit([it])
    await settle(lambda: agree(sim178, store, [it.client_order_id]))
    bo = sim178.find(it.client_order_id)
    assert bo is not None
    del sim178.book.orders[next(k for k, v in sim178.book.orders.items() if v is bo)]
    state = TradingStateStore(store, NullAudit())
    rec = Reconciler(om, trading_state=state, max_checks=2)
    first = await rec.reconcile()
    assert [f.kind for f in first.findings] == [FindingKind.ORDER_MISSING] and first.explained
    second = await rec.reconcile()
    assert second.lost == (it.client_order_id,) and not second.explained and second.halted
    assert joe(store, it.client_order_id).state is S.LOST
    assert len(sim178.placed) == 1  # never resent
    assert state.current().state is TradingState.HALTED
