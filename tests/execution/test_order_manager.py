"""OrderManager rules against a fake ExecutionClient (tests/execution/fake_venue.py).

Each test ends by comparing Joe's store with the venue's state (the venue is the truth)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from execution.fake_venue import FakeVenue
from joe.brokers.base import EntriesRefused, InvalidOrder, OrderOutcomeUnknown, SendFailed
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import Order, OrderState
from joe.core.reports import CodeMeaning, CommissionReport, FillReport, InstrumentRules
from joe.execution.events import AlertKind
from joe.execution.increments import round_price, round_size_down
from joe.execution.order_manager import OrderManager
from joe.store import Store, open_store

S = OrderState
D = Decimal


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(data_dir=tmp_path)
    yield s
    s.close()


def bracket(sig: str = "sig-1", qty: str = "100", side: Side = Side.BUY) -> list[OrderIntent]:
    q = D(qty)
    exit_side = side.opposite
    return [
        OrderIntent(
            client_order_id(sig, "entry"),
            sig,
            OrderLeg.ENTRY,
            "AAPL",
            side,
            q,
            OrderType.LIMIT,
            limit_price=D("100.00"),
        ),
        OrderIntent(
            client_order_id(sig, "stop"),
            sig,
            OrderLeg.STOP_LOSS,
            "AAPL",
            exit_side,
            q,
            OrderType.STOP,
            stop_price=D("95.00"),
            reduce_only=True,
        ),
        OrderIntent(
            client_order_id(sig, "target"),
            sig,
            OrderLeg.TAKE_PROFIT,
            "AAPL",
            exit_side,
            q,
            OrderType.LIMIT,
            limit_price=D("110.00"),
            reduce_only=True,
        ),
    ]


async def manager(venue: FakeVenue, store: Store, audit: Any = None, **kw: Any) -> OrderManager:
    om = OrderManager(venue, store, audit or NullAudit(), **kw)
    await om.start(consume=False)
    return om


def state(store: Store, coid: str) -> Order:
    o = store.load_order(coid)
    assert o is not None
    return o


@contextlib.asynccontextmanager
async def delivering(venue: FakeVenue, om: OrderManager) -> AsyncIterator[None]:
    """The venue's reports delivered to `om` every 5 ms while the block runs (its own tasks act on them)."""

    async def pump() -> None:
        while True:
            await venue.deliver(om)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()


async def placed_bracket(venue: FakeVenue, store: Store, **kw: Any) -> tuple[OrderManager, list[str]]:
    om = await manager(venue, store, **kw)
    intents = bracket()
    await om.submit(intents)
    await venue.deliver(om)
    return om, [i.client_order_id for i in intents]


# ---------------------------------------------------------------- write-ahead and idempotence
async def test_intent_is_stored_as_submitting_before_it_is_sent(store: Store) -> None:
    venue = FakeVenue()
    seen: list[OrderState] = []
    real = venue.submit

    async def spy(intents: Any) -> Any:
        seen.extend(state(store, i.client_order_id).state for i in intents)
        return await real(intents)

    venue.submit = spy  # type: ignore[method-assign]
    om = await manager(venue, store)
    await om.submit(bracket())
    assert seen == [S.SUBMITTING] * 3


async def test_one_intent_is_one_order_across_retries_and_restarts(store: Store) -> None:
    venue = FakeVenue()
    om, ids = await placed_bracket(venue, store)
    await om.submit(bracket())  # a retry in the same process
    again = await manager(venue, store)  # a second process on the same store (restart)
    await again.submit(bracket())
    assert venue.sent == ids
    assert [state(store, c).state for c in ids] == [S.ACCEPTED] * 3


async def test_crash_between_store_write_and_send_sends_once_after_restart(store: Store) -> None:
    venue = FakeVenue()
    for o in (Order(i) for i in bracket()):  # a process that died before sending left them NEW
        o.parent_client_order_id = None if o.intent.leg is OrderLeg.ENTRY else bracket()[0].client_order_id
        store.save_order(o, broker="fake", mode="live")
    om = await manager(venue, store)
    await venue.deliver(om)
    assert venue.sent == [i.client_order_id for i in bracket()]
    await (await manager(venue, store)).submit(bracket())
    assert len(venue.sent) == 3


