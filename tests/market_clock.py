"""The suite's market clock. Live and shadow runs judge market hours at the minute (joe.safety.live_book):
without a fixed clock, whether a test's run may enter would depend on the wall-clock hour. Every test runs
at a Tuesday 10:00 New York (NYSE open) through JOE_CLOCK_START (tests/conftest.py); a fixture that builds
its own environment (a module-scoped one, or one that keeps JOE_* out) passes it on itself.

A simulator that a test starts for Joe to trade at runs on the same clock (`sim_clock`, and
`daemon_proc.sim_process` passes JOE_SIM_CLOCK_START to `joe sim`): its trading days, daily bars, market
hours and quote times are then that Tuesday's too, not the weekday the suite happens to run on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime

from joe.simulators.common import SimClock

OPEN_MINUTE = "2026-12-01T15:00:00+00:00"


def market_instant(env: Mapping[str, str] | None = None) -> str:
    """The instant Joe's market clock starts at in `env` (default: this process's environment, where
    conftest sets JOE_CLOCK_START): the test's own JOE_CLOCK_START, else OPEN_MINUTE."""
    return (os.environ if env is None else env).get("JOE_CLOCK_START") or OPEN_MINUTE


def sim_clock(env: Mapping[str, str] | None = None) -> SimClock:
    """A simulator's clock that starts at Joe's market instant (`market_instant`) and runs on at the real
    rate, for an in-process `CapitalSimulator(clock=...)` / `IBKRSimulator(clock=...)`."""
    return SimClock(datetime.fromisoformat(market_instant(env)))
