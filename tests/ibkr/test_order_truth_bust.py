"""Execution corrections that lower or bust (to 0 shares) an execution (review r9 finding 3): Joe's
order follows the broker — filled size, state, position — the correction is audited and alerted, and
a restarted OrderManager reading both executions from reqExecutions counts only the last revision."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ibkr.helpers import single
from ibkr.truth import agree, settle
from joe.core.models import OrderType
from joe.core.order import OrderState
from joe.execution.events import AlertKind


@pytest.mark.parametrize(("filled", "corrected"), [(40, 0), (100, 0), (100, 30), (60, 10)])
async def test_corrected_or_busted_execution_is_followed_and_restart_safe(
    sim178: Any, make_om: Any, store: Any, filled: int, corrected: int
) -> None:
    sim = sim178
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    it = single(f"bust-{filled}-{corrected}", order_type=OrderType.LIMIT, limit_price=Decimal(90))
    await om.submit([it])
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    sim.fill(it.client_order_id, filled, 90)
    await settle(lambda: agree(sim, store, [it.client_order_id]))  # Joe has applied the execution
    bo = sim.find(it.client_order_id)
    [ex] = [e for e in sim.book.executions if e.wire.order_id == bo.order_id]
    sim.dispatch(sim.book.correct(bo, ex, Decimal(corrected), Decimal(90)))  # TWS corrects it later
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    o = store.load_order(it.client_order_id)
    assert o.filled_quantity == corrected == sim.book.positions["AAPL"].qty
    assert o.state is (OrderState.ACCEPTED if corrected == 0 else OrderState.PARTIALLY_FILLED)
    assert [a.kind for a in om.alerts] == [AlertKind.BROKER_CORRECTION]
    [corr] = [r[1] for r in om.journal.audit.records if r[0] == "order.fill_corrected"]
    assert (corr["from_quantity"], corr["to_quantity"]) == (str(filled), str(corrected))
    await om.stop()
    om2 = await make_om(sim, store, client_id=32)  # a restart reads both executions
    await om2.reconcile()
    await settle(lambda: agree(sim, store, [it.client_order_id]))
    assert store.load_order(it.client_order_id).filled_quantity == corrected
