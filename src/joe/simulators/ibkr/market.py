"""Simulated market facts: the scanner universe, deterministic history and scanner rankings.

History is a seeded geometric random walk per (seed, symbol) that ends at the symbol's current
simulated mid, so history, quotes and fills agree with each other.
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from joe.data.calendars import calendar_for
from joe.simulators.ibkr.codec import SimBar

DEFAULT_UNIVERSE: tuple[str, ...] = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "NFLX", "INTC",
    "ORCL", "CRM", "ADBE", "CSCO", "QCOM", "AVGO", "TXN", "PYPL", "UBER", "SHOP",
    "JPM", "BAC", "XOM", "CVX", "KO", "PEP", "WMT", "DIS", "NKE", "BA",
)  # fmt: skip

# Scan codes the scanner needs, and how the simulator ranks for each: (stat, descending).
SCAN_CODES: dict[str, tuple[str, bool]] = {
    "TOP_PERC_GAIN": ("change", True),
    "TOP_PERC_LOSE": ("change", False),
    "MOST_ACTIVE": ("volume", True),
    "HOT_BY_VOLUME": ("volume_ratio", True),
    "TOP_OPEN_PERC_GAIN": ("gap", True),
    "TOP_OPEN_PERC_LOSE": ("gap", False),
    "HIGH_OPEN_GAP": ("gap", True),
    "LOW_OPEN_GAP": ("gap", False),
    "TOP_TRADE_COUNT": ("volume", True),
    "HOT_BY_PRICE": ("change", True),
}

BAR_SECONDS = {
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "4 hours": 14400,
    "1 day": 86400, "1 week": 7 * 86400,
}  # fmt: skip

CENT = Decimal("0.01")


def _rng(seed: int, *parts: str) -> random.Random:
    key = ":".join([str(seed), *parts]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def _d(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(CENT, ROUND_HALF_UP)


def symbol_stats(seed: int, symbol: str) -> dict[str, float]:
    """Deterministic scanner statistics for one symbol (percent change, gap, volume)."""
    r = _rng(seed, "stats", symbol)
    volume = r.uniform(2e5, 5e7)
    return {
        "change": r.gauss(0.0, 3.0),
        "gap": r.gauss(0.0, 2.0),
        "volume": volume,
        "volume_ratio": volume / r.uniform(2e5, 5e7),
    }


def rank(seed: int, universe: list[str], scan_code: str, rows: int) -> list[str]:
    """Symbols for `scan_code` in rank order; an unknown code ranks nothing."""
    spec = SCAN_CODES.get(scan_code.upper())
    if spec is None:
        return []
    stat, desc = spec
    scored = sorted(universe, key=lambda s: symbol_stats(seed, s)[stat], reverse=desc)
    return scored[: max(0, rows)]


def _times(end: datetime, bar_size: str, count: int) -> list[datetime]:
    step = BAR_SECONDS.get(bar_size, 86400)
    out: list[datetime] = []
    if step == 86400:
        # Daily bars on NYSE sessions: no bar on a holiday (Thanksgiving) or a weekend.
        days = calendar_for("XNYS").trading_days(end.date(), count)
        d = (days[0] if days else end.date()) - timedelta(days=1)
        while len(days) < count:  # before the calendar's data: plain weekdays
            if d.weekday() < 5:
                days.insert(0, d)
            d -= timedelta(days=1)
        return [datetime(x.year, x.month, x.day, tzinfo=UTC) for x in days]
    if step > 86400:
        d = end.date()
        while len(out) < count:
            if d.weekday() < 5:
                out.append(datetime(d.year, d.month, d.day, tzinfo=UTC))
            d -= timedelta(days=7)
    else:
        t = end.replace(second=0, microsecond=0)
        t -= timedelta(seconds=t.timestamp() % step)
        while len(out) < count:
            out.append(t)
            t -= timedelta(seconds=step)
    out.reverse()
    return out


def make_bars(
    seed: int, symbol: str, last_close: float, bar_size: str, count: int, end: datetime | None = None
) -> list[SimBar]:
    """`count` bars of `bar_size` ending at `end` (default now) whose last close is `last_close`.

    Every draw of a bar (its return, open, wick and volume) is taken newest first, so the newest N bars
    are the same whatever `count` is. Why: `count` follows the request's duration and the date (the
    sessions in "1 Y" differ from one day to the next); drawn oldest first, every open, high and low
    moved with it and the market was a different one on each day the simulator ran."""
    end = end or datetime.now(UTC)
    times = _times(end, bar_size, max(1, count))
    r = _rng(seed, "hist", symbol, bar_size)
    step = BAR_SECONDS.get(bar_size, 86400)
    vol = 0.018 * math.sqrt(min(step, 86400) / 86400)
    daily = step >= 86400
    # Walk backwards from the last close so the series ends exactly at the current price.
    close = last_close
    bars: list[SimBar] = []
    for t in reversed(times):
        prev = close / math.exp(r.gauss(0.0003, vol))
        open_ = prev * math.exp(r.gauss(0.0, vol / 3))
        high = max(open_, close) * (1 + abs(r.gauss(0.0, vol / 2)))
        low = min(open_, close) * (1 - abs(r.gauss(0.0, vol / 2)))
        text = t.strftime("%Y%m%d") if daily else t.strftime("%Y%m%d %H:%M:%S UTC")
        volume = int(r.uniform(1e5, 5e6) * (1 if daily else step / 86400))
        bars.append(SimBar(text, _d(open_), _d(high), _d(low), _d(close), max(volume, 1)))
        close = prev
    bars.reverse()
    return bars


def mirrored(bars: list[SimBar]) -> list[SimBar]:
    """`bars` turned upside down around their last close L: each price x becomes L²/x (high and low
    swap), so every return is negated and the series still ends at L. A market that turned: the test
    control `POST /_sim/history {"symbol", "mirror": true}` serves a symbol's history this way."""
    if not bars:
        return bars
    last = float(bars[-1].close)

    def m(x: Decimal) -> Decimal:
        return _d(last * last / float(x)) if x > 0 else x

    return [SimBar(b.date, m(b.open), m(b.low), m(b.high), m(b.close), b.volume) for b in bars]