async def test_crash_while_sending_is_asked_for_never_resent(store: Store) -> None:
    """SUBMITTING (committed right before the broker call) means the send may have happened: the
    restart asks over its in-doubt window, leaves the orders UNKNOWN, alerts, refuses new entries
    on the instrument, and never resends (review r9 finding 2)."""
    venue = FakeVenue()
    for o in (Order(i) for i in bracket()):
        o.parent_client_order_id = None if o.intent.leg is OrderLeg.ENTRY else bracket()[0].client_order_id
        o.transition(S.SUBMITTING, "write-ahead: sending")
        store.save_order(o, broker="fake", mode="live")
    om = await manager(venue, store, in_doubt_window=0.05, in_doubt_interval=0.01)
    assert venue.sent == []
    assert {state(store, i.client_order_id).state for i in bracket()} == {S.UNKNOWN}
    assert any("never resent" in a.message for a in om.alerts)
    with pytest.raises(OrderOutcomeUnknown):
        await om.submit(bracket())
    with pytest.raises(EntriesRefused, match="AAPL"):
        await om.submit(bracket("sig-other"))
    assert venue.sent == []


async def test_broker_unreadable_before_the_first_send_sends_nothing(store: Store) -> None:
    """The pre-send check cannot ask the broker whether it holds the id: "cannot say" is not
    "absent"; nothing is sent and the orders are REJECTED (provably not sent by Joe)."""
    venue = FakeVenue(status_unavailable=True)
    om = await manager(venue, store)
    with pytest.raises(SendFailed, match="could not be asked"):
        await om.submit(bracket())
    assert venue.sent == []
    assert {state(store, i.client_order_id).state for i in bracket()} == {S.REJECTED}


async def test_crash_between_send_and_ack_adopts_the_broker_order(store: Store) -> None:
    venue = FakeVenue()
    intents = bracket()
    await venue.submit(intents)  # the dead process sent it ...
    for o in (Order(i) for i in intents):  # ... but never recorded the acknowledgement
        o.transition(S.SUBMITTING, "write-ahead")
        store.save_order(o, broker="fake", mode="live")
    venue.outbox.clear()
    om = await manager(venue, store)
    assert len(venue.sent) == 3
    assert [state(store, i.client_order_id).state for i in intents] == [S.ACCEPTED] * 3
    assert state(store, intents[0].client_order_id).broker_order_id == "B1"
    assert om.accepting


async def test_outcome_unknown_is_resolved_by_asking_never_by_resending(store: Store) -> None:
    venue = FakeVenue(unknown_after_send=True)
    om = await manager(venue, store)
    await om.submit(bracket())  # the order is there: the query settles it
    assert [state(store, c).state for c in venue.sent] == [S.ACCEPTED] * 3
    venue2 = FakeVenue(unknown_after_send=True)
    real = venue2.submit

    async def then_unreadable(intents: Any) -> Any:  # the status endpoint fails from the send on
        venue2.status_unavailable = True
        return await real(intents)

    venue2.submit = then_unreadable  # type: ignore[method-assign]
    om2 = await manager(venue2, open_store("sqlite://"))
    with pytest.raises(OrderOutcomeUnknown):
        await om2.submit(bracket("sig-2"))
    with pytest.raises(OrderOutcomeUnknown):
        await om2.submit(bracket("sig-2"))  # placing the same intent again sends nothing
    assert len(venue2.sent) == 3
    assert {om2.order(c).state for c in venue2.sent} == {S.UNKNOWN}  # type: ignore[union-attr]


async def test_send_failed_means_not_at_the_broker(store: Store) -> None:
    venue = FakeVenue(fail_before_send=SendFailed("not connected"))
    om = await manager(venue, store)
    with pytest.raises(SendFailed):
        await om.submit(bracket())
    assert venue.sent == []
    assert {state(store, i.client_order_id).state for i in bracket()} == {S.REJECTED}


async def test_intents_are_refused_until_reconciled(store: Store) -> None:
    om = OrderManager(FakeVenue(), store, NullAudit())
    with pytest.raises(EntriesRefused):
        await om.submit(bracket())


# ---------------------------------------------------------------- notices and refusals
async def test_an_informational_notice_never_ends_an_order(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, stop, target) = await placed_bracket(venue, store)
    venue.notice(entry, "10349", CodeMeaning.NOTICE, "TIF set to DAY based on order preset")
    venue.notice(stop, "10349", CodeMeaning.NOTICE, "TIF set to DAY based on order preset")
    await venue.deliver(om)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    assert state(store, entry).state is S.FILLED and state(store, entry).filled_quantity == 100
    assert state(store, stop).state is S.ACCEPTED and state(store, target).state is S.ACCEPTED


async def test_a_refused_cancel_is_not_a_cancel(store: Store) -> None:
    venue = FakeVenue(refuse_cancel=True)
    om, (entry, _, _) = await placed_bracket(venue, store)
    await om.cancel(entry)
    assert state(store, entry).state is S.CANCEL_PENDING
    await venue.deliver(om)  # 10148 "order cannot be cancelled"
    assert state(store, entry).state is S.ACCEPTED
    venue.execute(entry, D(100))
    await venue.deliver(om)
    assert state(store, entry).state is S.FILLED


