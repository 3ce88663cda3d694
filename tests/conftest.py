"""Suite-wide settings. In CI (CI=true) hypothesis is derandomized so a run is reproducible; locally
it explores new examples every run (and keeps failures in .hypothesis/ to replay them)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from market_clock import OPEN_MINUTE

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# Every test runs with the clock of a Tuesday 10:00 New York (tests/market_clock.py); tests of the closed
# market set their own.


@pytest.fixture(autouse=True)
def _market_open_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOE_CLOCK_START", OPEN_MINUTE)
