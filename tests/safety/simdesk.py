"""A live desk at each simulator for the safety suite's end-to-end tests.

The same pieces a live process wires (`joe.safety.broker_safety.BrokerSafety` around the
`OrderManager`, the broker's real execution client over its wire protocol, the audit log the
clients write to), against an in-process simulator. The simulator's state is the truth the tests
compare against: `positions()`, `stops()`, `entries()` read it directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from joe.brokers.capital import CapitalClient, Credentials, Limits
from joe.brokers.capital.client import CapitalExecutionClient
from joe.brokers.ibkr import IBKRExecutionClient
from joe.config.schema import SafetyConfig
from joe.core.ids import client_order_id
from joe.core.models import OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import OrderState
from joe.execution.order_manager import OrderManager
from joe.safety.broker_safety import BrokerSafety
from joe.safety.control import SafetyContext
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.ibkr import IBKRSimulator
from market_clock import sim_clock

D = Decimal
KINDS = ["ibkr", "capital"]
SYMBOL = {"ibkr": "AAPL", "capital": "GOLD"}


async def until(pred: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def bracket(
    sig: str, symbol: str, side: Side, qty: str, stop: D, target: D, limit: D | None = None
) -> list[OrderIntent]:
    """Entry (market, or limit at `limit`), its protective stop and its target, as a live run sends."""
    q, exit_side = D(qty), side.opposite
    kind = OrderType.LIMIT if limit is not None else OrderType.MARKET
    return [
        OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, symbol, side, q,
                    order_type=kind, limit_price=limit, stop_loss=stop, take_profit=target),
        OrderIntent(client_order_id(sig, "stop"), sig, OrderLeg.STOP_LOSS, symbol, exit_side, q,
                    order_type=OrderType.STOP, stop_price=stop, reduce_only=True),
        OrderIntent(client_order_id(sig, "target"), sig, OrderLeg.TAKE_PROFIT, symbol, exit_side, q,
                    order_type=OrderType.LIMIT, limit_price=target, reduce_only=True),
    ]  # fmt: skip


@dataclass
class Desk:
    kind: str
    sim: Any
    om: OrderManager
    safety: BrokerSafety
    ctx: SafetyContext
    client: Any

    # -- the broker's truth -----------------------------------------------------------------------
    def mid(self, symbol: str) -> D:
        if self.kind == "ibkr":
            return D(str(self.sim.prices.quote(symbol).mid))
        bid, ask = self.sim.exchange.quote(symbol)
        return D(str((bid + ask) / 2))

    def positions(self) -> dict[str, D]:
        """Net position per symbol at the broker (flat symbols left out)."""
        if self.kind == "ibkr":
            return {s: p.qty for s, p in self.sim.book.positions.items() if p.qty}
        out: dict[str, D] = {}
        for p in self.sim.account().positions:
            out[p.epic] = out.get(p.epic, D(0)) + (p.size if p.direction == "BUY" else -p.size)
        return {s: q for s, q in out.items() if q}

    def stops(self, symbol: str) -> list[tuple[D, D]]:
        """(quantity, stop price) of every protective stop resting at the broker on `symbol`."""
        if self.kind == "ibkr":
            return [
                (bo.sim.quantity, bo.sim.stop_price)
                for bo in self.sim.book.working()
                if bo.sim.symbol == symbol and bo.placed.order_type in ("STP", "TRAIL")
            ]
        return [
            (p.stop_order.quantity, p.stop_order.stop_price)
            for p in self.sim.account().positions
            if p.epic == symbol and p.stop_order is not None
        ]

    def resting_entries(self) -> list[str]:
        """Entry orders working at the broker (IBKR: parent orders; Capital: working orders)."""
        if self.kind == "ibkr":
            return [bo.placed.order_ref for bo in self.sim.book.working() if bo.placed.parent_id == 0
                    and bo.placed.order_type == "LMT" and "entry" in bo.placed.order_ref]  # fmt: skip
        return [o.deal_reference or o.deal_id for o in self.sim.account().orders]

    # -- the owner's / the broker's hand ----------------------------------------------------------
    def cash(self) -> D:
        return D(self.sim.book.cash) if self.kind == "ibkr" else D(self.sim.account().balance)

    async def set_cash(self, cash: D) -> None:
        """The account's cash (IBKR) / deposit (Capital.com): equity falls, margin in use stays. Returns
        once the broker's client reads it (IBKR pushes account values to the subscription)."""
        cash = cash.quantize(D("0.01"))
        if self.kind == "ibkr":
            self.sim.set_cash(cash)
        else:  # REST: the next read is the truth
            self.sim.account().balance = cash
            return
        want = self.equity_at_broker().quantize(D("0.01"))
        for _ in range(250):
            if (await self.client.account()).equity == want:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the client never read equity {want}")

    def equity_at_broker(self) -> D:
        return D(self.sim.book.net_liquidation())

    def hold_prices(self) -> None:
        """Stop the simulated market moving (Capital.com's price pump; IBKR prices move only when set)."""
        if self.kind == "capital":
            self.sim.paused = True

    def set_price(self, symbol: str, mid: D) -> None:
        if self.kind == "ibkr":
            self.sim.set_price(symbol, float(mid))
        else:
            self.sim.set_mid(symbol, float(mid))

    # -- helpers -----------------------------------------------------------------------------------
    def state(self, coid: str) -> OrderState | None:
        o = self.om.order(coid)
        return None if o is None else o.state

    async def open_position(self, sig: str, qty: str | None = None) -> list[OrderIntent]:
        """A filled market entry with its stop (5 % away) and target resting at the broker."""
        sym = SYMBOL[self.kind]
        qty = qty or ("10" if self.kind == "ibkr" else "1")
        mid = self.mid(sym)
        q = D("0.01") if self.kind == "capital" else D(1)
        legs = bracket(sig, sym, Side.BUY, qty, (mid * D("0.95")).quantize(q), (mid * D("1.05")).quantize(q))
        await self.om.submit(legs)
        await until(
            lambda: self.state(legs[1].client_order_id) is OrderState.ACCEPTED, f"{sig}: stop working"
        )
        await until(lambda: self.om.position_of(sig) == D(qty), f"{sig}: entry filled")
        return legs

    async def rest_entry(self, sig: str, qty: str = "1") -> list[OrderIntent]:
        """A limit entry 10 % below the market, resting at the broker, with its bracket."""
        sym = SYMBOL[self.kind]
        q = D("0.01") if self.kind == "capital" else D(1)
        low = (self.mid(sym) * D("0.90")).quantize(q)
        legs = bracket(
            sig, sym, Side.BUY, qty, (low * D("0.95")).quantize(q), (low * D("1.10")).quantize(q), low
        )
        await self.om.submit(legs)
        await until(
            lambda: self.state(legs[0].client_order_id) is OrderState.ACCEPTED, f"{sig}: entry resting"
        )
        return legs


