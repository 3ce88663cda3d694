"""Shared checks for the end-to-end order-truth tests: Joe's store against the simulator's books."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from joe.core.order import Order, OrderState
from joe.simulators.ibkr import IBKRSimulator
from joe.simulators.ibkr.book import BookOrder
from joe.store import Store

from .helpers import bracket_intents, wait_for

S = OrderState
_WORKING = (S.ACCEPTED, S.PARTIALLY_FILLED, S.CANCEL_PENDING)


def agree(sim: IBKRSimulator, store: Store, coids: list[str], symbol: str = "AAPL") -> None:
    """Joe's stored orders and the simulator's books say the same thing."""
    net = Decimal(0)
    for coid in coids:
        joe, bo = store.load_order(coid), sim.find(coid)
        assert joe is not None, f"{coid} not in Joe's store"
        assert bo is not None, f"{coid} not at the broker"
        assert (joe.filled_quantity, joe.quantity) == (bo.sim.filled, bo.sim.quantity), coid
        if bo.status == "Filled":
            assert joe.state is S.FILLED, (coid, joe.state)
        elif bo.status == "Cancelled":
            assert joe.state is S.CANCELLED, (coid, joe.state)
        else:
            assert joe.state in _WORKING, (coid, joe.state, bo.status)
        if bo.placed.order_type in ("STP", "STP LMT"):
            assert joe.intent.stop_price == bo.placed.aux_price, coid
        if bo.placed.order_type in ("LMT", "STP LMT"):
            assert joe.intent.limit_price == bo.placed.lmt_price, coid
        net += joe.filled_quantity * joe.intent.side.sign
    pos = sim.book.positions.get(symbol)
    assert net == (pos.qty if pos else 0), f"Joe's net {net} vs the broker's {pos}"


async def settle(check: Callable[[], None], timeout: float = 120.0) -> None:
    """Wait until `check` passes (the broker → client → OrderManager path is asynchronous)."""

    def ok() -> bool:
        try:
            check()
        except AssertionError:
            return False
        return True

    try:
        await wait_for(ok, timeout=timeout, what="Joe and the broker to agree")
    except AssertionError:
        check()  # fail with the real difference
        raise


def at_broker(sim: IBKRSimulator, coid: str) -> BookOrder:
    bo = sim.find(coid)
    assert bo is not None, f"{coid} not at the broker"
    return bo


def joe(store: Store, coid: str) -> Order:
    o = store.load_order(coid)
    assert o is not None, f"{coid} not in Joe's store"
    return o


def ids(legs: list[Any]) -> list[str]:
    return [i.client_order_id for i in legs]


async def filled_bracket(sim: IBKRSimulator, make_om: Any, store: Store, sig: str) -> tuple[Any, list[Any]]:
    """A long AAPL bracket (market entry at 100) through a fresh OrderManager, settled: Joe's store and
    the simulator agree on every leg. (OrderManager, the bracket's intents)."""
    sim.set_price("AAPL", 100)
    om = await make_om(sim, store)
    legs = bracket_intents(sig, limit=None)
    await om.submit(legs)
    await settle(lambda: agree(sim, store, ids(legs)))
    return om, legs