async def test_a_rejection_code_on_a_working_stop_asks_the_broker(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, stop, _) = await placed_bracket(venue, store)
    venue.execute(entry, D(100))
    venue.notice(stop, "201", CodeMeaning.REJECTED, "Order rejected - reason: modify refused")
    await venue.deliver(om)
    assert state(store, stop).state is S.ACCEPTED  # still working at the broker
    venue.execute(stop, D(100))
    await venue.deliver(om)
    assert state(store, stop).state is S.FILLED


async def test_a_rejection_code_on_a_never_acknowledged_order_rejects_it(store: Store) -> None:
    venue = FakeVenue()
    om = await manager(venue, store)
    intents = bracket()
    await om.submit(intents)
    venue.outbox.clear()  # no acknowledgement arrived
    del venue.orders[intents[0].client_order_id]
    venue.notice_for_missing = True  # type: ignore[attr-defined]
    from joe.core.reports import BrokerNotice

    await om.process(
        BrokerNotice(
            "fake",
            "201",
            "rejected: size",
            CodeMeaning.REJECTED,
            intents[0] and _t0(),
            intents[0].client_order_id,
            "B1",
            "place",
        )
    )
    assert state(store, intents[0].client_order_id).state is S.REJECTED


def _t0() -> Any:
    from execution.fake_venue import T0

    return T0


async def test_a_refused_modify_never_changes_joes_copy(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, stop, _) = await placed_bracket(venue, store)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    venue.refuse_modify = True
    await om.modify(stop, stop_price=D("97.03"))
    await venue.deliver(om)
    assert state(store, stop).intent.stop_price == D("95.00") == venue.orders[stop].stop_price
    venue.refuse_modify = False
    await om.modify(stop, stop_price=D("97.03"))
    assert state(store, stop).intent.stop_price == D("95.00")  # not until the broker confirms
    await venue.deliver(om)
    assert state(store, stop).intent.stop_price == D("97.03") == venue.orders[stop].stop_price


# ---------------------------------------------------------------- fills are facts
@pytest.mark.parametrize("concluded", [S.CANCELLED, S.REJECTED])
@pytest.mark.parametrize("filled", [D(100), D(30)])
async def test_a_late_fill_moves_a_cancelled_or_rejected_order_on_and_alerts(
    store: Store, concluded: S, filled: D
) -> None:
    """Issue 9, kind 4b: a fill is a fact. An order Joe concluded was cancelled or rejected (a notice
    read as a refusal, a lost cancel race) that the broker then fills is moved on by the fill, never
    dropped; the fill is stored and audited once and a LATE_FILL alert names the order."""
    venue, audit = FakeVenue(), NullAudit()
    om, (entry, _, _) = await placed_bracket(venue, store, audit=audit)
    o = om.order(entry)
    assert o is not None
    o.transition(concluded, f"Joe wrongly concluded {concluded.value}")
    store.save_order(o, broker="fake", mode="live")
    venue.execute(entry, filled)
    await venue.deliver(om)
    after = state(store, entry)
    assert after.filled_quantity == filled == venue.orders[entry].filled  # the broker's count
    assert after.state is (S.FILLED if filled == 100 else S.PARTIALLY_FILLED)
    assert [f.quantity for f in store.fills(entry)] == [filled]
    late = [a for a in om.alerts if a.kind is AlertKind.LATE_FILL]
    assert len(late) == 1 and late[0].client_order_id == entry
    fills = [(p, ids) for e, p, ids in audit.records if e == "order.fill"]
    assert len(fills) == 1 and fills[0][1]["client_order_id"] == entry
    assert fills[0][0]["quantity"] == str(filled)


async def test_an_execution_correction_replaces_the_fill(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, _, _) = await placed_bracket(venue, store)
    exec_id = venue.execute(entry, D(100))
    assert exec_id is not None
    await venue.deliver(om)
    venue.correct(exec_id, D(50))
    await venue.deliver(om)
    venue.orders[entry].status = venue.orders[entry].status.WORKING
    venue.execute(entry, D(50))
    await venue.deliver(om)
    o = state(store, entry)
    assert o.filled_quantity == 100 == venue.orders[entry].filled
    assert [f.quantity for f in store.fills(entry)] == [50, 50]