@asynccontextmanager
async def live_desk(
    kind: str,
    ctx: SafetyContext,
    config: SafetyConfig | None = None,
    *,
    watch_s: float = 0.1,
    poll_s: float | None = 0.2,
    sim: Any = None,
) -> AsyncIterator[Desk]:
    """A connected desk at a fresh `kind` simulator (or at `sim`, left running: a rebuilt desk at the
    same broker); the broker clients write to `ctx.audit` (so the breaker hears their wire trouble,
    as in a live process)."""
    config = config or SafetyConfig()
    safety = BrokerSafety(ctx, kind, config)
    own_sim = sim is None
    if kind == "ibkr":
        if sim is None:
            sim = IBKRSimulator(server_version=178, seed=7, clock=sim_clock())
            await sim.start()
            sim.set_price("AAPL", 100)
            sim.set_price("MSFT", 200)
        client = IBKRExecutionClient(
            "127.0.0.1", sim.port, 61, "", "paper", ctx.audit, ctx.data_dir / "ids.json",
            backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0, request_timeout=3.0,
        )  # fmt: skip
        await client.connect()

        async def close() -> None:
            await client.close()
            if own_sim:
                await sim.stop()
    else:
        if sim is None:
            sim = CapitalSimulator(seed=7, limits=SimLimits().scaled(10.0), tick_s=0.02, clock=sim_clock())
            await sim.start()
        creds = Credentials(sim.login.api_key, sim.login.identifier, sim.login.password, False)
        http = CapitalClient(sim.url, creds, audit=ctx.audit, limits=Limits().scaled(10.0), backoff_s=0.01)
        await http.open()
        client = CapitalExecutionClient(
            http, audit=ctx.audit, confirm_interval_s=0.02, confirm_timeout_s=0.6, fill_wait_s=0.5
        )
        client.watch(interval_s=watch_s)

        async def close() -> None:
            await client.close()
            await http.close()
            if own_sim:
                await sim.stop()

    om = safety.order_manager(client, ctx.store, mode="live", confirm_timeout=2.0)
    await om.start()
    safety.enforce(om, poll_s=poll_s)  # as the daemon's desk: a state change, and a poll
    try:
        yield Desk(kind, sim, om, safety, ctx, client)
    finally:
        await safety.close()
        await om.stop()
        await close()
