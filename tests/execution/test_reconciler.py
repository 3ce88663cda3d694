"""Reconciler rules against the fake venue (tests/execution/fake_venue.py): the venue is the truth.

End-to-end versions against the real simulators: tests/ibkr/test_order_truth_reconciler.py and
tests/capital/test_truth_reconciler.py."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from execution.fake_venue import T0, FakeVenue, VOrder
from execution.test_order_manager import bracket, manager, placed_bracket, state
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.execution.events import AlertKind
from joe.execution.order_manager import OrderManager
from joe.execution.reconciler import FindingKind, Reconciler
from joe.safety.trading_state import TradingState, TradingStateStore
from joe.store import Store, open_store

S = OrderState
D = Decimal


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(data_dir=tmp_path)
    yield s
    s.close()


def external(venue: FakeVenue, symbol: str = "MSFT", qty: str = "7", fill: bool = False) -> str:
    """The owner places an order on the platform: no Joe client order id."""
    venue._n += 1
    boid = f"X{venue._n}"
    i = OrderIntent(f"ext-{boid}", "", OrderLeg.ENTRY, symbol, Side.BUY, D(qty), OrderType.MARKET)
    venue.orders[i.client_order_id] = VOrder(i, boid, None, D(qty))
    if fill:
        venue.execute(i.client_order_id, D(qty))
    return i.client_order_id


def blank_ids(venue: FakeVenue) -> None:
    """What the broker reports for an order placed elsewhere: no client order id on it or its fills."""
    real = venue.mass_status

    async def mass(since: object = None, **kw: object) -> object:
        m = await real()
        m.orders[:] = [r if not r.client_order_id.startswith("ext-") else _blank(r) for r in m.orders]
        m.fills[:] = [f if not f.fill.client_order_id.startswith("ext-") else _blank_fill(f) for f in m.fills]
        return m

    venue.mass_status = mass  # type: ignore[method-assign,assignment]


def _blank(r: object) -> object:
    from dataclasses import replace

    return replace(r, client_order_id="")  # type: ignore[type-var]


def _blank_fill(f: object) -> object:
    from dataclasses import replace

    return replace(f, fill=replace(f.fill, client_order_id=""))  # type: ignore[attr-defined,type-var]


async def test_fill_while_down_is_applied_once_across_passes_and_restarts(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    venue.execute(ids[0], D(100))
    venue.outbox.clear()  # Joe was down: it never saw the fill on the stream
    report = await Reconciler(om).reconcile()
    assert len(report.applied_fills) == 1 and report.explained
    assert state(store, ids[0]).state is S.FILLED
    assert (await Reconciler(om).reconcile()).applied_fills == ()
    for _ in range(2):  # restart twice: a new OrderManager and Reconciler on the same store
        again = OrderManager(venue, store, NullAudit())
        r = await Reconciler(again).start()
        assert r.applied_fills == () and r.explained
    assert len(store.fills(ids[0])) == 1 and state(store, ids[0]).filled_quantity == 100
    assert store.reconcile_checkpoint("fake", "live") == T0


async def test_reads_executions_from_the_checkpoint_minus_overlap(store: Store) -> None:
    venue = FakeVenue()
    om, _ = await placed_bracket(venue, store)
    seen: list[object] = []
    real = venue.mass_status

    async def spy(since: object = None, joes_clock: bool = False) -> object:
        seen.append((since, joes_clock))
        return await real(since)  # type: ignore[arg-type]

    venue.mass_status = spy  # type: ignore[method-assign,assignment]
    rec = Reconciler(om)
    await rec.reconcile()
    await rec.reconcile()
    # The first pass reads from the oldest open order's creation (Joe's clock: the adapter moves it onto
    # the broker's); the next from the checkpoint, the broker's read time (its clock: left as it is).
    assert seen[0][1] is True
    assert seen[1] == (T0 - rec.overlap, False)


async def test_order_the_broker_forgot_is_lost_after_n_checks_never_resent(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    del venue.orders[ids[2]]  # the broker no longer knows the acknowledged target
    ts = TradingStateStore(store, NullAudit())
    rec = Reconciler(om, trading_state=ts, max_checks=3)
    for n in (1, 2):
        r = await rec.reconcile()
        assert [f.kind for f in r.findings] == [FindingKind.ORDER_MISSING] and r.explained, n
        assert state(store, ids[2]).state is S.ACCEPTED
    again = Reconciler(OrderManager(venue, store, NullAudit()), trading_state=ts, max_checks=3)
    r = await again.reconcile()  # the third check, after a restart: the count is in the store
    assert r.lost == (ids[2],) and not r.explained and r.halted
    assert state(store, ids[2]).state is S.LOST
    assert ts.current().state is TradingState.HALTED
    assert venue.sent == ids  # never resent
    assert any(a.kind is AlertKind.LOST for a in again.om.alerts)
    assert (await again.reconcile()).lost == ()  # terminal: not counted again


async def test_a_missing_order_found_again_starts_the_count_over(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    hidden = venue.orders.pop(ids[2])
    rec = Reconciler(om, max_checks=2)
    await rec.reconcile()
    venue.orders[ids[2]] = hidden
    assert (await rec.reconcile()).findings == ()
    del venue.orders[ids[2]]
    r = await rec.reconcile()
    assert r.lost == () and state(store, ids[2]).state is S.ACCEPTED


async def test_unacknowledged_order_unknown_to_the_broker_is_lost_and_explained(store: Store) -> None:
    from joe.brokers.base import OrderOutcomeUnknown

    venue = FakeVenue()
    om = await manager(venue, store)
    intents = bracket("u")

    async def lost_in_transit(i: object) -> object:
        raise OrderOutcomeUnknown("timeout after send")  # ... and it never arrived

    venue.submit = lost_in_transit  # type: ignore[method-assign,assignment]
    with pytest.raises(OrderOutcomeUnknown):
        await om.submit(intents)
    assert state(store, intents[0].client_order_id).state is S.UNKNOWN
    r = None
    for _ in range(3):
        r = await Reconciler(om, max_checks=3).reconcile()
    assert r is not None and set(r.lost) == {i.client_order_id for i in intents}
    assert r.explained  # never acknowledged: it most likely never reached the broker
    assert all(state(store, i.client_order_id).state is S.LOST for i in intents)
    assert venue.sent == []


async def test_external_order_and_position_are_adopted_alerted_once_never_touched(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    blank_ids(venue)
    external(venue, "MSFT", "7", fill=True)  # the owner's manual trade: filled
    working = external(venue, "TSLA", "3")  # and a working order of theirs
    rec = Reconciler(om)
    r = await rec.reconcile()
    assert r.explained
    kinds = {(f.kind, f.instrument) for f in r.findings}
    assert (FindingKind.EXTERNAL_ORDER, "TSLA") in kinds and (FindingKind.EXTERNAL_POSITION, "MSFT") in kinds
    assert set(r.adopted) >= {venue.orders[working].broker_order_id, "MSFT"}
    alerts = [a for a in om.alerts if a.kind is AlertKind.EXTERNAL]
    assert len(alerts) == 2
    [pos] = store.reconcile_items("fake", "live", "external_position")
    assert (pos.symbol, pos.quantity) == ("MSFT", 7)
    r2 = await rec.reconcile()
    assert r2.adopted == () and r2.explained
    assert len([a for a in om.alerts if a.kind is AlertKind.EXTERNAL]) == 2  # alerted once
    assert venue.sent == ids  # nothing sent, nothing cancelled
    assert venue.orders[working].status.value == "WORKING"


async def test_owner_adds_to_joes_instrument_explained_by_the_external_execution(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    venue.execute(ids[0], D(100))
    await venue.deliver(om)
    blank_ids(venue)
    external(venue, "AAPL", "5", fill=True)  # the owner buys 5 more of the same instrument
    r = await Reconciler(om).reconcile()
    assert r.explained, r.summary()
    [pos] = store.reconcile_items("fake", "live", "external_position")
    assert (pos.symbol, pos.quantity) == ("AAPL", 5)


async def test_unexplained_position_mismatch_halts_and_never_flattens(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    venue.execute(ids[0], D(100))
    await venue.deliver(om)
    venue.net["AAPL"] = D(40)  # 60 gone without any execution Joe can see
    ts = TradingStateStore(store, NullAudit())
    r = await Reconciler(om, trading_state=ts).reconcile()
    assert not r.explained and r.halted
    [f] = [f for f in r.findings if not f.explained]
    assert (f.kind, f.instrument, f.broker_qty, f.joe_qty) == (FindingKind.POSITION_MISMATCH, "AAPL", 40, 100)
    assert "halted" in f.action
    assert ts.current().state is TradingState.HALTED
    assert venue.sent == ids and venue.orders[ids[1]].status.value == "WORKING"  # stop stays; no flatten
    assert any(a.kind is AlertKind.MISMATCH for a in om.alerts)


async def test_intents_are_refused_while_a_pass_runs(store: Store) -> None:
    venue = FakeVenue()
    om, _ = await placed_bracket(venue, store)
    from joe.brokers.base import EntriesRefused

    real = venue.mass_status
    refused: list[bool] = []

    async def during(since: object = None, **kw: object) -> object:
        try:
            await om.submit(bracket("during"))
        except EntriesRefused:
            refused.append(True)
        return await real(since)  # type: ignore[arg-type]

    venue.mass_status = during  # type: ignore[method-assign,assignment]
    await Reconciler(om).reconcile()
    assert refused == [True]


async def test_overfill_is_stored_and_the_position_follows_the_broker(store: Store) -> None:
    """The broker filled more than the order's size (its position shows it): the fill is a fact,
    stored; the order's size follows what filled; alerted; the next pass finds nothing to explain."""
    from execution.fake_venue import T0 as t0
    from joe.core.models import Fill
    from joe.core.reports import FillReport

    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    venue.execute(ids[0], D(100))
    await venue.deliver(om)
    extra = Fill("0999.01", ids[0], "AAPL", Side.BUY, D(20), D(100), t0)
    venue.net["AAPL"] += 20  # the broker's position has the extra 20
    venue.orders[ids[0]].filled = D(120)  # of an order of 100: an overfill, not a resize
    await om.process(FillReport("fake", extra, 1, "0999.01.01"))
    o = state(store, ids[0])
    assert (o.filled_quantity, o.quantity, o.state) == (120, 120, S.FILLED)
    assert "0999.01" in {f.fill_id for f in store.fills(ids[0])}
    assert any(a.kind is AlertKind.OVERFILL for a in om.alerts)
    assert om.position_of("sig-1") == 120
    r = await Reconciler(om).reconcile()
    assert r.explained, r.summary()


async def test_an_unprotected_position_is_a_finding(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    venue.execute(ids[0], D(100))
    await venue.deliver(om)
    venue.venue_cancel(ids[1])  # the broker cancelled the stop
    venue.outbox.clear()  # ... while Joe was not listening
    r = await Reconciler(om).reconcile()
    [f] = [f for f in r.findings if f.kind is FindingKind.UNPROTECTED]
    assert (f.instrument, f.joe_qty, f.explained) == ("AAPL", 100, True)
    assert state(store, ids[1]).state is S.CANCELLED
