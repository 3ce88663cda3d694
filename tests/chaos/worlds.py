"""The two brokers as the chaos runner sees them: a simulator (the truth), Joe's client to it, the
account owner's hand, price paths, and each simulator's faults armed by name (`scenario.py`).

`World` is what the runner and the invariants need of a broker; `IbkrWorld` and `CapitalWorld` speak
to the real simulators through the same client code a user runs (ib_async on the TWS wire; httpx).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from chaos import timing
from chaos.timeline import Exec
from joe.brokers.base import ExecutionClient
from joe.core.clock import utcnow
from joe.core.events import AuditSink

ZERO = Decimal(0)
IB_CLIENT_ID = 11
IB_OWNER_ID = 77
CAPITAL_SCALE = timing.CAPITAL_SCALE


@dataclass(frozen=True)
class BrokerFill:
    """One execution at the broker, as the broker's own books hold it (its last revision)."""

    fill_id: str  # the identity Joe stores it under
    ref: str  # the orderRef / dealReference it carries ("" for none)
    symbol: str
    signed_qty: Decimal
    joes: bool  # placed by Joe (its client id / one of its deal references)
    commission: Decimal = ZERO


@dataclass(frozen=True)
class RestingStop:
    symbol: str
    ref: str
    signed_qty: Decimal  # the position size it protects (> 0: protects a long)


