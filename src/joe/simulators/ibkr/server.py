"""`IBKRSimulator`: a TWS/Gateway socket server (server version 178, or 157) on loopback.

It owns the price book, the order book, the fault plan and the live sessions; it records every
client message for assertions. Faults (names for `sim.faults.arm(...)`):

- ``reject_next`` (code=201, reason=..., order_type=...): the next placeOrder (of that order type, e.g.
  ``STP``, when given) is rejected with an error message.
- ``delay_fills`` (seconds=...): matching after an order arrives is deferred.
- ``duplicate_exec``: the next live execDetails is sent twice.
- ``overfill`` (qty=1): after an order fills completely, one bogus extra execution is sent for it.
- ``drop_after_execs`` (n=3): the owning socket is dropped right after the n-th live execution;
  the remaining fills still happen at the "broker" and are only visible through reqExecutions.
- ``hist_pacing``: the next historical request gets error 162 (pacing violation).
- ``ignore_next``: the next placeOrder is silently dropped (no acknowledgement of any kind).
- ``place_latency`` (seconds=1.0): TWS is busy: the next placeOrder (and every message after it on
  that socket) is processed `seconds` late — even when the client has gone meanwhile (a request in
  flight when its process died).
- ``correct_exec`` (qty=..., price=...): right after the next live execution, TWS corrects it: the
  same execId up to its last dot with the next suffix, the new quantity/price; the book follows.
- ``commission_first``: the next live execution's commissionReport is sent before its execDetails.
- ``commission_currency`` (currency, default EUR): the next live execution's commission is charged in
  that currency (an account whose base currency is not the stock's).
- ``notice_10349``: the next accepted placeOrder is answered, after its acknowledgement, with the
  notice 10349 "TIF set to DAY based on order preset"; the order works on (tif DAY) and fills.
  Use ``skip=n`` to hit a bracket child.
- ``refuse_cancel`` (state=...): the next cancelOrder is refused with 10148 "cannot be cancelled,
  state: <state>" (default: the order's status) and the order stays live.
- ``refuse_modify`` (code=110, message=...): the next modification is refused; the order keeps its
  old values. (A price off the contract's minTick is always refused with 110, new or modify.)
- ``hold_modify`` (seconds=1.0): the next modification of a working order is processed `seconds` late
  while every other message goes on (TWS slow on a revision); it meets the order as it is then (one
  done meanwhile answers 103, as any order id reused).

Execution history: reqExecutions answers only the executions of the current day — on or after
midnight in the TWS login's time zone (`tws_zone`, New York by default) — as TWS does by default
(IB TWS API docs, "Executions and Commissions": the current day's executions; the TWS Trade Log
setting "show trades for" extends it to up to 7 days: `execution_days=7`). reqCompletedOrders keeps
every completed order; secondary sources (wboayue/rust-ibapi#299, the InteractiveTradeR docs) say
real TWS lists the current day's only too — not modelled.

Scripting hooks: `set_price`, `step`, `fill`, `inject_error`, `drop_connections`, `nightly_reset`,
`set_min_tick`, `order_error` (a code on a live order that stays live), `broker_cancel` (the broker
cancels an order, e.g. a protective stop, with 202).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from joe.simulators.common import FaultPlan, FillModel, PriceBook, SimClock
from joe.simulators.ibkr import codec as C
from joe.simulators.ibkr.book import Book, BookEvent, BookOrder, Execution
from joe.simulators.ibkr.codec_orders import WireExec
from joe.simulators.ibkr.market import DEFAULT_UNIVERSE
from joe.simulators.ibkr.requests import PlacedOrder
from joe.simulators.ibkr.session import Session
from joe.simulators.ibkr.sessions import SessionCloses

SUPPORTED_VERSIONS = range(157, 179)


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One recorded client→server message."""

    client_id: int | None
    fields: tuple[str, ...]

    @property
    def msg_id(self) -> int:
        try:
            return int(self.fields[0])
        except (ValueError, IndexError):
            return -1


