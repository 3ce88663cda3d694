"""Deterministic, seeded price processes per instrument for the simulators.

Each symbol gets its own random stream derived from (seed, symbol), so a test that asks for AAPL
sees the same path no matter which other symbols exist or in which order they were created.
Prices move as a geometric random walk per step; bid/ask sit around the mid at a fixed spread.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True, slots=True)
class SimQuote:
    """One simulated top-of-book quote."""

    symbol: str
    bid: Decimal
    ask: Decimal
    seq: int

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


def on_grid(x: float | Decimal, tick: Decimal) -> Decimal:
    """`x` rounded half-up to the nearest multiple of `tick`, as an exact Decimal.

    `float(on_grid(...))` is the shortest float that prints as the grid value (24.121, never
    24.120999999999998), so JSON answers carry no float noise.
    """
    if isinstance(x, Decimal):
        return ((x / tick).to_integral_value(ROUND_HALF_UP) * tick).quantize(tick)
    # Floats (the hot path: every quote and history bar): count ticks in float, then exact Decimal.
    return Decimal(math.floor(x / float(tick) + 0.5)) * tick


def _stream_seed(seed: int, symbol: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{symbol}".encode()).digest()[:8], "big")


class PriceProcess:
    """A seeded random walk for one symbol: `step()` advances one tick and returns the quote."""

    def __init__(
        self,
        symbol: str,
        *,
        seed: int = 1,
        start: float | None = None,
        vol_per_step: float = 0.0008,
        spread_bps: float = 2.0,
        tick: Decimal = Decimal("0.01"),
    ) -> None:
        self.symbol = symbol
        self._rng = random.Random(_stream_seed(seed, symbol))
        self._mid = start if start is not None else 20.0 + self._rng.random() * 280.0
        self.vol = vol_per_step
        self.spread_bps = spread_bps
        self.tick = tick
        self.seq = 0
        self._quote = self._make_quote()

    def bid_ask(self, mid: float) -> tuple[Decimal, Decimal]:
        """The (bid, ask) this process quotes around `mid`: its spread, both on the tick grid.

        Used for the live quote and for generated history, so both share one spread and grid.
        """
        half = max(mid * self.spread_bps / 20_000.0, float(self.tick) / 2)
        bid = on_grid(mid - half, self.tick)
        ask = on_grid(mid + half, self.tick)
        if ask <= bid:
            ask = bid + self.tick
        return bid, ask

    def _make_quote(self) -> SimQuote:
        bid, ask = self.bid_ask(self._mid)
        return SimQuote(self.symbol, bid, ask, self.seq)

    @property
    def quote(self) -> SimQuote:
        """The current quote (does not advance)."""
        return self._quote

    @property
    def mid(self) -> float:
        """The process's current mid (its quote is `bid_ask(mid)`)."""
        return self._mid

    def step(self) -> SimQuote:
        """Advance one tick and return the new quote."""
        self.seq += 1
        self._mid *= math.exp(self._rng.gauss(0.0, self.vol))
        self._quote = self._make_quote()
        return self._quote

    def set_mid(self, mid: float) -> SimQuote:
        """Script the price (tests: push through a stop or a target)."""
        self.seq += 1
        self._mid = mid
        self._quote = self._make_quote()
        return self._quote


class PriceBook:
    """All price processes of one simulator, created on first use."""

    def __init__(self, seed: int = 1, **defaults: float) -> None:
        self.seed = seed
        self._defaults = defaults
        self._procs: dict[str, PriceProcess] = {}

    def process(self, symbol: str, start: float | None = None) -> PriceProcess:
        proc = self._procs.get(symbol)
        if proc is None:
            proc = PriceProcess(symbol, seed=self.seed, start=start, **self._defaults)  # type: ignore[arg-type]
            self._procs[symbol] = proc
        return proc

    def quote(self, symbol: str) -> SimQuote:
        return self.process(symbol).quote

    def step_all(self) -> list[SimQuote]:
        return [p.step() for p in self._procs.values()]

    @property
    def symbols(self) -> list[str]:
        return list(self._procs)
