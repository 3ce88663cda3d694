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
from market_clock import sim_clock

D = Decimal


@pytest.fixture
def ctx(tmp_path: Path) -> SafetyContext:
    store = open_store(data_dir=tmp_path)
    return SafetyContext(store, AuditLog(tmp_path / "audit", fsync=False), tmp_path)


@pytest.fixture
async def capital() -> AsyncIterator[tuple[CapitalSimulator, CapitalExecutor]]:
    sim = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02, clock=sim_clock())
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
    sim = IBKRSimulator(server_version=178, seed=7, clock=sim_clock())
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


async def _ibkr_position_with_its_stop(sim: IBKRSimulator, client: IBKRExecutionClient) -> None:
    import asyncio

    sim.set_price("AAPL", 100)
    await client.submit(_bracket("k1", "AAPL", Side.BUY, "50", stop="95", target="110"))
    for _ in range(100):
        if {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {"AAPL": D(50)}:
            break
        await asyncio.sleep(0.05)
    assert _stops(sim) == [(D(50), D(95))]


def _stops(sim: IBKRSimulator) -> list[tuple[D, D]]:
    working = sim.book.working()
    return [(bo.sim.quantity, bo.sim.stop_price) for bo in working if bo.placed.order_type == "STP"]


async def test_a_close_the_broker_keeps_rejecting_leaves_the_position_its_stop(
    ibkr: tuple[IBKRSimulator, IBKRExecutionClient], ctx: SafetyContext
) -> None:
    """#11 review: step 3 cancelled every order left after the closes — also the protective stop of a
    position whose close the broker had just rejected, leaving it naked at the broker. Now an
    order is cancelled only once its instrument is flat; the report says what is left."""
    sim, client = ibkr
    await _ibkr_position_with_its_stop(sim, client)
    sim.faults.arm("reject_next", -1, order_type="MKT")  # every close refused (the market order)

    venue = ClientVenue(client)
    (report,) = await flatten(ctx, [venue], reason="get out", by="test", attempts=2, pause_s=0.2)

    assert not report.flat and report.attempts == 2
    assert report.left_positions == [{"symbol": "AAPL", "quantity": "50"}]
    # The truth at the broker: the position is still there, and so is its stop.
    assert {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {"AAPL": D(50)}
    assert _stops(sim) == [(D(50), D(95))]
    assert ctx.states.current().state is TradingState.HALTED

    # The broker takes orders again: a second flatten closes it, and only then cancels its orders.
    sim.faults.disarm("reject_next")
    (again,) = await flatten(ctx, [ClientVenue(client)], reason="again", by="test", pause_s=0.3)
    assert again.flat, again.to_dict()
    assert {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {}
    assert sim.book.working() == []


async def test_one_rejected_close_is_retried_within_the_attempts(
    ibkr: tuple[IBKRSimulator, IBKRExecutionClient], ctx: SafetyContext
) -> None:
    sim, client = ibkr
    await _ibkr_position_with_its_stop(sim, client)
    sim.faults.arm("reject_next", 1, order_type="MKT")  # the first close refused, the retry accepted

    venue = ClientVenue(client)
    (report,) = await flatten(ctx, [venue], reason="get out", by="test", attempts=3, pause_s=0.3)

    assert report.flat, report.to_dict()
    assert report.attempts >= 2  # (IBKR rejects after the send: the next snapshot still holds it)
    assert {s: p.qty for s, p in sim.book.positions.items() if p.qty} == {}
    assert sim.book.working() == []