class IBKRSimulator:
    """A local TWS socket server for the real `ib_async` client.

    `await sim.start()` binds 127.0.0.1 (port 0 = a free port, see `.port`); `await sim.stop()`
    closes every session. All state changes happen on the event loop that started the server.
    """

    def __init__(
        self,
        server_version: int = 178,
        seed: int = 1,
        port: int = 0,
        host: str = "127.0.0.1",
        account: str = "DU1234567",
        universe: tuple[str, ...] = DEFAULT_UNIVERSE,
        clock: Callable[[], datetime] | None = None,
        execution_days: int = 1,
        tws_zone: str = "America/New_York",
    ) -> None:
        if server_version not in SUPPORTED_VERSIONS:
            raise ValueError(f"server_version must be in 157..178, got {server_version}")
        if not 1 <= execution_days <= 7:
            raise ValueError(f"execution_days must be 1..7 (TWS Trade Log setting), got {execution_days}")
        self.execution_days = execution_days
        self.tws_zone = ZoneInfo(tws_zone)
        self.server_version = server_version
        self.seed = seed
        self.host = host
        self._port = port
        self.universe = universe
        # Every timestamp the simulator sends (handshake, executions, currentTime, history's "now")
        # reads this clock: the wall clock by default; `move_clock` (POST /_sim/clock) moves it on.
        self.clock = clock or SimClock()
        self.prices = PriceBook(seed)
        self.book = Book(self.prices, account=account, fill_model=FillModel(), now=self.clock)
        self.session_closes = SessionCloses()  # daily closes of the sessions the clock left
        self.faults = FaultPlan()
        self.messages: list[ClientMessage] = []
        self.placed: list[PlacedOrder] = []
        self.sessions: set[Session] = set()
        self.unknown_symbols: set[str] = {"NOSUCH"}
        self.mirrored: set[str] = set()  # symbols whose history is served upside down (market.mirrored)
        self.accepting = True
        self.connectivity_lost = False  # between an injected 1100 and 1101/1102: no quotes flow
        # The account owner's positions in other contracts (an option or a CFD on a stock Joe trades,
        # which TWS reports with the same `symbol`), by conId: (contract, quantity, average cost).
        self.other_positions: dict[int, tuple[C.SimContract, Decimal, Decimal]] = {}
        self.commission_currencies: dict[str, str] = {}  # execId → currency, where not USD
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._live_execs = 0

    def execution_history_start(self) -> datetime:
        """The oldest moment reqExecutions still reaches: midnight (in `tws_zone`) of the current day,
        or of the day `execution_days - 1` days before it (the TWS Trade Log setting)."""
        local = self.clock().astimezone(self.tws_zone)
        day = local.date() - timedelta(days=self.execution_days - 1)
        return datetime(day.year, day.month, day.day, tzinfo=self.tws_zone)

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for s in list(self.sessions):
            s.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> IBKRSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await session.run()
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    def forget(self, session: Session) -> None:
        self.sessions.discard(session)

    # -- bookkeeping used by sessions ---------------------------------------------------------------

    def record(self, client_id: int | None, fields: list[str]) -> None:
        self.messages.append(ClientMessage(client_id, tuple(fields)))

    def next_order_id(self) -> int:
        return self.book.max_order_id + 1

    def session_for(self, client_id: int) -> Session | None:
        for s in self.sessions:
            if s.client_id == client_id and not s.closed:
                return s
        return None

    def client_messages(self, msg_id: int) -> list[ClientMessage]:
        return [m for m in self.messages if m.msg_id == msg_id]

    # -- order event routing (faults apply here) ----------------------------------------------------

    def dispatch(self, events: list[BookEvent]) -> None:
        """Send each book event to the session that owns the order (lost if it is disconnected)."""
        for ev in events:
            s = self.session_for(ev.order.client_id)
            if ev.kind == "status":
                if s is not None:
                    s.send_order_state(ev.order)
                continue
            assert ev.execution is not None
            if s is not None:
                self._send_fill(s, ev.order, ev.execution)
            for other in list(self.sessions):
                other.push_position(ev.order.sim.symbol)
                other.push_account_changes()

    def _send_fill(self, s: Session, bo: BookOrder, ex: Execution) -> None:
        # Events are dispatched after matching, so judge "final" by this execution, not the order now.
        final = ex.wire.cum_qty >= bo.sim.quantity
        dup = self.faults.take("duplicate_exec") is not None
        commission_first = self.faults.take("commission_first") is not None
        charged_in = self.faults.take("commission_currency")  # e.g. the account's base currency
        currency = str(charged_in.get("currency", "EUR")) if charged_in is not None else "USD"
        if charged_in is not None:
            self.commission_currencies[ex.wire.exec_id] = currency  # reqExecutions says it again
        if commission_first:
            s.send(C.commission_report(ex.wire.exec_id, ex.commission, currency))
        s.push_fill(ex, dup)
        s.send(
            C.order_status(
                bo.order_id, "Filled" if final else "Submitted", ex.wire.cum_qty,
                bo.sim.quantity - ex.wire.cum_qty, ex.wire.avg_price, bo.perm_id, bo.placed.parent_id,
                ex.wire.price, bo.client_id,
            )
        )  # fmt: skip
        if final:
            s.push_done_order(bo)
        if not commission_first:
            s.send(C.commission_report(ex.wire.exec_id, ex.commission, currency))
        correction = self.faults.take("correct_exec")
        if correction is not None:
            qty = Decimal(str(correction.get("qty", ex.wire.shares)))
            px = Decimal(str(correction.get("price", ex.wire.price)))
            self.dispatch(self.book.correct(bo, ex, qty, px))
        if final:
            over = self.faults.take("overfill")
            if over is not None:
                bogus = _replace_exec(ex, f"{ex.wire.exec_id}.X", Decimal(str(over.get("qty", 1))))
                s.push_fill(Execution(ex.contract, bogus, Decimal(0)), False)
        self._live_execs += 1
        if self.faults.active("drop_after_execs"):
            params = self.faults.snapshot()["drop_after_execs"]
            if self._live_execs >= int(params.get("n", 3)):
                self.faults.take("drop_after_execs")
                self._live_execs = 0
                s.close()

    def after_order_activity(self, symbol: str) -> None:
        """Match the book now, or later when `delay_fills` is armed."""
        delay = self.faults.take("delay_fills")
        if delay is None:
            self.dispatch(self.book.match(symbol))
            return

        async def later() -> None:
            await asyncio.sleep(float(delay.get("seconds", 0.2)))
            self.dispatch(self.book.match(symbol))

        t = asyncio.get_running_loop().create_task(later())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # -- scripting hooks ----------------------------------------------------------------------------

    def set_cash(self, cash: Decimal | int | str) -> None:
        """Set the account's cash (net liquidation = cash + the positions' value) and push the changed
        account values to every subscribed session, as TWS does when the account moves."""
        self.book.cash = Decimal(str(cash))
        for s in list(self.sessions):
            s.push_account_changes()

    def set_price(self, symbol: str, mid: float | Decimal) -> None:
        """Move a symbol's mid, stream the quote to subscribers and run the order book against it."""
        self.prices.process(symbol).set_mid(float(mid))
        self._price_moved(symbol)

    def move_clock(self, when: datetime) -> datetime:
        """Move the clock forward to `when` (aware UTC; ValueError if before now). Leaving a day
        records every priced symbol's mid as the close of the session left (`sessions.py`), so the
        daily history continues into the new session; working orders (GTC stops) stay working."""
        if not isinstance(self.clock, SimClock):
            raise ValueError("this simulator's clock is not movable (a plain callable was given)")
        old = self.clock()
        if when < old:
            raise ValueError(
                f"the simulator's clock never goes back: it is {old.isoformat()}, asked {when.isoformat()}"
            )
        symbols = dict.fromkeys([*self.universe, *self.prices.symbols])
        mids = [(sym, float(self.prices.quote(sym).mid)) for sym in symbols]
        self.session_closes.leave(old, when, mids)
        return self.clock.move_to(when)

    def step(self, n: int = 1) -> None:
        """Advance every known price process `n` ticks (streams quotes, triggers orders)."""
        for _ in range(n):
            for q in self.prices.step_all():
                self._price_moved(q.symbol)

    def _price_moved(self, symbol: str) -> None:
        for s in list(self.sessions if not self.connectivity_lost else ()):
            for req_id, sym in list(s.mkt_subs.items()):
                if sym == symbol:
                    s.send_quote(req_id, symbol)
        self.dispatch(self.book.match(symbol))

    def set_fill_chunk(self, qty: Decimal | int | None) -> None:
        """Fill at most `qty` per execution (None = whole remaining quantity): partial fills."""
        self.book.fill_model.max_fill_qty = None if qty is None else Decimal(qty)

    def find(self, order_ref: str) -> BookOrder | None:
        """The newest book order with this orderRef."""
        found = [o for o in self.book.orders.values() if o.placed.order_ref == order_ref]
        return max(found, key=lambda o: o.perm_id) if found else None

    def fill(self, order_ref: str, qty: Decimal | int, price: Decimal | float | str | None = None) -> None:
        """Force an execution of a working order (e.g. a partial fill of a resting limit)."""
        bo = self.find(order_ref)
        if bo is None or bo.done:
            raise KeyError(f"no working order with orderRef {order_ref!r}")
        px = Decimal(str(price)) if price is not None else self.prices.quote(bo.sim.symbol).mid
        self.dispatch(self.book.execute(bo, Decimal(qty), px))

    def set_min_tick(self, symbol: str, tick: Decimal | str) -> None:
        """The contract's minTick (reported in contract details, enforced with error 110)."""
        self.book.min_ticks[symbol] = Decimal(str(tick))

    def order_error(self, order_ref: str, code: int, message: str = "") -> None:
        """Send `code` about a live order without changing it (e.g. 201 on a working stop, which
        keeps working and may still fire)."""
        bo = self.find(order_ref)
        if bo is None:
            raise KeyError(f"no order with orderRef {order_ref!r}")
        s = self.session_for(bo.client_id)
        if s is not None:
            text = message or f"Order rejected - reason: simulated {code} on a working order"
            s.send(C.error(self.server_version, bo.order_id, code, text))

    def deactivate(self, order_ref: str, code: int = 201, message: str = "") -> None:
        """The broker stops working an order without cancelling it (IB status "Inactive": received,
        but rejected or held by the system — e.g. a stop refused for a short-sale restriction): `code`
        is sent about it, then its status Inactive; it no longer fills (until cancelled)."""
        bo = self.find(order_ref)
        if bo is None or bo.done:
            raise KeyError(f"no working order with orderRef {order_ref!r}")
        bo.status, bo.active = "Inactive", False
        s = self.session_for(bo.client_id)
        if s is not None:
            text = message or "Order rejected - reason: simulated; the order is Inactive"
            s.send(C.error(self.server_version, bo.order_id, code, text))
            s.send_order_state(bo)

    def broker_cancel(self, order_ref: str, reason: str = "simulated broker cancel") -> None:
        """The broker cancels a working order on its own (e.g. a protective stop): 202 + Cancelled."""
        bo = self.find(order_ref)
        if bo is None or bo.done:
            raise KeyError(f"no working order with orderRef {order_ref!r}")
        self.dispatch(self.book.cancel(bo))
        s = self.session_for(bo.client_id)
        if s is not None:
            s.send(C.error(self.server_version, bo.order_id, 202, f"Order Canceled - reason:{reason}"))

    def inject_error(self, code: int, msg: str = "", req_id: int = -1) -> None:
        """Send an error/notice (1100, 1101, 1102, 2104, 162, ...) to every session."""
        text = msg or {
            1100: "Connectivity between IB and Trader Workstation has been lost.",
            1101: "Connectivity between IB and TWS has been restored- data lost.",
            1102: "Connectivity between IB and TWS has been restored- data maintained.",
            2104: "Market data farm connection is OK:usfarm",
            162: "Historical Market Data Service error message:pacing violation",
        }.get(code, f"simulated error {code}")
        # Like TWS: while IB is unreachable (1100) no market data flows; "restored, data lost" (1101)
        # means every market data subscription is gone and must be requested again; 1102 keeps them.
        if code == 1100:
            self.connectivity_lost = True
        elif code in (1101, 1102):
            self.connectivity_lost = False
        for s in list(self.sessions):
            if code == 1101:
                s.mkt_subs.clear()
            s.send(C.error(self.server_version, req_id, code, text))

    def owner_holds(self, contract: C.SimContract, qty: Decimal | int, avg_cost: Decimal | int = 0) -> None:
        """The account owner holds `qty` of another contract (e.g. an option on a stock Joe trades:
        same `symbol`, its own secType and conId). Reported by reqPositions and pushed as a position
        update to every subscribed session, as TWS does."""
        self.other_positions[contract.con_id] = (contract, Decimal(qty), Decimal(avg_cost))
        for s in list(self.sessions):
            if s.positions_subscribed:
                s.send(C.position(self.book.account, contract, Decimal(qty), Decimal(avg_cost)))

    def drop_connections(self) -> None:
        """Close every client socket (network failure)."""
        for s in list(self.sessions):
            s.close()

    async def nightly_reset(self, seconds: float = 0.5) -> None:
        """Drop everyone and refuse connections for `seconds`, like the nightly TWS/Gateway restart."""
        self.accepting = False
        self.drop_connections()
        await asyncio.sleep(seconds)
        self.accepting = True


