"""The seeded price path of one epic before the simulator started: one minute path, every resolution
folded from it.

Why one path: bars generated per resolution disagree (the HOUR close is not the last MINUTE close of
that hour; a DAY's range is not its minutes' range). Here the only random object is a MINUTE path of
mid prices; MINUTE_5 … WEEK bars are folds of it (open = first open, close = last close, high/low =
max/min), so every resolution tells the same story by construction.

Shape of the path: each trading day's close is a step of a random walk with the market's daily
volatility (`daily_vol`, a fraction: 0.012 = 1.2 %), walked backwards from the price the simulator
starts at; inside a day the minutes are a Brownian bridge between the previous close and the day's
close with per-minute sd = daily_vol / sqrt(1440) (so a minute moves ~0.03 % on a 1.2 % market, not
1-3 %). Each minute also gets a small excursion beyond its open/close for its high/low. Markets that
do not trade weekends have no bars on Saturday and Sunday (UTC). Everything is a pure function of
(seed, epic, trading-day offset from the newest complete trading day), computed lazily with numpy and cached.

Why offsets, not dates: a day's draws keyed by its calendar date made the history a different market on
each day the simulator ran (one day with signals, the next with none), so a test that needs a signal
passed or failed by the date. Keyed by "the n-th trading day before the newest complete one" (the
day before the start's while it trades, else the last one that did: Friday on a Saturday), the newest
complete day closing at the start's price and the start's own part of a day a driftless bridge, every
whole day is the same on any date, weekday and hour (only the start day's minutes follow the hour, and
none of them moves more than a minute's volatility allows).

Units: prices are mid floats; the caller puts bid/ask on the instrument's grid (a monotone map, so
the fold of gridded minutes equals the gridded fold).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np

from joe.simulators.capital.bars import RESOLUTION_SECONDS, bar_start
from joe.simulators.capital.catalog import MarketSpec

MINUTES_PER_DAY = 1440
HISTORY_DEPTH = {"DAY": 3000, "WEEK": 600}
DEFAULT_DEPTH = 2500
# Daily volatility per instrument type (fractions; typical orders of magnitude, not calibrated).
DAILY_VOL = {
    "CURRENCIES": 0.006,
    "INDICES": 0.010,
    "COMMODITIES": 0.015,
    "SHARES": 0.020,
    "CRYPTOCURRENCIES": 0.035,
}


def daily_vol(spec: MarketSpec) -> float:
    """The market's daily volatility (fraction of the price)."""
    return DAILY_VOL.get(spec.type, 0.012)


@dataclass(frozen=True, slots=True)
class MidBar:
    """One bar of mid prices: `start` is its UTC start; `volume` the sum of its minutes' volumes."""

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int

    def merge(self, later: MidBar) -> MidBar:
        """This bar followed by `later` (the fold: first open, last close, max high, min low)."""
        return MidBar(
            self.start,
            self.open,
            max(self.high, later.high),
            min(self.low, later.low),
            later.close,
            self.volume + later.volume,
        )


def _rng(seed: int, *parts: str) -> np.random.Generator:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def fold(bars: list[MidBar], start: datetime) -> MidBar:
    """One bar stamped `start` from consecutive `bars` (oldest first; not empty)."""
    out = MidBar(start, bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume)
    for b in bars[1:]:
        out = out.merge(b)
    return out


