"""``kill --flatten`` against both simulators, through the same executor code a user runs: the
simulator's book at the end is the truth (no position, no working order), the state is HALTED and
the next entry is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from joe.audit.log import AuditLog
from joe.audit.redaction import clear_secrets
from joe.brokers.capital import CapitalClient, CapitalExecutor, Credentials, Limits
from joe.brokers.ibkr import IBKRExecutionClient
from joe.core.events import NullAudit
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.safety.control import SafetyContext, entry_allowed, flatten
from joe.safety.trading_state import TradingState
from joe.safety.venues import ClientVenue
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.ibkr import IBKRSimulator
from joe.store import open_store

D = Decimal


@pytest.fixture
def ctx(tmp_path: Path) -> SafetyContext:
    store = open_store(data_dir=tmp_path)
    return SafetyContext(store, AuditLog(tmp_path / "audit", fsync=False), tmp_path)


@pytest.fixture
async def capital() -> AsyncIterator[tuple[CapitalSimulator, CapitalExecutor]]:
    sim = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02)
    await sim.start()
    creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password, False)
    client = CapitalClient(sim.url, creds, audit=NullAudit(), limits=Limits().scaled(10.0), backoff_s=0.01)
    await client.open()
    ex = CapitalExecutor(
        client,
        audit=NullAudit(),
        confirm_interval_s=0.02,
        reconcile_interval_s=0.05,
        reconcile_window_s=2.0,
    )
    await ex.connect()
    try:
        yield sim, ex
    finally:
        await ex.close()
        await client.close()
        await sim.stop()
        clear_secrets()


@pytest.fixture
async def ibkr() -> AsyncIterator[tuple[IBKRSimulator, IBKRExecutionClient]]:
    sim = IBKRSimulator(server_version=178, seed=7)
    await sim.start()
    client = IBKRExecutionClient(
        "127.0.0.1", sim.port, 31, "", "paper", NullAudit(),
        backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0, request_timeout=3.0,
    )  # fmt: skip
    await client.connect()
    try:
        yield sim, client
    finally:
        await client.close()
        await sim.stop()


def _entry(sig: str, symbol: str, side: Side, qty: str, **kw: object) -> OrderIntent:
    return OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, symbol, side, D(qty), **kw)  # type: ignore[arg-type]


async def test_flatten_capital_leaves_no_position_and_no_working_order(
    capital: tuple[CapitalSimulator, CapitalExecutor], ctx: SafetyContext
) -> None:
    sim, ex = capital
    gold_mid = sum(sim.exchange.quote("GOLD")) / 2
    await ex.place(_entry("f1", "GOLD", Side.BUY, "2", stop_loss=gold_mid - 50, take_profit=gold_mid + 50))
    await ex.place(_entry("f2", "EURUSD", Side.SELL, "1000"))
    eur_mid = sum(sim.exchange.quote("EURUSD")) / 2
    await ex.place(
        _entry(
            "f3",
            "EURUSD",
            Side.BUY,
            "500",
            order_type=OrderType.LIMIT,
            limit_price=(eur_mid * D("0.9")).quantize(D("0.0001")),
        )
    )
    acc = next(iter(sim.exchange.accounts.values()))
    assert len(acc.positions) == 2 and len(acc.orders) == 1

    (report,) = await flatten(ctx, [ex], reason="test flatten", by="test", pause_s=0.2)

    assert report.flat, report.to_dict()
    assert all(a.positions == [] and a.orders == [] for a in sim.exchange.accounts.values())
    assert ctx.states.current().state is TradingState.HALTED
    assert entry_allowed(ctx)[0] is False  # the next order is refused


def _bracket(sig: str, symbol: str, side: Side, qty: str, stop: str, target: str) -> list[OrderIntent]:
    exit_side = side.opposite
    q = D(qty)
    return [
        OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, symbol, side, q),
        OrderIntent(
            client_order_id(sig, "stop"), sig, OrderLeg.STOP_LOSS, symbol, exit_side, q,
            order_type=OrderType.STOP, stop_price=D(stop), reduce_only=True,
        ),
        OrderIntent(
            client_order_id(sig, "target"), sig, OrderLeg.TAKE_PROFIT, symbol, exit_side, q,
            order_type=OrderType.LIMIT, limit_price=D(target), reduce_only=True,
        ),
    ]  # fmt: skip


async def test_flatten_ibkr_leaves_no_position_and_no_working_order(
    ibkr: tuple[IBKRSimulator, IBKRExecutionClient], ctx: SafetyContext
) -> None:
    """Through the ExecutionClient protocol the OrderManager drives (IBKRExecutionClient)."""
    import asyncio

    sim, client = ibkr
    sim.set_price("AAPL", 100)
    sim.set_price("MSFT", 200)
    await client.submit(_bracket("i1", "AAPL", Side.BUY, "100", stop="95", target="110"))
    await client.submit(_bracket("i2", "MSFT", Side.SELL, "30", stop="210", target="190"))
    await client.submit(
        [OrderIntent(client_order_id("i3", "entry"), "i3", OrderLeg.ENTRY, "AAPL", Side.BUY, D(10),
                     OrderType.LIMIT, limit_price=D(80))]
    )  # fmt: skip
    for _ in range(100):
        if {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {"AAPL": D(100), "MSFT": D(-30)}:
            break
        await asyncio.sleep(0.05)
    assert len(sim.book.working()) >= 5  # two stops, two targets, one resting entry

    (report,) = await flatten(ctx, [ClientVenue(client)], reason="test flatten", by="test", pause_s=0.3)

    assert report.flat, report.to_dict()
    assert {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {}
    assert sim.book.working() == []
    assert ctx.states.current().state is TradingState.HALTED
