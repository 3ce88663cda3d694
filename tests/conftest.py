"""Suite-wide settings. Hypothesis is derandomized, so every run of `make test` (and CI) tries the same
examples and a result never depends on the run; `JOE_HYPOTHESIS_EXPLORE=1` explores new examples
instead (and keeps failures in .hypothesis/ to replay them) — how new examples are found, then pinned
with `@example`."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from market_clock import OPEN_MINUTE
from wall_clock import ENV as WALL_CLOCK_ENV
from wall_clock import WallClockShift, parse_instant

# deadline=None: Hypothesis's per-example deadline (200 ms by default) is a timed assertion, and on a
# loaded 2-core CI machine an example of a parser test can take longer than that for no fault of the
# code (seen here: DeadlineExceeded on a bar-payload parser while other work ran); the too_slow health
# check is the same kind for data generation. Speed is measured in bench/.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
if not os.environ.get("JOE_HYPOTHESIS_EXPLORE"):
    settings.load_profile("ci")


# The end-to-end suite (`make e2e`): the runtime layer's tests (whole runs, the CLI and the daemon,
# most as separate `joe` processes against the simulators), the other tests that run `joe` commands as
# processes, and the chaos smoke subset. `make test` runs everything else (under 15 minutes on 2 cores);
# CI (`.ci/run`) runs both, so every test still gates a change.
E2E_DIRS = ("runtime/",)
E2E_FILES = frozenset({
    "safety/test_secrets_every_command.py", "safety/test_run_safety.py", "safety/test_kill_flatten_cli.py",
    "doctor/test_doctor_sims.py", "execution/test_restart_e2e.py",
})  # fmt: skip
E2E_TESTS = frozenset({"chaos/test_chaos.py::test_the_smoke_subset"})
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the end-to-end suite `e2e` (selected by `make e2e`, left out by `make test`)."""
    for item in items:
        rel = os.path.relpath(str(item.fspath), _TESTS_DIR).replace(os.sep, "/")
        name = f"{rel}::{item.name.split('[')[0]}"
        if rel.startswith(E2E_DIRS) or rel in E2E_FILES or name in E2E_TESTS:
            item.add_marker(pytest.mark.e2e)


# Every test runs with the clock of a Tuesday 10:00 New York (tests/market_clock.py); tests of the closed
# market set their own.


@pytest.fixture(autouse=True)
def _market_open_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOE_CLOCK_START", OPEN_MINUTE)


# The account and store locks live in one machine-wide folder (joe.safety.lock.machine_lock_dir:
# /run/lock/joe-locks), shared by every xdist worker and every other suite on the machine: two tests trading
# the same account (say IBKR 127.0.0.1:4002/DU1234567) at once refused each other ("another Joe trades
# this account"). Each test gets a folder of its own (JOE_LOCK_DIR), which its `joe` processes inherit;
# a test of the machine-wide default deletes it.


_TESTS_SO_FAR = itertools.count()


@pytest.fixture(scope="session")
def _lock_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("locks")  # one per xdist worker (each has its own base folder)


@pytest.fixture(autouse=True)
def _lock_dir_of_this_test(monkeypatch: pytest.MonkeyPatch, _lock_dirs: Path) -> None:
    # Made by the first lock taken in it (InstanceLock.acquire), so a test that takes none costs nothing.
    monkeypatch.setenv("JOE_LOCK_DIR", str(_lock_dirs / str(next(_TESTS_SO_FAR))))


# A test-only switch (tests/wall_clock.py): JOE_TEST_WALL_CLOCK=<ISO instant> runs the session as if the
# wall clock read that instant (datetime.now / date.today in src/joe and tests/, simulators on the wall
# clock included), to find tests that pass or fail by the hour, weekday or date the suite runs at.
_WALL_CLOCK = (
    WallClockShift(parse_instant(os.environ[WALL_CLOCK_ENV])) if os.environ.get(WALL_CLOCK_ENV) else None
)


@pytest.fixture(autouse=True)
def _shifted_wall_clock() -> None:
    if _WALL_CLOCK is not None:
        _WALL_CLOCK.apply()


def pytest_report_header() -> str | None:
    return (
        None
        if _WALL_CLOCK is None
        else f"{WALL_CLOCK_ENV}: wall clock shifted to {_WALL_CLOCK.instant.isoformat()}"
    )
