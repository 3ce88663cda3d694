"""`keeps_holidays` by binary search equals the `np.isin` form it replaced (a speed change only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.data.calendars import _session_days, day_array, in_sorted, keeps_holidays


def reference(code: str, stamps: pd.DatetimeIndex) -> bool:
    """The previous implementation, kept as the specification."""
    d = np.unique(day_array(stamps))
    if len(d) < 2:
        return True
    days, first, end = _session_days(code)
    lo, hi = max(d[0], first), min(d[-1], end)
    if lo > hi:
        return True
    span = np.arange(lo, hi + np.timedelta64(1, "D"))
    holidays = span[np.is_busday(span) & ~np.isin(span, days)]
    if not holidays.size:
        return True
    k = np.searchsorted(days, holidays)
    seen = (k > 0) & (k < len(days))
    prev, nxt = days[np.maximum(k - 1, 0)], days[np.minimum(k, len(days) - 1)]
    seen &= np.isin(prev, d) & np.isin(nxt, d)
    if not seen.any():
        return True
    return int(np.isin(holidays[seen], d).sum()) * 2 <= int(seen.sum())


@st.composite
def series(draw: st.DrawFn) -> pd.DatetimeIndex:
    start = pd.Timestamp("2004-01-01") + pd.Timedelta(days=draw(st.integers(0, 8000)))
    n = draw(st.integers(0, 400))
    kind = draw(st.sampled_from(["weekdays", "sessions", "random"]))
    if kind == "weekdays":
        idx = pd.bdate_range(start, periods=n)
    elif kind == "sessions":
        days = _session_days("XNYS")[0]
        i = int(np.searchsorted(days, np.datetime64(start.date(), "D")))
        idx = pd.DatetimeIndex(days[i : i + n])
    else:
        offs = draw(st.lists(st.integers(0, 3000), max_size=n))
        idx = pd.DatetimeIndex([start + pd.Timedelta(days=o) for o in offs])  # unsorted, repeats
    drop = draw(st.integers(0, 9))
    if drop and len(idx):
        idx = idx[np.arange(len(idx)) % (drop + 1) != 0]
    return idx.tz_localize("UTC") if draw(st.booleans()) else idx


@settings(max_examples=150, deadline=None)
@given(series(), st.sampled_from(["XNYS", "XLON"]))
def test_keeps_holidays_equals_the_isin_form(stamps: pd.DatetimeIndex, code: str) -> None:
    assert keeps_holidays(code, stamps) == reference(code, stamps)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-50, 50)), st.lists(st.integers(-50, 50)))
def test_in_sorted_is_isin(a: list[int], b: list[int]) -> None:
    sb = np.unique(np.array(b, dtype=np.int64))
    aa = np.array(a, dtype=np.int64)
    assert in_sorted(aa, sb).tolist() == np.isin(aa, sb).tolist()
