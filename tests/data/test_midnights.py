"""`joe.data.dates.midnights` is `DatetimeIndex.normalize()` (values, NaT, unit, time zone, name) without
the inferred frequency; the files a folder load dates are the same frames but for that `freq`."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import joe.data.dates as dates
from joe.data.dates import midnights, session_dates
from joe.data.files import read_file

# Nanosecond stamps from 1900 to 2100 (negative before 1970: the floor must go down, not toward 0).
STAMP = st.one_of(st.integers(-2_208_988_800 * 10**9, 4_102_444_800 * 10**9), st.just(None))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(STAMP, max_size=30),
    st.sampled_from(["ns", "us", "ms", "s"]),
    st.sampled_from([None, "UTC", "America/New_York", "Asia/Tokyo"]),
    st.sampled_from([None, "date"]),
    st.booleans(),
)
def test_equals_normalize(
    stamps: list[int | None], unit: str, tz: str | None, name: str | None, day: bool
) -> None:
    ns = [None if s is None else (s // 86_400_000_000_000 * 86_400_000_000_000 if day else s) for s in stamps]
    wall = pd.DatetimeIndex(pd.to_datetime(ns, unit="ns"), name=name).as_unit(unit)
    wall = wall if tz is None else wall.tz_localize("UTC").tz_convert(tz)
    got, want = midnights(wall), wall.normalize()
    pd.testing.assert_index_equal(got, want, exact=True)  # freq is not compared by assert_index_equal
    assert got.dtype == want.dtype and got.name == want.name
    if tz is None:
        assert got.freq is None


def test_session_dates_keep_evening_shift() -> None:
    """Late stamps still read as the next session where that removes weekend bars (unchanged rule)."""
    fri = pd.date_range("2024-01-01 22:00", periods=10, freq="D")  # Berlin midnights written in UTC
    got = session_dates(pd.DatetimeIndex(fri[[d.day_of_week < 4 or d.day_of_week == 6 for d in fri]]))
    assert (got.day_of_week < 5).all() and (got.hour == 0).all()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(5, 60),
    st.sampled_from(["D", "B", "h"]),
    st.sampled_from(["00:00", "16:00", "21:30"]),
    st.sampled_from([None, "UTC", "Europe/Berlin"]),
)
def test_read_file_same_frame_as_normalize(n: int, freq: str, at: str, tz: str | None) -> None:
    """A file read with `midnights` gives the frame `normalize` gave, but for the index's `freq`."""
    times = pd.date_range(f"2023-12-28 {at}", periods=n, freq=freq, tz=tz)
    rng = np.random.default_rng(n)
    close = 10 + rng.random(n)
    df = pd.DataFrame({"date": times, "open": close, "high": close + 1, "low": close - 1, "close": close})
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "AAA.parquet"
        df.to_parquet(path)
        new = read_file(path)
        saved = dates.midnights
        dates.midnights = lambda w: pd.DatetimeIndex(w.normalize())  # the old path
        try:
            old = read_file(path)
        finally:
            dates.midnights = saved
    pd.testing.assert_frame_equal(new.frame, old.frame, check_freq=False)
    np.testing.assert_array_equal(new.rows, old.rows)
    assert new.findings == old.findings and new.daily == old.daily
