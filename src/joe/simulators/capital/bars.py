"""Bars of the Capital.com simulator: one UTC time grid for history and stream candles.

Every bar is stamped at its start in UTC, a multiple of its resolution (weeks start on Monday
00:00 UTC), as the real service does (recorded `GET /prices` bars start on the minute; `ohlc.event`
`t` is the bar start, spec §6.5 / §7.4). `LiveTape` folds every bid/ask the desk quotes into the
forming bar of each resolution (bounded ring buffers), so `GET /prices` and the streamed candles
tell the same story and the newest history bar is the forming one, closing at the live price.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

RESOLUTION_SECONDS = {
    "MINUTE": 60,
    "MINUTE_5": 300,
    "MINUTE_15": 900,
    "MINUTE_30": 1800,
    "HOUR": 3600,
    "HOUR_4": 14400,
    "DAY": 86400,
    "WEEK": 604800,
}


def bar_start(ts: datetime, resolution: str) -> datetime:
    """The UTC start of the `resolution` bar containing `ts` (aware or naive-UTC)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    if resolution == "WEEK":
        day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    step = RESOLUTION_SECONDS[resolution]
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


@dataclass(slots=True)
class SideBar:
    """Open/high/low/close of one side (bid or ask), exact grid Decimals."""

    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - the wire name
    c: Decimal

    def add(self, px: Decimal) -> None:
        self.h, self.l, self.c = max(self.h, px), min(self.l, px), px

    def merge(self, later: SideBar) -> None:
        self.h, self.l, self.c = max(self.h, later.h), min(self.l, later.l), later.c


@dataclass(slots=True)
class QuoteBar:
    """One bid+ask bar; `ticks` counts the quotes in it (the simulator's `lastTradedVolume`)."""

    start: datetime
    bid: SideBar
    ask: SideBar
    ticks: int = 1

    @classmethod
    def first(cls, start: datetime, bid: Decimal, ask: Decimal, ticks: int = 1) -> QuoteBar:
        return cls(start, SideBar(bid, bid, bid, bid), SideBar(ask, ask, ask, ask), ticks)

    def copy(self, start: datetime | None = None) -> QuoteBar:
        b, a = self.bid, self.ask
        return QuoteBar(
            self.start if start is None else start,
            SideBar(b.o, b.h, b.l, b.c),
            SideBar(a.o, a.h, a.l, a.c),
            self.ticks,
        )

    def merge(self, later: QuoteBar) -> QuoteBar:
        """This bar followed by `later`, as a new bar stamped at this one's start."""
        out = self.copy()
        out.bid.merge(later.bid)
        out.ask.merge(later.ask)
        out.ticks += later.ticks
        return out


MAX_LIVE_BARS = 1000  # per (epic, resolution): the most `GET /prices` serves (`max` ≤ 1000, spec §6.5)


class LiveTape:
    """The bars of every observed quote, per epic and resolution, each kept in a ring buffer.

    Every quote is folded into the forming bar of each resolution at once, so coarse bars need no
    minutes kept: memory is bounded by `max_bars` per (epic, resolution) however long the
    simulator runs (the oldest bars fall off; the seeded history covers earlier times).
    """

    def __init__(self, max_bars: int = MAX_LIVE_BARS) -> None:
        self.max_bars = max_bars
        self._bars: dict[str, dict[str, deque[QuoteBar]]] = {}
        self._spans: dict[str, dict[str, tuple[float, float]]] = {}  # forming bar: [start, end) epoch s

    def observe(self, epic: str, ts: datetime, bid: Decimal, ask: Decimal) -> None:
        book = self._bars.get(epic)
        if book is None:
            book = self._bars[epic] = {r: deque(maxlen=self.max_bars) for r in RESOLUTION_SECONDS}
            self._spans[epic] = {}
        spans = self._spans[epic]
        t = ts.timestamp()
        for resolution, ring in book.items():
            span = spans.get(resolution)
            if span is not None and span[0] <= t < span[1]:  # the forming bar (the hot path)
                last = ring[-1]
                last.bid.add(bid)
                last.ask.add(ask)
                last.ticks += 1
                continue
            start = bar_start(ts, resolution)
            if ring and start <= ring[-1].start:
                continue  # an older stamp (a clock that went back) changes nothing
            ring.append(QuoteBar.first(start, bid, ask))
            end = start + (
                timedelta(days=7)
                if resolution == "WEEK"
                else timedelta(seconds=RESOLUTION_SECONDS[resolution])
            )
            spans[resolution] = (start.timestamp(), end.timestamp())

    def bars(self, epic: str, resolution: str) -> list[QuoteBar]:
        """The kept bars of `epic` at `resolution`, oldest first (copies: callers may keep them)."""
        return [b.copy() for b in self._bars.get(epic, {}).get(resolution, ())]

    def bar(self, epic: str, resolution: str, start: datetime) -> QuoteBar | None:
        """A copy of the `resolution` bar that starts at `start` (None if not kept or no quote)."""
        for b in reversed(self._bars.get(epic, {}).get(resolution, ())):
            if b.start == start:
                return b.copy()
            if b.start < start:
                break
        return None

    def size(self) -> int:
        """How many bars are kept in all (a memory measure)."""
        return sum(len(r) for book in self._bars.values() for r in book.values())


HA_WARMUP = 30  # bars before the pushed one: each halves the seed's weight, 2^-30 is far below a tick


def _ha_side(sides: list[SideBar], tick: Decimal) -> SideBar:
    """Heikin-ashi of the last of `sides` (oldest first): close = (o+h+l+c)/4, open = the mean of
    the previous candle's heikin-ashi open and close (the first seeded at (o+c)/2), high/low the
    extremes of the bar and those two; every value on the `tick` grid."""

    def grid(x: Decimal) -> Decimal:
        return (x / tick).to_integral_value(ROUND_HALF_EVEN) * tick

    ha_o = grid((sides[0].o + sides[0].c) / 2)
    ha_c = grid((sides[0].o + sides[0].h + sides[0].l + sides[0].c) / 4)
    for s in sides[1:]:
        ha_o = grid((ha_o + ha_c) / 2)
        ha_c = grid((s.o + s.h + s.l + s.c) / 4)
    last = sides[-1]
    return SideBar(ha_o, max(last.h, ha_o, ha_c), min(last.l, ha_o, ha_c), ha_c)


def heikin_ashi(bars: list[QuoteBar], tick: Decimal) -> QuoteBar:
    """The heikin-ashi candle of the last of `bars` (classic bars, oldest first, not empty), bid and
    ask each from their own side; stamped at the last bar's start. Source of the formulas: the
    standard heikin-ashi definition (spec §7.3/§7.4: `type: "heikin-ashi"` candles of the same bars)."""
    last = bars[-1]
    return QuoteBar(
        last.start,
        _ha_side([b.bid for b in bars], tick),
        _ha_side([b.ask for b in bars], tick),
        last.ticks,
    )
