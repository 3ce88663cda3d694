"""The simulator's streaming endpoint (`/connect`, spec §7): subscriptions, quotes, OHLC bars, faults."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from joe.simulators.capital.bars import HA_WARMUP, QuoteBar, bar_start, heikin_ashi
from joe.simulators.capital.catalog import BY_EPIC, RESOLUTION_SECONDS
from joe.simulators.capital.rules import ApiError

if TYPE_CHECKING:
    from joe.simulators.capital.sim import CapitalSimulator

MAX_EPICS = 40


@dataclass
class Conn:
    ws: web.WebSocketResponse
    epics: set[str] = field(default_factory=set)
    ohlc: set[tuple[str, str, str]] = field(default_factory=set)
    cst: str = ""
    last_ping: float = field(default_factory=time.monotonic)


class StreamHub:
    """All WebSocket connections; `pump()` is called by the simulator after each price step."""

    def __init__(self, sim: CapitalSimulator, *, idle_s: float = 600.0) -> None:
        self.sim = sim
        self.idle_s = idle_s
        self.conns: list[Conn] = []
        self.stale_until: dict[str, float] = {}
        self.connects = 0
        self.quotes_sent = 0
        self._open_bar: dict[tuple[str, str], datetime] = {}  # (epic, resolution) -> forming bar start

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = Conn(ws)
        self.conns.append(conn)
        self.connects += 1
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_message(conn, msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            if conn in self.conns:
                self.conns.remove(conn)
        return ws

    async def _send(self, conn: Conn, obj: dict[str, Any]) -> None:
        if not conn.ws.closed:
            try:
                await conn.ws.send_str(json.dumps(obj))
            except (ConnectionError, RuntimeError):
                pass

    async def _on_message(self, conn: Conn, text: str) -> None:
        try:
            msg = json.loads(text)
            if not isinstance(msg, dict):
                raise ValueError
        except ValueError:
            await self._send(
                conn,
                {"status": "ERROR", "destination": "", "payload": {"errorCode": "error.invalid.message"}},
            )
            return
        dest = str(msg.get("destination", ""))
        corr = msg.get("correlationId")
        reply: dict[str, Any] = {"destination": dest}
        if corr is not None:
            reply["correlationId"] = str(corr)
        try:
            session = self.sim.gate.session_for(msg.get("cst"), msg.get("securityToken"), time.monotonic())
            conn.cst = session.cst
            payload = self._apply(conn, dest, msg.get("payload") or {})
        except ApiError as exc:
            await self._send(conn, {**reply, "status": "ERROR", "payload": {"errorCode": exc.code}})
            return
        await self._send(conn, {**reply, "status": "OK", "payload": payload})

    def _apply(self, conn: Conn, dest: str, payload: dict[str, Any]) -> dict[str, Any]:
        epics = payload.get("epics") or []
        if dest == "ping":
            conn.last_ping = time.monotonic()
            return {}
        if not isinstance(epics, list) or not all(isinstance(e, str) for e in epics):
            raise ApiError(400, "error.invalid.epics")
        status = {e: ("PROCESSED" if e in BY_EPIC else "NOT_FOUND") for e in epics}
        if dest == "marketData.subscribe":
            if len(conn.epics | set(epics)) > MAX_EPICS or len(epics) > MAX_EPICS:
                raise ApiError(400, "error.invalid.epics.max")
            conn.epics |= {e for e in epics if e in BY_EPIC}
            return {"subscriptions": status}
        if dest == "marketData.unsubscribe":
            conn.epics -= set(epics)
            return {"subscriptions": status}
        resolutions = payload.get("resolutions") or (
            ["MINUTE"] if dest.endswith(".subscribe") else list(RESOLUTION_SECONDS)
        )
        if dest == "OHLCMarketData.subscribe":
            if len(epics) > MAX_EPICS:
                raise ApiError(400, "error.invalid.epics.max")
            kind = payload.get("type") or "classic"
            if any(r not in RESOLUTION_SECONDS for r in resolutions) or kind not in (
                "classic",
                "heikin-ashi",
            ):
                raise ApiError(400, "error.invalid.resolution")
            subs = {(e, r, kind) for e in epics if e in BY_EPIC for r in resolutions}
            conn.ohlc |= subs
            return {"subscriptions": {f"{e}:{r}:{kind}": "PROCESSED" for e in epics for r in resolutions}}
        if dest == "OHLCMarketData.unsubscribe":
            types = payload.get("types") or ["classic", "heikin-ashi"]
            gone = {s for s in conn.ohlc if s[0] in epics and s[1] in resolutions and s[2] in types}
            conn.ohlc -= gone
            return {"subscriptions": {f"{e}:{r}:{t}": "PROCESSED" for e, r, t in sorted(gone)}}
        raise ApiError(400, "error.invalid.destination")

    def drop_session(self, cst: str) -> None:
        """`PUT /session` stops streaming for that session (spec §7.1)."""
        for conn in list(self.conns):
            if conn.cst == cst:
                self._abort(conn)

    def _abort(self, conn: Conn) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        transport = conn.ws._req.transport if conn.ws._req is not None else None
        if transport is not None:
            transport.abort()  # an abrupt drop, as a network failure would look

    async def close_all(self) -> None:
        for conn in list(self.conns):
            await conn.ws.close()
        self.conns.clear()

    async def pump(self, changed: list[str]) -> None:
        """Push quotes (and closed OHLC bars) to subscribers, applying the streaming faults."""
        now = time.monotonic()
        faults = self.sim.faults
        if (p := faults.take("stale_quotes")) is not None:
            for epic in p.get("epics") or list(BY_EPIC):
                self.stale_until[epic] = now + float(p.get("seconds", 2.0))
        ms = int(self.sim.exchange.now().timestamp() * 1000)
        for conn in list(self.conns):
            if now - conn.last_ping > self.idle_s:
                self._abort(conn)
                continue
            if conn.epics and faults.take("ws_drop") is not None:
                self._abort(conn)
                continue
            if conn.epics and faults.take("ws_garble") is not None:
                await conn.ws.send_str('{"status":"OK","destination":"quote","payload":{"epic":')
            for epic in changed:
                if epic not in conn.epics or self.stale_until.get(epic, 0) > now:
                    continue
                bid, ask = self.sim.exchange.quote(epic)
                await self._send(
                    conn,
                    {
                        "status": "OK",
                        "destination": "quote",
                        "payload": {
                            "epic": epic,
                            "product": "CFD",
                            "bid": float(bid),
                            "bidQty": 1000.0,
                            "ofr": float(ask),
                            "ofrQty": 1000.0,
                            "timestamp": ms,
                        },
                    },
                )
                self.quotes_sent += 1
        await self._bars_step(changed, now)

    async def _bars_step(self, changed: list[str], now: float) -> None:
        """Push each subscribed bar once it has closed: bid + ask events, `t` = the bar's UTC start.

        The values come from the live tape that `GET /prices` serves, on the instrument's grid.
        """
        wanted = {(e, r) for c in self.conns for e, r, _ in c.ohlc}
        clock = self.sim.exchange.now()
        for epic, res in wanted:
            current = bar_start(clock, res)
            forming = self._open_bar.get((epic, res))
            self._open_bar[(epic, res)] = current
            if forming is None or current <= forming:
                continue
            bar = self.sim.history.bar(epic, res, forming)
            if bar is not None:
                await self._push_bar(epic, res, bar)

    async def _push_bar(self, epic: str, res: str, bar: QuoteBar) -> None:
        t_ms = int(bar.start.timestamp() * 1000)
        candles = {"classic": bar}
        if any(e == epic and r == res and k == "heikin-ashi" for c in self.conns for e, r, k in c.ohlc):
            # Heikin-ashi candles are computed from the same classic bars `GET /prices` serves.
            recent = self.sim.history.window(epic, res, None, bar.start, HA_WARMUP + 1)
            before = [b for b in recent if b.start < bar.start]
            candles["heikin-ashi"] = heikin_ashi([*before, bar], BY_EPIC[epic].tick)
        for conn in list(self.conns):
            for e, r, kind in conn.ohlc:
                if e != epic or r != res:
                    continue
                candle = candles[kind]
                for side, sb in (("bid", candle.bid), ("ask", candle.ask)):
                    await self._send(
                        conn,
                        {
                            "status": "OK",
                            "destination": "ohlc.event",
                            "payload": {
                                "resolution": res,
                                "epic": epic,
                                "type": kind,
                                "priceType": side,
                                "t": t_ms,
                                "o": float(sb.o),
                                "h": float(sb.h),
                                "l": float(sb.l),
                                "c": float(sb.c),
                            },
                        },
                    )
