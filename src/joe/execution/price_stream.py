"""`PriceStream`: one quote stream over every broker's streaming market data, handed on in batches.

Sources (`joe.execution.quote_sources`: IBKR streaming market data, Capital.com's WebSocket, a replay
of arrays for benchmarks and tests) call `push` per quote or `push_batch` with arrays. Quotes pushed
in one event-loop iteration are handed on together as one `QuoteBatch` (at most `max_batch`), so
consumers (the `PositionMonitor`) pay no per-quote scheduling.

Staleness (per instrument): a watched instrument with no quote for `stale_after_s` while its market
is open (`is_open(symbol, now_ns)`, e.g. `joe.runtime.schedule`) is *stale*: `entries_allowed` is
False for it, and if it is held an alert is raised. The next quote clears it. Stale/fresh changes
are audited.

Broker failover (`joe.execution.quote_failover`): quotes borrowed from another broker (`borrowed`)
keep an instrument fresh but are not handed to the consumers, and `no_entry` instruments take no entry.

Reconnects and resubscription belong to the sources (each broker's rules differ: IBKR 1101 loses
the subscriptions, Capital.com drops idle sockets after 10 minutes); `watch` only records what the
stream must carry and asks the source once. One case no source can see is a line that goes silent
while the connection lives (a subscription the broker dropped without a word): a stale instrument is
therefore subscribed again by the stream itself (unsubscribe + subscribe at its source), at once and
then, while it stays or goes stale again, with gaps doubling from `stale_after_s` up to
`RESUBSCRIBE_MAX_S` (reset once it has quoted for a whole gap), audited `stream.resubscribed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from joe.core.events import AuditSink, NullAudit
from joe.execution.quotes import InstrumentIndex, QuoteBatch

log = logging.getLogger(__name__)


RESUBSCRIBE_MAX_S = 300.0  # the longest gap between two resubscriptions of a stale instrument
# A batch up to this many quotes books its instruments' last-seen time and count in a plain loop; a
# larger one counts them with numpy first (one `bincount`) and loops over the distinct ids. Either way
# every batch is booked as it is handed on: no periodic catch-up pass lands on one quote's latency.
_NOTE_LOOP = 32


class QuoteConsumer(Protocol):
    def on_batch(self, batch: QuoteBatch) -> None: ...


class QuoteSink(Protocol):
    """What a source pushes into: the `PriceStream` itself, or a broker-failover tap in front of it
    (`joe.execution.quote_failover`)."""

    @property
    def instruments(self) -> InstrumentIndex: ...

    def push(self, symbol: str, bid: float, ask: float, ts_ns: int | None = None) -> None: ...

    def push_batch(self, batch: QuoteBatch) -> None: ...


class QuoteSource(Protocol):
    """A broker's streaming quotes. `bind` gives it the sink to push into; `subscribe` is
    idempotent; the source keeps its subscriptions alive across reconnects by itself."""

    name: str

    def bind(self, stream: QuoteSink) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def subscribe(self, symbols: Sequence[str]) -> None: ...

    async def unsubscribe(self, symbols: Sequence[str]) -> None: ...


def _always_open(symbol: str, now_ns: int) -> bool:
    return True


class PriceStream:
    """Batches quotes from its sources to its consumers and tracks per-instrument staleness.

    - `clock_ns`: wall clock (int ns UTC) stamped on quotes that carry no time, and passed to `is_open`;
    - `monotonic`: seconds, for staleness (injectable for deterministic tests);
    - `on_alert(text)`: called when a held instrument goes stale (and when it recovers).
    """

    def __init__(
        self,
        *,
        instruments: InstrumentIndex | None = None,
        stale_after_s: float = 30.0,
        max_batch: int = 4096,
        is_open: Callable[[str, int], bool] = _always_open,
        audit: AuditSink | None = None,
        on_alert: Callable[[str], None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.instruments = instruments if instruments is not None else InstrumentIndex()
        self.stale_after_s = stale_after_s
        self.max_batch = max_batch
        self.is_open = is_open
        self.audit: AuditSink = audit if audit is not None else NullAudit()
        self.on_alert = on_alert
        self.clock_ns = clock_ns
        self.monotonic = monotonic
        self.consumers: list[QuoteConsumer] = []
        self.sources: dict[str, QuoteSource] = {}
        self.watched: dict[str, str] = {}  # symbol -> source name
        self.held: set[str] = set()
        self.stale: set[str] = set()
        # Broker failover (`joe.execution.quote_failover`): symbol -> where its quotes come from now
        # ("capital (AAPL)") while its own broker's stream is down, and symbol -> why no entry may be
        # taken on it (quotes borrowed from the other broker, or its broker back but not yet reconciled).
        self.borrowed: dict[str, str] = {}
        self.no_entry: dict[str, str] = {}
        self.quotes = 0
        self.batches = 0
        self.consumer_errors = 0
        self._since: dict[str, float] = {}  # symbol -> monotonic time its staleness clock started
        self._resub: dict[str, tuple[float, float]] = {}  # stale symbol -> (next attempt, gap) monotonic
        self._last_seen: list[float] = [0.0] * 16  # per instrument id, monotonic seconds (0: never)
        self._counts: list[int] = [0] * 16  # per instrument id, quotes received
        self._b_inst: list[int] = []
        self._b_ts: list[int] = []
        self._b_bid: list[float] = []
        self._b_ask: list[float] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.Task[None] | None = None

    # -- wiring -------------------------------------------------------------------------------------

    def add_source(self, source: QuoteSource) -> None:
        if source.name in self.sources:
            raise ValueError(f"a quote source named {source.name!r} is already attached")
        self.sources[source.name] = source
        source.bind(self)

    async def replace_source(self, source: QuoteSource) -> None:
        """Swap the source of the same name for `source` (a new broker connection): the old one is
        stopped, the new one started and subscribed to every symbol the old one carried."""
        old = self.sources.pop(source.name, None)
        if old is not None:
            await old.stop()
        self.add_source(source)
        await source.start()
        carried = [s for s, name in self.watched.items() if name == source.name]
        if carried:
            await source.subscribe(carried)

    def _source(self, name: str | None) -> QuoteSource:
        if name is None:
            if len(self.sources) != 1:
                raise ValueError(f"say which source to use: attached are {sorted(self.sources)}")
            return next(iter(self.sources.values()))
        try:
            return self.sources[name]
        except KeyError:
            raise ValueError(f"no quote source named {name!r}; attached are {sorted(self.sources)}") from None

    async def watch(self, symbols: Sequence[str], *, held: bool = False, source: str | None = None) -> None:
        """Stream `symbols` (held: an open position depends on them, so staleness alerts)."""
        src = self._source(source)
        new = [s for s in symbols if s not in self.watched]
        now = self.monotonic()
        for s in symbols:
            self.instruments.id(s)
            self.watched[s] = src.name
            self._since.setdefault(s, now)
            if held:
                self.held.add(s)
        if new:
            await src.subscribe(new)

    async def unwatch(self, symbols: Sequence[str]) -> None:
        by_source: dict[str, list[str]] = {}
        for s in symbols:
            name = self.watched.pop(s, None)
            if name is not None:
                by_source.setdefault(name, []).append(s)
            self.held.discard(s)
            self.stale.discard(s)
            self._since.pop(s, None)
            self._resub.pop(s, None)
        for name, syms in by_source.items():
            await self.sources[name].unsubscribe(syms)

    def set_held(self, symbol: str, held: bool) -> None:
        (self.held.add if held else self.held.discard)(symbol)

    async def start(self) -> None:
        for src in self.sources.values():
            await src.start()
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch_staleness(), name="price-stream-stale")

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        for src in self.sources.values():
            await src.stop()
        self.flush()

    # -- the hot path -------------------------------------------------------------------------------

    def push(self, symbol: str, bid: float, ask: float, ts_ns: int | None = None) -> None:
        """One quote from a source (bid, ask > 0). It is handed on with the others of this loop
        iteration, or at once when `max_batch` quotes are waiting."""
        self._b_inst.append(self.instruments.id(symbol))
        self._b_ts.append(self.clock_ns() if ts_ns is None else ts_ns)
        self._b_bid.append(bid)
        self._b_ask.append(ask)
        if len(self._b_inst) >= self.max_batch:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Hand on the quotes pushed so far (no-op when none wait)."""
        self._flush_scheduled = False
        if not self._b_inst:
            return
        batch = QuoteBatch(
            np.array(self._b_inst, dtype=np.int32),
            np.array(self._b_ts, dtype=np.int64),
            np.array(self._b_bid, dtype=np.float64),
            np.array(self._b_ask, dtype=np.float64),
        )
        self._b_inst, self._b_ts, self._b_bid, self._b_ask = [], [], [], []
        self._dispatch(batch)

    def push_batch(self, batch: QuoteBatch) -> None:
        """Hand on a whole batch (bulk sources, replays); quotes pushed singly before it go first."""
        if self._b_inst:
            self.flush()
        self._dispatch(batch)

    def _dispatch(self, batch: QuoteBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        self.quotes += n
        self.batches += 1
        self._note(self.monotonic(), batch.inst)
        if self.stale:
            self._clear_fresh()
        if self.borrowed:
            batch = self._own_quotes(batch)
            if len(batch) == 0:
                return
        for c in self.consumers:
            try:
                c.on_batch(batch)
            except Exception as exc:
                # A consumer's bug must not stop the stream for the others; it is counted and logged.
                self.consumer_errors += 1
                log.exception("quote consumer %r failed on a batch of %d quotes", c, n)
                self.audit.record("stream.consumer_error", {"consumer": type(c).__name__, "error": repr(exc)})

    def _note(self, now: float, inst: np.ndarray) -> None:
        """Book a batch handed on at `now` (monotonic s): each instrument in it was last seen at `now` (the
        last batch that carried an instrument decides, whatever an injected clock does) and its count
        grows by its quotes in the batch. O(quotes) per batch, so the cost lands evenly on every batch."""
        last, counts = self._last_seen, self._counts
        if len(inst) <= _NOTE_LOOP:
            ids = inst.tolist()
            if max(ids) >= len(last):
                self._grow(max(ids) + 1)
                last, counts = self._last_seen, self._counts
            for u in ids:
                last[u] = now
                counts[u] += 1
            return
        per = np.bincount(inst)
        if len(per) > len(last):
            self._grow(len(per))
            last, counts = self._last_seen, self._counts
        nz = np.flatnonzero(per)
        for u, k in zip(nz.tolist(), per[nz].tolist(), strict=True):
            last[u] = now
            counts[u] += k

    def _grow(self, top: int) -> None:
        grow = max(top, 2 * len(self._last_seen)) - len(self._last_seen)
        self._last_seen.extend([0.0] * grow)
        self._counts.extend([0] * grow)

    def _own_quotes(self, batch: QuoteBatch) -> QuoteBatch:
        """`batch` without the quotes borrowed from another broker (failover): they keep an instrument
        fresh and show its price, but the consumers (the `PositionMonitor`: backup exits, trailing
        modifies) act on the holding broker's own prices only — a stop is never moved, nor a position
        exited, on a CFD's price; its broker-side stop stays the protection meanwhile."""
        ids = [i for s in self.borrowed for i in [self.instruments.get(s)] if i is not None]
        keep = ~np.isin(batch.inst, np.array(ids, dtype=batch.inst.dtype))
        if keep.all():
            return batch
        return QuoteBatch(batch.inst[keep], batch.ts[keep], batch.bid[keep], batch.ask[keep])

    # -- staleness ----------------------------------------------------------------------------------

    def is_stale(self, symbol: str) -> bool:
        return symbol in self.stale

    def entries_allowed(self, symbol: str) -> bool:
        """No entries on an instrument that is not streamed, is stale, or whose own broker's stream is
        down (`no_entry`: its quotes come from the other broker, or its broker is not reconciled yet)."""
        return symbol in self.watched and symbol not in self.stale and symbol not in self.no_entry

    def price_sources(self) -> dict[str, str]:
        """Where each watched instrument's quotes come from now: its source's name (a broker), or the
        other broker's ("capital (AAPL)") while failed over."""
        return {s: self.borrowed.get(s, name) for s, name in sorted(self.watched.items())}

    def last_seen(self, symbol: str) -> float | None:
        """Monotonic time of the last quote for `symbol`, or None."""
        i = self.instruments.get(symbol)
        if i is None or i >= len(self._last_seen) or self._last_seen[i] == 0:
            return None
        return self._last_seen[i]

    def source_stats(self) -> dict[str, dict[str, float | int | None]]:
        """Per attached source (a broker): quotes received on the instruments it carries, the age in
        seconds of its newest quote (None before its first), and how many of its instruments are
        watched and stale. The daemon's heartbeat carries it; `/metrics` reads it per broker."""
        now = self.monotonic()
        out: dict[str, dict[str, float | int | None]] = {}
        for name in self.sources:
            ids = [i for s, src in self.watched.items() if src == name
                   for i in [self.instruments.get(s)] if i is not None and i < len(self._counts)]  # fmt: skip
            seen = max((self._last_seen[i] for i in ids if self._last_seen[i]), default=None)
            out[name] = {
                "quotes": sum(self._counts[i] for i in ids),
                "quote_age_s": None if seen is None else round(now - seen, 3),
                "watched": sum(1 for src in self.watched.values() if src == name),
                "stale": sum(1 for s in self.stale if self.watched.get(s) == name),
            }
        return out

    def check_staleness(self) -> None:
        """Mark watched instruments stale (open market, no quote for `stale_after_s`); the watchdog
        task calls this every `stale_after_s / 4`."""
        now = self.monotonic()
        now_ns = self.clock_ns()
        for s in self.watched:
            if s in self.stale:
                continue
            seen = self.last_seen(s)
            ref = max(seen if seen is not None else 0.0, self._since.get(s, now))
            if now - ref <= self.stale_after_s:
                continue
            if not self.is_open(s, now_ns):
                self._since[s] = now  # a closed market is not stale; the clock restarts at the open
                continue
            self.stale.add(s)
            # Subscribe it again at the next watchdog pass; one that flaps (a snapshot on resubscribing,
            # then silence) keeps its doubling gap rather than churning every `stale_after_s`.
            self._resub.setdefault(s, (now, self.stale_after_s))
            held = s in self.held
            self.audit.record("stream.stale", {"symbol": s, "held": held, "silent_s": round(now - ref, 3)})
            log.warning("no quote for %s for %.1fs: stale (entries refused)", s, now - ref)
            if held:
                self._alert(
                    f"held instrument {s} is stale: no quote for {now - ref:.0f}s while its market is open"
                )

    def _clear_fresh(self) -> None:
        now = self.monotonic()
        for s in list(self.stale):
            seen = self.last_seen(s)
            if seen is not None and now - seen <= self.stale_after_s:
                self.stale.discard(s)
                self._since[s] = seen
                self.audit.record("stream.fresh", {"symbol": s, "held": s in self.held})
                if s in self.held:
                    self._alert(f"held instrument {s} is quoting again")

    def _alert(self, text: str) -> None:
        if self.on_alert is None:
            return
        try:
            self.on_alert(text)
        except Exception:
            log.exception("stream alert hook failed")

    async def resubscribe_stale(self) -> list[str]:
        """Subscribe again, at their sources, the stale instruments whose next attempt is due (see
        the module docstring); returns them. A source error is logged and retried at the next gap."""
        now = self.monotonic()
        for s, (at, gap) in list(self._resub.items()):
            if s not in self.stale and now >= at + gap:  # fresh for a whole gap past its due time
                del self._resub[s]
        due = [s for s, (at, _gap) in self._resub.items() if at <= now and s in self.stale]
        for s in due:
            _at, gap = self._resub[s]
            self._resub[s] = (now + gap, min(gap * 2, RESUBSCRIBE_MAX_S))
            name = self.watched.get(s)
            src = self.sources.get(name) if name is not None else None
            if src is None:
                continue
            try:
                await src.unsubscribe([s])
                await src.subscribe([s])
            except Exception as exc:
                log.warning("resubscribing stale %s at %s failed: %s", s, name, exc)
                self.audit.record("stream.resubscribe_failed", {"symbol": s, "source": name,
                                  "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
                continue
            self.audit.record("stream.resubscribed", {"symbol": s, "source": name, "next_gap_s": gap})
            log.info("stale %s subscribed again at %s", s, name)
        return due

    async def _watch_staleness(self) -> None:
        while True:
            await asyncio.sleep(self.stale_after_s / 4)
            self.check_staleness()
            try:
                await self.resubscribe_stale()
            except Exception:
                log.exception("resubscribing stale instruments failed")