def parse_end(end: str, now: datetime | None = None) -> datetime:
    """Parse the endDateTime of a historical request ("" = `now`, the simulator's clock)."""
    now = now or datetime.now(UTC)
    if not end:
        return now
    parts = end.split()
    try:
        if len(parts[0]) == 8 and len(parts) == 1:
            d = date(int(end[:4]), int(end[4:6]), int(end[6:8]))
            return datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=UTC)
        return datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S").replace(tzinfo=UTC)
    except (ValueError, IndexError):
        return now


def bars_for_duration(duration_days: int, bar_size: str, end: datetime | None = None) -> int:
    """How many bars a duration ending at `end` covers (trading days for daily bars, 6.5 h sessions
    intraday).

    Daily bars: 5/7 of the calendar days, but never fewer than the weekdays from `end - duration`'s
    date to `end`'s date, so every session inside the window is served (a "3 D" request at 00:40 UTC
    on a Wednesday reaches back to Sunday: Monday, Tuesday and Wednesday; 3 * 5 // 7 alone is 2 bars,
    and the client that asked from Monday's bar lost it). A bar or two before the window is harmless:
    the client keeps the bars from its start on."""
    step = BAR_SECONDS.get(bar_size, 86400)
    if step >= 7 * 86400:
        return max(1, duration_days // 7)
    if step >= 86400:
        approx = max(1, duration_days * 5 // 7)
        if end is None:
            return approx
        first, last = (end - timedelta(days=duration_days)).date(), end.date()
        weekdays = int(np.busday_count(first, last + timedelta(days=1)))  # first..last, both included
        return max(approx, weekdays)
    return max(1, int(duration_days * 5 / 7 * 6.5 * 3600 // step))
