"""Shadow mode hears the broker's wire trouble and halts where live would (#11 review, point 2).

Before: the circuit breaker was fed only through `BrokerSafety`, which only live builds, so a shadow
run or daemon reading a broker in the middle of a storm of 5xx answers or dropped connections kept
"trading" its shadow book: shadow could not show what live would have halted. Now shadow wires the
same `BrokerHealth` feed (`watch_broker_health`) to the same breaker, and `ShadowPortfolio` reads
the trading state before each signal as `LivePortfolio` does.

Each test runs a simulator with a fault plan, the broker's real clients writing their wire records
to the audit log, and the shadow portfolio as `joe run --once` (shadow) builds it; the simulator's
request log is the truth that nothing was transmitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from joe.audit.log import tail
from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.brokers.capital.marketdata import CapitalMarketData
from joe.brokers.ibkr.factory import create_ibkr
from joe.config.schema import BreakerConfig, ExecutionConfig
from joe.core.models import Direction, Signal
from joe.portfolio.paper import PaperPortfolio
from joe.portfolio.shadow import ShadowPortfolio
from joe.safety.broker_health import BrokerHealth, watch_broker_health
from joe.safety.circuit_breaker import BREAKERS_KEY
from joe.safety.control import SafetyContext
from joe.safety.guards import pre_run_checks
from joe.safety.trading_state import TradingState
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.ibkr import IBKRSimulator
from joe.store import open_store
from market_clock import sim_clock

D = Decimal
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SYMBOL = {"ibkr": "AAPL", "capital": "GOLD"}


@dataclass
class ShadowDesk:
    kind: str
    sim: Any
    shadow: ShadowPortfolio
    health: BrokerHealth

    def mid(self) -> D:
        if self.kind == "ibkr":
            return D(str(self.sim.prices.quote(SYMBOL["ibkr"]).mid))
        bid, ask = self.sim.exchange.quote(SYMBOL["capital"])
        return D(str((bid + ask) / 2))

    def orders_at_broker(self) -> list[Any]:
        """Every order and position the broker holds (shadow must leave it all empty)."""
        if self.kind == "ibkr":
            return list(self.sim.book.working()) + [p for p in self.sim.book.positions.values() if p.qty]
        account = self.sim.account()
        return list(account.orders) + list(account.positions)


@asynccontextmanager
async def shadow_desk(kind: str, ctx: SafetyContext, book_dir: Path) -> AsyncIterator[ShadowDesk]:
    """The shadow side of a run at a fresh `kind` simulator, its breaker fed as the run feeds it."""
    health, unwatch = watch_broker_health(ctx, kind, BreakerConfig())
    book_store = open_store(f"sqlite:///{book_dir / 'twin-shadow.db'}", data_dir=book_dir)
    book = PaperPortfolio.load(book_store, ctx.audit, ExecutionConfig(), broker=kind)
    if kind == "ibkr":
        sim = IBKRSimulator(server_version=178, seed=7, clock=sim_clock())
        await sim.start()
        sim.set_price("AAPL", 100)
        md, client = create_ibkr(audit=ctx.audit, mode="paper", port=sim.port, client_id=62,
                                 order_ids=ctx.data_dir / "ids.json", connect_timeout=2.0)  # fmt: skip
        await client.connect()
        await md.connect()
        market: Any = md

        async def close() -> None:
            await md.close()
            await client.close()
            await sim.stop()
    else:
        sim = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02, clock=sim_clock())
        await sim.start()
        sim.paused = True
        creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password, False)
        http = CapitalClient(sim.url, creds, audit=ctx.audit, limits=Limits().scaled(10.0), backoff_s=0.01)
        await http.open()
        client = CapitalExecutionClient(http, audit=ctx.audit)
        market = CapitalMarketData(http, audit=ctx.audit)

        async def close() -> None:
            await client.close()
            await http.close()
            await sim.stop()

    shadow = ShadowPortfolio(client, market, book, ctx.audit, trading_state=ctx.states)
    try:
        yield ShadowDesk(kind, sim, shadow, health)
    finally:
        unwatch()
        await close()
        book_store.close()


def _signals(kind: str, mid: D, n: int) -> list[Signal]:
    q = D("1") if kind == "capital" else D("10")
    return [
        Signal(f"sh-{i}", SYMBOL[kind], "trend", Direction.LONG, mid, (mid * D("0.9")).quantize(D("0.01")),
               (mid * D("1.2")).quantize(D("0.01")), 0.7, "test", T0, quantity=q)
        for i in range(n)
    ]  # fmt: skip


async def _ibkr_storm(desk: ShadowDesk, ctx: SafetyContext) -> None:
    """Three dropped connections (the fault a TWS restart makes), each reconnected by the client."""
    desk.health.coalesce_s = 0.0  # one client here: every drop is its own outage

    def reconnects() -> int:
        return sum(1 for r in tail(ctx.data_dir / "audit", 5000) if r["event"] == "ibkr.reconnected")

    for i in range(3):
        desk.sim.drop_connections()
        for _ in range(1000):
            if reconnects() > i:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"no reconnect after drop {i + 1}")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["capital", "ibkr"])
async def test_shadow_trips_the_breaker_on_wire_trouble_and_refuses_the_rest(
    kind: str, ctx: SafetyContext, tmp_path: Path
) -> None:
    book_dir = tmp_path / "book"
    book_dir.mkdir()
    async with shadow_desk(kind, ctx, book_dir) as desk:
        # Healthy broker: the first signal becomes a shadow fill.
        first = await desk.shadow.submit(_signals(kind, desk.mid(), 1), T0)
        assert first[0].action == "opened", first
        assert ctx.states.current().state is TradingState.ACTIVE

        # The fault plan: Capital.com answers the next five market reads (the quote shadow fills at)
        # with 503s — five is the default limit; TWS drops the connection three times (the default
        # disconnect limit).
        if kind == "capital":
            desk.sim.faults.arm("http_5xx", 5, status=503, path="/markets", method="GET")
            out = await desk.shadow.submit(_signals(kind, desk.mid(), 7), T0)
        else:
            await _ibkr_storm(desk, ctx)
            out = await desk.shadow.submit(_signals(kind, desk.mid(), 2), T0)

        # The breaker tripped as live's would: HALTED by breaker:<kind>, persisted, audited.
        tripped = ctx.store.get_state(BREAKERS_KEY)[kind]
        assert tripped["state"] == "tripped", tripped
        want = "5 server_error" if kind == "capital" else "3 disconnect"
        assert want in tripped["reason"], tripped
        rec = ctx.states.current()
        assert rec.state is TradingState.HALTED and rec.by == f"breaker:{kind}"
        events = [r["event"] for r in tail(ctx.data_dir / "audit", 5000)]
        assert events.count("safety.breaker_tripped") == 1

        # Every signal after the trip is refused with live's reason, and audited.
        refused = [o for o in out if o.action == "refused"]
        assert refused and out[-1].action == "refused", out
        assert all(f"breaker:{kind}" in o.reason for o in refused)
        i = next(k for k, o in enumerate(out) if o.action == "refused")
        assert all(o.action == "refused" for o in out[i:])
        assert events.count("shadow.entry_refused") == len(refused)

        # The next run's pre-entry check refuses shadow entries, naming the breaker.
        checks = await pre_run_checks(ctx, mode="shadow", broker=kind, verify_chain=False)
        assert not checks.allowed and any(r.startswith("breaker:") for r in checks.reasons), checks
        # Shadow transmitted nothing at any point.
        assert desk.orders_at_broker() == []
