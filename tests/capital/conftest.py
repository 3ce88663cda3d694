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

SCALE = 10.0


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
    """The simulator; `@pytest.mark.parametrize("sim", ["frozen"], indirect=True)` freezes its clock,
    so its prices stand still until the test moves them (no wall-clock dependence)."""
    clock = SimClock.frozen() if getattr(request, "param", None) == "frozen" else None
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
