"""`MarketClosed` on daily bars reads recent days from the data's calendar (`session_set`, shared with
the data-quality stage) and older ones from the calendar from 1990: the same answer as the long calendar
alone, day by day, on both sides of the data calendar's first session and past the last."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from joe.data.calendars import session_set
from joe.safety.rules.order import _is_session, _sessions


@pytest.mark.parametrize("code", ["XNYS", "XLON"])
def test_is_session_equals_the_calendar_from_1990(code: str) -> None:
    sessions, first, last = _sessions(code)
    _, recent_first, _ = session_set(code)
    assert first < recent_first  # both calendars are consulted below
    d, end = date(1989, 12, 1), last + timedelta(days=10)
    while d <= end:
        want = d in sessions if first <= d <= last else None
        assert _is_session(code, d) == want, d
        d += timedelta(days=1)