class World:
    """A broker simulator plus the hands that act on it. Subclasses fill in every method."""

    broker: str
    symbols: tuple[str, ...]
    start_prices: dict[str, Decimal]
    owner_net: dict[str, Decimal]  # the account owner's own trades, signed, by symbol (external to Joe)
    # Of those, the owner's closes of Joe's own deals (signed): they left Joe holding less, so what Joe must
    # protect is the broker's position less only the owner's other trades (chaos seeds 250, 315).
    owner_closed: dict[str, Decimal]

    def owned(self, symbol: str, signed_qty: Decimal) -> None:
        self.owner_net[symbol] = self.owner_net.get(symbol, ZERO) + signed_qty

    def closed_for_joe(self, symbol: str, signed_qty: Decimal) -> None:
        """The owner closed `signed_qty` of Joe's own position (an owner trade that shrank Joe's)."""
        self.owned(symbol, signed_qty)
        self.owner_closed[symbol] = self.owner_closed.get(symbol, ZERO) + signed_qty

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def client(self, audit: AuditSink, data_dir: Path, clock: Any = utcnow) -> ExecutionClient:
        raise NotImplementedError

    async def close_client(self, xc: Any) -> None: ...
    def price(self, symbol: str) -> Decimal:
        raise NotImplementedError

    def set_price(self, symbol: str, price: Decimal) -> None: ...
    async def owner_trade(self, symbol: str, side: str, qty: Decimal) -> None: ...
    async def fault(self, name: str, args: dict[str, Any], ctx: FaultContext) -> bool:
        """Arm or perform fault `name`; False when this world has no such fault."""
        raise NotImplementedError

    def disarm(self) -> None: ...
    def positions(self) -> dict[str, Decimal]:
        raise NotImplementedError

    def fills(self) -> list[BrokerFill]:
        raise NotImplementedError

    def stops(self) -> list[RestingStop]:
        raise NotImplementedError

    def timeline(self) -> list[Exec] | None:
        """Every execution at the broker in the broker's order, corrections as later revisions
        (`chaos.timeline`); None: this broker has no such timeline (no corrections: Capital), its
        reversals are judged by Joe-held positions sampled after each step."""
        return None

    def placements(self) -> Counter[str]:
        """How many broker orders / deals each of Joe's client order ids created."""
        raise NotImplementedError

    def order_requests(self) -> int:
        """How many order requests (place, modify, cancel, close) Joe's connection sent the broker,
        whatever the broker answered: an exit the broker refused (a halted market) was still sent."""
        raise NotImplementedError

    def child_args(self) -> list[str]:
        """What a SIGKILLed Joe process needs to reach this broker (see `kill_child.py`)."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        return []


@dataclass
class FaultContext:
    """What a fault may act on: the signals Joe is trading, by symbol, and their order ids."""

    entry_refs: dict[str, str]  # symbol -> Joe's entry client order id
    stop_refs: dict[str, str]  # symbol -> Joe's stop client order id
    now: datetime


# ---------------------------------------------------------------------------------------- IBKR
class IbkrWorld(World):
    broker = "ibkr"

    def __init__(self, seed: int, server_version: int, symbols: tuple[str, ...]) -> None:
        from joe.simulators.ibkr import IBKRSimulator

        # The Trade Log at 7 days: a scenario on the wall clock that straddles midnight New York would
        # otherwise lose the earlier day's executions on a reconnect (estimated fills, which have their
        # own tests): a scenario's outcome must not depend on the hour the suite runs at.
        self.sim = IBKRSimulator(server_version=server_version, seed=seed, execution_days=7)
        self.symbols = symbols
        self.start_prices = {s: Decimal(100 + 50 * i) for i, s in enumerate(symbols)}
        self.owner_net = {}
        self.owner_closed = {}
        self._owner: Any = None
        self._owner_n = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        await self.sim.start()
        for s, p in self.start_prices.items():
            self.sim.set_price(s, p)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._owner is not None:
            await self._owner.close()
        await self.sim.stop()

    def _ib(self, client_id: int, audit: AuditSink, data_dir: Path | None, clock: Any = utcnow) -> Any:
        from joe.brokers.ibkr.client import IBKRExecutionClient

        return IBKRExecutionClient(
            "127.0.0.1", self.sim.port, client_id, "", "paper", audit,
            data_dir / "ibkr-order-ids.json" if data_dir else None, clock=clock,
            **timing.IBKR,
        )  # fmt: skip

    async def client(self, audit: AuditSink, data_dir: Path, clock: Any = utcnow) -> ExecutionClient:
        # A restarted process reuses its client id once TWS has seen the dead one's socket close.
        for _ in range(100):
            if self.sim.session_for(IB_CLIENT_ID) is None:
                break
            await asyncio.sleep(0.05)
        xc = self._ib(IB_CLIENT_ID, audit, data_dir, clock)
        await xc.connect()
        return xc  # type: ignore[no-any-return]

    async def close_client(self, xc: Any) -> None:
        await xc.close()

    def price(self, symbol: str) -> Decimal:
        return Decimal(str(self.sim.prices.quote(symbol).mid))

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.sim.set_price(symbol, price)

    async def owner_trade(self, symbol: str, side: str, qty: Decimal) -> None:
        from joe.core.events import NullAudit
        from joe.core.ids import client_order_id
        from joe.core.models import OrderIntent, OrderLeg, Side

        if self._owner is None:
            self._owner = self._ib(IB_OWNER_ID, NullAudit(), None)
            await self._owner.connect()
        self._owner_n += 1
        before = self.positions().get(symbol, ZERO)
        sign = 1 if side == "BUY" else -1
        it = OrderIntent(
            client_order_id("owner", str(self._owner_n)), "owner", OrderLeg.ENTRY, symbol, Side(side), qty
        )
        await self._owner.submit([it])
        for _ in range(100):  # the owner's market order fills at once
            if self.positions().get(symbol, ZERO) == before + sign * qty:
                break
            await asyncio.sleep(0.02)
        self.owned(symbol, self.positions().get(symbol, ZERO) - before)

    async def fault(self, name: str, args: dict[str, Any], ctx: FaultContext) -> bool:
        f, sim = self.sim.faults, self.sim
        if name == "disconnect_before_submit":
            sim.drop_connections()
        elif name == "disconnect_after_submit":
            f.arm("drop_after_execs", n=1)
        elif name == "lost_before_ack":
            f.arm("ignore_next")
        elif name == "slow_ack":
            f.arm("place_latency", seconds=0.4)
        elif name in ("duplicate_exec", "commission_first"):
            f.arm(name)
        elif name == "correct_exec":
            f.arm("correct_exec", qty=1)
        elif name == "delay_fills":
            f.arm("delay_fills", seconds=0.3)
        elif name == "partial_then_cancel":
            sim.set_fill_chunk(1)  # the next fills come one unit at a time (the runner cancels the rest)
        elif name == "connectivity_1100":
            sim.inject_error(1100)
            await asyncio.sleep(0.2)
            sim.inject_error(int(args.get("restore", 1102)))
        elif name == "nightly_reset":
            await sim.nightly_reset(0.3)
        elif name == "broker_cancels_stop":
            for ref in ctx.stop_refs.values():
                bo = sim.find(ref)
                if bo is not None and not bo.done:
                    sim.broker_cancel(ref)
                    break
        elif name == "reject_next":
            f.arm("reject_next", code=201, reason="simulated margin reject")
        elif name == "refuse_cancel":
            f.arm("refuse_cancel")
        else:
            return False
        return True

    def disarm(self) -> None:
        self.sim.faults.disarm()
        self.sim.set_fill_chunk(None)
        self.sim.connectivity_lost = False

    def positions(self) -> dict[str, Decimal]:
        return {s: p.qty for s, p in self.sim.book.positions.items() if p.qty != 0}

    def fills(self) -> list[BrokerFill]:
        from joe.brokers.ibkr.translate import split_exec_id  # the identity Joe stores a fill under

        last: dict[str, Any] = {}
        for ex in self.sim.book.executions:  # a correction replaces its original (a higher revision)
            fid, _rev = split_exec_id(ex.wire.exec_id)
            last[fid] = ex
        out = []
        for fid, ex in last.items():
            bo = next((o for o in self.sim.book.orders.values() if o.order_id == ex.wire.order_id
                       and o.client_id == ex.wire.client_id), None)  # fmt: skip
            joes = bo is not None and bo.client_id == IB_CLIENT_ID
            sign = 1 if ex.wire.side in ("BOT", "BUY") else -1
            out.append(BrokerFill(
                fid, ex.wire.order_ref, ex.contract.symbol, sign * ex.wire.shares, joes, ex.commission
            ))  # fmt: skip
        return out

    def timeline(self) -> list[Exec]:
        """`sim.book.executions` in order: `Book.execute` appends each new execution, `Book.correct`
        appends a correction as the next revision of the same execId base (the original stays)."""
        from joe.brokers.ibkr.translate import split_exec_id

        out, seen = [], set()
        for ex in self.sim.book.executions:
            fid, _rev = split_exec_id(ex.wire.exec_id)
            sign = 1 if ex.wire.side in ("BOT", "BUY") else -1
            out.append(Exec(fid, ex.contract.symbol, sign * ex.wire.shares, ex.wire.client_id == IB_CLIENT_ID,
                            correction=fid in seen, ref=ex.wire.order_ref))  # fmt: skip
            seen.add(fid)
        return out

    def stops(self) -> list[RestingStop]:
        out = []
        for bo in self.sim.book.orders.values():
            if bo.client_id != IB_CLIENT_ID or bo.done or bo.placed.order_type not in ("STP", "STP LMT"):
                continue
            sign = -1 if bo.placed.action == "BUY" else 1  # a sell stop protects a long
            out.append(RestingStop(bo.sim.symbol, bo.placed.order_ref, sign * bo.sim.remaining))
        return out

    def placements(self) -> Counter[str]:
        return Counter(
            bo.placed.order_ref for bo in self.sim.book.orders.values() if bo.client_id == IB_CLIENT_ID
        )

    def order_requests(self) -> int:
        from joe.simulators.ibkr.control import ORDER_MESSAGES

        return sum(1 for m in self.sim.messages if m.client_id == IB_CLIENT_ID and m.fields
                   and m.fields[0] in {str(k) for k in ORDER_MESSAGES})  # fmt: skip

    def child_args(self) -> list[str]:
        return ["ibkr", str(self.sim.port), str(IB_CLIENT_ID)]


# ------------------------------------------------------------------------------------- Capital
class CapitalWorld(World):
    broker = "capital"

    def __init__(self, seed: int, hedging: bool, symbols: tuple[str, ...]) -> None:
        from joe.simulators.capital import CapitalSimulator, SimLimits
        from joe.simulators.common import SimClock

        # Timestamps follow the wall clock (Joe's clock reads it too: a broker clock months away is
        # the clock-skew fault's business), prices never step by themselves (one step an hour): they
        # move only when the scenario moves them.
        self.sim = CapitalSimulator(
            seed=seed, limits=SimLimits().scaled(CAPITAL_SCALE), tick_s=3600.0, clock=SimClock()
        )
        self.hedging = hedging
        self.symbols = symbols
        self.start_prices: dict[str, Decimal] = {}
        self.owner_net = {}
        self.owner_closed = {}

    async def start(self) -> None:
        await self.sim.start()
        self.sim.set_hedging(self.hedging)
        self.start_prices = {s: self.price(s) for s in self.symbols}

    async def stop(self) -> None:
        await self.sim.stop()

    async def client(self, audit: AuditSink, data_dir: Path, clock: Any = utcnow) -> ExecutionClient:
        from joe.brokers.capital import CapitalClient, Credentials, Limits
        from joe.brokers.capital.client import CapitalExecutionClient

        login = self.sim.login
        http = CapitalClient(
            self.sim.url, Credentials(login.api_key, login.identifier, login.password), audit=audit,
            limits=Limits().scaled(CAPITAL_SCALE), **timing.CAPITAL_HTTP,
        )  # fmt: skip
        await http.open()
        xc = CapitalExecutionClient(http, audit=audit, clock=clock, **timing.CAPITAL_XC)
        xc.watch(0.1)  # its poller reports stops and targets that trade
        return xc

    async def close_client(self, xc: Any) -> None:
        w = xc._watcher
        if w is not None:
            r = w.stop()
            if asyncio.iscoroutine(r):
                await r
        await xc.client.close()

    def price(self, symbol: str) -> Decimal:
        bid, ask = self.sim.exchange.quote(symbol)
        return Decimal((bid + ask) / 2)

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.sim.set_mid(symbol, float(price))

    async def owner_trade(self, symbol: str, side: str, qty: Decimal) -> None:
        from joe.simulators.capital.rules import ApiError

        before = self.positions().get(symbol, ZERO)
        with contextlib.suppress(ApiError):  # refused on a halted market: nothing changes
            self.sim.manual_trade(symbol, side, qty)
        self.owned(symbol, self.positions().get(symbol, ZERO) - before)

    async def fault(self, name: str, args: dict[str, Any], ctx: FaultContext) -> bool:
        f = self.sim.faults
        if name == "http_5xx_storm":
            f.arm("http_5xx", int(args.get("count", 2)), status=503, code="error.service.unavailable")
        elif name == "http_429_storm":
            f.arm("http_429", int(args.get("count", 2)))
        elif name == "http_504_html":
            f.arm("http_504_html", method="POST", path="/positions")
        elif name == "session_expiry":
            f.arm("session_invalidate")
        elif name == "confirm_404":
            f.arm("confirm_delay", polls=int(args.get("polls", 3)))
        elif name == "ws_drop":
            f.arm("ws_drop")
        elif name == "stale_quotes":
            f.arm("stale_quotes", epics=list(self.symbols), seconds=2)
        elif name == "executed_but_timed_out":
            f.arm("delay_response", method="POST", path="/positions", seconds=1.0)
        elif name == "latency":
            f.arm("latency", 2, seconds=0.3)
        elif name == "rotate_tokens":
            f.arm("rotate_tokens")
        elif name == "owner_closes_deal":
            refs = set(ctx.entry_refs.values())
            deal = next((p for p in self.sim.account().positions if p.deal_reference in refs), None)
            if deal is not None:
                from joe.simulators.capital.rules import ApiError

                try:
                    self.sim.manual_close(deal.deal_id)
                except ApiError:  # the market is closed (a halt): the owner's close is refused
                    return True
                self.closed_for_joe(deal.epic, -deal.size if deal.direction == "BUY" else deal.size)
        else:
            return False
        return True

    def disarm(self) -> None:
        self.sim.faults.disarm()
        for s in self.symbols:
            self.sim.exchange.status[s] = "TRADEABLE"

    def halt(self, symbol: str, halted: bool) -> None:
        self.sim.exchange.status[symbol] = "CLOSED" if halted else "TRADEABLE"

    def positions(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for p in self.sim.account().positions:
            out[p.epic] = out.get(p.epic, ZERO) + (p.size if p.direction == "BUY" else -p.size)
        return {k: v for k, v in out.items() if v != 0}

    def fills(self) -> list[BrokerFill]:
        from joe.brokers.capital.observe import own_reference

        out = []
        for row in self.sim.account().activity:
            if row["type"] != "POSITION" or row["status"] not in ("ACCEPTED", "EXECUTED"):
                continue
            d = row["details"]
            source = str(row["source"]).upper()
            opening = bool(d.get("workingOrderId")) and source not in ("SL", "TP", "CLOSE_OUT")
            sign = 1 if d["direction"] == "BUY" else -1
            qty = Decimal(str(d["size"])) * (sign if opening else -sign)
            ref = own_reference(d.get("dealReference"))
            fid = f"capital:{row['dealId']}:{row['dateUTC']}:{source}"
            out.append(BrokerFill(fid, ref, row["epic"], qty, bool(ref) or source in ("SL", "TP")))
        return out

    def stops(self) -> list[RestingStop]:
        out = []
        for p in self.sim.account().positions:
            if p.stop_order is not None:
                sign = 1 if p.direction == "BUY" else -1
                out.append(RestingStop(p.epic, p.deal_reference, sign * p.size))
        return out

    def placements(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for r in self.sim.requests:
            body = r.body if isinstance(r.body, dict) else {}
            ref = body.get("dealReference")
            if r.method == "POST" and r.path in ("/positions", "/workingorders") and ref and r.status == 200:
                c[str(ref)] += 1
        return c

    def order_requests(self) -> int:
        return sum(1 for r in self.sim.requests if r.method in ("POST", "PUT", "DELETE")
                   and r.path.startswith(("/positions", "/workingorders")))  # fmt: skip

    def child_args(self) -> list[str]:
        login = self.sim.login
        return ["capital", self.sim.url, login.api_key, login.identifier, login.password]

    def secrets(self) -> list[str]:
        login = self.sim.login
        return [login.api_key, login.password]