def _replace_exec(ex: Execution, exec_id: str, qty: Decimal) -> WireExec:
    return replace(ex.wire, exec_id=exec_id, shares=qty, cum_qty=ex.wire.cum_qty + qty)


async def _serve(
    port: int, server_version: int, seed: int, control_port: int | None = None, execution_days: int = 1,
    clock_start: datetime | None = None,
) -> None:  # fmt: skip
    sim = IBKRSimulator(
        server_version=server_version, seed=seed, port=port, execution_days=execution_days,
        clock=SimClock(clock_start),
    )  # fmt: skip
    await sim.start()
    control = None
    if control_port is not None:
        from joe.simulators.ibkr.control import ControlServer

        control = ControlServer(sim)
        bound = await control.start(control_port)
        print(f"IBKR simulator control port (tests and demos): http://127.0.0.1:{bound}/_sim/", flush=True)
    banner = (
        f"IBKR simulator (TWS API server version {server_version}) listening on 127.0.0.1:{sim.port}; "
        "Ctrl-C stops. To point Joe at it:\n"
        f"  export IBKR_HOST=127.0.0.1\n  export IBKR_PORT={sim.port}\n"
        f"  export IBKR_ACCOUNT={sim.book.account}\n"
        "  JOE_DATA_DIR=data-ibkr .venv/bin/joe run --once --broker ibkr"  # a book per source
    )
    print(banner, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        if control is not None:
            await control.stop()
        await sim.stop()


def run_ibkr_sim(
    port: int = 7497, server_version: int = 178, seed: int = 1, control_port: int | None = None,
    execution_days: int = 1, clock_start: datetime | None = None,
) -> None:  # fmt: skip
    """Blocking entry point for `joe sim ibkr [--port] [--control-port] [--execution-days]
    [--clock-start]`; stops on Ctrl-C. `clock_start`: the instant the clock starts at (default: now)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(port, server_version, seed, control_port, execution_days, clock_start))
