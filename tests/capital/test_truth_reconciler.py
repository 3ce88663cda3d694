"""The Reconciler end to end at Capital.com: OrderManager → CapitalExecutionClient → httpx → simulator.

The simulator's books are the truth: the owner's manual deal is adopted as external and never
touched; a working entry that filled while Joe was down is applied once; restarting twice applies
nothing again.
"""

from __future__ import annotations

from datetime import timedelta

from capital.conftest import make_client
from capital.test_truth_om import manager, state, until
from capital.truth_helpers import adapter, around, books, bracket, entry
from joe.brokers.capital import CapitalClient
from joe.core.events import NullAudit
from joe.core.models import OrderType, Side
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import FindingKind, Reconciler
from joe.safety.trading_state import TradingState, TradingStateStore
from joe.simulators.capital import CapitalSimulator
from joe.store import Store

from .conftest import ANY_BROKER_CLOCK

pytestmark = ANY_BROKER_CLOCK  # Joe reads executions on the broker's clock, whichever way it is off


async def test_owner_manual_deal_is_external_never_touched(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    om = await manager(adapter(client), store)
    try:
        stop, target = around(sim, "GOLD", "2")
        group = bracket("rc-ext", "GOLD", Side.BUY, "1", stop, target)
        await om.submit(group)
        await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
        trader = sim.manual_trade("AAPL", "BUY", 3)["affectedDeals"][0]["dealId"]
        ts = TradingStateStore(store, NullAudit())
        r = await Reconciler(om, trading_state=ts).reconcile()
        assert r.explained, r.summary()
        assert (FindingKind.EXTERNAL_POSITION, "AAPL") in {(f.kind, f.instrument) for f in r.findings}
        [pos] = store.reconcile_items("capital", "live", "external_position")
        assert (pos.symbol, pos.quantity) == ("AAPL", 3)
        assert ts.current().state is TradingState.ACTIVE
        again = await Reconciler(om, trading_state=ts).reconcile()
        assert again.adopted == () and again.explained, again.summary()
        assert trader in [d for d, *_ in books(sim, "AAPL")]  # never touched
        assert [(d, s) for _, d, s, _ in books(sim, "GOLD")] == [("BUY", 1)]
    finally:
        await om.stop()


async def test_fill_while_down_applied_once_restart_twice_applies_nothing(
    sim: CapitalSimulator, store: Store
) -> None:
    first = make_client(sim)
    await first.open()
    om = await manager(adapter(first), store)
    lo, _ = around(sim, "GOLD", "1")
    order = entry("rc-down", "GOLD", Side.BUY, "1", order_type=OrderType.LIMIT, limit_price=lo)
    await om.submit([order])
    await until(lambda: state(om, order.client_order_id) is OrderState.ACCEPTED)
    await om.stop()
    await first.close()
    sim.paused = True
    sim.set_mid("GOLD", float(lo) - 2)  # fills while Joe is down
    [(deal, _, size, ref)] = books(sim, "GOLD")
    assert ref == order.client_order_id
    for n in range(3):
        c = make_client(sim)
        await c.open()
        again = OrderManager(adapter(c), store, NullAudit(), confirm_timeout=2.0)
        try:
            r = await Reconciler(again).start()
        finally:
            await again.stop()
            await c.close()
        assert r.explained, r.summary()
        assert len(r.applied_fills) == (1 if n == 0 else 0), n
    o = store.load_order(order.client_order_id)
    assert o is not None and o.state is OrderState.FILLED and o.filled_quantity == size
    assert len(store.fills(order.client_order_id)) == 1 and o.broker_order_id == deal


async def test_owner_deal_on_joes_instrument_is_external_on_a_hedging_account(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    """The owner opens a deal on the instrument Joe holds (hedging: a deal of its own, its own
    dealReference): explained by its execution, recorded as external; Joe's bracket is untouched."""
    sim.set_hedging(True)
    om = await manager(adapter(client), store)
    try:
        stop, target = around(sim, "GOLD", "2")
        group = bracket("rc-same", "GOLD", Side.BUY, "1", stop, target)
        await om.submit(group)
        await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
        rec = Reconciler(om)
        await rec.reconcile()  # checkpoint set: the owner's deal comes after it
        sim.manual_trade("GOLD", "BUY", 2)
        r = await rec.reconcile()
        assert r.explained, r.summary()
        [pos] = store.reconcile_items("capital", "live", "external_position")
        assert (pos.symbol, pos.quantity) == ("GOLD", 2)
        assert sorted(s for _, _, s, _ in books(sim, "GOLD")) == [1, 2]
        assert om.unprotected_now == {}
    finally:
        await om.stop()


async def test_an_owners_deal_older_than_the_first_pass_is_not_counted_again(
    sim: CapitalSimulator, client: CapitalClient, store: Store
) -> None:
    """The owner's deal an hour before Joe's first pass is adopted whole as an external position. Later
    passes read from the checkpoint, on the broker's clock as it is: never widened by how far the broker
    is behind this host, or that old deal came back as a new external execution, counted twice, and the
    next pass halted on a mismatch (review of db9e45d, finding 2)."""
    sim.set_hedging(True)
    sim.manual_trade("GOLD", "BUY", 3)
    sim.move_clock(sim.clock() + timedelta(hours=1))
    om = await manager(adapter(client), store)
    try:
        ts = TradingStateStore(store, NullAudit())
        rec = Reconciler(om, trading_state=ts)
        first = await rec.reconcile()  # no checkpoint, no order: the last 10 minutes
        assert first.explained, first.summary()
        [pos] = store.reconcile_items("capital", "live", "external_position")
        assert (pos.symbol, pos.quantity) == ("GOLD", 3)
        stop, target = around(sim, "GOLD", "2")
        group = bracket("rc-old", "GOLD", Side.BUY, "1", stop, target)
        await om.submit(group)
        await until(lambda: state(om, group[0].client_order_id) is OrderState.FILLED)
        second = await rec.reconcile()
        assert second.explained and second.adopted == (), second.summary()
        assert ts.current().state is TradingState.ACTIVE
        assert [
            (i.symbol, i.quantity) for i in store.reconcile_items("capital", "live", "external_position")
        ] == [("GOLD", 3)]
    finally:
        await om.stop()
