"""The OrderManager end to end against the IBKR simulator through `IBKRExecutionClient` (ib_async on
the real TWS wire): the issue 9 IBKR examples, each ending with Joe's store equal to the broker's
books (the simulator is the truth)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from joe.brokers.ibkr.client import IBKRExecutionClient
from joe.core.events import NullAudit
from joe.core.order import OrderState
from joe.execution.events import UnprotectedPosition
from joe.execution.order_manager import OrderManager
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store, open_store

from .helpers import bracket_intents, wait_for

S = OrderState
D = Decimal
IB_NOISE = (
    r"Error 10148",
    r"Error 201",
    r"Error 110",
    r"Error 202",
    r"Error 10349",
    r"Order Canceled",
    r"rejected",
)


@pytest.fixture
async def om_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Build started OrderManagers on connected `IBKRExecutionClient`s (a SQLite store each, by
    name); all are stopped and closed at teardown."""
    made: list[tuple[OrderManager, IBKRExecutionClient, Store]] = []

    async def make(sim: IBKRSimulator, *, client_id: int = 41, db: str = "joe", **kw: Any) -> OrderManager:
        client = IBKRExecutionClient(
            "127.0.0.1",
            sim.port,
            client_id,
            "",
            "paper",
            NullAudit(),
            tmp_path / f"ids-{client_id}.json",
            backoff_initial=0.05,
            backoff_max=0.2,
            connect_timeout=2.0,
            request_timeout=3.0,
        )
        await client.connect()
        store = open_store(f"sqlite:///{tmp_path / (db + '.db')}")
        om = OrderManager(client, store, NullAudit(), confirm_timeout=2.0, **kw)
        made.append((om, client, store))
        await om.start()
        return om

    yield make
    for om, client, store in reversed(made):
        await om.stop()
        await client.close()
        store.close()


def joe(om: OrderManager, coid: str) -> Any:
    o = om.order(coid)
    assert o is not None
    return o


async def placed(sim: IBKRSimulator, om: OrderManager, sig: str = "e2e", qty: int = 100) -> list[str]:
    legs = bracket_intents(sig, qty, limit="99", stop="95", target="110")
    await om.submit(legs)
    ids = [i.client_order_id for i in legs]
    await wait_for(lambda: all(joe(om, c).state is S.ACCEPTED for c in ids), what="bracket acknowledged")
    return ids


async def test_same_intent_twice_and_from_a_second_process_is_one_bracket(
    sim178: IBKRSimulator, om_factory: Any
) -> None:
    sim178.set_price("AAPL", 100)
    om1 = await om_factory(sim178, client_id=41)
    ids = await placed(sim178, om1)
    await om1.submit(bracket_intents("e2e", 100, limit="99", stop="95", target="110"))
    # A second process with its own (empty) store: the broker is asked before anything is sent.
    om2 = await om_factory(sim178, client_id=42, db="other")
    await om2.submit(bracket_intents("e2e", 100, limit="99", stop="95", target="110"))
    refs = [o.placed.order_ref for o in sim178.book.orders.values()]
    assert sorted(refs) == sorted(ids)  # one bracket at the broker
    assert all(joe(om2, c).state is S.ACCEPTED for c in ids)  # adopted, not resent


async def test_exit_cancels_the_bracket_first_and_never_reverses(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    entry, stop, target = await placed(sim178, om)
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="entry filled")
    ex = await om.exit("e2e")
    assert ex is not None and ex.quantity == 100
    await wait_for(lambda: joe(om, ex.client_order_id).state is S.FILLED, what="exit filled")
    assert sim178.find(stop).status == "Cancelled" and sim178.find(target).status == "Cancelled"  # type: ignore[union-attr]
    sim178.set_price("AAPL", 111)  # the old target's price: nothing left to fill
    assert sim178.book.positions["AAPL"].qty == 0
    assert joe(om, stop).state is S.CANCELLED and joe(om, target).state is S.CANCELLED


async def test_a_rejected_exit_can_be_retried(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    entry, _, _ = await placed(sim178, om)
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="entry filled")
    sim178.faults.arm("reject_next")
    first = await om.exit("e2e")
    assert first is not None
    await wait_for(
        lambda: joe(om, first.client_order_id).state in (S.REJECTED, S.CANCELLED), what="exit rejected"
    )
    second = await om.exit("e2e")
    assert second is not None and second.attempt == 1 and second.client_order_id != first.client_order_id
    await wait_for(lambda: joe(om, second.client_order_id).state is S.FILLED, what="retried exit filled")
    assert sim178.book.positions["AAPL"].qty == 0


