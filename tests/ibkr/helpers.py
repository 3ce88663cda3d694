"""Small helpers shared by the IBKR tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.reports import (
    BrokerNotice,
    CommissionReport,
    FillReport,
    Observation,
    OrderStatusReport,
    VenueOrderStatus,
)
from joe.simulators.ibkr import IBKRSimulator


def audit_types(audit: NullAudit) -> list[str]:
    return [r[0] for r in audit.records]


@contextlib.asynccontextmanager
async def running_sim(
    clock: Callable[[], datetime] | None = None, *, server_version: int = 178
) -> AsyncIterator[IBKRSimulator]:
    """The TWS simulator (seed 7) started on `clock` (None: the host's), stopped on exit: what the
    simulator fixtures of tests/ibkr are made of."""
    s = IBKRSimulator(server_version=server_version, seed=7, clock=clock)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


async def wait_for(pred: Callable[[], bool], timeout: float = 120.0, what: str = "condition") -> None:
    """Poll `pred` on the event loop (no wall-clock assertion: a timeout only means 'never happened')."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Recorder:
    """Collects a client's `observations()` in arrival order (a background task)."""

    def __init__(self, client: Any) -> None:
        self.seen: list[Observation] = []
        self._task = asyncio.get_running_loop().create_task(self._run(client))

    async def _run(self, client: Any) -> None:
        async for obs in client.observations():
            self.seen.append(obs)

    def stop(self) -> None:
        self._task.cancel()

    def statuses(self, coid: str) -> list[OrderStatusReport]:
        return [o for o in self.seen if isinstance(o, OrderStatusReport) and o.client_order_id == coid]

    def last_status(self, coid: str) -> OrderStatusReport | None:
        found = self.statuses(coid)
        return found[-1] if found else None

    def raw(self, coid: str) -> str:
        """The broker's last status text for `coid` ("" before any)."""
        last = self.last_status(coid)
        return last.raw_status if last else ""

    def state(self, coid: str) -> VenueOrderStatus | None:
        last = self.last_status(coid)
        return last.status if last else None

    def fills(self, coid: str | None = None) -> list[FillReport]:
        return [
            o for o in self.seen
            if isinstance(o, FillReport) and (coid is None or o.fill.client_order_id == coid)
        ]  # fmt: skip

    def commissions(self) -> list[CommissionReport]:
        return [o for o in self.seen if isinstance(o, CommissionReport)]

    def notices(self, code: str | None = None) -> list[BrokerNotice]:
        return [o for o in self.seen if isinstance(o, BrokerNotice) and (code is None or o.code == code)]


def bracket_intents(
    sig: str, qty: int | str = 100, *, limit: str | None = "99", stop: str = "95", target: str = "110",
    symbol: str = "AAPL", side: Side = Side.BUY,
) -> list[OrderIntent]:  # fmt: skip
    """[entry, stop, target] as the OrderManager hands them to `submit` (limit entry unless limit=None)."""
    q = Decimal(qty)
    entry = OrderIntent(
        client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, symbol, side, q,
        order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
        limit_price=Decimal(limit) if limit is not None else None,
    )  # fmt: skip
    exit_side = side.opposite
    sl = OrderIntent(
        client_order_id(sig, "stop"), sig, OrderLeg.STOP_LOSS, symbol, exit_side, q,
        order_type=OrderType.STOP, stop_price=Decimal(stop), reduce_only=True,
    )  # fmt: skip
    tp = OrderIntent(
        client_order_id(sig, "target"), sig, OrderLeg.TAKE_PROFIT, symbol, exit_side, q,
        order_type=OrderType.LIMIT, limit_price=Decimal(target), reduce_only=True,
    )  # fmt: skip
    return [entry, sl, tp]


def single(
    sig: str, leg: OrderLeg = OrderLeg.ENTRY, side: Side = Side.BUY, qty: int | str = 100, **kw: Any
) -> OrderIntent:
    """One order for `submit` (market unless order_type/limit_price/stop_price say otherwise)."""
    return OrderIntent(
        client_order_id(sig, leg.value), sig, leg, kw.pop("symbol", "AAPL"), side, Decimal(qty), **kw
    )
