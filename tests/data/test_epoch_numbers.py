"""Issue 14 (r14 review #4): numbers in the time column are epoch seconds, milli-, micro- or
nanoseconds (told apart by magnitude); numbers too small for any - spreadsheet day serials such as
45148, row numbers, years - are refused naming the file, not read as bars in the first hours of 1970.

Before: Excel serials became a 1-second intraday file of 1970-01-01, excluded as "stale more than 600
sessions: last bar 1970-01-01"; microsecond and nanosecond stamps were unreadable.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joe.data.dates import parse_times
from joe.data.errors import DataError

UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(pd.Timestamp("1974-01-01"), pd.Timestamp("2100-01-01")),
    n=st.integers(1, 30),
    unit=st.sampled_from(list(UNITS)),
)
def test_property_epoch_numbers_of_any_unit_read_as_the_same_instants(start, n: int, unit: str) -> None:  # type: ignore[no-untyped-def]
    stamps = pd.date_range(pd.Timestamp(start).floor("s"), periods=n, freq="D", tz="UTC").as_unit("ns")
    raw = pd.Series(stamps.asi8 // UNITS[unit])
    got = parse_times(raw, "X.csv", "ts")
    assert (got.instant == stamps).all()


@pytest.mark.parametrize(
    ("values", "hint"),
    [
        ([45145, 45146, 45147, 45148], "spreadsheet day numbers"),  # Excel: 2023-08-07 .. 2023-08-10
        ([1, 2, 3, 4], "row numbers or years"),
        ([2019, 2020, 2021, 2022], "row numbers or years"),
    ],
)
def test_numbers_too_small_for_epoch_time_are_refused_naming_the_file(values: list[int], hint: str) -> None:
    with pytest.raises(DataError) as err:
        parse_times(pd.Series(values), "AAPL.csv", "date")
    text = str(err.value)
    assert text.startswith("AAPL.csv: the 'date' column") and hint in text and "ISO" in text
