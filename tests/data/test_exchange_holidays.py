"""Issue 14: sessions are the exchange's (`joe.data.calendars`, exchange-calendars).

A holiday is not missing data and not a missed session (a series whose last bar is before the 4th of
July is one session behind on the 5th, not two); a bar dated on a holiday is flagged and left out; a
gap on a real session is named. The exchange is the symbol's listing suffix (``VOD.L`` → London),
else the NYSE.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data_quality import write_csv

from joe.data import open_source
from joe.data.calendars import (
    SUFFIXES,
    exchange_of,
    load_exchange_calendar,
    non_sessions,
    nth_session_after,
    sessions_after,
)
from joe.data.file_source import future_limit
from joe.data.quality import check_bars
from joe.runtime.market import load_snapshot


def sessions(code: str, start: str, end: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(load_exchange_calendar(code).sessions_in_range(start, end))


def bars(idx: pd.DatetimeIndex, seed: int = 0, price: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(idx)
    close = price * np.exp(np.cumsum(rng.normal(0.0003, 0.012, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, n)))
    vol = rng.integers(800_000, 1_200_000, n).astype(float)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol}, index=idx)


def snap(folder: Path, as_of: date | None = None):  # type: ignore[no-untyped-def]
    return asyncio.run(load_snapshot(open_source(f"csv:{folder}", as_of=as_of), None, 500, 2000))


def by_check(s, symbol: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.check: f.message for f in s.quality.findings if f.symbol == symbol}


# -- the calendar ----------------------------------------------------------------------------------


def test_sessions_skip_holidays_us_and_uk() -> None:
    assert (
        sessions_after("XNYS", date(2023, 6, 30), date(2023, 7, 5)) == 2
    )  # Jul 3 and 5; the 4th is no session
    assert sessions_after("XLON", date(2023, 8, 25), date(2023, 8, 29)) == 1  # Aug 28: Summer Bank Holiday
    assert sessions_after("XNYS", date(2023, 8, 25), date(2023, 8, 29)) == 2
    assert nth_session_after("XNYS", date(2023, 6, 30), 3) == date(2023, 7, 6)
    flags = non_sessions("XNYS", pd.DatetimeIndex(["2023-07-03", "2023-07-04", "2023-07-08", "2023-11-23"]))
    assert flags.tolist() == [False, True, True, True]  # Independence Day, a Saturday, Thanksgiving


def test_exchange_of_a_symbol() -> None:
    assert (
        exchange_of("VOD.L") == "XLON" and exchange_of("SAP.DE") == "XETR" and exchange_of("7203.T") == "XTKS"
    )
    assert exchange_of("AAPL") == "XNYS" and exchange_of("BRK.B") == "XNYS"  # a share class, not a suffix
    assert exchange_of("AAPL", "equity", "LSE") == "XLON"  # the instrument's own exchange
    assert exchange_of("EURUSD", "fx") is None and exchange_of("BTCUSD", "crypto") is None
    assert all(code in xcals.get_calendar_names() for code in SUFFIXES.values())


def test_future_limit_counts_sessions_not_weekdays() -> None:
    # Three sessions after Friday 2023-06-30 are Jul 3, 5, 6 (the 4th is a holiday): the 6th may be
    # reached, counting weekdays stopped at the 5th and called a file ending on the 6th a typo.
    assert future_limit([date(2023, 6, 30)] * 2, date(2023, 12, 1)) == date(2023, 7, 6)


# -- files: a bar on a holiday is flagged and left out ----------------------------------------------


def test_a_bar_on_the_4th_of_july_is_flagged_and_left_out(tmp_path: Path) -> None:
    real = sessions("XNYS", "2022-06-01", "2023-07-03")
    write_csv(tmp_path, "AAA", bars(real.append(pd.DatetimeIndex(["2023-07-04"])), seed=1))
    write_csv(tmp_path, "BBB", bars(real, seed=2))
    s = snap(tmp_path)
    found = by_check(s, "AAA")
    assert (
        "non_session" in found and "2023-07-04" in found["non_session"] and "July 4th" in found["non_session"]
    )
    (f,) = [f for f in s.quality.findings if f.check == "non_session"]
    assert f.file == "AAA.csv" and f.row == len(real) + 2  # header is line 1
    # The holiday bar did not become the as-of date: nobody is "behind".
    assert s.panel.dates[-1].date() == date(2023, 7, 3)
    assert not any(f.check in ("behind", "stale") for f in s.quality.findings)
    assert by_check(s, "BBB") == {}


def test_a_uk_holiday_bar_is_flagged_for_a_london_listing_only(tmp_path: Path) -> None:
    uk = sessions("XLON", "2022-06-01", "2023-08-25")
    us = sessions("XNYS", "2022-06-01", "2023-08-28")  # the US traded on 2023-08-28
    write_csv(tmp_path, "VOD.L", bars(uk.append(pd.DatetimeIndex(["2023-08-28"])), seed=3))
    write_csv(tmp_path, "AAPL", bars(us, seed=4))
    s = snap(tmp_path)
    assert "Summer Bank Holiday" in by_check(s, "VOD.L")["non_session"]
    assert "non_session" not in by_check(s, "AAPL")


def test_a_london_listing_on_a_uk_holiday_is_not_behind(tmp_path: Path) -> None:
    # As of 2023-08-28 the US files have a bar; London had no session: VOD.L is not scored (no bar on
    # the as-of date) but is neither "behind" nor "stale" - and the message says why, with nothing to fix.
    write_csv(tmp_path, "VOD.L", bars(sessions("XLON", "2022-06-01", "2023-08-25"), seed=3))
    write_csv(tmp_path, "AAPL", bars(sessions("XNYS", "2022-06-01", "2023-08-28"), seed=4))
    found = by_check(snap(tmp_path), "VOD.L")
    assert "behind" not in found and "stale" not in found
    assert "XLON had no session" in found["no_session"] and "Summer Bank Holiday" in found["no_session"]


# -- the quality stage: lag and gaps in sessions ------------------------------------------------------


def _check(dates: pd.DatetimeIndex, cols: dict[str, pd.DataFrame], code: str = "XNYS"):  # type: ignore[no-untyped-def]
    dates = pd.DatetimeIndex(dates, tz="UTC")
    fields = {
        k: np.column_stack([df.reindex(dates.tz_localize(None))[k].to_numpy() for df in cols.values()])
        for k in ("open", "high", "low", "close", "volume")
    }
    return check_bars(dates, list(cols), fields, calendars={s: code for s in cols})


def test_a_holiday_is_not_a_missed_session() -> None:
    # Last bar Thursday 2023-06-29, as-of Wednesday 2023-07-05: 3 sessions (Jun 30, Jul 3, Jul 5) - behind,
    # still in the run. Counting weekdays (4, with the 4th) called it stale and excluded it.
    dates = sessions("XNYS", "2022-06-01", "2023-07-05")
    late = bars(dates, seed=5)
    lag = bars(dates[dates <= "2023-06-29"], seed=6)
    res = _check(dates, {"LATE": late, "LAG": lag})
    f = {x.check: x for x in res.report.findings if x.symbol == "LAG"}
    assert "stale" not in f and f["behind"].message.startswith("3 session(s) behind")
    assert res.keep.tolist() == [True, True]


def test_one_more_session_is_stale() -> None:
    dates = sessions("XNYS", "2022-06-01", "2023-07-05")
    lag = bars(dates[dates <= "2023-06-28"], seed=6)
    res = _check(dates, {"LATE": bars(dates, seed=5), "LAG": lag})
    assert res.keep.tolist() == [True, False]
    assert any(x.check == "stale" and "stale 4 sessions" in x.message for x in res.report.findings)


def test_a_missing_session_is_named_a_holiday_is_not() -> None:
    dates = sessions("XNYS", "2022-06-01", "2023-07-31")
    gap = bars(dates[dates != "2023-03-14"], seed=7)
    res = _check(dates, {"FULL": bars(dates, seed=8), "GAP": gap})
    f = {(x.symbol, x.check): x.message for x in res.report.findings}
    assert "2023-03-14" in f[("GAP", "missing_sessions")] and f[("GAP", "missing_sessions")].startswith(
        "1 XNYS"
    )
    assert ("FULL", "missing_sessions") not in f  # Jul 4, Good Friday, Juneteenth... are not missing


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(1, 12), code=st.sampled_from(["XNYS", "XLON", "XTKS"]))
def test_property_lag_is_the_exchange_sessions_missed(cut: int, code: str) -> None:
    dates = sessions(code, "2023-01-03", "2023-12-29")
    short = bars(dates[:-cut], seed=9)
    res = _check(dates, {"FULL": bars(dates, seed=10), "SHORT": short}, code)
    f = {x.check: x.message for x in res.report.findings if x.symbol == "SHORT"}
    missed = sessions_after(code, dates[-cut - 1].date(), dates[-1].date())
    assert missed == cut  # the panel's dates are that exchange's sessions
    assert (
        (f"{cut} session(s) behind" in f["behind"]) if cut <= 3 else (f"stale {cut} sessions" in f["stale"])
    )


@pytest.mark.parametrize("code", ["XNYS", "XLON"])
def test_no_calendar_no_change(code: str) -> None:
    # FX (no calendar): the panel's rows count, as before.
    dates = sessions(code, "2023-01-03", "2023-06-30")
    idx = pd.DatetimeIndex(dates, tz="UTC")
    cols = {"EURUSD": bars(dates, seed=11), "GBPUSD": bars(dates[:-2], seed=12)}
    fields = {
        k: np.column_stack([df.reindex(dates)[k].to_numpy() for df in cols.values()])
        for k in ("open", "high", "low", "close", "volume")
    }
    res = check_bars(idx, list(cols), fields, calendars={"EURUSD": None, "GBPUSD": None})
    assert any(x.check == "behind" and x.message.startswith("2 session(s)") for x in res.report.findings)


def test_a_weekday_calendar_file_keeps_its_holiday_bars(tmp_path: Path) -> None:
    # Bars on every weekday (synthetic, or a vendor filling holidays): the holidays are its calendar,
    # not stray rows - nothing is dropped and its rows count as its sessions, as before.
    idx = pd.bdate_range("2022-06-01", "2023-07-05")
    write_csv(tmp_path, "WKD", bars(idx, seed=13))
    write_csv(tmp_path, "REAL", bars(sessions("XNYS", "2022-06-01", "2023-07-05"), seed=14))
    s = snap(tmp_path)
    assert by_check(s, "WKD") == {} and by_check(s, "REAL") == {}
    assert s.panel.dates[-1].date() == date(2023, 7, 5) and len(s.panel.dates) == len(idx)