async def test_commissions_before_or_after_their_fill_end_up_on_it(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, _, _) = await placed_bracket(venue, store)
    exec_id = venue.execute(entry, D(40), commission=D("1.00"))
    fill, comm = venue.outbox[0], venue.outbox[1]
    assert isinstance(fill, FillReport) and isinstance(comm, CommissionReport)
    await om.process(comm)  # first: no fill yet, kept
    assert store.pending_commission(exec_id or "") is not None
    await om.process(fill)
    venue.outbox.clear()
    assert store.fills(entry)[0].commission == D("1.00")
    assert store.pending_commissions() == []
    second = venue.execute(entry, D(60), commission=D("0.50"))
    await venue.deliver(om)  # fill then commission
    assert {f.fill_id: f.commission for f in store.fills(entry)} == {exec_id: D("1.00"), second: D("0.50")}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", D(0)),
        ("price", D(-5)),
        ("price", D("NaN")),
        ("price", D("Infinity")),
        ("quantity", D("NaN")),
        ("side", Side.SELL),
        ("symbol", "MSFT"),
    ],
)
async def test_an_invalid_fill_is_refused_audited_and_alerted(store: Store, field: str, value: Any) -> None:
    from dataclasses import replace

    venue = FakeVenue()
    audit = NullAudit()
    om, (entry, _, _) = await placed_bracket(venue, store, audit=audit)
    venue.execute(entry, D(10))
    fr = venue.outbox.pop(0)
    assert isinstance(fr, FillReport)
    await om.process(replace(fr, fill=replace(fr.fill, **{field: value})))
    assert state(store, entry).filled_quantity == 0 and store.fills(entry) == []
    assert any(a.kind is AlertKind.INVALID_FILL and field in a.message for a in om.alerts)
    assert any(e == "order.fill_invalid" for e, _, _ in audit.records)


class FlakyAudit(NullAudit):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def record(self, event_type: str, payload: Any = None, **ids: Any) -> None:
        if self.broken and event_type == "order.fill":
            raise OSError("disk full")
        super().record(event_type, payload, **ids)


async def test_a_fill_whose_audit_write_fails_is_applied_and_re_audited(store: Store) -> None:
    venue = FakeVenue()
    audit = FlakyAudit()
    om, (entry, _, _) = await placed_bracket(venue, store, audit=audit)
    exec_id = venue.execute(entry, D(100))
    await venue.deliver(om)
    assert state(store, entry).state is S.FILLED
    assert [f.fill_id for f, _, _ in store.unaudited_fills()] == [exec_id]
    assert any(a.kind is AlertKind.AUDIT_FAILED for a in om.alerts)
    audit.broken = False
    await manager(venue, store, audit=audit)  # the next start (or reconciliation) re-audits
    assert store.unaudited_fills() == []
    assert [p["fill_id"] for e, p, _ in audit.records if e == "order.fill"] == [exec_id]


# ---------------------------------------------------------------- exits and protection
async def test_a_reduce_only_exit_replaces_the_bracket_and_never_reverses(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, stop, target) = await placed_bracket(venue, store, confirm_timeout=0.01)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    ex = await om.exit("sig-1")
    assert ex is not None and ex.quantity == 100 and ex.intent.reduce_only
    await venue.deliver(om)
    assert venue.orders[stop].status is venue.orders[stop].status.CANCELLED
    assert venue.orders[target].status is venue.orders[target].status.CANCELLED
    venue.execute(ex.client_order_id, D(100))
    venue.execute(target, D(100))  # cannot fill any more: nothing left to reverse the position
    await venue.deliver(om)
    assert venue.net["AAPL"] == 0
    assert state(store, ex.client_order_id).state is S.FILLED


async def test_a_partial_exit_shrinks_the_target_by_cancel_and_replace(store: Store) -> None:
    """A partial exit never modifies the target down (it could fill in full before the modify lands,
    and with the exit reverse the position: chaos seed 477's kind): cancelled, confirmed before the
    exit is sent, then replaced at what stays; the stop is shrunk by a modify. When the broker refuses
    that cancel (10148, chaos seed 93) the modify down is the only request left: sent instead, and the
    exit goes on; a refused cancel is no unresolved outcome (it would trip the breaker)."""
    for refuse in (False, True):
        venue = FakeVenue()
        s = open_store("sqlite://")
        om, (entry, stop, target) = await placed_bracket(venue, s, confirm_timeout=2.0)
        venue.execute(entry, D(100))
        await venue.deliver(om)
        venue.refuse_cancel = refuse

        async with delivering(venue, om):
            ex = await om.exit("sig-1", quantity=D(40))
            assert ex is not None
            venue.execute(ex.client_order_id, D(40))
            for _ in range(100):  # the replacement is placed by its own task once the exit is done
                if refuse or len(venue.sent) == 5:
                    break
                await asyncio.sleep(0.01)
        await venue.deliver(om)
        assert ex is not None and ex.quantity == 40
        assert venue.orders[stop].quantity == 60
        targets = [o for o in s.orders() if o.intent.leg is OrderLeg.TAKE_PROFIT]
        if refuse:
            assert [(t.client_order_id, t.quantity, t.state) for t in targets] == [(target, 60, S.ACCEPTED)]
        else:
            assert state(s, target).state is S.CANCELLED
            [new] = [t for t in targets if t.client_order_id != target]
            assert (new.quantity, new.state, new.intent.reduce_only) == (60, S.ACCEPTED, True)
        assert not [a for a in om.alerts if a.kind is AlertKind.UNRESOLVED]


