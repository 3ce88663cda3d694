"""Fixtures for the store tests: a fresh store per test, on a SQLite file and — for the order, fill
and state tests — also on a real PostgreSQL server started for the session (`pg_server.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import PgServer, find_pg_bin

from joe.store import Store, open_store

# Modules whose `store` tests also run against PostgreSQL (the README promises it).
_PG_MODULES = {"test_store_orders", "test_store_runs_state", "test_store_positions"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL 15 binaries (initdb, pg_ctl) not installed; `.ci/run` installs them")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed (pip install -e '.[test]')")
    srv = PgServer.start()
    try:
        yield srv
    finally:
        srv.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" in metafunc.fixturenames:
        backends = ["sqlite", "postgresql"] if metafunc.module.__name__ in _PG_MODULES else ["sqlite"]
        metafunc.parametrize("store", backends, indirect=True)


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if getattr(request, "param", "sqlite") == "postgresql":
        srv: PgServer = request.getfixturevalue("pg_server")
        s = open_store(srv.fresh_url())
    else:
        s = open_store(data_dir=tmp_path / "data")
    try:
        yield s
    finally:
        s.close()
