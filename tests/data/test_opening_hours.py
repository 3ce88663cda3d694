"""Capital.com instruments' own opening hours (`/markets` openingHours)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from joe.data.opening_hours import OpeningHours

WEEK = {d: ["00:00 - 21:00", "22:05 - 00:00"] for d in ("mon", "tue", "wed", "thu")}
RAW = {**WEEK, "fri": ["00:00 - 21:00"], "sat": [], "sun": ["22:05 - 00:00"], "zone": "UTC"}


def test_ranges_gaps_weekends_and_midnight() -> None:
    h = OpeningHours.parse(RAW)
    assert h.is_open(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # Tuesday noon
    assert not h.is_open(datetime(2026, 12, 1, 21, 30, tzinfo=UTC))  # the daily break
    assert h.is_open(datetime(2026, 12, 1, 23, 59, tzinfo=UTC))  # "22:05 - 00:00" runs to midnight
    assert not h.is_open(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))  # Saturday
    assert h.is_open(datetime(2026, 12, 6, 22, 30, tzinfo=UTC))  # Sunday evening open


def test_zone_is_honoured() -> None:
    h = OpeningHours.parse({"mon": ["09:00 - 17:30"], "zone": "Europe/London"})
    assert h.is_open(datetime(2026, 7, 6, 8, 0, tzinfo=UTC))  # 09:00 BST
    assert not h.is_open(datetime(2026, 12, 7, 8, 0, tzinfo=UTC))  # 08:00 GMT


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"mon": ["9 to 5"]}, r"openingHours\.mon: '9 to 5' is not"),
        ({"mon": ["09:00 - 25:00"]}, r"openingHours\.mon: '25:00'"),
        ({"tue": "09:00 - 17:00"}, r"openingHours\.tue: expected a list"),
        ({"zone": "Mars/Olympus"}, r"openingHours\.zone: unknown time zone"),
    ],
)
def test_bad_hours_name_the_field(raw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OpeningHours.parse(raw)
