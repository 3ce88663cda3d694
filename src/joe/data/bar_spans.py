"""How many sessions lie between a symbol's bar and its previous one (1: consecutive sessions).

The data-quality stage judges a move between two bars against the symbol's usual move *per session*
(`joe.data.splits`, `joe.data.quality`, `joe.data.wicks`): across a gap of k missing sessions (a
market-wide gap in the file, a halt) an ordinary move is about √(k + 1) times one session's (a random
walk). Sessions are counted:

* daily bars of a series that follows its exchange's holidays: that exchange's sessions
  (`joe.data.calendars.sessions_after_many`; weekdays outside the calendar's range);
* other daily bars (no calendar, or a weekday-calendar series whose rows are its sessions): weekdays
  (`np.busday_count`; a weekend bar of a 7-day series counts as one session, never less);
* intraday bars: 1 for every bar (a gap between intraday bars is not scaled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from joe.data.calendars import day_array, keeps_holidays, sessions_after_many

__all__ = ["bar_spans", "panel_days", "session_codes"]


def session_codes(
    days: np.ndarray | None,
    symbols: Sequence[str],
    valid: np.ndarray,
    calendars: Mapping[str, str | None] | None,
) -> list[str | None]:
    """Per symbol, the exchange calendar code whose sessions its daily bars follow, or None (no
    calendar, not daily - `days` None -, or a weekday-calendar series: its rows are its sessions).
    `days`: the panel's dates as datetime64[D]; `valid`: dates × symbols, where the symbol has a bar."""
    out: list[str | None] = [None] * len(symbols)
    if days is None or not calendars:
        return out
    for j, sym in enumerate(symbols):
        code = calendars.get(sym)
        if code is not None and keeps_holidays(code, days[valid[:, j]]):
            out[j] = code
    return out


def bar_spans(days: np.ndarray | None, valid: np.ndarray, codes: Sequence[str | None]) -> np.ndarray:
    """Dates × symbols float array: at each bar, the sessions from the symbol's previous bar to it (at
    least 1); NaN where there is no bar or no previous bar. `days` (datetime64[D]) None: intraday bars,
    1 at every bar with a previous one. `codes` as `session_codes`."""
    n, m = valid.shape
    rows = np.arange(n)[:, None]
    last = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)
    prev = np.full_like(last, -1)
    prev[1:] = last[:-1]
    has_prev = valid & (prev >= 0)
    out = np.full((n, m), np.nan)
    if days is None:
        out[has_prev] = 1.0
        return out
    # Most bars follow the panel's previous row: count each pair of adjacent panel dates once (per
    # calendar), and only a symbol's own gaps pair by pair (a 2,000 × 500 panel: 60 ms → a few).
    adjacent = has_prev & (prev == rows - 1)
    own_gap = has_prev & ~adjacent
    t_gap, j_gap = np.nonzero(own_gap)
    by_code: dict[str | None, list[int]] = {}
    for j, code in enumerate(codes):
        by_code.setdefault(code, []).append(j)
    for code, cols in by_code.items():
        step = np.full(n, np.nan)
        step[1:] = _count(code, days[:-1], days[1:])
        block = np.where(adjacent[:, cols], step[:, None], np.nan)
        out[:, cols] = block
        mine = np.isin(j_gap, cols)
        if mine.any():
            gt, gj = t_gap[mine], j_gap[mine]
            out[gt, gj] = _count(code, days[prev[gt, gj]], days[gt])
    return out


def _count(code: str | None, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sessions in (lo, hi] element-wise (datetime64[D]), at least 1: `code`'s, or weekdays for None."""
    if code is None:
        counted = np.busday_count(lo + 1, np.maximum(hi, lo) + 1).astype(np.float64)
    else:
        counted = sessions_after_many(code, lo, hi)
    return np.fmax(counted, 1.0)


def panel_days(dates: pd.DatetimeIndex, daily: bool) -> np.ndarray | None:
    """The panel's dates as datetime64[D] for daily bars, None for intraday ones."""
    return day_array(dates) if daily else None
