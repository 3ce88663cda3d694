"""Fixtures: a Capital.com simulator on a free loopback port and clients/executors logged in to it.

Rate limits run 10x faster on both sides (`SCALE`) so bursts finish quickly; the real-time limits
are exercised by dedicated smaller tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
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

# For a module whose tests need the broker's clock to agree with the host's: Joe's Capital.com layer
# compares the broker's deal times with the host's clock (e.g. the reconciliation window of a lost order
# answer starts at the host's `sent_at`), so against a broker days away it finds nothing, or takes a fill
# of Joe's for the owner's.
# Such a test runs its simulator on the host's clock (weekday-independent while the simulator's
# markets trade every day).
HOST_CLOCK = pytest.mark.parametrize("sim", ["host"], indirect=True)


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
    the host's clock (`HOST_CLOCK`)."""
    param = getattr(request, "param", None)
    clock = SimClock.frozen() if param == "frozen" else SimClock() if param == "host" else sim_clock()
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
