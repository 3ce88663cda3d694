"""Issue 14 (r14 review #3): a gap in a weekday-calendar series (a bar on every weekday, holidays
included - synthetic data, or a vendor that fills holidays) is named like one in exchange data.

Before: such a series skipped the `missing_sessions` check altogether, so 40 weekdays cut out of the
middle of a file (or the 8 sessions before the as-of bar) passed without a word.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data_quality import ohlcv, snapshot, write_csv

from joe.data.calendars import sessions_between
from joe.data.quality import check_bars


@pytest.mark.parametrize(("start", "stop"), [(150, 190), (288, 296)])
def test_weekdays_cut_out_of_a_weekday_calendar_file_are_named(tmp_path: Path, start: int, stop: int) -> None:
    df = ohlcv(300, seed=4)  # every weekday from 2022-01-03, holidays included
    gap = df.drop(df.index[start:stop])
    write_csv(tmp_path, "GAP", gap)
    write_csv(tmp_path, "FULL", ohlcv(300, seed=6))
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("GAP")
    assert (f.severity, f.check) == ("warning", "missing_sessions")
    missing = [d for d in df.index[start:stop] if d.strftime("%Y-%m-%d") in f.message]
    assert missing == list(df.index[start : start + 5])  # the first five named
    assert snap.quality.for_symbol("FULL") == []  # its holiday bars are its calendar: nothing missing


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), cut=st.sets(st.integers(1, 298), min_size=0, max_size=12))
def test_property_exactly_the_cut_exchange_sessions_are_counted(seed: int, cut: set[int]) -> None:
    """Rows cut from a weekday-calendar series: the NYSE sessions among them are counted as missing
    (a cut holiday row is no missing session), whichever rows."""
    df = ohlcv(300, seed=seed)
    dates = pd.DatetimeIndex(df.index, tz="UTC")
    kept = df.drop(df.index[sorted(cut)])
    fields = {
        k: np.column_stack([df[k].to_numpy(np.float64), kept.reindex(df.index)[k].to_numpy(np.float64)])
        for k in ("open", "high", "low", "close", "volume")
    }
    res = check_bars(dates, ["FULL", "CUT"], fields, calendars={"FULL": "XNYS", "CUT": "XNYS"})
    first, last = np.datetime64("2022-01-03"), np.datetime64("2023-12-31")
    open_days = set(sessions_between("XNYS", first, last).tolist())
    want = sum(1 for i in cut if df.index[i].date() in open_days)
    got = [f for f in res.report.findings if f.check == "missing_sessions"]
    if want == 0:
        assert got == []
    else:
        (f,) = got
        assert f.symbol == "CUT" and f.message.startswith(f"{want} XNYS session(s)")


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 1000),
    cut=st.sets(st.integers(1, 290), min_size=1, max_size=6),
    behind=st.integers(0, 5),
    unit=st.sampled_from(["s", "ms", "us"]),
)
def test_property_the_index_unit_changes_no_finding(seed: int, cut: set[int], behind: int, unit: str) -> None:
    """The same bars with the dates in seconds, milli- or microseconds (pandas 3 makes "us" of
    datetimes: the IBKR and Capital.com clients' history, the sample panel) give the findings of
    nanoseconds. Before, a non-ns index was not "daily" to the quality stage: exchange calendars were
    ignored - no missing sessions named, lags counted in panel rows."""
    days = sessions_between("XNYS", np.datetime64("2022-01-03"), np.datetime64("2023-03-31"))
    dates = pd.DatetimeIndex(days).tz_localize("UTC")
    df = ohlcv(len(dates), seed=seed).set_axis(dates.tz_localize(None))
    kept = df.drop(df.index[sorted(cut)])
    kept = kept.iloc[: len(kept) - behind]
    fields = {
        k: np.column_stack([df[k].to_numpy(np.float64), kept.reindex(df.index)[k].to_numpy(np.float64)])
        for k in ("open", "high", "low", "close", "volume")
    }
    cals = {"FULL": "XNYS", "CUT": "XNYS"}
    ns = check_bars(dates.as_unit("ns"), ["FULL", "CUT"], fields, calendars=cals)
    other = check_bars(dates.as_unit(unit), ["FULL", "CUT"], fields, calendars=cals)
    assert other.report.findings == ns.report.findings
    assert any(f.check == "missing_sessions" for f in ns.report.findings)
