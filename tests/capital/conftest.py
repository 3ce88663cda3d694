"""Fixtures: a Capital.com simulator on a free loopback port and clients/executors logged in to it.

Rate limits run 10x faster on both sides (`SCALE`) so bursts finish quickly; the real-time limits
are exercised by dedicated smaller tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from joe.audit.redaction import clear_secrets
from joe.brokers.capital import CapitalClient, CapitalExecutor, CapitalMarketData, Credentials, Limits
from joe.core.events import NullAudit
from joe.simulators.capital import CapitalSimulator, SimLimits
from joe.simulators.common import SimClock
from joe.store import Store, open_store
from market_clock import sim_clock

SCALE = 10.0

# For a test whose assertion needs the broker's clock to agree with the host's (the simulator's HTTP
# Date header follows the host's clock, not its own). Weekday-independent while the simulator's markets
# trade every day.
HOST_CLOCK = pytest.mark.parametrize("sim", ["host"], indirect=True)
# A module whose tests must hold whichever way the broker's clock is off Joe's: on the suite's market
# clock (days behind the host on most dates), and 3 hours behind and ahead of the host (far beyond every
# slack and overlap Joe allows). Joe must read the broker's executions on the broker's clock.
SKEW = timedelta(hours=3)
ANY_BROKER_CLOCK = pytest.mark.parametrize("sim", ["market", "behind", "ahead"], indirect=True)


def make_client(
    sim: CapitalSimulator, *, audit: Any = None, scale: float = SCALE, **kw: Any
) -> CapitalClient:
    """A client for `sim` with limits scaled like the simulator's and quick backoffs."""
    creds = Credentials(
        sim.login.api_key, sim.login.identifier, sim.login.password, kw.pop("encrypted", False)
    )
    kw.setdefault("backoff_s", 0.01)
    return CapitalClient(sim.url, creds, audit=audit or NullAudit(), limits=Limits().scaled(scale), **kw)


@pytest.fixture
def audit() -> NullAudit:
    return NullAudit()


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[CapitalSimulator]:
    """The simulator, on the suite's market clock (`market_clock.sim_clock`: a Tuesday, whatever the
    weekday it runs on); `@pytest.mark.parametrize("sim", ["frozen"], indirect=True)` freezes its clock,
    so its prices stand still until the test moves them (no wall-clock dependence); `["host"]` runs it on
    the host's clock (`HOST_CLOCK`); `["behind"]` / `["ahead"]` 3 hours off it (`ANY_BROKER_CLOCK`)."""
    param = getattr(request, "param", None)
    if param == "frozen":
        clock = SimClock.frozen()
    elif param in ("host", "behind", "ahead"):
        skew = {"host": timedelta(0), "behind": -SKEW, "ahead": SKEW}[param]
        clock = SimClock(datetime.now(UTC) + skew)
    else:
        clock = sim_clock()
    s = CapitalSimulator(seed=7, limits=SimLimits().scaled(SCALE), tick_s=0.02, clock=clock)
    await s.start()
    yield s
    await s.stop()
    clear_secrets()
    assert s.internal_errors == []  # the simulator itself never failed


@pytest.fixture
async def client(sim: CapitalSimulator, audit: NullAudit) -> AsyncIterator[CapitalClient]:
    c = make_client(sim, audit=audit)
    await c.open()
    yield c
    await c.close()


@pytest.fixture
def executor_factory(client: CapitalClient, audit: NullAudit) -> Callable[..., CapitalExecutor]:
    def make(**kw: Any) -> CapitalExecutor:
        kw.setdefault("confirm_interval_s", 0.02)
        kw.setdefault("reconcile_interval_s", 0.05)
        kw.setdefault("reconcile_window_s", 2.0)
        return CapitalExecutor(client, audit=audit, **kw)

    return make


@pytest.fixture
async def executor(executor_factory: Callable[..., CapitalExecutor]) -> CapitalExecutor:
    ex = executor_factory()
    await ex.connect()
    return ex


@pytest.fixture
def market_data(client: CapitalClient, audit: NullAudit) -> CapitalMarketData:
    return CapitalMarketData(client, audit=audit)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store (SQLite) in the test's folder, closed after it."""
    s = open_store(data_dir=tmp_path)
    yield s
    s.close()
