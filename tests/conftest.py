"""Suite-wide settings. In CI (CI=true) hypothesis is derandomized so a run is reproducible; locally
it explores new examples every run (and keeps failures in .hypothesis/ to replay them)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# Live and shadow runs judge market hours at the minute (joe.safety.live_book): without this, whether a
# test's run may enter would depend on the wall-clock hour. Every test runs with the clock of a
# Tuesday 10:00 New York (NYSE open); tests of the closed market set their own.
OPEN_MINUTE = "2026-12-01T15:00:00+00:00"


@pytest.fixture(autouse=True)
def _market_open_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOE_CLOCK_START", OPEN_MINUTE)