async def test_a_stop_lets_a_replacement_target_in_flight_be_answered(store: Store) -> None:
    """The OrderManager stopping while a replacement take-profit's order is on its way (at the venue,
    not yet answered) waits for the answer (bounded) instead of cancelling the send half-way: cancelled,
    the order rested at the broker with nothing of it recorded but the write-ahead (no broker id: the
    next start had to find it by its client id). Seed 701's kind: Joe's work going on after a stop."""
    venue = FakeVenue()
    s = open_store("sqlite://")
    om, (entry, _stop, target) = await placed_bracket(venue, s, confirm_timeout=2.0)
    venue.execute(entry, D(100))
    await venue.deliver(om)

    async with delivering(venue, om):
        ex = await om.exit("sig-1", quantity=D(40))
        assert ex is not None
        venue.answer_delay_s = 0.3  # the replacement's answer is slow
        venue.execute(ex.client_order_id, D(40))
        for _ in range(200):  # its own task sends the replacement once the exit is done
            if len(venue.sent) == 5:
                break
            await asyncio.sleep(0.01)
        assert len(venue.sent) == 5 and om.refits_pending  # at the venue, its answer on the way
        await om.stop()
    [new] = [o for o in s.orders() if o.intent.leg is OrderLeg.TAKE_PROFIT and o.client_order_id != target]
    assert new.client_order_id == venue.sent[-1]
    # The venue's answer taken (its order id), not a send cut off half-way.
    mine = om.book.get(new.client_order_id)
    assert new.quantity == 60 and mine is not None
    assert mine.broker_order_id == venue.orders[new.client_order_id].broker_order_id


async def test_an_exit_is_capped_at_the_live_broker_position(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, _, _) = await placed_bracket(venue, store, confirm_timeout=0.01)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    venue.net["AAPL"] = D(60)  # 40 closed elsewhere
    ex = await om.exit("sig-1")
    await venue.deliver(om)
    assert ex is not None and ex.quantity == 60
    venue.net["AAPL"] = D(0)
    assert await om.exit("sig-1", quantity=D(10)) is ex  # one in flight: returned, not duplicated


async def test_a_rejected_exit_can_be_retried(store: Store) -> None:
    venue = FakeVenue()
    om, (entry, _, _) = await placed_bracket(venue, store, confirm_timeout=0.01)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    venue.fail_before_send = SendFailed("rejected locally")
    with pytest.raises(SendFailed):
        await om.exit("sig-1")
    ex = await om.exit("sig-1")
    assert ex is not None and ex.attempt == 1
    assert ex.client_order_id == client_order_id("sig-1", "exit", 1)
    assert venue.sent[-1] == ex.client_order_id


async def test_a_partial_entry_then_cancel_resizes_the_children(store: Store) -> None:
    """The broker resizes the legs of a partly filled parent it cancels (TWS), or Joe does: the stop
    by a modify (it protects meanwhile), the target — active, it could fill in full before a modify
    lands (chaos seed 477) — cancelled and, once that is confirmed, replaced at the filled 30."""
    for broker_resizes in (True, False):
        venue = FakeVenue(resize_children=broker_resizes)
        s = open_store("sqlite://")
        om, (entry, stop, target) = await placed_bracket(venue, s)
        venue.execute(entry, D(30))
        await venue.deliver(om)
        await om.cancel(entry)
        await venue.deliver(om)
        await venue.deliver(om)
        assert venue.orders[stop].quantity == 30, broker_resizes
        assert state(s, stop).quantity == 30 and state(s, stop).state is S.ACCEPTED
        if broker_resizes:
            assert state(s, target).quantity == 30 and state(s, target).state is S.ACCEPTED
        else:
            assert state(s, target).state is S.CANCELLED and state(s, target).quantity == 100
            for _ in range(20):  # the replacement is placed by its own task
                await asyncio.sleep(0.01)
                await venue.deliver(om)
            [new] = [
                o for o in s.orders() if o.intent.leg is OrderLeg.TAKE_PROFIT and o.client_order_id != target
            ]
            assert (new.quantity, new.state, new.intent.reduce_only) == (30, S.ACCEPTED, True)
            assert new.intent.limit_price == state(s, target).intent.limit_price
        assert state(s, entry).state is S.CANCELLED and state(s, entry).filled_quantity == 30
        assert om.unprotected == [] or om.unprotected[-1].protected < 30  # at most transient


