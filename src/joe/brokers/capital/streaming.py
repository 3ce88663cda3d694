"""Streaming quotes and OHLC bars over Capital.com's WebSocket (spec §7).

* Subscriptions are sharded over several connections so none holds more than 40 instruments.
* Each connection pings (JSON `ping`) on a timer, and on any drop reconnects with exponential
  backoff + jitter and re-sends every subscription with the current tokens.
* A session error in a reply (`errorCode` in `payload` or at the top level) triggers a REST re-login
  and a re-subscription.
* Staleness: an epic with no quote for `stale_after_s` is flagged (`on_stale(epic, True)`) and
  cleared on the next quote (`on_stale(epic, False)`).
* The quote path is deliberately lean (json.loads + a few dict reads, no pydantic): tens of
  thousands of frames per second on one core. Garbled frames are counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from joe.brokers.capital.errors import CapitalError, is_session_error
from joe.brokers.capital.http import CapitalClient
from joe.core.events import AuditSink
from joe.core.models import UNDATED, Quote

MAX_EPICS_PER_CONNECTION = 40


@dataclass(slots=True)
class StreamQuote:
    """One streamed quote (floats on the hot path; `to_quote()` gives Joe's Decimal `Quote`)."""

    epic: str
    bid: float
    ask: float
    bid_qty: float | None
    ask_qty: float | None
    ts_ms: int

    def to_quote(self) -> Quote:
        """Joe's `Quote`; a `timestamp` of 0, negative or out of range is `UNDATED` (unknown age: stale)."""
        try:
            ts = datetime.fromtimestamp(self.ts_ms / 1000, UTC) if self.ts_ms > 0 else UNDATED
        except (OverflowError, OSError, ValueError):
            ts = UNDATED
        return Quote(
            symbol=self.epic,
            ts=ts,
            bid=Decimal(repr(self.bid)),
            ask=Decimal(repr(self.ask)),
            bid_size=None if self.bid_qty is None else Decimal(repr(self.bid_qty)),
            ask_size=None if self.ask_qty is None else Decimal(repr(self.ask_qty)),
        )


def _num(x: Any) -> float | None:
    """A JSON number as float (bools and everything else are None)."""
    if isinstance(x, float | int) and not isinstance(x, bool):
        return float(x)
    return None


def parse_quote_payload(p: Any) -> StreamQuote | None:
    """Validate a `quote` payload cheaply; None when a field is missing or of the wrong type."""
    if not isinstance(p, dict):
        return None
    epic, bid, ask, ts = p.get("epic"), _num(p.get("bid")), _num(p.get("ofr")), _num(p.get("timestamp"))
    if not isinstance(epic, str) or bid is None or ask is None or ts is None:
        return None
    return StreamQuote(epic, bid, ask, _num(p.get("bidQty")), _num(p.get("ofrQty")), int(ts))


@dataclass(frozen=True, slots=True)
class StreamBar:
    """One `ohlc.event` (spec §7.4): one side (`price_type` "bid" or "ask") of a closed bar.

    `start` is the bar's start (the wire's `t`, epoch ms, a multiple of the resolution), aware UTC;
    prices are exact Decimals of the sent values.
    """

    epic: str
    resolution: str
    bar_type: str
    price_type: str
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def parse_bar_payload(p: Any) -> StreamBar | None:
    """Validate an `ohlc.event` payload; None when a field is missing or of the wrong type."""
    if not isinstance(p, dict):
        return None
    epic, res, side, t = p.get("epic"), p.get("resolution"), p.get("priceType"), _num(p.get("t"))
    o, h, lo, c = (_num(p.get(k)) for k in ("o", "h", "l", "c"))
    if not (isinstance(epic, str) and isinstance(res, str) and side in ("bid", "ask")):
        return None
    if t is None or o is None or h is None or lo is None or c is None:
        return None
    kind = p.get("type")
    return StreamBar(
        epic,
        res,
        kind if isinstance(kind, str) else "classic",
        str(side),
        datetime.fromtimestamp(t / 1000, UTC),
        *(Decimal(repr(x)) for x in (o, h, lo, c)),
    )


def parse_message(text: str | bytes) -> dict[str, Any] | None:
    """Decode one frame; None for anything that is not a JSON object."""
    try:
        msg = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return msg if isinstance(msg, dict) else None


@dataclass
class StreamStats:
    connects: int = 0
    drops: int = 0
    subscribes: int = 0
    quotes: int = 0
    bars: int = 0
    garbled: int = 0
    errors: int = 0
    relogins: int = 0
    callback_errors: int = 0
    unexpected: int = 0  # drops for a reason other than the network's (each audited)


@dataclass
class _Shard:
    index: int
    epics: set[str] = field(default_factory=set)
    ohlc: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)  # epic -> (resolutions, type)
    ws: Any = None
    task: asyncio.Task[None] | None = None

    @property
    def instruments(self) -> set[str]:
        return self.epics | set(self.ohlc)


