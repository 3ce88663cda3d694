"""The suite's wall-clock switch (tests/wall_clock.py, JOE_TEST_WALL_CLOCK) shifts now/today, nothing else."""

from __future__ import annotations

import sys
import types
from datetime import UTC, date, datetime, timedelta

import pytest

from wall_clock import WallClockShift, parse_instant, shifted_types


def test_shifted_now_and_today_read_the_chosen_instant_and_built_values_stay_real() -> None:
    dt, d = shifted_types(timedelta(days=400))
    real = datetime.now(UTC)
    assert timedelta(days=400) <= dt.now(UTC) - real < timedelta(days=400, seconds=60)
    assert d.today() in {(real + timedelta(days=400)).date(), (real + timedelta(days=401)).date()}
    built = dt(2026, 12, 2, tzinfo=UTC)
    assert type(built) is datetime and type(d(2026, 12, 2)) is date  # pickles and compares as usual
    assert isinstance(datetime(2026, 1, 1), dt) and isinstance(date(2026, 1, 1), d)
    assert type(dt.fromisoformat("2026-12-02T00:40:00+00:00")) is datetime


def test_apply_patches_only_modules_of_the_project() -> None:
    shift = WallClockShift(datetime(2026, 12, 31, 23, 50, tzinfo=UTC))
    outside = types.ModuleType("outside_mod")
    outside.datetime = datetime  # type: ignore[attr-defined]
    sys.modules["outside_mod"] = outside
    try:
        shift.apply()
        assert outside.datetime is datetime  # type: ignore[attr-defined]
    finally:
        del sys.modules["outside_mod"]


def test_a_bad_instant_names_the_variable() -> None:
    assert parse_instant("2026-12-31T23:50:00Z") == datetime(2026, 12, 31, 23, 50, tzinfo=UTC)
    with pytest.raises(ValueError, match="JOE_TEST_WALL_CLOCK='tuesday' is not an ISO 8601"):
        parse_instant("tuesday")
    with pytest.raises(ValueError, match="needs a UTC offset"):
        parse_instant("2026-12-31T23:50:00")
