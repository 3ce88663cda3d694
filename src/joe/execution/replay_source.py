"""`ReplaySource`: recorded quotes (arrays, e.g. read from parquet) replayed into a `PriceStream`.

Two ways to replay, both through the stream's real `push_batch`:
- *as fast as possible* (`rate=None`): the quotes are handed on in chunks of `chunk`. This measures
  throughput. Every quote of a chunk is taken as arriving when its chunk is handed on, so its latency is
  the whole chunk's handling time (the first quote of a chunk waits for all the others);
- *paced* (`rate` quotes per second, open loop): quote i arrives at `start + i / rate` on `clock`,
  whether or not the stream keeps up. Each pass hands on every quote that has arrived by then (at most
  `chunk`), as a live source hands on what the socket delivered; a quote's latency runs from its
  arrival to the end of the `push_batch` that carried it, so it includes the wait behind the quotes
  before it in its batch and any backlog when the consumers fall behind.

Either way the replay yields to the event loop whenever it has nothing to hand on (paced: the next quote
has not arrived) and otherwise at least every `slice_s` (default 1 ms of `clock`), so the daemon's other
tasks wait at most that long behind it. It does not yield after every chunk: a file source has no
socket to wait on, and a loop pass per chunk (~4 µs on CPython 3.11) would be measured as quote-path
time that a live source pays once per network read, whatever Joe does with the quotes.

With `record_latency`, `quote_latencies` (seconds, float64, one per quote, in replay order) and
`batch_sizes` are filled: each pass notes only its end time (one clock reading, a list append) and the
per-quote figures are computed from those once the replay ends (or is stopped), so the measuring adds
no numpy call to the passes it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import numpy as np

from joe.execution.price_stream import QuoteSink
from joe.execution.quotes import FloatArray, QuoteBatch


class ReplaySource:
    """Replays `symbols[k]`'s recorded quotes (`inst` = k, `ts` int ns, `bid`, `ask`) into the stream.

    Raises `ValueError` when `chunk` < 1, `rate` is not > 0, `slice_s` < 0, or an instrument has no
    symbol.
    """

    name = "replay"

    def __init__(
        self,
        symbols: Sequence[str],
        inst: np.ndarray,
        ts: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
        *,
        chunk: int = 1024,
        record_latency: bool = False,
        rate: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
        slice_s: float = 0.001,
    ) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 quotes per second, got {rate}")
        if not slice_s >= 0:
            raise ValueError(f"slice_s must be >= 0 seconds, got {slice_s}")
        self.symbols = list(symbols)
        self.raw = QuoteBatch.of(inst, ts, bid, ask)
        if len(self.raw) and int(self.raw.inst.max()) >= len(self.symbols):
            raise ValueError(
                f"replay has instrument {int(self.raw.inst.max())} but only {len(self.symbols)} symbols"
            )
        self.chunk = chunk
        self.rate = rate
        self.clock = clock
        self.slice_s = slice_s  # the longest the replay holds the event loop between yields (s of `clock`)
        n = len(self.raw)
        # seconds from each quote's arrival to the end of the push_batch that carried it
        self.quote_latencies: FloatArray | None = np.zeros(n) if record_latency else None
        self.batch_sizes: list[int] = []
        self._ends: list[float] = []  # per pass: its end on `clock` (the end of its push_batch)
        self._starts: list[float] = []  # unpaced: per pass, when it was handed on
        self._t0 = 0.0  # paced: the clock when quote 0 arrived
        self.done = asyncio.Event()
        self._stream: QuoteSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._data: QuoteBatch | None = None
        self.error: BaseException | None = None  # what stopped the replay early (then `done` is set too)

    def bind(self, stream: QuoteSink) -> None:
        self._stream = stream
        lut = np.array([stream.instruments.id(s) for s in self.symbols], dtype=np.int32)
        r = self.raw
        self._data = QuoteBatch(lut[r.inst], r.ts, r.bid, r.ask)

    async def subscribe(self, symbols: Sequence[str]) -> None:
        return None  # a replay carries what it recorded

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        return None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="replay-source")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def _slice(self, i: int, k: int) -> QuoteBatch:
        d = self._data
        if d is None:
            raise RuntimeError("bind the source to a PriceStream first")
        return QuoteBatch(d.inst[i:k], d.ts[i:k], d.bid[i:k], d.ask[i:k])  # views, no copies

    def batches(self) -> list[QuoteBatch]:
        """The unpaced replay cut into chunks (views, no copies)."""
        n = len(self.raw)
        return [self._slice(i, min(n, i + self.chunk)) for i in range(0, n, self.chunk)]

    async def run(self) -> None:
        """Push every quote, then set `done`. A failure (a sink that raises) also sets `done`, with the
        exception in `error`, so a caller waiting on `done` is not left hanging."""
        try:
            if self._stream is None:
                raise RuntimeError("bind the source to a PriceStream first")
            if self.rate is None:
                await self._run_unpaced(self._stream)
            else:
                await self._run_paced(self._stream, self.rate)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._fill_latencies()
            self.done.set()

    def _fill_latencies(self) -> None:
        lat = self.quote_latencies
        if lat is None or not self._ends:
            return
        sizes = self.batch_sizes[: len(self._ends)]
        k = sum(sizes)
        ends = np.repeat(np.array(self._ends), sizes)
        if self.rate is None:  # every quote of a chunk arrived when the chunk was handed on
            lat[:k] = ends - np.repeat(np.array(self._starts), sizes)
        else:
            lat[:k] = ends - (self._t0 + np.arange(k) / self.rate)

    async def _run_unpaced(self, stream: QuoteSink) -> None:
        record, clock, n, slice_s = self.quote_latencies is not None, self.clock, len(self.raw), self.slice_s
        starts, ends, sizes = self._starts, self._ends, self.batch_sizes
        since = clock()  # the last yield to the loop
        for i in range(0, n, self.chunk):
            k = min(n, i + self.chunk)
            b = self._slice(i, k)
            t0 = clock()
            stream.push_batch(b)
            end = clock()
            if record:
                ends.append(end)
                starts.append(t0)
            sizes.append(k - i)
            if end - since >= slice_s:
                await asyncio.sleep(0)
                since = clock()
        await asyncio.sleep(0)

    async def _run_paced(self, stream: QuoteSink, rate: float) -> None:
        record, clock, n, slice_s = self.quote_latencies is not None, self.clock, len(self.raw), self.slice_s
        ends, sizes = self._ends, self.batch_sizes
        self._t0 = start = since = clock()
        i = 0
        while i < n:
            arrived = int((clock() - start) * rate) + 1  # quotes 0 .. arrived-1 have arrived
            k = min(n, i + self.chunk, arrived)
            if k <= i:
                await asyncio.sleep(0)  # the next quote has not arrived: let the loop run
                since = clock()
                continue
            stream.push_batch(self._slice(i, k))
            end = clock()
            if record:
                ends.append(end)
            sizes.append(k - i)
            i = k
            if end - since >= slice_s:
                await asyncio.sleep(0)
                since = clock()
