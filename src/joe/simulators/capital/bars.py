"""Bars of the Capital.com simulator: one UTC time grid for history and stream candles.

Every bar is stamped at its start in UTC, a multiple of its resolution (weeks start on Monday
00:00 UTC), as the real service does (recorded `GET /prices` bars start on the minute; `ohlc.event`
`t` is the bar start, spec §6.5 / §7.4). `LiveTape` aggregates the bid/ask the desk quotes into
MINUTE bars and folds coarser bars from them, so `GET /prices` and the streamed candles tell the
same story and the newest history bar is the forming one, closing at the live price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

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


class LiveTape:
    """MINUTE bars of every observed quote, per epic; coarser resolutions are folded on demand."""

    def __init__(self) -> None:
        self._minutes: dict[str, dict[datetime, QuoteBar]] = {}

    def observe(self, epic: str, ts: datetime, bid: Decimal, ask: Decimal) -> None:
        start = bar_start(ts, "MINUTE")
        book = self._minutes.setdefault(epic, {})
        bar = book.get(start)
        if bar is None:
            book[start] = QuoteBar.first(start, bid, ask)
            return
        bar.bid.add(bid)
        bar.ask.add(ask)
        bar.ticks += 1

    def first_start(self, epic: str) -> datetime | None:
        book = self._minutes.get(epic)
        return min(book) if book else None

    def bars(self, epic: str, resolution: str) -> list[QuoteBar]:
        """Every bar of `epic` at `resolution`, oldest first (copies: callers may keep them)."""
        out: dict[datetime, QuoteBar] = {}
        for start in sorted(self._minutes.get(epic, {})):
            m = self._minutes[epic][start]
            key = bar_start(start, resolution)
            bar = out.get(key)
            if bar is None:
                out[key] = QuoteBar(
                    key,
                    SideBar(m.bid.o, m.bid.h, m.bid.l, m.bid.c),
                    SideBar(m.ask.o, m.ask.h, m.ask.l, m.ask.c),
                    m.ticks,
                )
            else:
                bar.bid.merge(m.bid)
                bar.ask.merge(m.ask)
                bar.ticks += m.ticks
        return list(out.values())

    def bar(self, epic: str, resolution: str, start: datetime) -> QuoteBar | None:
        """The `resolution` bar that starts at `start`, folded from its minutes (None if no quote)."""
        book = self._minutes.get(epic, {})
        end = (
            start + timedelta(days=7)
            if resolution == "WEEK"
            else start + timedelta(seconds=RESOLUTION_SECONDS[resolution])
        )
        out: QuoteBar | None = None
        for t in sorted(k for k in book if start <= k < end):
            m = book[t]
            if out is None:
                out = QuoteBar(
                    start,
                    SideBar(m.bid.o, m.bid.h, m.bid.l, m.bid.c),
                    SideBar(m.ask.o, m.ask.h, m.ask.l, m.ask.c),
                    m.ticks,
                )
            else:
                out.bid.merge(m.bid)
                out.ask.merge(m.ask)
                out.ticks += m.ticks
        return out
