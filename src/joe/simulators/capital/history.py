"""`GET /prices` and the day's numbers of the Capital.com simulator: the seeded path, then the live tape.

Before the simulator started, bars come from the epic's one seeded minute path (`path.SeededPath`);
from then on from the live tape of the quotes it sent (`bars.LiveTape`). The bar that contains the
start joins both: its seeded minutes are folded in front of its live part, so at every resolution
open = first open, close = last close, high/low = max/min of the minutes, the newest (forming) bar
closes at the live price, and the snapshot's high/low is the day's range so far.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from joe.simulators.capital.bars import RESOLUTION_SECONDS, LiveTape, QuoteBar, SideBar, bar_start
from joe.simulators.capital.exchange import Exchange, fmt
from joe.simulators.capital.path import MidBar, SeededPath
from joe.simulators.capital.rules import ApiError

_DATE_FMT = "%Y-%m-%dT%H:%M:%S"


def parse_qdate(value: str, code: str) -> datetime:
    """A query date `YYYY-MM-DDTHH:MM:SS` (UTC, no offset, spec §10 quirk 9); else a 400 `code`."""
    try:
        return datetime.strptime(value, _DATE_FMT).replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(400, code) from None


class HistoryStore:
    """Price bars per (epic, resolution): the seeded path up to the simulator's start, then live."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.anchor = ex.now()
        self.tape = LiveTape()
        self._start_mid = {epic: proc.mid for epic, proc in ex.prices.items()}
        self._paths: dict[str, SeededPath] = {}
        # Epics whose seeded history is served upside down (`POST /_sim/history`): the market turned.
        self.mirrored: set[str] = set()
        for epic in ex.prices:
            self.observe(epic)
        # Epics the tape holds no quote of at the start (a weekday market on a weekend): their start's
        # bar is made of seeded minutes alone. For the others a tape that no longer begins with the
        # start's bar has dropped it (a bounded ring), and no seeded-only bar goes in front.
        self._unquoted_start = {e for e in ex.prices if not self.tape.bars(e, "MINUTE")}

    def observe(self, epic: str) -> None:
        """Record the desk's current quote of `epic` on the live tape (call after each price change)."""
        now = self.ex.now()
        if not self.path(epic).trades(bar_start(now, "DAY")):
            return  # a weekday market has no bar on a Saturday or Sunday (UTC), seeded or live
        bid, ask = self.ex.quote(epic)
        self.tape.observe(epic, now, bid, ask)

    def path(self, epic: str) -> SeededPath:
        p = self._paths.get(epic)
        if p is None:
            p = self._paths[epic] = SeededPath(
                self.ex.seed, self.ex.spec(epic), self.anchor, self._start_mid[epic]
            )
        return p

    # ------------------------------------------------------------------ mid bars → grid bars
    def quoted(self, epic: str, b: MidBar) -> QuoteBar:
        """A seeded mid bar as bid/ask on the instrument's grid (the live spread; a monotone map)."""
        proc = self.ex.prices[epic]
        if epic in self.mirrored:
            b = self._mirror(epic, b)
        o, h, lo, c = (proc.bid_ask(x) for x in (b.open, b.high, b.low, b.close))
        return QuoteBar(
            b.start,
            SideBar(o[0], h[0], lo[0], c[0]),
            SideBar(o[1], h[1], lo[1], c[1]),
            b.volume,
        )

    def _mirror(self, epic: str, b: MidBar) -> MidBar:
        """`b` turned upside down around the seeded path's end E (x → E²/x, high and low swap): every
        return negated, the path still ending at E where the live tape goes on."""
        e2 = self._start_mid[epic] ** 2
        return MidBar(b.start, e2 / b.open, e2 / b.low, e2 / b.high, e2 / b.close, b.volume)

    def generated(self, epic: str, resolution: str, n: int | None = None) -> list[QuoteBar]:
        """The newest `n` (default all) complete seeded bars before the start's bar, on the grid."""
        return [self.quoted(epic, b) for b in self.path(epic).bars(resolution, n)]

    def live(self, epic: str, resolution: str) -> list[QuoteBar]:
        """The live bars, the start's bar with its seeded minutes folded in front."""
        bars = self.tape.bars(epic, resolution)
        first = bar_start(self.anchor, resolution)
        if bars and bars[0].start == first:
            bars[0] = self._joined(epic, resolution, bars[0])
        elif epic in self._unquoted_start and (not bars or bars[0].start > first):  # a weekend start:
            prefix = self.path(epic).prefix(resolution)  # its seeded days are still a bar (the WEEK)
            if prefix is not None:
                bars.insert(0, self.quoted(epic, prefix))
        return [self._volume(epic, resolution, b) for b in bars]

    def _volume(self, epic: str, resolution: str, b: QuoteBar) -> QuoteBar:
        """`b` with the epic's one volume path over its span so far (seeded and live minutes alike;
        `SeededPath.volume`), not the count of the simulator's own price steps."""
        end = min(b.start + timedelta(seconds=RESOLUTION_SECONDS[resolution]), self.ex.now())
        b.ticks = self.path(epic).volume(b.start, end)
        return b

    def _joined(self, epic: str, resolution: str, live: QuoteBar) -> QuoteBar:
        prefix = self.path(epic).prefix(resolution)
        return live if prefix is None else self.quoted(epic, prefix).merge(live)

    def bar(self, epic: str, resolution: str, start: datetime) -> QuoteBar | None:
        """The live `resolution` bar starting at `start` (joined to its seeded minutes), or None."""
        bar = self.tape.bar(epic, resolution, start)
        if bar is not None and start == bar_start(self.anchor, resolution):
            bar = self._joined(epic, resolution, bar)
        return None if bar is None else self._volume(epic, resolution, bar)

    def bars(self, epic: str, resolution: str) -> list[QuoteBar]:
        """Seeded history followed by the live bars, oldest first, each stamped at its UTC start."""
        return [*self.generated(epic, resolution), *self.live(epic, resolution)]

    def window(
        self, epic: str, resolution: str, lo: datetime | None, hi: datetime | None, max_n: int
    ) -> list[QuoteBar]:
        """Bars starting in [lo, hi] (either open): the first `max_n` from `lo`, else the last `max_n`.

        Only as many seeded bars as the window can reach are built and put on the grid.
        """
        live = [b for b in self.live(epic, resolution) if (hi is None or b.start <= hi)]
        if lo is not None:
            live = [b for b in live if b.start >= lo]
        need = max_n - len(live) if lo is None else max_n
        if lo is not None:
            step = RESOLUTION_SECONDS[resolution]
            reach = int((bar_start(self.anchor, resolution) - lo).total_seconds() // step) + 1
            need = max(0, reach)
        seeded = [
            b
            for b in self.path(epic).bars(resolution, need)
            if (lo is None or b.start >= lo) and (hi is None or b.start <= hi)
        ]
        if lo is not None:
            take = seeded[:max_n]
            return [*(self.quoted(epic, b) for b in take), *live[: max_n - len(take)]]
        live = live[-max_n:]
        take = seeded[-(max_n - len(live)) :] if max_n > len(live) else []
        return [*(self.quoted(epic, b) for b in take), *live]

    # ------------------------------------------------------------------ the day's numbers
    def day_bar(self, epic: str) -> QuoteBar:
        """Today's (UTC) bar so far, seeded minutes included; it always holds the current quote."""
        now = self.ex.now()
        bar = self.bar(epic, "DAY", bar_start(now, "DAY"))
        if bar is None:
            bid, ask = self.ex.quote(epic)
            bar = QuoteBar.first(bar_start(now, "DAY"), bid, ask)
        return bar

    def prev_close(self, epic: str) -> Decimal:
        """The bid close of the last trading day before today (UTC): the base of `netChange`."""
        today = bar_start(self.ex.now(), "DAY")
        before = [b for b in self.tape.bars(epic, "DAY") if b.start < today]
        if before:
            return before[-1].bid.c
        close = self.path(epic).last_close_before(today)
        if epic in self.mirrored:
            close = self._start_mid[epic] ** 2 / close
        return self.ex.prices[epic].bid_ask(close)[0]

    # ------------------------------------------------------------------ GET /prices
    def prices(self, epic: str, query: dict[str, str]) -> dict[str, Any]:
        """`GET /prices/{epic}` with the reported range rules (spec §6.5).

        Without `from`/`to` the answer ends with the current (forming) bar, as recorded.
        """
        spec = self.ex.spec(epic)
        resolution = query.get("resolution", "MINUTE")
        if resolution not in RESOLUTION_SECONDS:
            raise ApiError(400, "error.invalid.resolution")
        try:
            max_n = int(query.get("max", "10"))
        except ValueError:
            raise ApiError(400, "error.invalid.max") from None
        if not 1 <= max_n <= 1000:
            raise ApiError(400, "error.invalid.max")
        lo = parse_qdate(query["from"], "error.invalid.from") if "from" in query else None
        hi = parse_qdate(query["to"], "error.invalid.to") if "to" in query else None
        now = self.ex.now()
        if hi is not None and hi > now:
            raise ApiError(400, "error.invalid.daterange")
        if lo is not None and hi is not None:
            if lo > hi:
                raise ApiError(400, "error.invalid.daterange")
            if (hi - lo).total_seconds() > (max_n - 1) * RESOLUTION_SECONDS[resolution]:
                raise ApiError(400, "error.invalid.max.daterange")
        self.observe(epic)  # the forming bar reaches the live quote even between price steps
        sel = self.window(epic, resolution, lo, hi, max_n)
        if not sel:
            raise ApiError(404, "error.prices.not-found")

        def side(b: QuoteBar, field: str) -> dict[str, float]:
            return {"bid": float(getattr(b.bid, field)), "ask": float(getattr(b.ask, field))}

        return {
            "prices": [
                {
                    "snapshotTime": fmt(b.start + self.ex.tz_offset, False),
                    "snapshotTimeUTC": fmt(b.start, False),
                    "openPrice": side(b, "o"),
                    "closePrice": side(b, "c"),
                    "highPrice": side(b, "h"),
                    "lowPrice": side(b, "l"),
                    "lastTradedVolume": b.ticks,
                }
                for b in sel
            ],
            "instrumentType": spec.type,
        }
