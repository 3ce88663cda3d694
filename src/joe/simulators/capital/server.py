"""REST routes of the Capital.com simulator (aiohttp), with request recording and fault injection."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from joe.simulators.capital.catalog import BY_EPIC, CATALOG, NAV_CHILDREN, NAV_ROOT, sentiment_for
from joe.simulators.capital.rules import LEVERAGE_AVAILABLE, ApiError, check_preferences
from joe.simulators.capital.views import (
    market_details,
    market_summary,
    order_json,
    parse_qdate,
    position_json,
)
from joe.simulators.capital.wire import RecordedRequest, corrupt, fiql_ok
from joe.simulators.common import move_clock_response

if TYPE_CHECKING:
    from joe.simulators.capital.sim import CapitalSimulator

API = "/api/v1"
_NO_AUTH = {("GET", "/time"), ("POST", "/session"), ("GET", "/session/encryptionKey")}
_ORDER_CREATE = {("POST", "/positions"), ("POST", "/workingorders")}
_GATEWAY_HTML = (
    "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway "
    "Time-out</h1></center></body></html>"
)


# The first path segment of every authenticated route, with the methods it answers. Anything else
# under /api/v1 is an unknown path: 404 before the session check, as a router answers it.
_ROUTES: dict[str, frozenset[str]] = {
    "accounts": frozenset({"GET", "PUT", "POST"}),
    "history": frozenset({"GET"}),
    "positions": frozenset({"GET", "POST", "PUT", "DELETE"}),
    "workingorders": frozenset({"GET", "POST", "PUT", "DELETE"}),
    "confirms": frozenset({"GET"}),
    "markets": frozenset({"GET"}),
    "marketnavigation": frozenset({"GET"}),
    "prices": frozenset({"GET"}),
    "clientsentiment": frozenset({"GET"}),
    "watchlists": frozenset({"GET", "POST", "PUT", "DELETE"}),
    "session": frozenset({"GET", "POST", "PUT", "DELETE"}),
    "ping": frozenset({"GET"}),
    "time": frozenset({"GET"}),
}


def _err(status: int, code: str) -> web.Response:
    return web.json_response({"errorCode": code}, status=status)


def route_error(method: str, path: str) -> tuple[int, str] | None:
    """(404, error.not-found.path) for an unknown path, (405, error.method) for a known path asked
    with a method it does not answer; None when the route exists."""
    head = path.strip("/").split("/", 1)[0]
    if head not in _ROUTES:
        return 404, "error.not-found.path"
    if method not in _ROUTES[head]:
        return 405, "error.method"
    return None


class RestApi:
    """Builds the aiohttp application for one `CapitalSimulator`."""

    def __init__(self, sim: CapitalSimulator) -> None:
        self.sim = sim
        self.ex = sim.exchange
        self.gate = sim.gate

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        r = app.router
        r.add_route("*", API + "/{tail:.*}", self.dispatch)
        r.add_get("/connect", self.sim.stream.handler)
        r.add_post("/_sim/faults", self.ctl_arm)
        r.add_delete("/_sim/faults", self.ctl_disarm)
        r.add_get("/_sim/requests", self.ctl_requests)
        r.add_post("/_sim/price", self.ctl_price)
        r.add_post("/_sim/status", self.ctl_status)
        r.add_post("/_sim/account", self.ctl_account)
        r.add_post("/_sim/history", self.ctl_history)
        r.add_post("/_sim/remove_stop", self.ctl_remove_stop)
        r.add_get("/_sim/account", self.ctl_account_values)
        r.add_get("/_sim/clock", self.ctl_clock)
        r.add_post("/_sim/clock", self.ctl_move_clock)
        return app

    # ------------------------------------------------------------------ control endpoints
    async def ctl_arm(self, request: web.Request) -> web.Response:
        b = await request.json()
        self.sim.faults.arm(
            b["name"], int(b.get("count", 1)), skip=int(b.get("skip", 0)), **b.get("params", {})
        )
        return web.json_response({"armed": self.sim.faults.snapshot()})

    async def ctl_disarm(self, request: web.Request) -> web.Response:
        self.sim.faults.disarm(request.query.get("name"))
        return web.json_response({"armed": self.sim.faults.snapshot()})

    async def ctl_requests(self, request: web.Request) -> web.Response:
        rows = [
            {
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "errorCode": r.error_code,
                "fault": r.fault,
            }
            for r in self.sim.requests
        ]
        return web.json_response({"requests": rows})

    async def ctl_price(self, request: web.Request) -> web.Response:
        b = await request.json()
        self.sim.set_mid(b["epic"], float(b["mid"]))
        return web.json_response({"ok": True})

    async def ctl_account(self, request: web.Request) -> web.Response:
        """`{"balance": "25000"}` sets the preferred (or `accountId`) account's deposit."""
        b = await request.json()
        acc = next(
            a
            for a in self.ex.accounts.values()
            if (a.account_id == b["accountId"] if "accountId" in b else a.preferred)
        )
        acc.balance = Decimal(str(b["balance"]))
        return web.json_response({"balance": str(acc.balance)})

    async def ctl_history(self, request: web.Request) -> web.Response:
        """`{"epic": "AAPL", "mirror": true}` serves the epic's seeded history upside down from now on
        (every return negated, still ending where the live prices go on: the market turned); false
        restores it."""
        b = await request.json()
        epic = str(b["epic"])
        if epic not in self.ex.prices:
            return web.json_response({"error": f"unknown epic {epic}"}, status=404)
        if b.get("mirror", True):
            self.sim.history.mirrored.add(epic)
        else:
            self.sim.history.mirrored.discard(epic)
        return web.json_response({"mirrored": sorted(self.sim.history.mirrored)})

    async def ctl_remove_stop(self, request: web.Request) -> web.Response:
        """`{"epic": "GOLD"}`: the owner removes the stop of the epic's positions on the platform."""
        b = await request.json()
        return web.json_response({"dealIds": self.sim.manual_remove_stop(str(b["epic"]))})

    async def ctl_clock(self, request: web.Request) -> web.Response:
        return web.json_response({"now": self.sim.clock().isoformat()})

    async def ctl_move_clock(self, request: web.Request) -> web.Response:
        """`{"to": "<ISO instant>"}` | `{"advance_s": seconds}` moves the clock forward
        (`CapitalSimulator.move_clock`); 400 `{"error": ...}` for a move back or a bad body."""
        return await move_clock_response(request, self.sim.clock, self.sim.move_clock)

    async def ctl_account_values(self, request: web.Request) -> web.Response:
        """The preferred account's money as `GET /accounts` reports it (deposit, balance, available)."""
        acc = next(a for a in self.ex.accounts.values() if a.preferred)
        return web.json_response({k: str(v) for k, v in self.ex.account_balance(acc).items()})

    async def ctl_status(self, request: web.Request) -> web.Response:
        b = await request.json()
        self.ex.status[b["epic"]] = b["status"]
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ the pipeline
    def _fault(self, name: str, method: str, path: str) -> dict[str, Any] | None:
        faults = self.sim.faults
        if not faults.active(name):
            return None
        params = faults.snapshot().get(name, {})
        if params.get("path") and not path.startswith(params["path"]):
            return None
        if params.get("method") and params["method"] != method:
            return None
        return faults.take(name)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(API):
            return await handler(request)  # type: ignore[no-any-return]
        path, method = request.path[len(API) :], request.method
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(
            time.monotonic(),
            method,
            path,
            dict(request.query),
            body,
            {
                "api_key": bool(request.headers.get("X-CAP-API-KEY")),
                "cst": bool(request.headers.get("CST")),
                "xst": bool(request.headers.get("X-SECURITY-TOKEN")),
            },
        )
        self.sim.requests.append(rec)
        try:
            resp = await self._pipeline(request, rec, method, path, body)
        except Exception as exc:  # a simulator bug: answer like a broken gateway, keep it for tests
            rec.extra["exception"] = repr(exc)
            self.sim.internal_errors.append(repr(exc))
            resp = _err(500, "error.internal")
        rec.status = resp.status
        if resp.status >= 400 and isinstance(resp, web.Response) and resp.body is not None:
            try:
                rec.error_code = json.loads(resp.body).get("errorCode", "")  # type: ignore[arg-type]
            except (ValueError, TypeError, AttributeError):
                rec.error_code = ""
        return resp

    def _tokens(self, request: web.Request, method: str, path: str) -> dict[str, str]:
        """The session tokens an answer to this request carries: those of its session when the route
        is authenticated and the session is alive (recorded 4xx answers carry them like a 200)."""
        if (method, path) in _NO_AUTH:
            return {}
        s = self.gate.peek(request.headers.get("CST"), request.headers.get("X-SECURITY-TOKEN"))
        return {} if s is None else {"CST": s.cst, "X-SECURITY-TOKEN": s.xst}

    async def _pipeline(
        self, request: web.Request, rec: RecordedRequest, method: str, path: str, body: Any
    ) -> web.Response:
        resp = await self._answer(request, rec, method, path, body)
        if resp.status >= 400:
            # Every error answer of an authenticated route with a live session carries its tokens,
            # whatever produced it (validation, rate limit, an injected 5xx / 429 / gateway page).
            for k, v in self._tokens(request, method, path).items():
                resp.headers.setdefault(k, v)
        return resp

    async def _answer(
        self, request: web.Request, rec: RecordedRequest, method: str, path: str, body: Any
    ) -> web.Response:
        if (route := route_error(method, path)) is not None:
            return _err(*route)
        if (p := self._fault("latency", method, path)) is not None:
            rec.fault = "latency"
            await asyncio.sleep(float(p.get("seconds", 0.2)))
        for name in ("http_5xx", "http_504_html", "http_429"):
            if (p := self._fault(name, method, path)) is not None:
                rec.fault = name
                if name == "http_504_html":
                    return web.Response(status=504, text=_GATEWAY_HTML, content_type="text/html")
                if name == "http_429":
                    return _err(429, "error.too-many.requests")
                return _err(
                    int(p.get("status", 500)), str(p.get("code", "java.util.concurrent.TimeoutException"))
                )
        if self._fault("rotate_tokens", method, path) is not None:
            rec.fault = "rotate_tokens"
            self.gate.rotate_all()
        if self._fault("session_invalidate", method, path) is not None:
            rec.fault = "session_invalidate"
            self.gate.invalidate_all()
        now = time.monotonic()
        session = None
        try:
            self.gate.check_rate(now, order=(method, path) in _ORDER_CREATE, demo=self.sim.demo)
            if (method, path) not in _NO_AUTH:
                session = self.gate.session_for(
                    request.headers.get("CST"), request.headers.get("X-SECURITY-TOKEN"), now
                )
            status, out, headers = await self.handle(request, method, path, body, session)
        except ApiError as exc:
            return _err(exc.status, exc.code)  # `_pipeline` adds the tokens of a live session
        if (p := self._fault("delay_response", method, path)) is not None:
            rec.fault = "delay_response"
            await asyncio.sleep(float(p.get("seconds", 1.0)))
        if session is not None:
            headers = {"CST": session.cst, "X-SECURITY-TOKEN": session.xst, **headers}
        if (p := self._fault("garbage", method, path)) is not None:
            rec.fault = "garbage"
            return web.Response(
                status=status,
                text=corrupt(out, str(p.get("kind", "invalid_json"))),
                content_type="application/json",
                headers=headers,
            )
        if out is None:
            return web.Response(status=status, headers=headers, content_type="application/json")
        return web.json_response(out, status=status, headers=headers)

    async def dispatch(
        self, request: web.Request
    ) -> web.Response:  # pragma: no cover - routed via middleware
        raise web.HTTPNotFound()

    # ------------------------------------------------------------------ handlers
    async def handle(
        self, request: web.Request, method: str, path: str, body: Any, session: Any
    ) -> tuple[int, Any, dict[str, str]]:
        ex, q = self.ex, dict(request.query)
        acc = ex.accounts[session.account_id] if session else None
        parts = [p for p in path.split("/") if p]
        head = parts[0] if parts else ""
        if (method, path) == ("GET", "/time"):
            return 200, {"serverTime": int(ex.now().timestamp() * 1000)}, {}
        if head == "session":
            return self._session(request, method, parts, body, session)
        if head == "ping" and method == "GET":
            return 200, {"status": "OK"}, {}
        assert acc is not None
        h = getattr(self, f"_{head}", None)
        if h is None:
            raise ApiError(404, "error.not-found.path")
        result: tuple[int, Any, dict[str, str]] = h(acc, method, parts[1:], body, q)
        return result

    def _session(
        self, request: web.Request, method: str, parts: list[str], body: Any, session: Any
    ) -> tuple[int, Any, dict]:
        ex, gate = self.ex, self.gate
        if parts == ["session", "encryptionKey"] and method == "GET":
            gate.check_api_key(request.headers)
            return 200, gate.encryption_key(int(ex.now().timestamp() * 1000)), {}
        if method == "POST":
            gate.check_api_key(request.headers)
            preferred = next(a for a in ex.accounts.values() if a.preferred)
            s = gate.create_session(body, preferred.account_id, time.monotonic())
            return 200, self.sim.login_body(preferred.account_id), {"CST": s.cst, "X-SECURITY-TOKEN": s.xst}
        if method == "GET":
            return (
                200,
                {
                    "clientId": "12345678",
                    "accountId": session.account_id,
                    "timezoneOffset": int(ex.tz_offset.total_seconds() // 3600),
                    "locale": "en",
                    "currency": "USD",
                    "streamEndpoint": self.sim.stream_host,
                },
                {},
            )
        if method == "PUT":
            acc_id = body.get("accountId") if isinstance(body, dict) else None
            if acc_id not in ex.accounts:
                raise ApiError(400, "error.invalid.accountId")
            session.account_id = acc_id
            for a in ex.accounts.values():
                a.preferred = a.account_id == acc_id
            self.sim.stream.drop_session(session.cst)
            return (
                200,
                {
                    "trailingStopsEnabled": True,
                    "dealingEnabled": True,
                    "hasActiveDemoAccounts": True,
                    "hasActiveLiveAccounts": False,
                },
                {},
            )
        if method == "DELETE":
            session.valid = False
            return 200, None, {}
        raise ApiError(405, "error.method")

    def _accounts(self, acc: Any, method: str, rest: list[str], body: Any, q: dict) -> tuple[int, Any, dict]:
        ex = self.ex
        if not rest and method == "GET":
            return (
                200,
                {
                    "accounts": [
                        {
                            "accountId": a.account_id,
                            "accountName": a.name,
                            "status": "ENABLED",
                            "accountType": "CFD",
                            "preferred": a.preferred,
                            "balance": ex.account_balance(a),
                            "currency": a.currency,
                        }
                        for a in ex.accounts.values()
                    ]
                },
                {},
            )
        if rest == ["preferences"] and method == "GET":
            return (
                200,
                {
                    "hedgingMode": acc.hedging,
                    "leverages": {
                        k: {"current": v, "available": list(LEVERAGE_AVAILABLE[k])}
                        for k, v in acc.leverages.items()
                    },
                },
                {},
            )
        if rest == ["preferences"] and method == "PUT":
            leverages, hedging = check_preferences(body)
            acc.leverages.update(leverages)
            if hedging is not None:
                acc.hedging = hedging
            return 200, {"status": "SUCCESS"}, {}
        if rest == ["topUp"] and method == "POST":
            amount = body.get("amount") if isinstance(body, dict) else None
            if not isinstance(amount, int | float) or not -400_000 <= amount <= 400_000:
                raise ApiError(400, "error.invalid.amount")
            acc.balance = min(acc.balance + type(acc.balance)(str(amount)), type(acc.balance)(100_000))
            return 200, {"successful": True}, {}
        raise ApiError(404, "error.not-found.path")

    def _history(self, acc: Any, method: str, rest: list[str], body: Any, q: dict) -> tuple[int, Any, dict]:
        now = self.ex.now()
        if "from" in q or "to" in q:
            lo = parse_qdate(q["from"], "error.invalid.from") if "from" in q else None
            hi = parse_qdate(q["to"], "error.invalid.to") if "to" in q else None
            lo = lo or (hi - timedelta(days=1) if hi else now)
            hi = hi or lo + timedelta(days=1)
            if hi - lo > timedelta(days=1) and rest == ["activity"]:
                raise ApiError(400, "error.invalid.daterange")
        else:
            try:
                period = int(q.get("lastPeriod", "600"))
            except ValueError:
                raise ApiError(400, "error.invalid.lastPeriod") from None
            if not 0 < period <= 86400:
                raise ApiError(400, "error.invalid.lastPeriod")
            # Whole seconds, as the date bounds: a row in the window's first second is in it.
            lo, hi = (now - timedelta(seconds=period)).replace(microsecond=0), now
        key = "dateUTC" if rest == ["activity"] else "dateUtc"
        rows = acc.activity if rest == ["activity"] else acc.transactions
        sel = [r for r in rows if lo <= parse_qdate(r[key][:19], "x").replace() <= hi]
        if rest == ["activity"]:
            if q.get("dealId"):
                sel = [r for r in sel if r["dealId"] == q["dealId"]]
            sel = [r for r in sel if fiql_ok(r, q.get("filter", ""))]
            if q.get("detailed", "false") != "true":
                sel = [{k: v for k, v in r.items() if k != "details"} for r in sel]
            return 200, {"activities": sel}, {}
        if rest == ["transactions"]:
            if q.get("type"):
                sel = [r for r in sel if r["transactionType"] == q["type"]]
            return 200, {"transactions": sel}, {}
        raise ApiError(404, "error.not-found.path")

    def _positions(self, acc: Any, method: str, rest: list[str], body: Any, q: dict) -> tuple[int, Any, dict]:
        ex = self.ex
        if not rest and method == "GET":
            return (
                200,
                {"positions": [position_json(ex, p, acc.currency, self.sim.history) for p in acc.positions]},
                {},
            )
        if not rest and method == "POST":
            return 200, {"dealReference": ex.open_position(acc, body, hide=self._confirm_delay())}, {}
        if len(rest) == 1:
            if method == "GET":
                return (
                    200,
                    position_json(ex, ex.find_position(acc, rest[0]), acc.currency, self.sim.history),
                    {},
                )
            if method == "PUT":
                return 200, {"dealReference": ex.amend_position(acc, rest[0], body or {})}, {}
            if method == "DELETE":
                return 200, {"dealReference": ex.close_position(acc, rest[0])}, {}
        raise ApiError(404, "error.not-found.path")

    def _confirm_delay(self) -> int:
        p = self.sim.faults.take("confirm_delay")
        return 0 if p is None else int(p.get("polls", 2))

    def _workingorders(
        self, acc: Any, method: str, rest: list[str], body: Any, q: dict
    ) -> tuple[int, Any, dict]:
        ex = self.ex
        if not rest and method == "GET":
            return (
                200,
                {"workingOrders": [order_json(ex, o, acc.currency, self.sim.history) for o in acc.orders]},
                {},
            )
        if not rest and method == "POST":
            return 200, {"dealReference": ex.create_order(acc, body, hide=self._confirm_delay())}, {}
        if len(rest) == 1 and method == "PUT":
            return 200, {"dealReference": ex.amend_order(acc, rest[0], body or {})}, {}
        if len(rest) == 1 and method == "DELETE":
            return 200, {"dealReference": ex.delete_order(acc, rest[0])}, {}
        raise ApiError(404, "error.not-found.path")

    def _confirms(self, acc: Any, method: str, rest: list[str], body: Any, q: dict) -> tuple[int, Any, dict]:
        if len(rest) != 1 or method != "GET":
            raise ApiError(404, "error.not-found.path")
        # Fields that do not apply are absent, not null, as in the recorded confirm.
        return 200, {k: v for k, v in self.ex.get_confirm(rest[0]).items() if v is not None}, {}

    def _markets(self, acc: Any, method: str, rest: list[str], body: Any, q: dict) -> tuple[int, Any, dict]:
        ex = self.ex
        if rest:
            return 200, market_details(ex, rest[0], self.sim.history), {}
        if "searchTerm" in q:
            term = q["searchTerm"].strip().lower()
            if not term:
                raise ApiError(400, "error.null.searchTerm")
            hits = [m.epic for m in CATALOG if term in m.epic.lower() or term in m.name.lower()]
            return 200, {"markets": [market_summary(ex, e, self.sim.history) for e in hits]}, {}
        if "epics" in q:
            epics = [e for e in q["epics"].split(",") if e]
            if len(epics) > 50:
                raise ApiError(400, "error.invalid.epics")
            return (
                200,
                {"marketDetails": [market_details(ex, e, self.sim.history) for e in epics if e in BY_EPIC]},
                {},
            )
        return 200, {"markets": [market_summary(ex, m.epic, self.sim.history) for m in CATALOG]}, {}

    def _marketnavigation(
        self, acc: Any, method: str, rest: list[str], body: Any, q: dict
    ) -> tuple[int, Any, dict]:
        if not rest:
            return 200, {"nodes": [{"id": i, "name": n} for i, n in NAV_ROOT]}, {}
        try:
            limit = int(q.get("limit", "500"))
        except ValueError:
            raise ApiError(400, "error.invalid.limit") from None
        if not 1 <= limit <= 500:
            raise ApiError(400, "error.invalid.limit")
        node = rest[0]
        known = {i for i, _ in NAV_ROOT} | {i for kids in NAV_CHILDREN.values() for i, _ in kids}
        if node not in known:
            raise ApiError(404, "error.not-found.nodeId")
        kids = [{"id": i, "name": n} for i, n in NAV_CHILDREN.get(node, [])]
        markets = [market_summary(self.ex, m.epic, self.sim.history) for m in CATALOG if m.node == node][
            :limit
        ]
        # A node of sub-nodes answers without `markets` (recorded); a node of markets with both keys.
        return 200, ({"nodes": kids, "markets": markets} if markets else {"nodes": kids}), {}

    def _prices(self, acc: Any, method: str, rest: list[str], body: Any, q: dict) -> tuple[int, Any, dict]:
        if len(rest) != 1:
            raise ApiError(404, "error.not-found.path")
        return 200, self.sim.history.prices(rest[0], q), {}

    def _clientsentiment(
        self, acc: Any, method: str, rest: list[str], body: Any, q: dict
    ) -> tuple[int, Any, dict]:
        def one(epic: str) -> dict[str, Any]:
            if epic not in BY_EPIC:
                raise ApiError(404, "error.not-found.epic")
            lo, sh = sentiment_for(self.ex.seed, epic)
            return {"marketId": epic, "longPositionPercentage": lo, "shortPositionPercentage": sh}

        if rest:
            return 200, one(rest[0]), {}
        # An unknown id fails the whole request (recorded: `marketIds=NOTFOUND` → 404 error.not-found.epic).
        ids = [e for e in q.get("marketIds", "").split(",") if e]
        if not ids:
            raise ApiError(400, "error.null.marketIds")
        return 200, {"clientSentiments": [one(e) for e in ids]}, {}

    def _watchlists(
        self, acc: Any, method: str, rest: list[str], body: Any, q: dict
    ) -> tuple[int, Any, dict]:
        return self.sim.watchlists.handle(method, rest, body)
