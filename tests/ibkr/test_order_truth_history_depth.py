"""IBKR's execution history is the current day's (`reqExecutions`; up to 7 days with the TWS Trade Log
setting). A daily batch run: process 1 on day D places a bracket and ends; the stop fires at D 15:00;
process 2 starts on D+1 at 10:00. TWS no longer returns the stop's execution, only the completed
order (Filled, filledQuantity 100) and the flat position. Before, Joe kept the stop ACCEPTED and asked
for executions that never came (then UNRESOLVED / LOST, trading halted). Now the stop is FILLED by an
estimated fill at its stop price (`joe.execution.estimated_fills`), the target is CANCELLED by OCA and
Joe's position is flat; an execution seen later replaces the estimate, never adds to it.
The simulator's books are the truth; Joe's clock is the simulator's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from joe.core.events import NullAudit
from joe.execution.estimated_fills import estimate_id
from joe.execution.events import AlertKind
from joe.execution.order_manager import OrderManager
from joe.simulators.common import SimClock
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store

from .helpers import bracket_intents, running_sim, wait_for
from .truth import S, agree, at_broker, ids, joe, settle

NY = ZoneInfo("America/New_York")
D_1000 = datetime(2026, 12, 3, 10, 0, tzinfo=NY).astimezone(UTC)  # a Thursday
D_1500 = datetime(2026, 12, 3, 15, 0, tzinfo=NY).astimezone(UTC)
D1_1000 = datetime(2026, 12, 4, 10, 0, tzinfo=NY).astimezone(UTC)  # Friday's open minute


@pytest.fixture
async def day_sim() -> AsyncIterator[IBKRSimulator]:
    async with running_sim(SimClock(D_1000)) as s:
        yield s


async def _process(sim: IBKRSimulator, make_client: Any, store: Store) -> OrderManager:
    """One run of Joe: a fresh client (same client id, as a daily job) and OrderManager on the
    simulator's clock, started (reconciled)."""
    client = await make_client(sim, client_id=31)
    om = OrderManager(client, store, NullAudit(), confirm_timeout=3.0, clock=sim.clock)
    await om.start()
    return om