async def test_modifying_a_parent_quantity_resizes_its_children(store: Store) -> None:
    venue = FakeVenue(resize_children=False)
    om, (entry, stop, target) = await placed_bracket(venue, store)
    await om.modify(entry, quantity=D(200))
    await venue.deliver(om)
    assert [venue.orders[c].quantity for c in (entry, stop, target)] == [200, 200, 200]
    assert [state(store, c).quantity for c in (entry, stop, target)] == [200, 200, 200]


async def test_a_stop_cancelled_by_the_broker_reports_an_unprotected_position(store: Store) -> None:
    venue = FakeVenue()
    seen: list[Any] = []
    om, (entry, stop, _) = await placed_bracket(venue, store, on_unprotected=seen.append)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    assert seen == []
    venue.venue_cancel(stop)
    await venue.deliver(om)
    assert len(seen) == 1 and seen[0].position == 100 and seen[0].protected == 0
    assert seen[0].symbol == "AAPL" and seen[0].signal_id == "sig-1"


# ---------------------------------------------------------------- increments
async def test_non_conforming_intents_are_refused_before_anything_is_stored(store: Store) -> None:
    venue = FakeVenue(rules=InstrumentRules("AAPL", D("0.01"), D(100), D(100)))
    om = await manager(venue, store)
    with pytest.raises(InvalidOrder, match=r"size increment 100"):
        await om.submit(bracket(qty="1234.5678"))
    bad = [*bracket(qty="1200")]
    bad[0] = OrderIntent(
        bad[0].client_order_id,
        "sig-1",
        OrderLeg.ENTRY,
        "AAPL",
        Side.BUY,
        D(1200),
        OrderType.LIMIT,
        limit_price=D("10.1624"),
    )
    with pytest.raises(InvalidOrder, match=r"tick grid 0\.01"):
        await om.submit(bad)
    assert venue.sent == [] and store.orders() == []


def test_rounding_helpers_round_sizes_down_and_prices_to_the_tick() -> None:
    r = InstrumentRules("EURUSD", D("0.00001"), D(100), D(100), D(10000))
    assert round_size_down(D("1234.5678"), r) == D(1200)
    assert round_size_down(D("99"), r) == 0
    assert round_size_down(D("20000"), r) == D(10000)
    t = InstrumentRules("X", D("0.01"), D(1), D(1))
    assert round_price(D("10.1624"), t) == D("10.16")
    assert round_price(D("10.1624"), t, "up") == D("10.17")
    assert round_price(D("10.1699"), t, "down") == D("10.16")


async def test_commits_per_order_write_ahead_first(store: Store) -> None:
    """Place → ack → fill → commission costs 5 store commits (write-ahead NEW, SUBMITTING right
    before the send, accepted, fill, commission): the broker id rides on the first report's save
    and the fill's audited mark on the next save. Both write-ahead marks precede the send: NEW
    (never sent: a restart may send it) and SUBMITTING (may be sent: a restart only asks)."""
    from sqlalchemy import event

    venue = FakeVenue()
    om = await manager(venue, store)
    commits: list[str] = []
    event.listen(store.engine, "commit", lambda conn: commits.append("commit"))
    real = venue.submit
    at_send: list[int] = []

    async def spy(intents: Any) -> Any:
        at_send.append(len(commits))
        return await real(intents)

    venue.submit = spy  # type: ignore[method-assign]
    intent = bracket()[0]
    await om.submit([intent])
    venue.execute(intent.client_order_id, D(100))
    await venue.deliver(om)
    o = state(store, intent.client_order_id)
    assert o.state is S.FILLED and o.broker_order_id is not None and o.fills[next(iter(o.fills))].commission
    assert at_send == [2] and len(commits) == 5
    await om.stop()
    assert store.unaudited_fills() == []


# ---------------------------------------------------------------- audited before stored (issue 13)
class _Crash(BaseException):
    """The process dies here: nothing after this point runs."""


def _crash_after_storing(store: Store, states: set[OrderState]) -> None:
    """The process dies right after the store commits an order in one of `states`."""
    real = store.save_order

    def save(o: Order, **kw: Any) -> Any:
        out = real(o, **kw)
        if o.state in states:
            raise _Crash
        return out

    store.save_order = save  # type: ignore[method-assign]


