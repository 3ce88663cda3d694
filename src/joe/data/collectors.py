"""Named collectors over any `MarketData` source: stocks, crypto, and after-hours movers/gaps.

They are thin on purpose: pick instruments from the source's universe, fetch their histories
concurrently (bounded, so broker sources are not flooded), and report per-symbol failures instead of
hiding them or failing the whole batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from joe.brokers.base import MarketData
from joe.core.models import AssetClass, Instrument

NEW_YORK = ZoneInfo("America/New_York")
REGULAR_OPEN, REGULAR_CLOSE = time(9, 30), time(16, 0)


@dataclass(slots=True)
class Collected:
    """What a collector fetched: frames by symbol, the instruments, and the symbols that failed (why)."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class HistoryCollector:
    """Fetches histories from a source concurrently; the subclasses narrow the universe by asset class."""

    asset_classes: frozenset[AssetClass] = frozenset(AssetClass)

    def __init__(self, source: MarketData, *, concurrency: int = 16, min_bars: int = 1) -> None:
        self.source = source
        self.concurrency = concurrency
        self.min_bars = min_bars

    async def instruments(self, scan: str | None = None) -> list[Instrument]:
        """The source's universe (or `scan`) filtered to this collector's asset classes."""
        return [i for i in await self.source.universe(scan) if i.asset_class in self.asset_classes]

    async def collect(
        self,
        symbols: Iterable[str] | None = None,
        *,
        timeframe: str = "1d",
        start: datetime | None = None,
        end: datetime | None = None,
        scan: str | None = None,
    ) -> Collected:
        """Fetch histories of `symbols` (default: this collector's part of the universe) concurrently.

        Symbols that fail, or have fewer than `min_bars` bars, are reported in `Collected.errors`.
        """
        universe = {i.symbol: i for i in await self.instruments(scan)}
        wanted = list(universe) if symbols is None else list(symbols)
        out = await self.collect_symbols(wanted, timeframe=timeframe, start=start, end=end)
        out.instruments = {s: universe[s] for s in out.frames if s in universe}
        return out

    async def collect_symbols(
        self,
        symbols: Iterable[str],
        *,
        timeframe: str = "1d",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Collected:
        """Fetch histories of exactly `symbols` (no universe look-up), at most `concurrency` at a time."""
        sem = asyncio.Semaphore(self.concurrency)

        async def one(sym: str) -> tuple[str, pd.DataFrame | None, str]:
            async with sem:
                try:
                    f = await self.source.history(sym, timeframe, start, end)
                except Exception as exc:  # one bad symbol must not sink the batch; it is reported
                    return sym, None, f"{type(exc).__name__}: {exc}"
            if len(f) < self.min_bars:
                return sym, None, f"only {len(f)} bars (need {self.min_bars})"
            return sym, f, ""

        out = Collected()
        for sym, frame, err in await asyncio.gather(*(one(s) for s in dict.fromkeys(symbols))):
            if frame is None:
                out.errors[sym] = err
            else:
                out.frames[sym] = frame
        return out


class StockDataCollector(HistoryCollector):
    """Equities, ETFs and indices from a source (the roadmap's `StockDataCollector`)."""

    asset_classes = frozenset({AssetClass.EQUITY, AssetClass.ETF, AssetClass.INDEX})


class CryptoDataCollector(HistoryCollector):
    """Crypto assets from a source (the roadmap's `CryptoDataCollector`)."""

    asset_classes = frozenset({AssetClass.CRYPTO})


@dataclass(frozen=True, slots=True)
class Mover:
    """One instrument's move: `pct` from `ref_price` to `price` (gap, pre-market or post-market)."""

    symbol: str
    kind: str  # "gap" | "premarket" | "postmarket"
    pct: float
    ref_price: float
    price: float
    ts: datetime


@dataclass(slots=True)
class AfterHoursReport:
    """Top movers outside regular hours; `basis` says whether extended-hours bars were available."""

    as_of: datetime | None
    basis: str  # "extended-hours" | "daily-gaps"
    gappers_up: list[Mover] = field(default_factory=list)
    gappers_down: list[Mover] = field(default_factory=list)
    premarket: list[Mover] = field(default_factory=list)
    postmarket: list[Mover] = field(default_factory=list)
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _daily_gap(symbol: str, f: pd.DataFrame) -> Mover | None:
    """Today's open against yesterday's close, from the last two daily bars."""
    if len(f) < 2:
        return None
    prev_close, open_ = float(f["close"].iloc[-2]), float(f["open"].iloc[-1])
    if not (np.isfinite(prev_close) and np.isfinite(open_)) or prev_close <= 0:
        return None
    ts = f.index[-1].to_pydatetime()
    return Mover(symbol, "gap", (open_ / prev_close - 1) * 100, prev_close, open_, ts)


def _session_moves(symbol: str, f: pd.DataFrame) -> list[Mover]:
    """Pre-market (vs the previous regular close) and post-market (vs today's regular close) moves."""
    if f.empty:
        return []
    local = f.index.tz_convert(NEW_YORK)
    t = local.time
    regular = (t >= REGULAR_OPEN) & (t < REGULAR_CLOSE)
    pre, post = t < REGULAR_OPEN, t >= REGULAR_CLOSE
    days = np.asarray(local.date)
    last_day = days[-1]
    today, before = days == last_day, days < last_day
    out: list[Mover] = []
    if (today & pre).any() and (before & regular).any():
        ref = float(f["close"][before & regular].iloc[-1])
        px = float(f["close"][today & pre].iloc[-1])
        ts = f.index[today & pre][-1].to_pydatetime()
        out.append(Mover(symbol, "premarket", (px / ref - 1) * 100, ref, px, ts))
    if (today & post).any() and (today & regular).any():
        ref = float(f["close"][today & regular].iloc[-1])
        px = float(f["close"][today & post].iloc[-1])
        ts = f.index[today & post][-1].to_pydatetime()
        out.append(Mover(symbol, "postmarket", (px / ref - 1) * 100, ref, px, ts))
    return out


class AfterHoursEngine:
    """Pre-/post-market movers and opening gaps (the roadmap's `AfterHoursEngine`).

    With a source that serves intraday bars including extended hours (`source.extended_hours` is True,
    e.g. a broker), it reports pre-market moves (last pre-market price vs the previous regular close)
    and post-market moves (last post-market price vs today's regular close), US sessions in New York
    time. On daily data - the sample and most files - there are no extended-hours prices, so it says so
    in `note` and reports opening gaps instead (today's open vs yesterday's close), which is where
    overnight news shows up in daily bars.
    """

    def __init__(self, source: MarketData, *, intraday_timeframe: str = "5m", concurrency: int = 16) -> None:
        self.source = source
        self.intraday_timeframe = intraday_timeframe
        self.concurrency = concurrency

    async def scan(
        self,
        symbols: Sequence[str] | None = None,
        *,
        top: int = 10,
        min_abs_pct: float = 0.0,
        scan: str | None = None,
    ) -> AfterHoursReport:
        """Top `top` movers each way among `symbols` (default: the source's stock universe)."""
        if symbols is None:
            symbols = [i.symbol for i in await StockDataCollector(self.source).instruments(scan)]
        extended = bool(getattr(self.source, "extended_hours", False))
        got = await HistoryCollector(self.source, concurrency=self.concurrency).collect_symbols(
            symbols, timeframe="1d", start=None
        )
        gaps = [g for s, f in got.frames.items() if (g := _daily_gap(s, f)) is not None]
        gaps = [g for g in gaps if abs(g.pct) >= min_abs_pct]
        report = AfterHoursReport(
            as_of=max((g.ts for g in gaps), default=None),
            basis="extended-hours" if extended else "daily-gaps",
            gappers_up=sorted((g for g in gaps if g.pct > 0), key=lambda m: -m.pct)[:top],
            gappers_down=sorted((g for g in gaps if g.pct < 0), key=lambda m: m.pct)[:top],
            errors=dict(got.errors),
        )
        if not extended:
            report.note = (
                "daily data only: no pre-/post-market prices, so movers are opening gaps "
                "(today's open vs yesterday's close)"
            )
            return report
        since = datetime.now(UTC) - timedelta(days=4)
        if report.as_of is not None:
            since = report.as_of - timedelta(days=4)
        intraday = await HistoryCollector(self.source, concurrency=self.concurrency).collect_symbols(
            symbols, timeframe=self.intraday_timeframe, start=since
        )
        report.errors.update({s: e for s, e in intraday.errors.items() if s not in report.errors})
        moves = [
            m for s, f in intraday.frames.items() for m in _session_moves(s, f) if abs(m.pct) >= min_abs_pct
        ]
        for kind, attr in (("premarket", "premarket"), ("postmarket", "postmarket")):
            ranked = sorted((m for m in moves if m.kind == kind), key=lambda m: -abs(m.pct))
            setattr(report, attr, ranked[: top * 2])
        report.note = f"extended-hours moves from {self.intraday_timeframe} bars (New York sessions)"
        return report
