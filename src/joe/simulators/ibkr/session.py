"""One client connection to the simulated TWS: handshake, request handlers, and message sending.

The session is deliberately thin: it parses a request, asks the simulator's book/market for the
answer and writes the encoded messages. Order consequences (status, fills) are routed back through
`IBKRSimulator.dispatch` so that faults apply in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from joe.config.endpoints import IBKR_SIMULATOR_FARM
from joe.simulators.ibkr import codec as C
from joe.simulators.ibkr.book import CANCELLED, FILLED, BookOrder, Execution
from joe.simulators.ibkr.codec_orders import completed_order, exec_details, open_order
from joe.simulators.ibkr.market import bars_for_duration, make_bars, mirrored, parse_end, rank
from joe.simulators.ibkr.requests import (
    ReqContract,
    as_int,
    duration_days,
    parse_historical,
    parse_place_order,
)

if TYPE_CHECKING:
    from joe.simulators.ibkr.server import IBKRSimulator

log = logging.getLogger(__name__)

NO_SECDEF = "No security definition has been found for the request"
TICK_ERROR = 110
TICK_TEXT = "The price does not conform to the minimum price variation for this contract."
NOTICE_10349 = "Order TIF was set to DAY based on order preset."


def account_text(tag: str, val: Decimal) -> str:
    """An account value as TWS writes it: money to the cent, the ``Cushion`` ratio to 6 places (TWS
    sends e.g. ``0.962459``; to the cent every cushion above 0.995 would read as 1.00)."""
    return f"{val:.6f}" if tag == "Cushion" else f"{val:.2f}"


class Session:
    """Server side of one TWS API connection."""

    def __init__(
        self, sim: IBKRSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.sv = sim.server_version
        self.client_id: int | None = None
        self.positions_subscribed = False
        self.account_updates = False
        self.summary_subs: dict[int, set[str]] = {}
        self.mkt_subs: dict[int, str] = {}
        self.closed = False
        self._handlers: dict[int, Callable[[list[str]], None]] = {
            71: self._start_api, 61: self._positions, 5: self._open_orders, 99: self._completed_orders,
            6: self._account_updates, 76: self._account_updates_multi, 7: self._executions,
            8: self._req_ids, 3: self._place_order, 4: self._cancel_order, 1: self._mkt_data,
            16: self._all_open_orders,
            2: self._cancel_mkt_data, 9: self._contract_details, 20: self._historical,
            22: self._scanner, 62: self._account_summary, 63: self._cancel_account_summary,
            49: self._current_time,
        }  # fmt: skip

    # -- transport ----------------------------------------------------------------------------------

    def send(self, fields: list[C.Field]) -> None:
        if self.closed:
            return
        self.writer.write(C.frame(fields))

    def close(self) -> None:
        """Drop the socket (as TWS does on a nightly reset or a network failure)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()

    async def run(self) -> None:
        buf = bytearray()
        try:
            head = await self.reader.readexactly(4)
            if head != b"API\0":
                self.close()
                return
            buf.extend(await self.reader.read(65536))
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(bytes(buf[:4]), "big"):
                chunk = await self.reader.read(65536)
                if not chunk:
                    return
                buf.extend(chunk)
            hello = C.split_frames(buf)[0]
            self.sim.record(None, hello)
            if not self.sim.accepting:
                self.close()
                return
            now = self.sim.clock().strftime("%Y%m%d %H:%M:%S UTC")
            self.send(C.handshake(self.sv, now))
            await self.writer.drain()
            while not self.closed:
                for fields in C.split_frames(buf):
                    if fields and as_int(fields[0], -1) == 3:
                        lag = self.sim.faults.take("place_latency")
                        if lag is not None:  # TWS busy: this and what follows are processed late,
                            await asyncio.sleep(float(lag.get("seconds", 1.0)))  # even if the client is gone
                    self.handle(fields)
                await self.writer.drain()
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                buf.extend(chunk)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.close()
            self.sim.forget(self)

    def handle(self, fields: list[str]) -> None:
        """Dispatch one client message (recorded first, so tests can assert on it)."""
        if self.closed or not fields:
            return
        self.sim.record(self.client_id, fields)
        handler = self._handlers.get(as_int(fields[0], -1))
        if handler is not None:
            handler(fields)

    # -- handshake and start-up sync -----------------------------------------------------------------

    def _start_api(self, f: list[str]) -> None:
        cid = as_int(f[2])
        if any(s is not self and s.client_id == cid and not s.closed for s in self.sim.sessions):
            msg = f"Unable to connect as the client id is already in use: {cid}"
            self.send(C.error(self.sv, -1, 326, msg))
            self.close()
            return
        self.client_id = cid
        self.send(C.managed_accounts([self.sim.book.account]))
        self.send(C.next_valid_id(self.sim.next_order_id()))
        for code, farm in ((2104, "Market data farm connection is OK:usfarm"),
                           (2106, "HMDS data farm connection is OK:ushmds"),
                           (2158, "Sec-def data farm connection is OK:secdefnj"),
                           # the simulator says what it is (joe.config.endpoints: never the port)
                           (2104, f"Market data farm connection is OK:{IBKR_SIMULATOR_FARM}")):  # fmt: skip
            self.send(C.error(self.sv, -1, code, farm))

    def _positions(self, f: list[str]) -> None:
        self.positions_subscribed = True
        book = self.sim.book
        for sym, pos in book.positions.items():
            self.send(C.position(book.account, book.contract(sym), pos.qty, pos.avg_cost))
        for c, qty, avg in self.sim.other_positions.values():
            self.send(C.position(book.account, c, qty, avg))
        self.send(C.position_end())

    def _open_orders(self, f: list[str]) -> None:
        for bo in self.sim.book.working(self.client_id):
            self.send_order_state(bo)
        self.send(C.open_order_end())

    def _all_open_orders(self, f: list[str]) -> None:
        """reqAllOpenOrders: the working orders of every client (TWS answers openOrder + orderStatus)."""
        for bo in self.sim.book.working():
            self.send_order_state(bo)
        self.send(C.open_order_end())

    def _completed_orders(self, f: list[str]) -> None:
        book = self.sim.book
        stamp = self.sim.clock().strftime("%Y%m%d %H:%M:%S UTC")
        for bo in book.orders.values():
            if bo.done and bo.client_id == self.client_id:
                c = book.contract(bo.sim.symbol)
                self.send(completed_order(self.sv, c, bo.wire(book.account), bo.status, stamp))
        self.send(C.completed_orders_end())

    def _account_updates(self, f: list[str]) -> None:
        self.account_updates = f[2] == "1"
        if self.account_updates:
            self.push_account_values()
            self.send(C.account_download_end(self.sim.book.account))

    def push_account_values(self) -> None:
        """Account values + portfolio (TWS pushes changes to an active reqAccountUpdates subscription)."""
        book = self.sim.book
        for key, val in book.account_values().items():
            self.send(C.account_value(key, account_text(key, val), "USD", book.account))
        for sym, pos in book.positions.items():
            if pos.qty:
                px = book.prices.quote(sym).mid
                upnl = (px - pos.avg_cost) * pos.qty
                c = book.contract(sym)
                self.send(C.portfolio_value(c, pos.qty, px, pos.avg_cost, upnl, book.account))
        self.send(C.account_time(self.sim.clock().strftime("%H:%M")))

    def _account_updates_multi(self, f: list[str]) -> None:
        req_id, book = as_int(f[2]), self.sim.book
        for key, val in book.account_values().items():
            self.send(C.account_update_multi(req_id, book.account, key, account_text(key, val), "USD"))
        self.send(C.account_update_multi_end(req_id))

    def _executions(self, f: list[str]) -> None:
        """reqExecutions: the executions TWS still holds — those on or after `IBKRSimulator.
        execution_history_start` (the current day by default; older ones are gone from the API)."""
        req_id, client_filter = as_int(f[2]), as_int(f[3])
        start = self.sim.execution_history_start()
        for ex in self.sim.book.executions:
            if client_filter and ex.wire.client_id != client_filter:
                continue
            if ex.at < start:
                continue
            self.send(exec_details(self.sv, req_id, ex.contract, ex.wire))
            currency = self.sim.commission_currencies.get(ex.wire.exec_id, "USD")
            self.send(C.commission_report(ex.wire.exec_id, ex.commission, currency))
        self.send(C.exec_details_end(req_id))

    def _cancel_account_summary(self, f: list[str]) -> None:
        self.summary_subs.pop(as_int(f[2]), None)

    def push_account_changes(self) -> None:
        """After a fill: refreshed account values/summary to active subscriptions (TWS does this on a
        3-minute cycle; the simulator does it at once so tests see the effect of their fills)."""
        if self.account_updates:
            self.push_account_values()
        for req_id, tags in self.summary_subs.items():
            self.push_account_summary(req_id, tags)

    def _req_ids(self, f: list[str]) -> None:
        self.send(C.next_valid_id(self.sim.next_order_id()))

    def _current_time(self, f: list[str]) -> None:
        self.send(C.current_time(int(self.sim.clock().timestamp())))

    def _account_summary(self, f: list[str]) -> None:
        req_id = as_int(f[2])
        tags = {t for t in f[4].split(",") if t} if len(f) > 4 else set()
        self.summary_subs[req_id] = tags
        self.push_account_summary(req_id, tags)
        self.send(C.account_summary_end(req_id))

    def push_account_summary(self, req_id: int, tags: set[str]) -> None:
        book = self.sim.book
        vals = book.account_values()
        for tag, val in vals.items():
            if not tags or tag in tags:
                self.send(C.account_summary(req_id, book.account, tag, account_text(tag, val), "USD"))
        if not tags or "AccountType" in tags:
            self.send(C.account_summary(req_id, book.account, "AccountType", "INDIVIDUAL", ""))

    # -- orders -------------------------------------------------------------------------------------

    def send_order_state(self, bo: BookOrder) -> None:
        """openOrder + orderStatus for one order (as on reqOpenOrders or a status change)."""
        book = self.sim.book
        c = book.contract(bo.sim.symbol)
        self.send(open_order(self.sv, c, bo.wire(book.account), bo.status))
        remaining = bo.sim.remaining if bo.status != CANCELLED else Decimal(0)
        self.send(
            C.order_status(
                bo.order_id,
                bo.status,
                bo.sim.filled,
                remaining,
                bo.avg_price,
                bo.perm_id,
                bo.placed.parent_id,
                bo.last_price,
                bo.client_id,
            )
        )

    def _place_order(self, f: list[str], *, held: bool = False) -> None:
        assert self.client_id is not None
        p = parse_place_order(f, self.sv)
        book = self.sim.book
        existing = book.get(self.client_id, p.order_id)
        if not held and not p.what_if and existing is not None and not existing.done:
            hold = self.sim.faults.take("hold_modify")
            if hold is not None:  # this revision lands late; other messages go on meanwhile
                loop = asyncio.get_running_loop()
                loop.call_later(float(hold.get("seconds", 1.0)), self._place_held, f)
                return
        self.sim.placed.append(p)
        if p.what_if:
            st = book.what_if(p)
            wire = book.place_preview(self.client_id, p)
            self.send(open_order(self.sv, book.contract(p.contract.symbol), wire, "PreSubmitted", st))
            return
        if existing is not None and not existing.done:
            refused = self.sim.faults.take("refuse_modify")
            off = book.off_tick(p)
            if refused is not None or off is not None:
                # The revision is refused; the order keeps working with its previous values.
                code = int(refused.get("code", TICK_ERROR)) if refused else TICK_ERROR
                text = str(refused.get("message", TICK_TEXT)) if refused else f"{TICK_TEXT} ({off})"
                self.send(C.error(self.sv, p.order_id, code, text))
                return
            self.sim.dispatch(book.modify(existing, p))
            self.sim.after_order_activity(p.contract.symbol)
            return
        if existing is not None or p.order_id <= 0:
            self.send(C.error(self.sv, p.order_id, 103, f"Duplicate order id: {p.order_id}"))
            return
        if p.contract.symbol in self.sim.unknown_symbols:
            self.send(C.error(self.sv, p.order_id, 200, NO_SECDEF))
            return
        if p.parent_id and book.get(self.client_id, p.parent_id) is None:
            self.send(C.error(self.sv, p.order_id, 135, f"Can't find order with id ={p.parent_id}"))
            book.max_order_id = max(book.max_order_id, p.order_id)
            return
        off = book.off_tick(p)
        if off is not None:
            self.send(C.error(self.sv, p.order_id, TICK_ERROR, f"{TICK_TEXT} ({off})"))
            book.max_order_id = max(book.max_order_id, p.order_id)
            return
        if self.sim.faults.take("ignore_next") is not None:
            return  # lost on the way: no acknowledgement at all (the client must not assume either way)
        armed = self.sim.faults.snapshot().get("reject_next") or {}
        # `order_type` (e.g. "STP") narrows the fault to orders of that type; others pass untouched.
        only = armed.get("order_type")
        reject = self.sim.faults.take("reject_next") if only in (None, p.order_type) else None
        if reject is not None:
            reason = str(reject.get("reason", "Order rejected - reason: simulated rejection"))
            self.send(C.error(self.sv, p.order_id, int(reject.get("code", 201)), reason, '{"simulated":1}'))
            book.max_order_id = max(book.max_order_id, p.order_id)
            return
        try:
            events = book.place(self.client_id, p)
        except ValueError as exc:
            self.send(C.error(self.sv, p.order_id, 387, f"Unsupported order type: {exc}"))
            return
        notice = self.sim.faults.take("notice_10349")
        if notice is not None:
            bo = book.get(self.client_id, p.order_id)
            assert bo is not None
            bo.placed = replace(bo.placed, tif="DAY")  # the preset wins; the order works on
        self.sim.dispatch(events)
        if notice is not None:
            self.send(C.error(self.sv, p.order_id, 10349, NOTICE_10349))
        self.sim.after_order_activity(p.contract.symbol)

    def _place_held(self, f: list[str]) -> None:
        """A revision `hold_modify` held, processed now (its order may have filled meanwhile)."""
        if not self.closed:
            self._place_order(f, held=True)

    def _cancel_order(self, f: list[str]) -> None:
        order_id = as_int(f[2])
        bo = self.sim.book.get(self.client_id or 0, order_id)
        if bo is None:
            msg = f"OrderId {order_id} that needs to be cancelled is not found."
            self.send(C.error(self.sv, order_id, 10147, msg))
            return
        refused = self.sim.faults.take("refuse_cancel") if not bo.done else None
        if bo.done or refused is not None:
            state = str(refused.get("state", bo.status)) if refused else bo.status
            msg = f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {state}."
            self.send(C.error(self.sv, order_id, 10148, msg))
            return
        self.sim.dispatch(self.sim.book.cancel(bo))
        self.send(C.error(self.sv, order_id, 202, "Order Canceled - reason:"))

    # -- market data --------------------------------------------------------------------------------

    def _mkt_data(self, f: list[str]) -> None:
        req_id, c = as_int(f[2]), ReqContract.at(f, 3)
        i = 15 + (4 if f[15] == "1" else 1)
        snapshot = f[i + 1] == "1" if len(f) > i + 1 else False
        if c.symbol in self.sim.unknown_symbols:
            self.send(C.error(self.sv, req_id, 200, NO_SECDEF))
            return
        self.send(C.market_data_type(req_id, 1))
        if not self.sim.connectivity_lost:  # like TWS: while IB is unreachable (1100) no data flows
            self.send_quote(req_id, c.symbol, with_last=True)
        if snapshot:
            self.send(C.tick_snapshot_end(req_id))
        else:
            self.mkt_subs[req_id] = c.symbol

    def send_quote(self, req_id: int, symbol: str, with_last: bool = False) -> None:
        q = self.sim.prices.quote(symbol)
        self.send(C.tick_price(req_id, 1, q.bid, 100))
        self.send(C.tick_price(req_id, 2, q.ask, 100))
        if with_last:
            self.send(C.tick_price(req_id, 4, q.mid, 100))
            self.send(C.tick_size(req_id, 8, 12345))

    def _cancel_mkt_data(self, f: list[str]) -> None:
        self.mkt_subs.pop(as_int(f[2]), None)

    def _contract_details(self, f: list[str]) -> None:
        req_id, c = as_int(f[2]), ReqContract.at(f, 3)
        if c.symbol in self.sim.unknown_symbols or not c.symbol:
            self.send(C.error(self.sv, req_id, 200, NO_SECDEF))
            return
        self.send(C.contract_details(self.sv, req_id, self.sim.book.contract(c.symbol)))
        self.send(C.contract_details_end(req_id))

    def _historical(self, f: list[str]) -> None:
        h = parse_historical(f)
        pacing = self.sim.faults.take("hist_pacing")
        if pacing is not None:
            msg = "Historical Market Data Service error message:Historical data request pacing violation"
            self.send(C.error(self.sv, h.req_id, 162, msg))
            return
        if h.contract.symbol in self.sim.unknown_symbols:
            self.send(C.error(self.sv, h.req_id, 200, NO_SECDEF))
            return
        end = parse_end(h.end, self.sim.clock())
        n = bars_for_duration(duration_days(h.duration), h.bar_size, end)
        last = float(self.sim.prices.quote(h.contract.symbol).mid)
        bars = None
        if h.bar_size == "1 day":  # across clock moves: the sessions left keep their closes
            bars = self.sim.session_closes.daily_bars(self.sim.seed, h.contract.symbol, last, n, end)
        if bars is None:
            bars = make_bars(self.sim.seed, h.contract.symbol, last, h.bar_size, n, end)
        if h.contract.symbol in self.sim.mirrored:
            bars = mirrored(bars)
        start = bars[0].date if bars else ""
        self.send(C.historical_data(h.req_id, start, end.strftime("%Y%m%d %H:%M:%S"), bars))

    def _scanner(self, f: list[str]) -> None:
        req_id, rows, scan_code = as_int(f[1]), as_int(f[2], 50), f[5]
        symbols = rank(self.sim.seed, list(self.sim.universe), scan_code, rows if rows > 0 else 50)
        self.send(C.scanner_data(req_id, [self.sim.book.contract(s) for s in symbols]))

    # -- pushes from the simulator ------------------------------------------------------------------

    def push_fill(self, ex: Execution, duplicate: bool) -> None:
        msg = exec_details(self.sv, -1, ex.contract, ex.wire)
        self.send(msg)
        if duplicate:
            self.send(msg)

    def push_position(self, symbol: str) -> None:
        if self.positions_subscribed:
            book = self.sim.book
            pos = book.positions.get(symbol)
            if pos is not None:
                self.send(C.position(book.account, book.contract(symbol), pos.qty, pos.avg_cost))

    def push_done_order(self, bo: BookOrder) -> None:
        if bo.status == FILLED:
            c = self.sim.book.contract(bo.sim.symbol)
            self.send(open_order(self.sv, c, bo.wire(self.sim.book.account), FILLED))
