"""Shared fixtures for the IBKR broker and TWS simulator tests.

`ib_log_guard` (autouse) fails any test during which the `ib_async` logger tree logged an ERROR
that the test did not declare as expected: ib_async swallows decode errors (it logs "Error handling
fields" and carries on), so a silent wire mismatch would otherwise pass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from joe.brokers.ibkr import IBKRMarketData
from joe.brokers.ibkr.client import IBKRExecutionClient
from joe.brokers.ibkr.connection import IBKRConnection
from joe.core.events import NullAudit
from joe.execution.order_manager import OrderManager
from joe.simulators.ibkr import IBKRSimulator
from joe.store import Store, open_store

from .helpers import running_sim

# ib_async's own (wrong) reading of notices an OrderManager test provokes, logged at ERROR/WARNING.
ORDER_MANAGER_IB_LOGS = (r"Error \d+", r"Warning \d+", r"Canceled order", r"validation warning")


class LogGuard(logging.Handler):
    """Collects ib_async records; ERROR+ ones fail the test unless a pattern allows them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.allowed: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def allow(self, *patterns: str) -> None:
        """Declare ERROR messages (regex, searched) this test expects, e.g. r"Error 202"."""
        self.allowed += [re.compile(p) for p in patterns]

    def messages(self, min_level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= min_level]

    def unexpected(self) -> list[str]:
        out = []
        for r in self.records:
            if r.levelno < logging.ERROR:
                continue
            msg = r.getMessage()
            if r.exc_info:
                msg += f" [{r.exc_info[1]!r}]"
            if not any(p.search(msg) for p in self.allowed):
                out.append(f"{r.name}: {msg}")
        return out


@pytest.fixture(autouse=True)
def ib_log_guard() -> Iterator[LogGuard]:
    guard = LogGuard()
    logger = logging.getLogger("ib_async")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(guard)
    try:
        yield guard
    finally:
        logger.removeHandler(guard)
        logger.setLevel(old_level)
    bad = guard.unexpected()
    if bad:
        pytest.fail("unexpected ERROR log records from ib_async:\n" + "\n".join(bad[:20]))


@pytest.fixture(params=[178, 157], ids=["sv178", "sv157"])
def server_version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
async def sim(server_version: int) -> AsyncIterator[IBKRSimulator]:
    async with running_sim(server_version=server_version) as s:
        yield s


@pytest.fixture
async def sim178() -> AsyncIterator[IBKRSimulator]:
    async with running_sim() as s:
        yield s


@pytest.fixture
def audit() -> NullAudit:
    return NullAudit()


@pytest.fixture
async def make_client(audit: NullAudit) -> AsyncIterator[Callable[..., Any]]:
    """Build connected `IBKRExecutionClient`s (each with a `Recorder` of its observations at
    `.recorder`) against a simulator; all are closed at teardown."""
    from .helpers import Recorder

    made: list[tuple[IBKRExecutionClient, Recorder]] = []

    async def factory(sim: IBKRSimulator, *, client_id: int = 31, connect: bool = True, **kw: Any) -> Any:
        kw.setdefault("backoff_initial", 0.05)
        kw.setdefault("backoff_max", 0.2)
        kw.setdefault("connect_timeout", 2.0)
        kw.setdefault("request_timeout", 3.0)
        client = IBKRExecutionClient("127.0.0.1", sim.port, client_id, "", "paper", audit, **kw)
        rec = Recorder(client)
        made.append((client, rec))
        client.recorder = rec  # type: ignore[attr-defined]
        if connect:
            await client.connect()
        return client

    yield factory
    for client, rec in reversed(made):
        rec.stop()
        await client.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(data_dir=tmp_path)
    yield s
    s.close()


@pytest.fixture
def other_store(tmp_path: Path) -> Iterator[Store]:
    """A second process's own store (another data folder)."""
    s = open_store(data_dir=tmp_path / "other")
    yield s
    s.close()


@pytest.fixture
async def make_om(make_client: Any, ib_log_guard: Any) -> AsyncIterator[Callable[..., Any]]:
    """An `OrderManager` (started, consuming observations) on a fresh IBKR client against `sim`."""
    ib_log_guard.allow(*ORDER_MANAGER_IB_LOGS)
    made: list[OrderManager] = []

    async def factory(sim: IBKRSimulator, store: Store, **client_kw: Any) -> OrderManager:
        client = await make_client(sim, **client_kw)
        om = OrderManager(client, store, NullAudit(), confirm_timeout=3.0)
        await om.start()
        made.append(om)
        return om

    yield factory
    for om in reversed(made):
        await om.stop()


@pytest.fixture
async def make_market_data(audit: NullAudit) -> AsyncIterator[Callable[..., Any]]:
    made: list[IBKRMarketData] = []

    async def factory(sim: IBKRSimulator, *, client_id: int = 21, **kw: Any) -> IBKRMarketData:
        conn = IBKRConnection(
            "127.0.0.1",
            sim.port,
            client_id,
            "",
            "paper",
            audit,
            connect_timeout=2.0,
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        md = IBKRMarketData(audit=audit, connection=conn, **kw)
        made.append(md)
        await md.connect()
        return md

    yield factory
    for m in reversed(made):
        await m.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A hung socket test should fail fast, not after the global 300 s timeout."""
    for item in items:
        if "tests/ibkr/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(60))
