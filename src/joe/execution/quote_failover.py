"""Broker failover for the daemon's quote stream (issue 19, config `brokers.failover`).

`FailoverQuotes` is the `PriceStream`'s source for the daemon's broker (the *primary*): it carries the
primary's own source, and when the primary stops quoting a watched instrument — its connection is
down, TWS lost IB (1100), the Capital.com WebSocket is down or its session expired, a data farm broke,
a line went silent — for `silent_after_s` while the market is open, the instrument's quotes are taken
from the other broker (the *secondary*, connected on first need), mapped by the maintained instrument
map (`brokers.failover.instruments`, IBKR symbol -> Capital.com epic) and pushed under the primary's
symbol. The first quote the primary sends again for it switches it back.

**Price basis.** The secondary's quote is used only within `tolerance_pct` of the primary's last
quote's mid of the same instrument (this process's; before any, its last cached daily close): a CFD
priced on another basis (another unit, an index CFD on the future) is never taken for the cash
instrument. A refused quote is dropped (the instrument goes stale: entries refused, a held one alerts),
audited `failover.basis_refused` once per outage and instrument. The reference is not moved during the
outage: a long one in a moving market refuses rather than guesses (fail closed).

**Entries.** A failed-over instrument takes no entry (`PriceStream.no_entry`): its broker is not
healthy. When the primary quotes again, its instruments stay without entries until `on_recovered`
(the live daemon: a reconciliation with the returning broker) has returned; a failing hook keeps them
so and is tried again at the next check. Nothing here sends an order: positions stay managed at the
broker that holds them (the monitor's exits go to its `OrderManager`, never to the secondary), and
borrowed quotes never reach the monitor (`PriceStream.borrowed`): no backup exit or trailing modify is
decided on another broker's price; the broker-side stop protects meanwhile.

**Audit and alerts, with durations.** Per instrument `failover.quotes_borrowed` (symbol, other broker
and name, silent seconds) and `failover.quotes_returned` (borrowed seconds); per outage, through
`BrokerHealth` (kept in the store, shared with `joe run --once`), `failover.started` and
`failover.recovered` with `down_s`, both alerted. A secondary that cannot connect is audited
`failover.secondary_unavailable` and tried again at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from joe.data.failover import BrokerHealth, InstrumentMap, Reference
from joe.execution.price_stream import PriceStream, QuoteSource
from joe.execution.quotes import InstrumentIndex, QuoteBatch

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]
OpenSecondary = Callable[[], Awaitable[tuple[QuoteSource, Closer]]]
RESUBSCRIBE_MAX_S = 300.0  # the longest gap between two resubscriptions at the silent primary


@dataclass(slots=True)
class Borrow:
    """One instrument failed over: `other` is its name at the secondary; monotonic seconds."""

    other: str
    since: float
    next_resub: float
    gap: float
    quotes: int = 0
    refused: bool = False


class _Tap:
    """What a wrapped source pushes into: the owner sees which broker quoted, then the stream."""

    def __init__(self, owner: FailoverQuotes, primary: bool) -> None:
        self.owner = owner
        self.primary = primary

    @property
    def instruments(self) -> InstrumentIndex:
        return self.owner.stream.instruments

    def push(self, symbol: str, bid: float, ask: float, ts_ns: int | None = None) -> None:
        if self.primary:
            self.owner.on_primary(symbol, bid, ask, ts_ns)
        else:
            self.owner.on_secondary(symbol, bid, ask, ts_ns)

    def push_batch(self, batch: QuoteBatch) -> None:
        if self.primary:  # array replays: no per-symbol failover bookkeeping
            self.owner.stream.push_batch(batch)


class FailoverQuotes:
    """A `QuoteSource` named like the primary's, with the secondary behind it (module docstring).

    - `primary`: the daemon broker's own source; `secondary_name` / `open_secondary`: the other
      broker and how to connect its quote source (called on the first failover, again after a failure);
    - `imap`, `tolerance_pct` (percent), `health` (audit, alerts, the outage in the store);
    - `reference(symbol)`: the primary's last cached daily (day, close), used before any live quote;
    - `silent_after_s`: seconds without a primary quote (market open) before failing over; `monotonic`
      and `check_s` (the watchdog's period) are injectable for deterministic tests;
    - `on_recovered`: awaited once the primary quotes again for every failed-over instrument, before
      they take entries again (the live daemon reconciles there).
    """

    def __init__(
        self,
        primary: QuoteSource,
        secondary_name: str,
        open_secondary: OpenSecondary,
        imap: InstrumentMap,
        tolerance_pct: Decimal,
        health: BrokerHealth,
        *,
        silent_after_s: float,
        reference: Reference | None = None,
        on_recovered: Callable[[], Awaitable[None]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        check_s: float | None = None,
    ) -> None:
        if silent_after_s <= 0:
            raise ValueError(f"silent_after_s must be > 0, got {silent_after_s}")
        self.primary = primary
        self.name = primary.name
        self.secondary_name = secondary_name
        self.open_secondary = open_secondary
        self.imap = imap
        self.tolerance_pct = tolerance_pct
        self.health = health
        self.silent_after_s = silent_after_s
        self.reference = reference
        self.on_recovered = on_recovered
        self.monotonic = monotonic
        self.check_s = check_s if check_s is not None else silent_after_s / 4
        self.symbols: set[str] = set()
        self.borrowed: dict[str, Borrow] = {}
        self.recovering: set[str] = set()  # back at the primary, waiting for `on_recovered`
        self._by_other: dict[str, str] = {}  # secondary's name -> primary's symbol (borrowed only)
        self._seen: dict[str, float] = {}  # primary's last quote per symbol (monotonic)
        self._since: dict[str, float] = {}  # when the silence clock started (subscribe, market open)
        self._mid: dict[str, float] = {}  # primary's last mid per symbol
        self._secondary: QuoteSource | None = None
        self._close_secondary: Closer | None = None
        self._stream: PriceStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._outage = False  # something failed over since the last completed recovery
        self._recovery = asyncio.Lock()

    @property
    def stream(self) -> PriceStream:
        if self._stream is None:
            raise RuntimeError("FailoverQuotes is not bound to a PriceStream yet")
        return self._stream

    # -- QuoteSource --------------------------------------------------------------------------------

    def bind(self, stream: Any) -> None:
        if not isinstance(stream, PriceStream):
            raise TypeError("FailoverQuotes pushes into a PriceStream")
        self._stream = stream
        self.primary.bind(_Tap(self, primary=True))

    async def start(self) -> None:
        await self.primary.start()
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name=f"failover-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for t in list(self._pending):
            t.cancel()
        await self.primary.stop()
        await self._drop_secondary()

    async def subscribe(self, symbols: Sequence[str]) -> None:
        now = self.monotonic()
        for s in symbols:
            self.symbols.add(s)
            self._since.setdefault(s, now)
        await self.primary.subscribe(symbols)

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        """Unsubscribe at the primary. The stream's own resubscription of a stale instrument
        (unsubscribe + subscribe, still watched) leaves its failover as it is; an unwatched one ends it."""
        await self.primary.unsubscribe(symbols)
        gone = [s for s in symbols if s not in self.stream.watched]
        for s in gone:
            self.symbols.discard(s)
            self._since.pop(s, None)
        if [s for s in gone if s in self.borrowed]:
            await self._give_back([s for s in gone if s in self.borrowed], reason="unwatched")

    async def replace_primary(self, source: QuoteSource) -> None:
        """A new connection to the primary (the live desk's hand-over): the old source stops, the new
        one starts and carries every symbol; failed-over instruments stay so until it quotes them."""
        if source.name != self.name:
            raise ValueError(f"the primary is {self.name!r}, not {source.name!r}")
        await self.primary.stop()
        self.primary = source
        source.bind(_Tap(self, primary=True))
        await source.start()
        if self.symbols:
            await source.subscribe(sorted(self.symbols))

    # -- quotes -------------------------------------------------------------------------------------

    def on_primary(self, symbol: str, bid: float, ask: float, ts_ns: int | None) -> None:
        self._seen[symbol] = self.monotonic()
        if bid > 0 and ask > 0:
            self._mid[symbol] = (bid + ask) / 2
        if symbol in self.borrowed:
            others = self._return([symbol], reason="primary quotes again")
            self._spawn(self._after_return(others))
        self.stream.push(symbol, bid, ask, ts_ns)

    def on_secondary(self, other: str, bid: float, ask: float, ts_ns: int | None) -> None:
        symbol = self._by_other.get(other)
        b = self.borrowed.get(symbol) if symbol is not None else None
        if symbol is None or b is None or not (bid > 0 and ask > 0):
            return  # not failed over (any more): the primary's quotes rule
        ok, detail = self.basis(symbol, other, (bid + ask) / 2)
        if not ok:
            if not b.refused:
                b.refused = True
                self.stream.borrowed.pop(symbol, None)
                self.health.audit.record("failover.basis_refused", {"symbol": symbol, "broker":
                                         self.secondary_name, "other": other, "detail": detail})  # fmt: skip
                log.warning("failover: %s quote of %s not used: %s", self.secondary_name, symbol, detail)
            return
        if b.refused:
            b.refused = False
        self.stream.borrowed[symbol] = f"{self.secondary_name} ({other})"
        b.quotes += 1
        self.stream.push(symbol, bid, ask, ts_ns)

    def basis(self, symbol: str, other: str, mid: float) -> tuple[bool, str]:
        """Does the secondary's `mid` of `other` stand for the primary's `symbol`? Against the primary's
        last mid in this process, else its last cached daily close."""
        ref = self._mid.get(symbol)
        what = "last quote"
        if ref is None and self.reference is not None:
            cached = self.reference(symbol)
            if cached is not None:
                ref, what = cached[1], f"cached close of {cached[0].date()}"
        if ref is None or not ref > 0:
            return False, f"no {self.name} price of {symbol} to check {self.secondary_name} {other} against"
        gap = abs(mid / ref - 1.0) * 100.0
        text = (f"{self.secondary_name} {other} {mid:g} vs {self.name} {symbol} {ref:g} ({what}): "
                f"{gap:.2f}% apart (tolerance {self.tolerance_pct}%)")  # fmt: skip
        return gap <= float(self.tolerance_pct), text

    # -- the watchdog -------------------------------------------------------------------------------

    async def check(self) -> None:
        """Fail over the instruments the primary has left silent; resubscribe them at the primary
        (doubling gaps); finish a recovery whose `on_recovered` has not succeeded yet."""
        now = self.monotonic()
        now_ns = self.stream.clock_ns()
        silent: list[tuple[str, float]] = []
        for s in sorted(self.symbols):
            if s in self.borrowed:
                continue
            ref = max(self._seen.get(s, 0.0), self._since.get(s, now))
            if now - ref <= self.silent_after_s:
                continue
            if not self.stream.is_open(s, now_ns):
                self._since[s] = now  # a closed market is not an outage
                continue
            silent.append((s, now - ref))
        if silent:
            await self._borrow(silent, now)
        await self._resubscribe(now)
        if self._outage and not self.borrowed:
            await self._recovered()

    async def _borrow(self, silent: list[tuple[str, float]], now: float) -> None:
        mapped = [(s, self.imap.other(self.name, s), q) for s, q in silent]
        wanted = [(s, o, q) for s, o, q in mapped if o is not None]
        if not wanted:
            return  # only the primary offers them: they stay stale (no entry, a held one alerts)
        try:
            src = await self._secondary_source()
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.health.audit.record("failover.secondary_unavailable",
                                     {"broker": self.secondary_name, "error": why[:300]})  # fmt: skip
            log.warning("failover: %s unavailable too: %s", self.secondary_name, why)
            return  # they stay stale; tried again at the next check
        first = wanted[0]
        self._outage = True
        await self.health.down(self.name, self.secondary_name,
                               f"no quote from {self.name} for {first[0]} for {first[2]:.1f}s")  # fmt: skip
        for s, o, quiet in wanted:
            assert o is not None
            self.borrowed[s] = Borrow(o, now, now + self.silent_after_s, self.silent_after_s)
            self._by_other[o] = s
            self.recovering.discard(s)
            self.stream.no_entry[s] = f"{self.name} not quoting: prices from {self.secondary_name} ({o})"
            payload = {"symbol": s, "broker": self.name, "from": self.secondary_name, "other": o,
                       "silent_s": round(quiet, 3)}  # fmt: skip
            self.health.audit.record("failover.quotes_borrowed", payload)
        await src.subscribe([o for _s, o, _q in wanted if o is not None])

    async def _secondary_source(self) -> QuoteSource:
        if self._secondary is None:
            src, close = await self.open_secondary()
            try:
                src.bind(_Tap(self, primary=False))
                await src.start()
            except BaseException:
                await close()
                raise
            self._secondary, self._close_secondary = src, close
        return self._secondary

    async def _resubscribe(self, now: float) -> None:
        """A failed-over instrument's line is asked of the primary again (the stream no longer sees it
        stale, so this is the only way a silently dropped line comes back), in its own task bounded by
        `silent_after_s`: a primary that hangs never stalls the checks."""
        due = []
        for s, b in list(self.borrowed.items()):
            if now < b.next_resub:
                continue
            b.next_resub, b.gap = now + b.gap, min(b.gap * 2, RESUBSCRIBE_MAX_S)
            due.append(s)
        if due:
            self._spawn(self._resubscribe_at_primary(due))

    async def _resubscribe_at_primary(self, symbols: list[str]) -> None:
        try:
            await asyncio.wait_for(self.primary.unsubscribe(symbols), self.silent_after_s)
            await asyncio.wait_for(self.primary.subscribe(symbols), self.silent_after_s)
        except Exception as exc:  # the primary is down: its own reconnect resubscribes
            log.info("failover: resubscribing %s at %s failed: %s", symbols, self.name, exc)

    async def _give_back(self, symbols: list[str], *, reason: str) -> None:
        await self._after_return(self._return(symbols, reason=reason))

    def _return(self, symbols: list[str], *, reason: str) -> list[str]:
        """`symbols` quote from the primary again (synchronously, so a burst of quotes returns each
        once); returns their names at the secondary, to unsubscribe there."""
        now = self.monotonic()
        others = []
        for s in symbols:
            b = self.borrowed.pop(s, None)
            if b is None:
                continue
            self._by_other.pop(b.other, None)
            self.stream.borrowed.pop(s, None)
            others.append(b.other)
            if s in self.symbols:
                self.recovering.add(s)
                self.stream.no_entry[s] = f"{self.name} quoting again: not reconciled yet"
            else:
                self.stream.no_entry.pop(s, None)
            payload = {"symbol": s, "broker": self.name, "reason": reason,
                       "borrowed_s": round(now - b.since, 3), "quotes": b.quotes}  # fmt: skip
            self.health.audit.record("failover.quotes_returned", payload)
        return others

    async def _after_return(self, others: list[str]) -> None:
        if others and self._secondary is not None:
            with contextlib.suppress(Exception):  # the secondary going away is not the primary's problem
                await self._secondary.unsubscribe(others)
        if not self.borrowed:
            await self._recovered()

    async def _recovered(self) -> None:
        """Every instrument quotes from the primary again: the outage ends (audited with its duration),
        `on_recovered` runs (live: reconcile), then they take entries again. Idempotent."""
        async with self._recovery:
            if not self._outage or self.borrowed:
                return
            await self.health.up(self.name)
            if self.on_recovered is not None:
                try:
                    await self.on_recovered()
                except Exception as exc:
                    self.health.audit.record("failover.recovery_pending", {"broker": self.name,
                                             "error": f"{type(exc).__name__}: {exc}"[:300]})  # fmt: skip
                    return  # tried again at the next check; no entries meanwhile
            self._outage = False
            for s in self.recovering:
                self.stream.no_entry.pop(s, None)
            self.recovering.clear()
            await self._drop_secondary()

    async def _drop_secondary(self) -> None:
        src, close = self._secondary, self._close_secondary
        self._secondary = self._close_secondary = None
        if src is not None:
            with contextlib.suppress(Exception):
                await src.stop()
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            try:
                await self.check()
            except Exception:
                log.exception("failover check failed")

    def state(self) -> dict[str, Any]:
        """For the heartbeat and `joe status`: the primary, failed-over instruments and since when."""
        now = self.monotonic()
        return {
            "primary": self.name,
            "secondary": self.secondary_name,
            "borrowed": {s: {"from": f"{self.secondary_name} ({b.other})", "for_s": round(now - b.since, 1),
                             "basis_refused": b.refused} for s, b in sorted(self.borrowed.items())},
            "recovering": sorted(self.recovering),
        }  # fmt: skip