async def _yesterdays_stop(sim: IBKRSimulator, make_client: Any, store: Store, sig: str) -> list[Any]:
    """Run 1 on D places a filled long bracket (stop 95, target 110) and ends; the stop fires on D;
    the clock moves to D+1 10:00. Returns the bracket's intents."""
    sim.set_price("AAPL", 100)
    om = await _process(sim, make_client, store)
    legs = bracket_intents(sig, limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    await om.stop()
    await om.client.close()
    sim.move_clock(D_1500)
    sim.set_price("AAPL", 94)  # through the stop: the broker fills it at D 15:00
    await wait_for(lambda: at_broker(sim, legs[1].client_order_id).status == "Filled", what="stop filled")
    assert sim.book.positions["AAPL"].qty == 0
    sim.move_clock(D1_1000)
    if sim.execution_days == 1:  # TWS's default: none of D's executions is returned any more
        assert all(e.at < sim.execution_history_start() for e in sim.book.executions)
    return legs


async def test_a_stop_that_filled_yesterday_is_filled_the_next_day(
    day_sim: IBKRSimulator, make_client: Any, store: Store
) -> None:
    legs = await _yesterdays_stop(day_sim, make_client, store, "nextday")
    om = await _process(day_sim, make_client, store)
    await settle(lambda: agree(day_sim, store, ids(legs)))  # stop FILLED 100, target CANCELLED, flat
    stop = joe(store, legs[1].client_order_id)
    assert stop.state is S.FILLED and stop.filled_quantity == 100
    [fill] = stop.fills.values()
    assert fill.fill_id == estimate_id(stop.client_order_id)
    assert fill.price == Decimal("95")  # the stop's level: completedOrder carries no fill price
    assert joe(store, legs[2].client_order_id).state is S.CANCELLED
    assert store.net_filled("ibkr", "live").get("AAPL", Decimal(0)) == 0
    bad = (AlertKind.UNRESOLVED, AlertKind.LOST, AlertKind.UNKNOWN_ORDER, AlertKind.OVERFILL)
    assert not [a for a in om.alerts if a.kind in bad], om.alerts
    assert not om.unprotected_now
    # A second run the same day books nothing new.
    await om.stop()
    await om.client.close()
    again = await _process(day_sim, make_client, store)
    assert joe(store, legs[1].client_order_id).fills == stop.fills
    assert not [a for a in again.alerts if a.kind in bad], again.alerts


async def test_an_execution_seen_later_replaces_the_estimate(
    day_sim: IBKRSimulator, make_client: Any, store: Store
) -> None:
    legs = await _yesterdays_stop(day_sim, make_client, store, "seenlater")
    om = await _process(day_sim, make_client, store)
    await settle(lambda: agree(day_sim, store, ids(legs)))
    # The account owner sets the Trade Log to 7 days: yesterday's execution is returned again.
    day_sim.execution_days = 7
    [real] = [e for e in day_sim.book.executions if e.wire.order_ref == legs[1].client_order_id]
    await om.reconcile()
    stop = joe(store, legs[1].client_order_id)
    assert stop.state is S.FILLED and stop.filled_quantity == 100  # not 200
    est = stop.fills[estimate_id(stop.client_order_id)]
    assert est.quantity == 0  # replaced by the execution
    assert stop.avg_fill_price == real.wire.price  # the broker's price now, not the estimate
    await settle(lambda: agree(day_sim, store, ids(legs)))
    assert store.net_filled("ibkr", "live").get("AAPL", Decimal(0)) == 0
    assert not [a for a in om.alerts if a.kind in (AlertKind.OVERFILL, AlertKind.LATE_FILL)], om.alerts


async def test_with_a_seven_day_trade_log_the_real_execution_is_booked(
    day_sim: IBKRSimulator, make_client: Any, store: Store
) -> None:
    day_sim.execution_days = 7
    legs = await _yesterdays_stop(day_sim, make_client, store, "tradelog")
    await _process(day_sim, make_client, store)
    await settle(lambda: agree(day_sim, store, ids(legs)))
    stop = joe(store, legs[1].client_order_id)
    assert estimate_id(stop.client_order_id) not in stop.fills
    [ex] = [e for e in day_sim.book.executions if e.wire.order_ref == legs[1].client_order_id]
    assert stop.avg_fill_price == ex.wire.price


def test_the_simulator_refuses_a_trade_log_setting_tws_does_not_have() -> None:
    from typer.testing import CliRunner

    from joe.cli.main import app

    out = CliRunner().invoke(app, ["sim", "ibkr", "--port", "0", "--execution-days", "8"])
    assert out.exit_code == 2 and "--execution-days must be between 1 and 7" in out.output
    with pytest.raises(ValueError, match=r"execution_days must be 1\.\.7"):
        IBKRSimulator(execution_days=0)


async def test_no_estimate_when_the_executions_could_not_be_read(
    day_sim: IBKRSimulator, make_client: Any, store: Store
) -> None:
    """The broker says Filled, but reading its executions failed: their absence proves nothing, so no
    estimated fill is booked (the stop stays open in Joe's books, alerted, asked again next pass)."""
    from joe.brokers.base import BrokerUnavailable

    legs = await _yesterdays_stop(day_sim, make_client, store, "unread")
    client = await make_client(day_sim, client_id=31)
    listed = client.mass_status
    calls = 0

    async def first_then_fail(*a: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:  # the pass's own listing works; the per-order read of executions fails
            raise BrokerUnavailable("ibkr: executions unreadable (test)")
        return await listed(*a, **kw)

    client.mass_status = first_then_fail  # type: ignore[method-assign]
    om = OrderManager(client, store, NullAudit(), confirm_timeout=3.0, clock=day_sim.clock)
    try:
        await om.start()
        stop = joe(store, legs[1].client_order_id)
        assert calls > 1  # the executions were asked for
        assert estimate_id(stop.client_order_id) not in stop.fills and not stop.state.is_terminal
        assert any("could not fetch executions" in a.message for a in om.alerts)
    finally:
        await om.stop()
        await client.close()
