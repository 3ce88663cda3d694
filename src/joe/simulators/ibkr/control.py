"""A loopback HTTP control port for the IBKR simulator run as its own process (`joe sim ibkr --control-port`).

TWS has no such port; it exists so that end-to-end tests and demos can script the simulated market
and read what reached it, as the Capital.com simulator's `/_sim/*` endpoints do:

- `GET  /_sim/requests` — every client message received: `[{"client_id", "msg_id", "name"}]`
  (3 = placeOrder, 4 = cancelOrder: an order-placing request is one of those);
- `GET  /_sim/orders`   — the simulated order book: orderRef, action, type, quantity, prices, status;
- `GET  /_sim/positions` — the account's positions per symbol;
- `POST /_sim/price`    — `{"symbol": "AAPL", "mid": 101.5}` moves a price (orders trigger on it);
- `POST /_sim/faults`   — `{"name", "count", "skip", "params"}` arms a fault (`reject_next`, ...),
  `DELETE /_sim/faults[?name=]` disarms;
- `POST /_sim/account`  — `{"cash": "250000"}` sets the account's cash (subscribers get the new values);
- `POST /_sim/history`  — `{"symbol": "AAPL", "mirror": true}` serves its history upside down (the
  market turned);
- `POST /_sim/cancel`   — `{"order_ref": "joe-..."}` the broker cancels a working order on its own;
- `GET  /_sim/account`  — the account values TWS would report (NetLiquidation, ExcessLiquidity, Cushion...);
- `GET  /_sim/clock`    — `{"now": "<UTC ISO>"}`, the simulator's clock (every timestamp it sends);
- `POST /_sim/clock`    — `{"to": "2026-12-02T15:00:00Z"}` or `{"advance_s": 86400}` moves it forward
  (never back: 400 with the reason); a later day closes the session left and starts a new daily bar,
  working orders (GTC stops, targets) stay working.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from joe.simulators.common import move_clock_response
from joe.simulators.ibkr.requests import parse_place_order

if TYPE_CHECKING:
    from joe.simulators.ibkr.server import IBKRSimulator

ORDER_MESSAGES = {3: "placeOrder", 4: "cancelOrder"}


def _what_if(fields: list[str], server_version: int) -> bool:
    try:
        return parse_place_order(fields, server_version).what_if
    except Exception:
        return False


def _msg_id(fields: tuple[str, ...]) -> int:
    try:
        return int(fields[0])
    except (ValueError, IndexError):
        return -1


class ControlServer:
    """The control port of one `IBKRSimulator` (127.0.0.1 only)."""

    def __init__(self, sim: IBKRSimulator) -> None:
        self.sim = sim
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_sim/requests", self.requests)
        app.router.add_get("/_sim/orders", self.orders)
        app.router.add_get("/_sim/positions", self.positions)
        app.router.add_post("/_sim/price", self.price)
        app.router.add_post("/_sim/faults", self.arm)
        app.router.add_delete("/_sim/faults", self.disarm)
        app.router.add_post("/_sim/account", self.account)
        app.router.add_post("/_sim/history", self.history)
        app.router.add_post("/_sim/cancel", self.cancel)
        app.router.add_get("/_sim/account", self.account_values)
        app.router.add_get("/_sim/clock", self.clock)
        app.router.add_post("/_sim/clock", self.move_clock)
        return app

    async def start(self, port: int) -> int:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def requests(self, request: web.Request) -> web.Response:
        rows: list[dict[str, Any]] = []
        for m in self.sim.messages:
            mid = _msg_id(m.fields)
            name = ORDER_MESSAGES.get(mid, "")
            if mid == 3 and _what_if(list(m.fields), self.sim.server_version):
                name = "whatIf"  # a margin query on the placeOrder message: nothing is placed
            rows.append({"client_id": m.client_id, "msg_id": mid, "name": name})
        return web.json_response({"requests": rows})

    async def orders(self, request: web.Request) -> web.Response:
        rows = []
        for bo in self.sim.book.orders.values():
            p = bo.placed
            rows.append(
                {
                    "order_ref": p.order_ref,
                    "order_id": p.order_id,
                    "parent_id": p.parent_id,
                    "action": p.action,
                    "order_type": p.order_type,
                    "quantity": str(p.quantity),
                    "lmt_price": None if p.lmt_price is None else str(p.lmt_price),
                    "aux_price": None if p.aux_price is None else str(p.aux_price),
                    "status": bo.status,
                    "symbol": bo.sim.symbol,
                    "avg_price": str(bo.avg_price),
                }
            )
        return web.json_response({"orders": rows})

    async def positions(self, request: web.Request) -> web.Response:
        book = self.sim.book
        rows = {sym: str(p.qty) for sym, p in book.positions.items()}
        return web.json_response({"account": book.account, "positions": rows})

    async def arm(self, request: web.Request) -> web.Response:
        """`{"name": "reject_next", "count": -1, "skip": 0, "params": {...}}` arms a fault (see faults.py)."""
        b = await request.json()
        self.sim.faults.arm(
            str(b["name"]), int(b.get("count", 1)), skip=int(b.get("skip", 0)), **b.get("params", {})
        )
        return web.json_response({"armed": self.sim.faults.snapshot()})

    async def disarm(self, request: web.Request) -> web.Response:
        self.sim.faults.disarm(request.query.get("name"))
        return web.json_response({"armed": self.sim.faults.snapshot()})

    async def account(self, request: web.Request) -> web.Response:
        """`{"cash": "250000"}` sets the account's cash (net liquidation = cash + positions' value)."""
        b = await request.json()
        self.sim.set_cash(Decimal(str(b["cash"])))
        return web.json_response({"cash": str(self.sim.book.cash)})

    async def cancel(self, request: web.Request) -> web.Response:
        """`{"order_ref": "joe-...", "reason": "..."}`: the broker (or the owner in TWS) cancels a working
        order on its own, e.g. a protective stop (`IBKRSimulator.broker_cancel`); 404 if none works."""
        b = await request.json()
        try:
            self.sim.broker_cancel(str(b["order_ref"]), reason=str(b.get("reason", "cancelled in TWS")))
        except KeyError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"ok": True})

    async def history(self, request: web.Request) -> web.Response:
        """`{"symbol": "AAPL", "mirror": true}` serves the symbol's history upside down from now on
        (every return negated, ending at the current price: the market turned); false restores it."""
        b = await request.json()
        sym = str(b["symbol"])
        if b.get("mirror", True):
            self.sim.mirrored.add(sym)
        else:
            self.sim.mirrored.discard(sym)
        return web.json_response({"mirrored": sorted(self.sim.mirrored)})

    async def clock(self, request: web.Request) -> web.Response:
        return web.json_response({"now": self.sim.clock().isoformat()})

    async def move_clock(self, request: web.Request) -> web.Response:
        """`{"to": "<ISO instant>"}` | `{"advance_s": seconds}`: the clock moves forward (`move_clock`);
        400 `{"error": ...}` for a move back or a body that says neither."""
        return await move_clock_response(request, self.sim.clock, self.sim.move_clock)

    async def account_values(self, request: web.Request) -> web.Response:
        vals = self.sim.book.account_values()
        return web.json_response({k: str(v) for k, v in vals.items()})

    async def price(self, request: web.Request) -> web.Response:
        b = await request.json()
        self.sim.set_price(str(b["symbol"]), float(b["mid"]))
        return web.json_response({"ok": True})