class SeededPath:
    """The minute path of one epic up to (not including) the minute of `anchor`, ending at `end_mid`.

    `bars(resolution)` are the complete bars before the bar that contains the anchor, oldest first;
    `prefix(resolution)` is the seeded part of that anchor bar (None if it has no seeded minute),
    which the live bars continue.
    """

    def __init__(self, seed: int, spec: MarketSpec, anchor: datetime, end_mid: float) -> None:
        self.seed = seed
        self.spec = spec
        self.vol = daily_vol(spec)
        self.anchor = bar_start(anchor, "MINUTE")
        self.day0 = bar_start(anchor, "DAY")
        m0 = int((self.anchor - self.day0).total_seconds() // 60)
        # The newest segment: the anchor's day up to the anchor if it trades and has begun, else the
        # whole trading day before it. Its day is offset 0 of every seed key (`key`).
        if self.trades(self.day0) and m0 > 0:
            self.newest: tuple[datetime, int] = (self.day0, m0)
        else:
            self.newest = (self._prev_trading(self.day0), MINUTES_PER_DAY)
        # Offset 0 of every seed key: the newest *complete* trading day (the day before a partial one).
        self.base = self.newest[0] if self.newest[1] == MINUTES_PER_DAY else self._prev_trading(self.day0)
        self.end_mid = end_mid
        # Segments, newest first: (day start, minutes); segment 0 may be the anchor day's part.
        self._segs: list[tuple[datetime, int]] = []
        self._closes: list[float] = [end_mid]  # close of segment k; the open of k is closes[k + 1]
        self._index: dict[datetime, int] = {}
        self._bars: dict[str, list[MidBar]] = {}
        self.minutes = lru_cache(maxsize=64)(self._minutes)
        self.day_volumes = lru_cache(maxsize=64)(self._day_volumes)
        self.day_sums = lru_cache(maxsize=16)(self._day_sums)
        self.day = lru_cache(maxsize=8192)(self._day)

    # ------------------------------------------------------------------ segments
    def trades(self, day: datetime) -> bool:
        return self.spec.weekends or day.weekday() < 5

    def _extend(self, k: int) -> None:
        """Make segments 0..k (and the close before segment k) exist."""
        while len(self._segs) <= k:
            if not self._segs:
                day, m = self.newest
            else:
                day, m = self._prev_trading(self._segs[-1][0]), MINUTES_PER_DAY
            self._index[day] = len(self._segs)
            self._segs.append((day, m))
            # The newest complete day's close is the start's price whatever the hour: the partial day
            # before the start is a driftless bridge (no whole day's move squeezed into its minutes).
            r = (
                0.0
                if m < MINUTES_PER_DAY
                else float(_rng(self.seed, self.spec.epic, "day", self.key(day)).normal(0.0, self.vol))
            )
            self._closes.append(self._closes[-1] / math.exp(r))

    def key(self, day: datetime) -> str:
        """The seed key of `day` (a UTC day start): its trading-day offset from `base` (the newest
        complete trading day before the start), e.g. "d0" for that day, "d-1" for the trading day before
        it, "d2" two trading days after (live days). A weekend day of a weekday market shares the offset
        of the Monday after it (it is never drawn)."""
        a, b = self.base.date(), day.date()
        if self.spec.weekends:
            n = (b - a).days
        else:
            n = int(np.busday_count(a, b)) if b >= a else -int(np.busday_count(b, a))
        return f"d{n}"

    def _prev_trading(self, day: datetime) -> datetime:
        day -= timedelta(days=1)
        while not self.trades(day):
            day -= timedelta(days=1)
        return day

    def segment(self, k: int) -> tuple[datetime, int, float, float]:
        """(day start, minutes, open mid, close mid) of segment k (0 = newest)."""
        self._extend(k + 1)
        day, m = self._segs[k]
        return day, m, self._closes[k + 1], self._closes[k]

    # ------------------------------------------------------------------ one day
    def _minutes(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(open, high, low, close, volume) arrays of segment k's minutes, oldest first."""
        day, n, open_, close = self.segment(k)
        rng = _rng(self.seed, self.spec.epic, "minutes", self.key(day))
        sd = self.vol / math.sqrt(MINUTES_PER_DAY)
        walk = np.cumsum(rng.normal(0.0, sd, n))
        frac = np.arange(1, n + 1) / n
        log_path = math.log(open_) + frac * (math.log(close) - math.log(open_)) + walk - frac * walk[-1]
        c = np.exp(log_path)
        c[-1] = close  # the bridge ends exactly on the day's close
        o = np.concatenate(([open_], c[:-1]))
        reach = np.abs(rng.normal(0.0, sd / 2, (2, n)))  # the minute's excursion past its open/close
        h = np.maximum(o, c) * np.exp(reach[0])
        lo = np.minimum(o, c) * np.exp(-reach[1])
        return o, h, lo, c, self.day_volumes(day)[:n]

    # ------------------------------------------------------------------ the one volume path
    def _day_volumes(self, day: datetime) -> np.ndarray:
        """The traded volume of each of the day's 1440 minutes (zeros on a day the market is shut).

        One array per (seed, epic, trading-day offset), for seeded and live minutes alike: a bar's
        volume is the sum of its minutes' wherever the simulator's start falls, so no jump at the seam.
        """
        if not self.trades(day):
            return np.zeros(MINUTES_PER_DAY, dtype=np.int64)
        rng = _rng(self.seed, self.spec.epic, "volume", self.key(day))
        return rng.integers(1, 60, MINUTES_PER_DAY).astype(np.int64)

    def _day_sums(self, day_s: int) -> tuple[list[int], list[int]]:
        """(minute volumes, prefix sums) of the UTC day starting at epoch second `day_s`, as ints."""
        vols = self.day_volumes(datetime.fromtimestamp(day_s, UTC))
        return [int(v) for v in vols], [0, *(int(x) for x in np.cumsum(vols))]

    def volume(self, start: datetime, end: datetime) -> int:
        """The volume traded in [start, end): whole minutes summed, a forming minute pro rata, rounded up.

        It is `count(end) - count(start)` of one integer count per UTC day (`_count`), so the volumes of
        adjacent spans add up exactly (a bar's is the sum of its finer bars', forming ones included), a
        forming bar's volume only grows, and a trading minute that has begun counts at least 1: a daily
        bar 30 s into its day never reads 0 (Joe excludes a zero-volume last bar as `volume_missing`)."""
        t0, t1 = start.timestamp(), end.timestamp()
        total = 0
        day_s = int(t0 // 86400) * 86400
        while day_s < t1:
            a = (max(t0, day_s) - day_s) / 60  # minutes into the day
            b = (min(t1, day_s + 86400) - day_s) / 60
            if b > a:
                total += self._count(day_s, b) - self._count(day_s, a)
            day_s += 86400
        return total

    def _count(self, day_s: int, x: float) -> int:
        """The volume of the UTC day starting at epoch second `day_s` from 00:00 to `x` minutes into it:
        the whole minutes' sum, plus the forming minute's volume × the part of it passed, rounded up."""
        vols, cum = self.day_sums(day_s)
        i = math.floor(x)
        if i >= MINUTES_PER_DAY:
            return cum[MINUTES_PER_DAY]
        return cum[i] + math.ceil(vols[i] * (x - i))

    def _groups(self, k: int, minutes_per_bar: int) -> list[MidBar]:
        """Segment k folded into bars of `minutes_per_bar` minutes (the last may be partial)."""
        day, n, _, _ = self.segment(k)
        o, h, lo, c, vol = self.minutes(k)
        idx = np.arange(0, n, minutes_per_bar)
        highs, lows = np.maximum.reduceat(h, idx), np.minimum.reduceat(lo, idx)
        vols = np.add.reduceat(vol, idx)
        ends = np.minimum(idx + minutes_per_bar, n) - 1
        return [
            MidBar(
                day + timedelta(minutes=int(i)),
                float(o[i]),
                float(highs[j]),
                float(lows[j]),
                float(c[ends[j]]),
                int(vols[j]),
            )
            for j, i in enumerate(idx)
        ]

    def _day(self, k: int) -> MidBar:
        return self._groups(k, MINUTES_PER_DAY)[0]

    # ------------------------------------------------------------------ every resolution
    def bars(self, resolution: str, n: int | None = None) -> list[MidBar]:
        """The newest `n` (default: the resolution's whole depth) complete seeded bars before the
        anchor's bar, oldest first. Built only as deep as asked (a DAY bar costs a day of minutes)."""
        full = HISTORY_DEPTH.get(resolution, DEFAULT_DEPTH)
        want = full if n is None else max(0, min(n, full))
        have = self._bars.get(resolution, [])
        if len(have) < want:
            have = self._build(resolution, min(full, max(want, 2 * len(have))))
            self._bars[resolution] = have
        return have[len(have) - want :]

    def last_close_before(self, day: datetime) -> float:
        """The mid close of the newest trading day that ends by `day` (no minutes computed)."""
        k = 0
        while True:
            seg_day, n, _, close = self.segment(k)
            if seg_day + timedelta(minutes=n) <= day:
                return close
            k += 1

    def _build(self, resolution: str, depth: int) -> list[MidBar]:
        cut = bar_start(self.anchor, resolution)
        out: list[MidBar] = []
        k = 0
        if resolution == "WEEK":
            week: list[MidBar] = []
            while len(out) < depth:
                day = self.day(k)
                if week and bar_start(day.start, "WEEK") != bar_start(week[0].start, "WEEK"):
                    out.append(fold(week[::-1], bar_start(week[0].start, "WEEK")))
                    week = []
                if bar_start(day.start, "WEEK") < cut:
                    week.append(day)
                k += 1
            return out[::-1]
        step = RESOLUTION_SECONDS[resolution] // 60
        while len(out) < depth:
            groups = [self.day(k)] if resolution == "DAY" else self._groups(k, step)
            out.extend(b for b in reversed(groups) if b.start < cut)
            k += 1
        return out[:depth][::-1]

    def prefix(self, resolution: str) -> MidBar | None:
        """The seeded minutes of the bar that contains the anchor, folded; None if it has none."""
        cut = bar_start(self.anchor, resolution)
        parts: list[MidBar] = []
        k = 0
        while True:
            day, n, _, _ = self.segment(k)
            if day + timedelta(minutes=n) <= cut:
                break
            if resolution in ("DAY", "WEEK"):
                parts.append(self.day(k))
            else:
                o, h, lo, c, vol = self.minutes(k)
                first = max(0, int((cut - day).total_seconds() // 60))
                parts.append(
                    MidBar(
                        cut,
                        float(o[first]),
                        float(h[first:].max()),
                        float(lo[first:].min()),
                        float(c[-1]),
                        int(vol[first:].sum()),
                    )
                )
            k += 1
        return fold(parts[::-1], cut) if parts else None