async def test_notice_10349_never_ends_an_order(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    sim178.faults.arm("notice_10349", count=3)
    entry, stop, target = await placed(sim178, om)
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="entry filled")
    assert joe(om, entry).filled_quantity == 100
    assert joe(om, stop).state is S.ACCEPTED and joe(om, target).state is S.ACCEPTED
    assert sim178.find(stop).status == "Submitted"  # type: ignore[union-attr]


async def test_refused_cancel_10148_is_not_a_cancel(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    entry, _, _ = await placed(sim178, om)
    sim178.faults.arm("refuse_cancel", state="Submitted")
    await om.cancel(entry)
    await wait_for(lambda: joe(om, entry).state is S.ACCEPTED, what="cancel refused: back to working")
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="filled after the refused cancel")
    assert sim178.find(entry).status == "Filled"  # type: ignore[union-attr]


async def test_error_201_on_a_live_stop_keeps_it_working(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    entry, stop, _ = await placed(sim178, om)
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="entry filled")
    sim178.order_error(stop, 201)
    sim178.set_price("AAPL", 94)  # the stop fires
    await wait_for(lambda: joe(om, stop).state is S.FILLED, what="stop filled")
    assert sim178.book.positions["AAPL"].qty == 0


async def test_refused_modify_110_never_changes_joes_copy(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    entry, stop, _ = await placed(sim178, om)
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="entry filled")
    sim178.faults.arm("refuse_modify", code=110)
    await om.modify(stop, stop_price=D("97.03"))
    records = om.journal.audit.records  # type: ignore[attr-defined]
    await wait_for(lambda: any(e == "order.notice" and p["code"] == "110" for e, p, _ in records), what="110")
    [broker] = await om.client.order_status(stop)
    assert broker.stop_price == D(95) == joe(om, stop).intent.stop_price
    await om.modify(stop, stop_price=D("97.05"))
    await wait_for(lambda: joe(om, stop).intent.stop_price == D("97.05"), what="confirmed modify")
    assert sim178.find(stop).sim.stop_price == D("97.05")  # type: ignore[union-attr]


async def test_correction_replaces_and_commission_first_ends_on_the_fill(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)  # the target, active at 100 on 50, is cancelled and replaced (202)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    entry, _, _ = await placed(sim178, om)
    sim178.faults.arm("commission_first")
    sim178.faults.arm("correct_exec", qty=50, price="99")
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).filled_quantity == 50, what="corrected to 50")
    await wait_for(lambda: all(f.commission > 0 for f in joe(om, entry).fills.values()), what="commission")
    bo = sim178.find(entry)
    assert bo is not None and bo.sim.filled == 50 == joe(om, entry).filled_quantity
    assert len(joe(om, entry).fills) == 1
    sim178.fill(entry, 50, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="the real second fill")
    assert joe(om, entry).filled_quantity == 100 == sim178.book.positions["AAPL"].qty


async def test_partial_entry_then_cancel_resizes_the_children(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    om = await om_factory(sim178)
    entry, stop, target = await placed(sim178, om)
    sim178.fill(entry, 30, 99)
    await wait_for(lambda: joe(om, entry).filled_quantity == 30, what="partial fill")
    await om.cancel(entry)
    await wait_for(lambda: joe(om, entry).state is S.CANCELLED, what="rest cancelled")
    await wait_for(lambda: joe(om, stop).quantity == 30 and joe(om, target).quantity == 30, what="resized")
    assert sim178.find(stop).sim.quantity == 30 and sim178.find(target).sim.quantity == 30  # type: ignore[union-attr]
    assert joe(om, stop).state is S.ACCEPTED


async def test_a_stop_cancelled_by_the_broker_reports_an_unprotected_position(
    sim178: IBKRSimulator, om_factory: Any, ib_log_guard: Any
) -> None:
    ib_log_guard.allow(*IB_NOISE)
    sim178.set_price("AAPL", 100)
    seen: list[UnprotectedPosition] = []
    om = await om_factory(sim178, on_unprotected=seen.append)
    entry, stop, _ = await placed(sim178, om)
    sim178.fill(entry, 100, 99)
    await wait_for(lambda: joe(om, entry).state is S.FILLED, what="entry filled")
    sim178.broker_cancel(stop)
    await wait_for(lambda: bool(seen), what="unprotected position reported")
    assert (seen[0].position, seen[0].protected, seen[0].symbol) == (100, 0, "AAPL")
    assert joe(om, stop).state is S.CANCELLED
