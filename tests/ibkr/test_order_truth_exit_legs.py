"""No protective leg outlives what it protects (review r9c findings 1 and 3, chaos seed 20's kind).

An exit that finds nothing to sell (the owner sold in TWS before any reconciliation saw it) still
fits the bracket's stop and target to the broker's position: left at full size, the stop would
sell the account short on the next fall. An outside change on a partly filled entry keeps the
legs covering the entry's rest, so the rest never fills unprotected. Broker state at the
simulator is the truth.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from ibkr.helpers import bracket_intents, wait_for
from ibkr.test_order_truth_outside import _held, _trade, _working, owner  # noqa: F401
from ibkr.truth import agree, filled_bracket, ids, settle
from joe.execution.reconciler import Reconciler


async def _partial(sim: Any, make_om: Any, store: Any, sig: str) -> tuple[Any, Any]:
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents(sig, limit="99")
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    sim.fill(legs[0].client_order_id, 30, 99)
    await wait_for(lambda: om.position_of(sig) == 30, what="partial entry")
    return om, legs


async def _fall_and_check_flat(sim: Any) -> None:
    await wait_for(lambda: _working(sim) == [], what="no leg left working at the broker")
    sim.set_price("AAPL", 90)  # through every stop level
    await asyncio.sleep(0.5)
    assert _held(sim) == 0


@pytest.mark.parametrize("exit_qty", [None, Decimal(10)])
async def test_an_exit_with_nothing_to_sell_cancels_the_legs(
    sim178: Any,
    make_om: Any,
    store: Any,
    owner: Any,  # noqa: F811
    exit_qty: Decimal | None,
) -> None:
    om, _legs = await filled_bracket(sim178, make_om, store, "x-all")
    await _trade(sim178, owner, "SELL", 100)
    assert await om.exit("x-all", quantity=exit_qty) is None
    await _fall_and_check_flat(sim178)


async def test_a_full_exit_after_the_owner_sold_a_partial_entry_leaves_nothing(
    sim178: Any,
    make_om: Any,
    store: Any,
    owner: Any,  # noqa: F811
) -> None:
    om, _legs = await _partial(sim178, make_om, store, "x-pe")
    await _trade(sim178, owner, "SELL", 30)
    assert await om.exit("x-pe") is None
    sim178.set_price("AAPL", 98)  # the entry's rest would have traded had it stayed
    await _fall_and_check_flat(sim178)


async def test_an_outside_change_keeps_the_legs_covering_the_entrys_rest(
    sim178: Any,
    make_om: Any,
    store: Any,
    owner: Any,  # noqa: F811
) -> None:
    om, _legs = await _partial(sim178, make_om, store, "x-pr")
    await _trade(sim178, owner, "SELL", 30)
    await Reconciler(om).reconcile()
    sim178.set_price("AAPL", 98)  # the entry's rest fills 70
    await wait_for(lambda: _held(sim178) == 70, what="the rest filled")
    await wait_for(lambda: om.position_of("x-pr") == 70, what="Joe books the rest")
    assert not om.unprotected_now, om.unprotected_now
    sim178.set_price("AAPL", 90)  # the stop fires for the whole rest
    await wait_for(lambda: _held(sim178) == 0, what="the stop closed the rest")
