"""Bringing a paper book up to date: every bar since the last run through the exits, then the marks.

A book is settled from the held symbols' full daily histories (not the analysis panel, which keeps
only the newest few hundred bars), so a stop touched years ago is booked on the day it was touched,
at the stop (or at the open when the bar gapped through it). Marks are the last known close on or
before the as-of date, with that close's date, so a report can say how old a mark is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pandas as pd

from joe.portfolio.exits import PriceBar

OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class Mark:
    """A price a position is valued at and the bar time it comes from."""

    price: Decimal
    ts: datetime


def to_decimal(v: float) -> Decimal:
    """A float price from a data frame as a Decimal with the data's own digits."""
    # repr of a rounded float keeps the data's own digits (4.6861, not 4.686099999...).
    return Decimal(repr(round(float(v), 6)))


def _utc(ts: datetime | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """OHLC rows with all four prices, UTC-indexed and sorted."""
    if frame.empty or not set(OHLC) <= set(frame.columns):
        return pd.DataFrame(columns=list(OHLC))
    f = frame[list(OHLC)]
    idx = f.index
    if (
        isinstance(idx, pd.DatetimeIndex)
        and str(idx.tz) == "UTC"
        and idx.is_monotonic_increasing
        and not f.isna().to_numpy().any()
    ):
        return f  # already clean (a panel's rows, a backtest's day): skip the copies below
    f = f.dropna()
    idx = pd.DatetimeIndex(f.index)
    f.index = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return f.sort_index()


def bars_between(
    history: Mapping[str, pd.DataFrame], after: datetime | None, until: datetime
) -> Iterator[tuple[datetime, dict[str, PriceBar]]]:
    """Each bar time in (`after`, `until`] with the bars of every symbol that has one, oldest first.

    `history` maps symbol → OHLC frame (DatetimeIndex). Rows with a missing price are skipped.
    """
    lo = None if after is None else _utc(after)
    hi = _utc(until)
    by_ts: dict[pd.Timestamp, dict[str, PriceBar]] = {}
    for sym, frame in history.items():
        f = _clean(frame)
        f = f.loc[f.index <= hi]
        if lo is not None:
            f = f.loc[f.index > lo]
        for ts, o, h, low, c in zip(f.index, f["open"], f["high"], f["low"], f["close"], strict=True):
            bar = PriceBar(to_decimal(o), to_decimal(h), to_decimal(low), to_decimal(c))
            by_ts.setdefault(ts, {})[sym] = bar
    for ts in sorted(by_ts):
        yield ts.to_pydatetime(), by_ts[ts]


def last_closes(history: Mapping[str, pd.DataFrame], until: datetime) -> dict[str, Mark]:
    """The last known close on or before `until` for each symbol that has one."""
    hi = _utc(until)
    out: dict[str, Mark] = {}
    for sym, frame in history.items():
        f = _clean(frame)
        f = f.loc[f.index <= hi]
        if len(f) and not math.isnan(float(f["close"].iloc[-1])):
            out[sym] = Mark(to_decimal(f["close"].iloc[-1]), f.index[-1].to_pydatetime())
    return out
