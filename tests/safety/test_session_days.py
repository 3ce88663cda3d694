"""The market-hours rule on daily bars answers "is this day a session" from a set of the calendar's
sessions: on every day it must be exchange_calendars' own `is_session` (holidays, weekends, early
closes, both ends of the calendar)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from joe.core.models import AssetClass
from joe.safety.rules.order import _calendar, _session_open


@pytest.mark.parametrize("exchange", ["NYSE", "LSE"])
def test_daily_session_days_are_the_calendars(exchange: str) -> None:
    cal = _calendar("XNYS" if exchange == "NYSE" else "XLON")
    day = datetime(2019, 12, 1, tzinfo=UTC)
    for _ in range(800):  # Christmas, Good Friday, bank holidays, weekends, the 2020 closures
        want = bool(cal.is_session(day.date().isoformat()))
        assert _session_open(AssetClass.EQUITY, exchange, "USD", day, True) is want, day
        day += timedelta(days=1)
    before = cal.first_session.to_pydatetime().replace(tzinfo=UTC) - timedelta(days=1)
    assert _session_open(AssetClass.EQUITY, exchange, "USD", before, True) is None
