"""Helpers for the order-truth tests: intents with deterministic ids, the adapter, the sim's books."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from joe.brokers.capital import CapitalClient
from joe.brokers.capital.client import CapitalExecutionClient
from joe.core import ids
from joe.core.events import NullAudit
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.reports import Observation
from joe.simulators.capital import CapitalSimulator
from joe.store import Store


def adapter(client: CapitalClient, audit: Any = None, **kw: Any) -> CapitalExecutionClient:
    kw.setdefault("confirm_interval_s", 0.02)
    kw.setdefault("confirm_timeout_s", 0.6)
    kw.setdefault("fill_wait_s", 0.5)
    return CapitalExecutionClient(client, audit=audit or NullAudit(), **kw)


def tick(x: Decimal | float, step: str = "0.01") -> Decimal:
    s = Decimal(step)
    return (Decimal(str(x)) / s).to_integral_value() * s


def entry(
    signal: str, symbol: str, side: Side, qty: str, *, order_type: OrderType = OrderType.MARKET, **kw: Any
) -> OrderIntent:
    return OrderIntent(
        ids.client_order_id(signal, OrderLeg.ENTRY.value),
        signal,
        OrderLeg.ENTRY,
        symbol,
        side,
        Decimal(qty),
        order_type=order_type,
        **kw,
    )


def bracket(
    signal: str, symbol: str, side: Side, qty: str, stop: Decimal, target: Decimal, **kw: Any
) -> list[OrderIntent]:
    """Entry, stop and target of one signal (the linked group `submit` takes)."""
    exit_side = side.opposite
    return [
        entry(signal, symbol, side, qty, **kw),
        OrderIntent(
            ids.client_order_id(signal, OrderLeg.STOP_LOSS.value), signal, OrderLeg.STOP_LOSS, symbol,
            exit_side, Decimal(qty), order_type=OrderType.STOP, stop_price=stop, reduce_only=True,
        ),
        OrderIntent(
            ids.client_order_id(signal, OrderLeg.TAKE_PROFIT.value), signal, OrderLeg.TAKE_PROFIT, symbol,
            exit_side, Decimal(qty), order_type=OrderType.LIMIT, limit_price=target, reduce_only=True,
        ),
    ]  # fmt: skip


def exit_intent(signal: str, symbol: str, side: Side, qty: str) -> OrderIntent:
    return OrderIntent(
        ids.client_order_id(signal, OrderLeg.EXIT.value),
        signal,
        OrderLeg.EXIT,
        symbol,
        side,
        Decimal(qty),
        reduce_only=True,
    )


def drain(xc: CapitalExecutionClient) -> list[Observation]:
    """Every observation queued so far (the stream is a queue; tests read it without waiting)."""
    out: list[Observation] = []
    q = xc._queue
    while not q.empty():
        out.append(q.get_nowait())
    return out


def books(sim: CapitalSimulator, epic: str | None = None) -> list[tuple[str, str, Decimal, str]]:
    """The simulator's positions as (dealId, direction, size, dealReference) — the truth."""
    acc = sim.account()
    return [
        (p.deal_id, p.direction, p.size, p.deal_reference)
        for p in acc.positions
        if epic is None or p.epic == epic
    ]


def posts(sim: CapitalSimulator, path: str = "/positions") -> int:
    return sum(1 for r in sim.requests if r.method == "POST" and r.path == path)


async def settle(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)


def mid(sim: CapitalSimulator, epic: str) -> Decimal:
    bid, ask = sim.exchange.quote(epic)
    return (bid + ask) / 2


def around(sim: CapitalSimulator, epic: str, pct: str, step: str = "0.01") -> tuple[Decimal, Decimal]:
    """(below, above) the mid by `pct` percent, on the tick grid."""
    m = mid(sim, epic)
    d = m * Decimal(pct) / 100
    return tick(m - d, step), tick(m + d, step)


def seq(x: Sequence[Any]) -> list[Any]:
    return list(x)


def held(sim: CapitalSimulator, epic: str = "GOLD") -> Decimal:
    """The net size of `epic` at the simulator (BUY +, SELL -), over every open position."""
    return sum((s if d == "BUY" else -s for _, d, s, _ in books(sim, epic)), Decimal(0))


def outside_changes(store: Store) -> list[tuple[str, Decimal]]:
    """(signal id, quantity) of each outside change the Capital.com live reconciliation booked."""
    items = store.reconcile_items("capital", "live", "outside_change")
    return [(str((i.detail or {})["signal_id"]), i.quantity) for i in items]
