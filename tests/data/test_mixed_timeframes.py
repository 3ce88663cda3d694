"""Issue 14 (r14 review #5): one file of another bar size in a folder - 5-minute bars, or weekly bars
labelled by their Friday - is left out naming its bar size, instead of wrecking every other file.

Before: a 5-minute file among daily files made one interleaved panel whose as-of was the last 5-minute
instant, and every daily file got "no bar on the as-of date: XNYS had no session then" (2023-08-10,
a Thursday) and was not scored; a weekly file labelled 2023-08-11 moved the as-of date a day past the
daily files, leaving all of them "behind" and the regime inputs stale.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_data_quality import ohlcv, snapshot, write_csv

from joe.data.timeframes import bar_size, odd_timeframes

DAILY = ("AAA", "BBB", "SPX")


def _daily_folder(tmp_path: Path, n: int = 300) -> pd.DatetimeIndex:
    days = pd.DatetimeIndex([])
    for k, sym in enumerate(DAILY):
        df = ohlcv(n, seed=k)
        write_csv(tmp_path, sym, df)
        days = df.index
    return days


def test_a_5_minute_file_among_daily_files_is_left_out_and_named(tmp_path: Path) -> None:
    days = _daily_folder(tmp_path)
    idx = pd.date_range(days[-1] + pd.Timedelta(hours=14, minutes=30), periods=78, freq="5min")
    write_csv(
        tmp_path, "INTRA", ohlcv(78, seed=9).set_axis(idx), [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in idx]
    )
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("INTRA")
    assert (f.severity, f.check, f.file) == ("error", "timeframe", "INTRA.csv")
    assert "5m bars" in f.message and "1d bars" in f.message
    p = snap.panel
    assert p.n_dates == 300 and p.dates[-1] == pd.Timestamp(days[-1], tz="UTC")
    assert sorted(p.symbols) == ["AAA", "BBB"]
    assert not [x for x in snap.quality.findings if x.symbol != "INTRA"]  # no "no_session" on the others


def test_a_weekly_file_does_not_move_the_as_of_date(tmp_path: Path) -> None:
    days = _daily_folder(tmp_path, 298)  # the last bar a Wednesday
    weekly = ohlcv(298, seed=5).resample("W-FRI").last()  # labelled by the Friday after
    assert weekly.index[-1] > days[-1]
    write_csv(tmp_path, "WEEK", weekly)
    snap = snapshot(tmp_path)
    (f,) = snap.quality.for_symbol("WEEK")
    assert (f.check, f.severity) == ("timeframe", "error") and "7d bars" in f.message
    assert snap.panel.dates[-1] == pd.Timestamp(days[-1], tz="UTC")
    assert not [x for x in snap.quality.findings if x.symbol != "WEEK"]


@pytest.mark.parametrize(
    ("sizes", "odd"),
    [
        ({"A": "1d", "B": "1d", "C": "5m"}, {"C"}),
        ({"A": "5m", "B": "5m", "C": "1d"}, {"C"}),  # an intraday folder keeps its bars
        ({"A": "5m", "B": "1d"}, {"A"}),  # a tie: daily, the pipeline's own
        ({"A": "5m", "B": "1h"}, {"A"}),  # a tie without daily: the coarser
        ({"A": "1d", "B": "1d"}, set()),
    ],
)
def test_the_folders_bar_size_is_the_most_common(sizes: dict[str, str], odd: set[str]) -> None:
    got = odd_timeframes({s: (f"{s}.csv", z) for s, z in sizes.items()})
    assert {f.symbol for f in got} == odd


def test_bar_sizes() -> None:
    days = ohlcv(30).index
    assert bar_size(ohlcv(30), True) == "1d"
    assert bar_size(ohlcv(30).set_axis(pd.date_range("2024-01-01", periods=30, freq="7D")), True) == "7d"
    assert bar_size(ohlcv(30).set_axis(pd.date_range("2024-01-01", periods=30, freq="5min")), False) == "5m"
    assert bar_size(ohlcv(30).set_axis(pd.date_range("2024-01-01", periods=30, freq="1h")), False) == "1h"
    assert bar_size(ohlcv(1).set_axis(days[:1]), True) == "1d"