class CapitalStream:
    """Sharded, self-healing quote/OHLC stream. `start()` after subscribing (or subscribe later)."""

    def __init__(
        self,
        client: CapitalClient,
        url: str,
        *,
        audit: AuditSink,
        on_quote: Callable[[StreamQuote], None] | None = None,
        on_bar: Callable[[StreamBar], None] | None = None,
        on_stale: Callable[[str, bool], None] | None = None,
        stale_after_s: float = 5.0,
        ping_interval_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_epics: int = MAX_EPICS_PER_CONNECTION,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.client = client
        self.url = url
        self.audit = audit
        self.on_quote, self.on_bar, self.on_stale = on_quote, on_bar, on_stale
        self.stale_after_s = stale_after_s
        self.ping_interval_s = ping_interval_s
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.max_epics = max_epics
        self.open_timeout_s = open_timeout_s
        self.latest: dict[str, StreamQuote] = {}
        self.stale: set[str] = set()
        self.stats = StreamStats()
        self._shards: list[_Shard] = []
        self._last_seen: dict[str, float] = {}
        self._running = False
        self._monitor: asyncio.Task[None] | None = None
        self._corr = itertools.count(1)
        self._rng = random.Random()

    # ------------------------------------------------------------------ subscriptions
    def _shard_for(self, epic: str) -> _Shard:
        for s in self._shards:
            if epic in s.instruments:
                return s
        for s in self._shards:
            if len(s.instruments) < self.max_epics:
                return s
        s = _Shard(len(self._shards))
        self._shards.append(s)
        if self._running:
            s.task = asyncio.create_task(self._run(s), name=f"capital-stream-{s.index}")
        return s

    async def subscribe(self, epics: Sequence[str]) -> None:
        """Stream quotes for `epics` (new connections are opened when one is full)."""
        touched: dict[int, list[str]] = {}
        for epic in epics:
            s = self._shard_for(epic)
            if epic not in s.epics:
                s.epics.add(epic)
                self._last_seen.setdefault(epic, time.monotonic())
                touched.setdefault(s.index, []).append(epic)
        for idx, new in touched.items():
            await self._send_on(self._shards[idx], "marketData.subscribe", {"epics": new})

    async def unsubscribe(self, epics: Sequence[str]) -> None:
        for s in self._shards:
            gone = [e for e in epics if e in s.epics]
            if gone:
                s.epics.difference_update(gone)
                await self._send_on(s, "marketData.unsubscribe", {"epics": gone})
        for e in epics:
            self._last_seen.pop(e, None)
            self.stale.discard(e)

    async def subscribe_ohlc(
        self, epics: Sequence[str], resolutions: Sequence[str] = ("MINUTE",), bar_type: str = "classic"
    ) -> None:
        for epic in epics:
            s = self._shard_for(epic)
            s.ohlc[epic] = (tuple(resolutions), bar_type)
            await self._send_on(
                s,
                "OHLCMarketData.subscribe",
                {"epics": [epic], "resolutions": list(resolutions), "type": bar_type},
            )

    @property
    def subscribed(self) -> set[str]:
        return {e for s in self._shards for e in s.epics}

    @property
    def connections(self) -> int:
        return len(self._shards)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._running = True
        for s in self._shards:
            if s.task is None:
                s.task = asyncio.create_task(self._run(s), name=f"capital-stream-{s.index}")
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._watch_staleness(), name="capital-stream-stale")

    async def stop(self) -> None:
        self._running = False
        tasks = [s.task for s in self._shards if s.task is not None]
        if self._monitor is not None:
            tasks.append(self._monitor)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for s in self._shards:
            s.task = None
            if s.ws is not None:
                with contextlib.suppress(Exception):
                    await s.ws.close()
                s.ws = None
        self._monitor = None

    # ------------------------------------------------------------------ the connection loop
    def _envelope(self, destination: str, payload: dict[str, Any] | None) -> str:
        cst, xst = self.client.tokens
        msg: dict[str, Any] = {
            "destination": destination,
            "correlationId": str(next(self._corr)),
            "cst": cst,
            "securityToken": xst,
        }
        if payload is not None:
            msg["payload"] = payload
        return json.dumps(msg)

    async def _send_on(self, shard: _Shard, destination: str, payload: dict[str, Any] | None) -> None:
        if shard.ws is None:
            return  # sent on (re)connect
        with contextlib.suppress(ConnectionClosed, OSError):
            await shard.ws.send(self._envelope(destination, payload))
            if destination.endswith("subscribe"):
                self.stats.subscribes += 1

    async def _subscribe_all(self, shard: _Shard) -> None:
        if shard.epics:
            await self._send_on(shard, "marketData.subscribe", {"epics": sorted(shard.epics)})
        for epic, (res, kind) in shard.ohlc.items():
            await self._send_on(
                shard, "OHLCMarketData.subscribe", {"epics": [epic], "resolutions": list(res), "type": kind}
            )

    async def _run(self, shard: _Shard) -> None:
        attempt = 0
        while self._running:
            try:
                async with websockets.connect(
                    self.url, open_timeout=self.open_timeout_s, ping_interval=None, max_size=2**20
                ) as ws:
                    shard.ws = ws
                    self.stats.connects += 1
                    await self._subscribe_all(shard)
                    pinger = asyncio.create_task(self._ping(shard))
                    try:
                        async for raw in ws:
                            attempt = 0
                            await self._on_frame(shard, raw)
                    finally:
                        pinger.cancel()
            except (ConnectionClosed, OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                self.audit.record("capital.stream.drop", {"shard": shard.index, "error": type(exc).__name__})
            except Exception as exc:
                # Anything else (a relogin that fails oddly, a library surprise) is a drop too: the
                # connection loop is the stream's only life, and a dead task would leave every epic of
                # this shard silent for good while the rest of the daemon believes it is subscribed.
                self.stats.unexpected += 1
                with contextlib.suppress(Exception):
                    self.audit.record(
                        "capital.stream.drop",
                        {"shard": shard.index, "error": type(exc).__name__, "unexpected": True},
                    )
            finally:
                shard.ws = None
            if not self._running:
                return
            self.stats.drops += 1
            delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
            attempt = min(attempt + 1, 16)
            await asyncio.sleep(delay * (0.5 + self._rng.random() / 2))

    async def _ping(self, shard: _Shard) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            await self._send_on(shard, "ping", None)

    async def _on_frame(self, shard: _Shard, raw: str | bytes) -> None:
        msg = parse_message(raw)
        if msg is None:
            self.stats.garbled += 1
            return
        dest = msg.get("destination")
        if dest == "quote":
            q = parse_quote_payload(msg.get("payload"))
            if q is None:
                self.stats.garbled += 1
                return
            self._on_quote(q)
        elif dest == "ohlc.event":
            bar = parse_bar_payload(msg.get("payload"))
            if bar is not None:
                self.stats.bars += 1
                self._call(self.on_bar, bar)
            else:
                self.stats.garbled += 1
        elif msg.get("status") == "ERROR":
            await self._on_error(shard, msg)

    def _on_quote(self, q: StreamQuote) -> None:
        self.stats.quotes += 1
        self.latest[q.epic] = q
        self._last_seen[q.epic] = time.monotonic()
        if q.epic in self.stale:
            self.stale.discard(q.epic)
            self.audit.record("capital.stream.fresh", {"epic": q.epic})
            self._call(self.on_stale, q.epic, False)
        self._call(self.on_quote, q)

    def _call(self, fn: Callable[..., None] | None, *args: Any) -> None:
        """Run a consumer callback; its bugs are counted, never allowed to kill the connection."""
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:
            self.stats.callback_errors += 1
            if self.stats.callback_errors <= 3:
                self.audit.record("capital.stream.callback_error", {"error": type(exc).__name__})

    async def _on_error(self, shard: _Shard, msg: dict[str, Any]) -> None:
        self.stats.errors += 1
        payload = msg.get("payload")
        code = (payload.get("errorCode") if isinstance(payload, dict) else None) or msg.get("errorCode") or ""
        self.audit.record(
            "capital.stream.error",
            {"shard": shard.index, "destination": msg.get("destination"), "code": str(code)},
        )
        if is_session_error(None, str(code)):
            try:
                await self.client.relogin(self.client.session.generation)
                self.stats.relogins += 1
            except CapitalError:
                return
            await self._subscribe_all(shard)

    async def _watch_staleness(self) -> None:
        interval = max(0.01, self.stale_after_s / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for epic in self.subscribed:
                if epic in self.stale:
                    continue
                if now - self._last_seen.get(epic, now) > self.stale_after_s:
                    self.stale.add(epic)
                    self.audit.record("capital.stream.stale", {"epic": epic})
                    self._call(self.on_stale, epic, True)