def _unannounced(store: Store, audit: NullAudit, coids: list[str]) -> list[str]:
    """The stored orders whose state no audit record announces (its `to`, or its own event)."""
    events = {
        S.NEW: "order.attempt",
        S.CANCEL_PENDING: "order.cancel_requested",
        S.REJECTED: "order.rejected",
    }
    bad = []
    for c in coids:
        st = state(store, c).state
        recs = [(e, p) for e, p, ids in audit.records if ids.get("client_order_id") == c]
        if not any(p.get("to") == st.value or e == events.get(st) for e, p in recs):
            bad.append(f"{c}: {st.value} stored, not audited")
    return bad


async def test_a_cancel_request_is_audited_before_it_is_stored(store: Store) -> None:
    """`order.cancel_requested` was written after CANCEL_PENDING was stored: a crash between left a
    stored state without its audit record. Audited first (as a submit's write-ahead): a crash right
    after the store's commit finds the record already written."""
    venue = FakeVenue()
    audit = NullAudit()
    om, (entry, stop, target) = await placed_bracket(venue, store, audit=audit)
    _crash_after_storing(store, {S.CANCEL_PENDING})
    with pytest.raises(_Crash):
        await om.cancel(entry)
    assert state(store, entry).state is S.CANCEL_PENDING
    assert _unannounced(store, audit, [entry, stop, target]) == []


async def test_a_refused_cancel_moving_back_is_audited_before_it_is_stored(store: Store) -> None:
    venue = FakeVenue()
    audit = NullAudit()
    om, (entry, _, _) = await placed_bracket(venue, store, audit=audit)

    async def refuse(ref: Any) -> None:
        raise SendFailed("not connected")

    venue.cancel = refuse  # type: ignore[method-assign]
    _crash_after_storing(store, {S.ACCEPTED})
    with pytest.raises(_Crash):
        await om.cancel(entry)
    assert state(store, entry).state is S.ACCEPTED
    assert any(e == "order.cancel_not_sent" for e, _, _ in audit.records)


async def test_an_entry_refused_by_the_gate_is_audited_before_it_is_stored(store: Store) -> None:
    venue = FakeVenue()
    audit = NullAudit()
    om = await manager(venue, store, audit=audit)
    om.entry_gate = lambda: "trading is reducing: test"
    intents = bracket()
    _crash_after_storing(store, {S.REJECTED})
    with pytest.raises(_Crash):
        await om.submit(intents)
    assert venue.sent == []
    stored = [i.client_order_id for i in intents if store.load_order(i.client_order_id) is not None]
    assert state(store, intents[0].client_order_id).state is S.REJECTED
    assert _unannounced(store, audit, stored) == []


def _crash_when_auditing(audit: NullAudit, event: str) -> None:
    """The process dies as it starts writing the audit record `event` (nothing of it is written)."""
    real = audit.record

    def record(event_type: str, payload: dict[str, Any] | None = None, **ids: str | None) -> None:
        if event_type == event:
            raise _Crash
        real(event_type, payload, **ids)

    audit.record = record  # type: ignore[method-assign]


async def test_a_submit_is_audited_before_it_is_stored(store: Store) -> None:
    """`order.attempt` was written after NEW was stored: a crash between left stored orders without
    their audit record. Audited first: a crash as the record is written leaves nothing stored and
    nothing sent; a crash right after the store's commit finds every record already written."""
    venue = FakeVenue()
    audit = NullAudit()
    om = await manager(venue, store, audit=audit)
    intents = bracket("sig-audit-first")
    coids = [i.client_order_id for i in intents]
    _crash_when_auditing(audit, "order.attempt")
    with pytest.raises(_Crash):
        await om.submit(intents)
    assert venue.sent == []
    assert [c for c in coids if store.load_order(c) is not None] == []
    assert _unannounced(store, audit, [c for c in coids if store.load_order(c) is not None]) == []

    venue2, audit2 = FakeVenue(), NullAudit()
    om2 = await manager(venue2, store, audit=audit2)
    _crash_after_storing(store, {S.SUBMITTING})  # after NEW's commit, before the broker call
    with pytest.raises(_Crash):
        await om2.submit(intents)
    assert venue2.sent == []  # the write-ahead: stored before any send
    assert all(store.load_order(c) is not None for c in coids)
    assert _unannounced(store, audit2, coids) == []


