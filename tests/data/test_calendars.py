"""Market calendars and the run schedule: holidays and early closes give no run (and no open
market), DST moves the UTC time of a run, aliases resolve, bad codes are named."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from joe.data.calendars import MarketHours, calendar_for
from joe.runtime.schedule import Anchor, Schedule, ScheduleRule

NYSE = calendar_for("NYSE")
RULES = [
    ScheduleRule("pre_open_scan", Anchor.OPEN, -30),
    ScheduleRule("after_open", Anchor.OPEN, 15),
    ScheduleRule("pre_close", Anchor.CLOSE, -15),
    ScheduleRule("late_check", Anchor.TIME, at=time(15, 45)),
]


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


def test_thanksgiving_is_a_holiday_and_black_friday_closes_early() -> None:
    assert NYSE.session(date(2026, 11, 26)) is None and NYSE.is_holiday(date(2026, 11, 26))
    s = NYSE.session(date(2026, 11, 27))
    assert s is not None and s.early_close
    assert (s.open, s.close) == (utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18, 0))  # 13:00 ET
    assert not NYSE.session(date(2026, 11, 30)).early_close  # type: ignore[union-attr]
    assert NYSE.session(date(2026, 11, 28)) is None and not NYSE.is_holiday(date(2026, 11, 28))  # a Saturday


def test_holiday_has_no_run_and_the_market_is_closed_all_day() -> None:
    sched = Schedule(NYSE, RULES)
    assert sched.runs_on(date(2026, 11, 26)) == []
    assert not NYSE.is_open(utc(2026, 11, 26, 16, 0))
    hours = MarketHours("XNYS")
    assert not hours.is_open("AAPL", int(utc(2026, 11, 26, 16, 0).timestamp() * 1e9))
    assert hours.is_open("AAPL", int(utc(2026, 11, 25, 16, 0).timestamp() * 1e9))


def test_early_close_moves_close_runs_and_drops_runs_after_the_close() -> None:
    runs = {r.name: r.at for r in Schedule(NYSE, RULES).runs_on(date(2026, 11, 27))}
    assert runs == {
        "pre_open_scan": utc(2026, 11, 27, 14, 0),
        "after_open": utc(2026, 11, 27, 14, 45),
        "pre_close": utc(2026, 11, 27, 17, 45),  # 12:45 ET, before the 13:00 early close
    }  # 15:45 ET is after the close: no run, so no entry
    assert not NYSE.is_open(utc(2026, 11, 27, 20, 45))  # 15:45 ET: closed
    assert NYSE.is_open(utc(2026, 11, 27, 17, 59))


def test_dst_moves_the_utc_time_of_a_run() -> None:
    sched = Schedule(NYSE, RULES)
    before = {r.name: r.at for r in sched.runs_on(date(2026, 3, 6))}  # EST (UTC-5)
    after = {r.name: r.at for r in sched.runs_on(date(2026, 3, 9))}  # EDT (UTC-4) from 2026-03-08
    assert before["after_open"] == utc(2026, 3, 6, 14, 45)
    assert after["after_open"] == utc(2026, 3, 9, 13, 45)
    assert before["late_check"] == utc(2026, 3, 6, 20, 45) and after["late_check"] == utc(2026, 3, 9, 19, 45)
    # London changes on another weekend (2026-03-29): the same local time is an hour earlier in UTC
    lse = Schedule(calendar_for("LSE"), [ScheduleRule("after_open", Anchor.OPEN, 15)])
    assert lse.runs_on(date(2026, 3, 27))[0].at == utc(2026, 3, 27, 8, 15)
    assert lse.runs_on(date(2026, 3, 30))[0].at == utc(2026, 3, 30, 7, 15)


def test_next_run_skips_the_holiday_and_the_weekend() -> None:
    sched = Schedule(NYSE, [ScheduleRule("after_open", Anchor.OPEN, 15)])
    nxt = sched.next_run(utc(2026, 11, 25, 16, 0))
    assert nxt is not None and nxt.day == date(2026, 11, 27) and nxt.at == utc(2026, 11, 27, 14, 45)
    nxt = sched.next_run(utc(2026, 11, 27, 15, 0))
    assert nxt is not None and nxt.day == date(2026, 11, 30)


def test_fx_and_crypto_calendars() -> None:
    fx, crypto = calendar_for("FX"), calendar_for("CRYPTO")
    assert crypto.is_open(utc(2026, 11, 28, 12, 0))  # Saturday
    assert not fx.is_open(utc(2026, 11, 28, 12, 0))
    assert fx.is_open(utc(2026, 11, 26, 12, 0))  # Thanksgiving: FX still trades


def test_bad_codes_and_rules_are_named() -> None:
    with pytest.raises(ValueError, match="unknown exchange 'MOON'"):
        calendar_for("MOON")
    with pytest.raises(ValueError, match="'at' is required"):
        ScheduleRule("x", Anchor.TIME)
    with pytest.raises(ValueError, match="unique"):
        Schedule(NYSE, [ScheduleRule("x", Anchor.OPEN), ScheduleRule("x", Anchor.CLOSE)])
    with pytest.raises(ValueError, match="timezone-aware"):
        NYSE.is_open(datetime(2026, 1, 5, 15, 0))