async def test_a_submit_is_stored_before_the_broker_is_asked(store: Store) -> None:
    """Audit first does not move the write-ahead: when the broker request goes out, every order of
    the group is in the store (SUBMITTING) and its attempt is audited."""
    venue = FakeVenue()
    audit = NullAudit()
    om = await manager(venue, store, audit=audit)
    intents = bracket("sig-write-ahead")
    seen: list[tuple[str, S | None, bool]] = []
    real = venue.submit

    async def submit(group: Any) -> Any:
        for i in group:
            o = store.load_order(i.client_order_id)
            attempted = any(
                e == "order.attempt" and ids.get("client_order_id") == i.client_order_id
                for e, _, ids in audit.records
            )
            seen.append((i.client_order_id, o.state if o else None, attempted))
        return await real(group)

    venue.submit = submit  # type: ignore[method-assign]
    await om.submit(intents)
    assert seen == [(i.client_order_id, S.SUBMITTING, True) for i in intents]


# ---------------------------------------------------------------- stop
async def test_stop_leaves_no_background_task_to_write_to_a_closed_store(store: Store) -> None:
    """A leg trim waiting out its grace when the manager stops was only asked to cancel: it ran on
    after `stop` returned and met the store the caller had closed ("no such table: orders"). `stop`
    now returns once every background task has ended."""
    venue = FakeVenue()
    om, (entry, _, _) = await placed_bracket(venue, store)
    venue.execute(entry, D(100))
    await venue.deliver(om)
    om.trim_grace_s = 3600.0  # the trim is asleep in its grace when stop comes
    om._schedule_trim("sig-1")
    await asyncio.sleep(0)
    running = [t for t in asyncio.all_tasks() if t.get_name().startswith("trim-")]
    assert running and not any(t.done() for t in running)
    await om.stop()
    assert all(t.done() for t in running)


async def _stream(venue: FakeVenue) -> None:
    """Put the venue's pending reports on its observation stream (the manager's consumer reads them)."""
    while venue.outbox:
        venue._q.put_nowait(venue.outbox.pop(0))


async def _two_filled_brackets(venue: FakeVenue, store: Store) -> tuple[OrderManager, list[OrderIntent]]:
    om = OrderManager(venue, store, NullAudit())
    await om.start(consume=True)  # the real consumer: it runs on while stop waits
    b1, b2 = bracket("sig-1"), bracket("sig-2")
    await om.submit(b1)
    await om.submit(b2)
    venue.execute(b1[0].client_order_id, D(100))
    venue.execute(b2[0].client_order_id, D(100))
    await _stream(venue)
    for _ in range(50):
        await asyncio.sleep(0)
    assert om.position_of("sig-1") == om.position_of("sig-2") == D(100)
    return om, b2


async def test_nothing_the_consumer_starts_while_stopping_outlives_stop(store: Store) -> None:
    """(Hostile review of the above.) While `stop` waits for a trim, the consumer runs on: a partial
    target fill queued on the stream made it start a new trim (and could start a target refit) that
    `stop` did not know of, which then asked the broker and sent a modify after `stop` returned and the
    store was closed. Now nothing new starts once `stop` began, and what did start is ended too; the
    fills applied meanwhile are marked audited."""
    venue = FakeVenue()
    om, b2 = await _two_filled_brackets(venue, store)
    om._schedule_trim("sig-1")  # asleep in its grace when stop comes
    await asyncio.sleep(0)
    venue.execute(b2[2].client_order_id, D(40))  # sig-2's target fills 40 of 100, on the stream
    await _stream(venue)
    calls: list[str] = []
    for name in ("cancel", "modify", "order_status", "submit"):
        real = getattr(venue, name)

        async def spy(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
            calls.append(_name)
            return await _real(*a, **k)

        setattr(venue, name, spy)
    await om.stop()
    seen = len(calls)
    assert not [
        t for t in asyncio.all_tasks() if t.get_name().startswith(("trim-", "refit-")) and not t.done()
    ]
    assert om.book.audited == []
    await asyncio.sleep(0.5)  # longer than the real trim grace (0.2 s): nothing acts after stop
    assert len(calls) == seen


async def test_a_stop_cut_short_by_its_caller_still_cancels_the_consumer(store: Store) -> None:
    """(Hostile review.) The daemon bounds `stop` with a timeout: cancelled while it waits for the
    background tasks, it must still have asked the observation consumer to stop — else the consumer
    went on applying the stream to a store about to be closed."""
    venue = FakeVenue()
    om, _ = await _two_filled_brackets(venue, store)
    consumer = om._consumer
    assert consumer is not None and not consumer.done()

    async def hanging_refits(grace_s: float = 5.0) -> None:
        await asyncio.sleep(3600)

    om.stop_refits = hanging_refits  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(om.stop(), 0.2)
    for _ in range(20):
        await asyncio.sleep(0)
    assert consumer.done()
